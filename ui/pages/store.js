// Store detail: metadata, isolation, agent, health and checks, releases, runs, operations and
// last successes; the allowed operations with a form to run one (and its result), deploy and
// rollback behind a confirmation dialog; outside a deploy window (GET /v1/deploy-windows) the
// deploy form says so and takes a break-glass reason. What the principal may not do is disabled with the
// reason (lib/capabilities.js and the facts below: agent allow-list, store state, active run).
import { h, badge, table, time, facts, notice, code, announce, actionButton, formatTime, externalLink } from '../lib/dom.js';
import { get, post, ApiError, describeError } from '../lib/api.js';
import { Page, section, keep } from '../lib/page.js';
import { can, disabledReason, approvalHint } from '../lib/capabilities.js';
import { OPERATIONS, CACHE_TYPES, FINAL_OPERATION_STATES, ACTIVE_RUN_STATES } from '../lib/catalog.js';
import { confirmDialog } from '../components/sp-dialog.js';

const optional = async (promise) => {
  try { return { value: await promise, error: null }; } catch (err) {
    if (err instanceof ApiError && (err.status === 403 || err.status === 404)) return { value: null, error: err };
    throw err;
  }
};

class SpStorePage extends Page {
  constructor() {
    super();
    this.outcome = keep(h('div.outcome', { 'aria-live': 'polite' }));
    this.actionsSignature = null;
    this.actions = null;
  }

  title() { return `Store ${this.params.id}`; }

  async render() {
    const id = this.params.id;
    const path = `/v1/stores/${encodeURIComponent(id)}`;
    const store = await get(path);
    const [health, agent, runs, ops, windows] = await Promise.all([
      optional(get(`${path}/health`)), optional(get(`${path}/agent`)),
      optional(get('/v1/runs', { store: id, limit: 10 })), optional(get(`${path}/operations`, { limit: 10 })),
      optional(get('/v1/deploy-windows', { environment: store.environment })),
    ]);
    this.store = store;
    this.agent = agent.value;
    const activeRun = runs.value?.items.find((r) => ACTIVE_RUN_STATES.includes(r.state)) || null;
    const mismatch = health.value && health.value.reported_isolation && health.value.reported_isolation !== store.isolation_mode;
    const deployWindow = windows.value?.environments?.find((e) => e.environment === store.environment) || null;
    await this.buildActions(store, agent.value, activeRun, Boolean(mismatch), deployWindow);

    const labels = Object.entries(store.labels || {});
    return [
      h('p.subtitle', {}, store.name, ' ', badge(store.environment), ' ', badge(store.state), ' ',
        health.value ? badge(health.value.health, 'health') : null),
      h('div.grid', {},
        section('Metadata', facts([
          ['Id', code(store.id)], ['Name', store.name], ['Environment', store.environment],
          ['Isolation mode', h('span', {}, badge(store.isolation_mode), mismatch ? h('strong.warn-text', {}, ` agent reports ${health.value.reported_isolation}: deploys are blocked`) : null)],
          ['Lifecycle state', badge(store.state)],
          ['Labels', labels.length ? h('ul.labels', {}, labels.map(([k, v]) => h('li', {}, code(`${k}=${v}`)))) : 'none'],
          ['Current release', store.current_release || '—'],
          ['Last known good release', store.last_known_good_release || '—'],
          ['Version', String(store.version)], ['Created', time(store.created_at)], ['Updated', time(store.updated_at)],
        ])),
        section('Agent', this.agentFacts(agent, health))),
      section('Health checks', health.value
        ? table(`Checks from the agent's last heartbeat or probe${['offline', 'stale'].includes(health.value.availability) ? ` (the agent is ${health.value.availability}: they may be out of date)` : ''}`, ['Check', 'Status', 'Code'],
          health.value.checks.map((c) => [c.name, badge(c.status), code(c.code)]), { empty: 'No checks reported yet.' })
        : notice('info', `Health is not shown: ${describeError(health.error)}`)),
      section('Actions', this.actions, this.outcome),
      section('Pipeline runs', runs.value
        ? table('The latest runs of this store', ['Run', 'Kind', 'State', 'Release', 'Requested by', 'Created', 'Provider'],
          runs.value.items.map((r) => [code(r.id), r.kind, badge(r.state), r.release || '—', r.requested_by, time(r.created_at),
            r.external_url ? externalLink(r.external_url, r.provider) : r.provider || '—']),
          { empty: 'No runs yet.', className: 'runs' })
        : notice('info', `Runs are not shown: ${describeError(runs.error)}`)),
      section('Operations', ops.value
        ? table('The latest operations on this store', ['Operation', 'Name', 'State', 'Code', 'Result', 'Requested by', 'Created'],
          ops.value.items.map((o) => [code(o.id), o.name, badge(o.state), o.code || '—', resultSummary(o.result), o.requested_by, time(o.created_at)]),
          { empty: 'No operations yet.', className: 'operations' })
        : notice('info', `Operations are not shown: ${describeError(ops.error)}`)),
      section('Last successful operations', health.value
        ? table('The last success of each operation, check and pipeline', ['Kind', 'Name', 'At', 'Reference'],
          health.value.last_successes.map((s) => [s.kind, s.name, time(s.at), s.ref ? code(s.ref) : '—']), { empty: 'None yet.' })
        : notice('info', 'Not shown (no access to the store\'s health).')),
    ];
  }

  agentFacts(agent, health) {
    if (agent.error && agent.error.status === 404) {
      return [h('p', {}, badge('no agent'), ' No agent is enrolled for this store.'), health.value ? facts([['Health', badge(health.value.health)], ['Reasons', health.value.reasons.join(', ') || '—']]) : null];
    }
    if (agent.error) return notice('info', `The agent is not shown: ${describeError(agent.error)}`);
    const a = agent.value;
    const hv = health.value;
    return facts([
      ['Availability', badge(a.revoked_at ? 'revoked' : a.availability)],
      ['Health', h('span', {}, badge(a.health), a.health_reasons?.length ? h('small.reasons', {}, ' ', a.health_reasons.join(', ')) : null)],
      ['Last seen', time(a.last_seen_at)],
      ['Agent', h('span', {}, code(a.agent_id), ' version ', a.agent_version || '—')],
      ['Reported release', a.release || '—'],
      ['Reported isolation', a.reported_isolation || '—'],
      ['Allow-list', a.allowed_operations.length ? h('ul.labels', {}, a.allowed_operations.map((o) => h('li', {}, code(o)))) : 'empty'],
      ['Enrolled', time(a.enrolled_at)], ['Credential rotated', time(a.rotated_at)], ['Revoked', time(a.revoked_at)],
      ['Flags', hv && hv.flags.length ? hv.flags.join(', ') : 'none'],
    ]);
  }

  async buildActions(store, agent, activeRun, mismatch, deployWindow) {
    const id = store.id;
    const verdicts = {};
    const actions = [...OPERATIONS.map(([name]) => `operation.run.${name}`), 'deploy.request', 'rollback.request'];
    await Promise.all(actions.map(async (a) => { verdicts[a] = await can(a, id); }));
    const signature = JSON.stringify([store.state, store.last_known_good_release, agent && [agent.availability, agent.revoked_at, agent.allowed_operations],
      activeRun && activeRun.id, mismatch, verdicts, deployWindow && [deployWindow.open, deployWindow.reason, deployWindow.next_open_at]]);
    if (signature === this.actionsSignature && this.actions) return;
    this.actionsSignature = signature;

    // Operations: facts first (agent, allow-list), then the policy's verdict.
    const opReason = (name) => {
      if (!agent) return 'No agent is enrolled for this store.';
      if (agent.revoked_at) return 'The store\'s agent is revoked.';
      if (agent.availability === 'never_seen') return 'The store\'s agent has never reported.';
      if (!agent.allowed_operations.includes(name)) return `The store's agent does not allow ${name} (its local allow-list).`;
      return disabledReason(verdicts[`operation.run.${name}`]);
    };
    const select = h('select', { id: 'op-name', name: 'name' });
    const unavailable = [];
    for (const [name, summary] of OPERATIONS) {
      const reason = opReason(name);
      select.append(h('option', { value: name, disabled: Boolean(reason) }, `${name} — ${summary}`));
      if (reason) unavailable.push(h('li', {}, code(name), ': ', reason));
    }
    const firstAllowed = [...select.options].find((o) => !o.disabled);
    if (firstAllowed) select.value = firstAllowed.value;
    const cacheTypes = h('fieldset.cache-types', { hidden: select.value !== 'cache.flush' },
      h('legend', {}, 'Cache types to flush (none checked: all)'),
      CACHE_TYPES.map((t) => h('label.check', {}, h('input', { type: 'checkbox', name: 'types', value: t }), ' ', t)));
    select.addEventListener('change', () => { cacheTypes.hidden = select.value !== 'cache.flush'; });
    const runButton = h('button.primary', { type: 'submit', disabled: !firstAllowed }, 'Run operation');
    const offlineHint = agent && ['offline', 'stale'].includes(agent.availability)
      ? h('p.hint', {}, `The agent is ${agent.availability}: an operation waits for it until it expires.`) : null;
    const opForm = h('form.op-form', { 'aria-label': 'Run an operation' },
      h('div.field', {}, h('label', { for: 'op-name' }, 'Operation'), select), cacheTypes, offlineHint, runButton,
      unavailable.length ? h('div.unavailable', {}, h('p', {}, 'Not available here:'), h('ul', {}, unavailable)) : null);
    opForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const name = select.value;
      const types = [...opForm.querySelectorAll('input[name=types]:checked')].map((i) => i.value);
      this.runOperation(name, name === 'cache.flush' && types.length ? { types } : {});
    });

    // Deploy and rollback: the store must be active with no run in progress.
    const lifecycleReason = (action) => {
      if (store.state !== 'active') return `The store is ${store.state}; deploys and rollbacks need an active store.`;
      if (activeRun) return `Run ${activeRun.id} (${activeRun.kind}, ${activeRun.state}) is in progress; one run at a time.`;
      if (action === 'deploy.request' && mismatch) return 'The agent reports another isolation mode than recorded: deploys are blocked.';
      return disabledReason(verdicts[action]);
    };
    const release = h('input', { id: 'deploy-release', name: 'release', type: 'text', required: true, pattern: '[A-Za-z0-9][A-Za-z0-9._+\\-]{0,63}', autocomplete: 'off' });
    const deployReason = lifecycleReason('deploy.request');
    // Outside a deploy window: say until when, and take a break-glass reason (an approver
    // other than the requester must then approve the change).
    const closed = deployWindow && !deployWindow.open;
    const breakGlass = closed
      ? h('textarea', { id: 'deploy-break-glass', name: 'break_glass', rows: 2, required: true, minLength: 10, maxLength: 500 })
      : null;
    if (breakGlass) breakGlass.disabled = Boolean(deployReason);
    const windowNotice = closed
      ? h('div.deploy-window', { dataset: { open: 'false' } },
        notice('warn', h('strong', {}, 'Outside the deploy window. '), deployWindow.reason,
          deployWindow.next_open_at ? ` It opens at ${formatTime(new Date(deployWindow.next_open_at))}.` : ' It does not open within a year.',
          ' A deploy now needs a break-glass reason and the approval of someone else.'),
        h('div.field', {}, h('label', { for: 'deploy-break-glass' }, 'Break-glass reason (10–500 characters)'), breakGlass))
      : null;
    const deploy = h('form.deploy-form', { 'aria-label': 'Deploy a release' },
      windowNotice,
      h('div.field', {}, h('label', { for: 'deploy-release' }, 'Release to deploy'), release),
      actionButton('Deploy…', { disabledReason: deployReason, hint: approvalHint(verdicts['deploy.request']), name: 'deploy' }));
    deploy.querySelector('button').type = 'submit';
    release.disabled = Boolean(deployReason);
    deploy.addEventListener('submit', (ev) => {
      ev.preventDefault();
      if (deployReason || !release.reportValidity()) return;
      if (breakGlass && !breakGlass.reportValidity()) return;
      const body = { release: release.value.trim() };
      if (breakGlass) body.break_glass = { reason: breakGlass.value.trim() };
      this.requestRun('deploy', body, verdicts['deploy.request']);
    });
    const rollbackReason = lifecycleReason('rollback.request');
    const rollbackRelease = h('input', { id: 'rollback-release', name: 'release', type: 'text', pattern: '[A-Za-z0-9][A-Za-z0-9._+\\-]{0,63}', autocomplete: 'off', placeholder: store.last_known_good_release || '' });
    rollbackRelease.disabled = Boolean(rollbackReason);
    const rollback = h('form.rollback-form', { 'aria-label': 'Roll back' },
      h('div.field', {}, h('label', { for: 'rollback-release' }, 'Roll back to (empty: last known good)'), rollbackRelease),
      actionButton('Roll back…', { disabledReason: rollbackReason, hint: approvalHint(verdicts['rollback.request']), name: 'rollback' }));
    rollback.querySelector('button').type = 'submit';
    rollback.addEventListener('submit', (ev) => {
      ev.preventDefault();
      if (rollbackReason || !rollbackRelease.reportValidity()) return;
      const target = rollbackRelease.value.trim();
      this.requestRun('rollback', target ? { release: target } : {}, verdicts['rollback.request']);
    });
    const undecided = Object.values(verdicts).some((v) => v.state === 'unknown');
    const note = undecided
      ? h('p.muted.note', {}, 'Actions not marked otherwise are decided by the server when you submit them: this principal cannot ask the policy in advance (no authz.explain). A refusal is shown, and the action is disabled from then on.')
      : null;
    this.actions = keep(h('div', {}, note, h('div.actions-grid', {},
      h('div.action-box', {}, h('h3', {}, 'Run an operation'), opForm),
      h('div.action-box', {}, h('h3', {}, 'Deploy'), deploy),
      h('div.action-box', {}, h('h3', {}, 'Roll back'), rollback))));
  }

  async runOperation(name, params) {
    const id = this.store.id;
    this.outcome.replaceChildren(h('p.muted', {}, `Requesting ${name}…`));
    let op;
    try {
      op = (await post(`/v1/stores/${encodeURIComponent(id)}/operations`, { name, params })).data;
    } catch (err) {
      this.outcome.replaceChildren(notice('error', `${name} was refused: ${describeError(err)}`));
      this.scheduleRefresh(0);
      return;
    }
    this.showOperation(op);
    // Follow our own operation to its end (the live stream refreshes the rest of the page).
    for (let i = 0; i < 120 && this.isConnected && !FINAL_OPERATION_STATES.includes(op.state); i++) {
      await new Promise((r) => setTimeout(r, 1000));
      try {
        op = await get(`/v1/stores/${encodeURIComponent(id)}/operations/${encodeURIComponent(op.id)}`);
      } catch (err) {
        this.outcome.append(notice('error', describeError(err)));
        return;
      }
      this.showOperation(op);
    }
    announce(`Operation ${op.name} ${op.state}.`);
    this.scheduleRefresh(0);
  }

  showOperation(op) {
    this.outcome.replaceChildren(h('div.result', { dataset: { operation: op.id, state: op.state } },
      h('h3', {}, `Operation ${op.name}: `, badge(op.state)),
      facts([['Id', code(op.id)], ['Requested by', op.requested_by], ['Created', time(op.created_at)], ['Finished', time(op.finished_at)],
        ['Failure code', op.code || '—']]),
      op.result ? resultDetails(op.result) : null));
  }

  async requestRun(kind, body, verdict) {
    const store = this.store;
    const production = store.environment === 'production';
    const hint = approvalHint(verdict);
    const what = kind === 'deploy' ? `Deploy release ${body.release}` : `Roll back to ${body.release || `the last known good release (${store.last_known_good_release || 'none recorded'})`}`;
    const confirmed = await confirmDialog({
      title: `${what} on ${store.id}?`,
      body: [h('p', {}, `${what} on store ${store.id} (${store.environment}, ${store.isolation_mode}). storeplane asks the CI/CD pipeline to do it; the health gate then verifies the release.`),
        body.break_glass ? h('p', {}, h('strong', {}, 'Break-glass: '), 'outside the deploy window, this becomes a change request that someone else must approve; nothing runs until then.') : null,
        hint ? h('p', {}, h('strong', {}, hint), ': nothing runs until then.') : production ? h('p', {}, h('strong', {}, 'This is production: the policy may hold it for approval by another person.')) : null],
      confirmLabel: kind === 'deploy' ? 'Deploy' : 'Roll back',
      danger: production,
    });
    if (!confirmed) return;
    const path = `/v1/stores/${encodeURIComponent(store.id)}/${kind === 'deploy' ? 'deployments' : 'rollbacks'}`;
    try {
      const { data } = await post(path, body);
      if (data && typeof data.id === 'string' && data.id.startsWith('chg_')) {
        this.outcome.replaceChildren(notice('warn', h('strong', {}, 'Approval required. '),
          `Change request `, code(data.id), ` is ${data.status}: it needs ${data.approvals_needed} approval${data.approvals_needed === 1 ? '' : 's'} (rule ${data.approval_rule}) by someone other than you, before ${formatTime(new Date(data.expires_at))}. `,
          h('a', { href: '#/approvals' }, 'See approvals')));
        announce(`Change request ${data.id} is waiting for approval.`);
      } else {
        this.outcome.replaceChildren(notice('success', `Run `, code(data.id), ` (${data.kind}) is ${data.state}.`));
        announce(`Run ${data.id} requested.`);
      }
    } catch (err) {
      this.outcome.replaceChildren(notice('error', `The ${kind} was refused: ${describeError(err)}`));
    }
    this.scheduleRefresh(0);
  }

  onLiveEvent(event) {
    const data = event.data || {};
    if (event.type === 'reset' || data.store_id === this.params.id) {
      if (event.type === 'agent.status') announce(`Store ${this.params.id}: agent ${data.availability}, health ${data.health}.`);
      this.scheduleRefresh(200);
    }
  }
}

function resultSummary(result) {
  if (!result) return '—';
  const parts = [];
  if (result.checks) parts.push(`${result.checks.length} checks`);
  if (result.maintenance !== undefined) parts.push(`maintenance ${result.maintenance ? 'on' : 'off'}`);
  if (result.flushed) parts.push(`flushed ${result.flushed.length} cache type${result.flushed.length === 1 ? '' : 's'}`);
  if (result.indexers) parts.push(`${result.indexers.length} indexers`);
  if (result.schema_up_to_date !== undefined) parts.push(result.schema_up_to_date ? 'schema up to date' : 'schema not up to date');
  if (result.release !== undefined || result.magento_version) parts.push(`release ${result.release ?? 'none'}, Magento ${result.magento_version ?? '?'}`);
  return parts.join('; ') || '—';
}

function resultDetails(result) {
  const nodes = [h('p', {}, h('strong', {}, 'Result: '), resultSummary(result))];
  if (result.checks) nodes.push(table('Checks', ['Check', 'Status', 'Code'], result.checks.map((c) => [c.name, badge(c.status), code(c.code)])));
  if (result.indexers) nodes.push(table('Indexers', ['Indexer', 'Status'], result.indexers.map((i) => [i.id, badge(i.status)])));
  if (result.flushed) nodes.push(h('p', {}, 'Flushed: ', result.flushed.join(', ')));
  return h('div.result-details', {}, nodes);
}

customElements.define('sp-store-page', SpStorePage);
