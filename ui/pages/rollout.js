// Rollout detail (GET /v1/rollouts/{id}): the state and what it waits for, the failure budget,
// the waves with a segmented progress bar each, the spec, and the targets
// (GET /v1/rollouts/{id}/targets, filtered by wave and state, cursor pages; deploy and
// rollback runs link to the runs page). Pause, Resume, Abort (a confirmation dialog, with
// "roll back the current wave") and Approve wave N are disabled with the reason when they do
// not apply to the state (core::CheckRolloutCommand's rules) or are not allowed (policy, a 403,
// separation of duties for approvals). Live: rollout.updated for this rollout and its runs'
// events refresh the page (debounced); state changes are announced to screen readers.
import { h, badge, table, time, facts, notice, code, announce, actionButton } from '../lib/dom.js';
import { get, post, ApiError, describeError } from '../lib/api.js';
import { Page, section, keep } from '../lib/page.js';
import { session } from '../lib/session.js';
import { can, disabledReason, rememberRefusal } from '../lib/capabilities.js';
import { confirmDialog } from '../components/sp-dialog.js';
import {
  TARGET_STATES, SKIP_REASONS, FINAL_ROLLOUT_STATES, waveName, waveProgress, progressBar, progressLegend, waitingFor, specFacts,
} from '../lib/rollouts.js';

const PAUSABLE = ['running', 'waiting_between_waves', 'awaiting_approval'];
const NOT_ABORTABLE = ['halting', 'rolling_back', ...FINAL_ROLLOUT_STATES];
// After a command, focus goes to the control that undoes it when the one used is gone.
const FOCUS_NEXT = { pause: 'resume', resume: 'pause' };

class SpRolloutPage extends Page {
  constructor() {
    super();
    this.outcome = keep(h('div.outcome', { 'aria-live': 'polite' }));
    this.actions = null;
    this.actionsSignature = null;
    this.lastState = null;
    this.focusAction = null;
  }

  title() { return `Rollout ${this.params.id}`; }

  async render() {
    const id = this.params.id;
    const path = `/v1/rollouts/${encodeURIComponent(id)}`;
    const q = this.query;
    const [rollout, targets] = await Promise.all([
      get(path),
      get(`${path}/targets`, { wave: q.get('wave'), state: q.get('state'), cursor: q.get('cursor'), limit: 50 }),
    ]);
    this.rollout = rollout;
    const focused = document.activeElement?.closest?.('[data-action]');
    this.focusAction = focused && this.contains(focused) ? focused.dataset.action : null;
    await this.buildActions(rollout);
    this.announceState(rollout);

    const waiting = waitingFor(rollout);
    const counts = rollout.counts || {};
    const over = (rollout.failed_deploys || 0) > (rollout.allowed_failures || 0);
    const final = FINAL_ROLLOUT_STATES.includes(rollout.state);
    return [
      h('p.subtitle', {}, 'Release ', h('strong', {}, rollout.release), ' to ', badge(rollout.environment), ' ',
        h('span.rollout-state', { dataset: { state: rollout.state } }, badge(rollout.state)),
        rollout.ending ? h('span', {}, ' ', badge(rollout.ending === 'abort' ? 'aborted by an operator' : 'failure budget exceeded')) : null),
      waiting ? h('div.waiting-for', { dataset: { reason: rollout.waiting_for?.reason || rollout.state } }, h('div.notice.notice-info', {}, h('strong', {}, 'Waiting: '), waiting)) : null,
      this.outcome,
      h('div.grid', {},
        section('Status', facts([
          ['State', badge(rollout.state)],
          ['Wave', `${waveProgress(rollout)}${final ? '' : ' in progress'}`],
          ['Targets', progressBar(counts, { label: 'All targets' })],
          ['Failure budget', h('span', { dataset: { budget: `${rollout.failed_deploys ?? 0}/${rollout.allowed_failures ?? 0}` } },
            `${rollout.failed_deploys ?? 0} failed deploy${rollout.failed_deploys === 1 ? '' : 's'} of ${rollout.allowed_failures ?? 0} allowed`,
            over ? h('strong.warn-text', {}, ' — exceeded') : null)],
          ['Created', h('span', {}, time(rollout.created_at), ` by ${rollout.created_by}`)],
          ['Updated', time(rollout.updated_at)],
          ['Finished', time(rollout.finished_at)],
          ['Version', String(rollout.version ?? '—')],
        ])),
        section('Actions', this.actions)),
      section(`Waves (${rollout.wave_count ?? (rollout.waves || []).length})`, this.wavesTable(rollout), progressLegend()),
      section('Spec', facts(specFacts(rollout.spec))),
      section('Targets', this.targetsForm ||= keep(this.targetFilterForm(rollout)), this.targetsTable(rollout, targets)),
    ];
  }

  wavesTable(rollout) {
    const final = FINAL_ROLLOUT_STATES.includes(rollout.state);
    const rows = (rollout.waves || []).map((w) => {
      const c = w.counts || {};
      const status = final || w.index < rollout.current_wave ? 'done' : w.index === rollout.current_wave ? 'current' : 'upcoming';
      const row = [
        h('a', { href: `#/rollouts/${encodeURIComponent(rollout.id)}?wave=${w.index}`, 'aria-label': `Targets of ${waveName(w.index).toLowerCase()}` }, waveName(w.index)),
        h('span', { dataset: { wave: String(w.index), status } }, badge(status === 'current' ? `current: ${rollout.state}` : status)),
        String(w.size ?? c.planned ?? '—'),
        progressBar(c, { label: waveName(w.index), withText: false }),
        String(c.succeeded || 0), String(c.failed || 0), String(c.skipped || 0), String(c.in_flight || 0), String(c.waiting || 0),
        String((c.rolled_back || 0) + (c.rollback_failed || 0) + (c.not_rolled_back || 0)), String(c.not_started || 0),
      ];
      return row;
    });
    return table('Waves in order; the canary first', ['Wave', 'Status', 'Stores', 'Progress', 'Succeeded', 'Failed', 'Skipped', 'In flight', 'Waiting',
      'Rolled back (or not)', 'Not started'], rows, { empty: 'No waves planned.', className: 'waves' });
  }

  targetFilterForm(rollout) {
    const q = this.query;
    const waves = Array.from({ length: rollout.wave_count || (rollout.waves || []).length }, (_, i) => i);
    const form = h('form.filters', { role: 'search', 'aria-label': 'Filter targets' },
      h('div.field', {}, h('label', { for: 't-wave' }, 'Wave'), h('select', { id: 't-wave', name: 'wave' }, h('option', { value: '' }, 'any'),
        waves.map((i) => h('option', { value: String(i), selected: q.get('wave') === String(i) }, waveName(i))))),
      h('div.field', {}, h('label', { for: 't-state' }, 'Target state'), h('select', { id: 't-state', name: 'state' }, h('option', { value: '' }, 'any'),
        TARGET_STATES.map((s) => h('option', { value: s, selected: q.get('state') === s }, s)))),
      h('div.field.buttons', {}, h('button.primary', { type: 'submit' }, 'Apply'),
        h('button.secondary', { type: 'button', onclick: () => this.setQuery({}) }, 'Clear')));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.setQuery(Object.fromEntries(new FormData(form)));
    });
    return form;
  }

  targetsTable(rollout, targets) {
    const q = this.query;
    const runLink = (runId, storeId, finalState) => {
      if (!runId) return '—';
      const query = new URLSearchParams({ store: storeId, rollout: rollout.id, run: runId });
      return h('span', {}, h('a', { href: `#/runs?${query}` }, code(runId)), finalState ? h('span', {}, ' ', badge(finalState)) : null);
    };
    const rows = targets.items.map((t) => [
      h('a', { href: `#/stores/${encodeURIComponent(t.store_id)}` }, t.store_id),
      String(t.position), waveName(t.wave),
      h('span', { dataset: { target: t.store_id, state: t.state } }, badge(t.state)),
      t.skip_reason ? h('span', { title: t.skip_reason }, SKIP_REASONS[t.skip_reason] || t.skip_reason) : '—',
      runLink(t.deploy_run_id, t.store_id, t.deploy_final_state),
      t.previous_release || '—',
      runLink(t.rollback_run_id, t.store_id, t.rollback_final_state),
      time(t.updated_at),
    ]);
    const base = `#/rollouts/${encodeURIComponent(rollout.id)}`;
    const next = new URLSearchParams(q);
    if (targets.next_cursor != null) next.set('cursor', targets.next_cursor);
    const first = new URLSearchParams(q);
    first.delete('cursor');
    const filtered = q.get('wave') || q.get('state');
    return [
      table(`Targets in plan order${filtered ? ' (filtered)' : ''}`, ['Store', 'Position', 'Wave', 'State', 'Skipped because', 'Deploy run', 'Previous release',
        'Rollback run', 'Updated'], rows, { empty: filtered ? 'No target matches these filters.' : 'No targets.', className: 'targets' }),
      h('nav.pager', { 'aria-label': 'Target pages' },
        q.get('cursor') ? h('a', { href: first.toString() ? `${base}?${first}` : base }, 'First page') : null,
        targets.next_cursor != null ? h('a', { href: `${base}?${next}`, rel: 'next' }, 'Next page') : null),
    ];
  }

  async buildActions(rollout) {
    const env = rollout.environment;
    const verdicts = {};
    await Promise.all(['pause', 'resume', 'abort', 'approve'].map(async (a) => { verdicts[a] = await can(`rollout.${a}`, null, { environment: env }); }));
    const me = session.principal?.id;
    const signature = JSON.stringify([rollout.state, rollout.awaiting_wave, rollout.paused_from, rollout.created_by, me, verdicts]);
    if (signature === this.actionsSignature && this.actions) return;
    this.actionsSignature = signature;
    const state = rollout.state;
    const stateText = state.replace(/_/g, ' ');
    const pauseReason = !PAUSABLE.includes(state)
      ? `Pause applies while running, waiting between waves or awaiting approval; this rollout is ${stateText}.` : disabledReason(verdicts.pause);
    const resumeReason = state !== 'paused' ? `Resume applies to a paused rollout; this one is ${stateText}.` : disabledReason(verdicts.resume);
    const abortReason = NOT_ABORTABLE.includes(state)
      ? (FINAL_ROLLOUT_STATES.includes(state) ? `The rollout is over (${stateText}).` : `The rollout is ${stateText} already; it ends on its own.`)
      : disabledReason(verdicts.abort);
    const buttons = [
      actionButton('Pause', { disabledReason: pauseReason, onClick: () => this.command('pause'), className: 'secondary', name: 'pause' }),
      actionButton('Resume', { disabledReason: resumeReason, onClick: () => this.command('resume'), className: 'primary', name: 'resume' }),
      actionButton('Abort…', { disabledReason: abortReason, onClick: () => this.abort(), className: 'danger', name: 'abort' }),
    ];
    if (state === 'awaiting_approval') {
      const wave = rollout.awaiting_wave ?? rollout.current_wave + 1;
      const approveReason = rollout.created_by === me
        ? 'You created this rollout: a different principal must approve its waves (separation of duties).'
        : disabledReason(verdicts.approve);
      buttons.push(actionButton(`Approve wave ${wave}…`, { disabledReason: approveReason, onClick: () => this.approve(wave), className: 'primary', name: 'approve' }));
    }
    const undecided = Object.values(verdicts).some((v) => v.state === 'unknown');
    this.actions = keep(h('div.rollout-actions', {},
      h('div.row-actions', {}, buttons),
      undecided ? h('p.muted.note', {}, 'Actions not disabled here are decided by the server when you use them; a refusal is shown, and the action is disabled from then on.') : null));
  }

  announceState(rollout) {
    const previous = this.lastState;
    this.lastState = rollout.state;
    if (previous === null || previous === rollout.state) return;
    // A command's "accepted" notice has served its purpose once the state moved on (it is
    // left a few seconds, so that it can be read).
    if (Date.now() - (this.outcomeAt || 0) > 3000) {
      for (const done of this.outcome.querySelectorAll('.notice-success')) done.remove();
    }
    const waiting = waitingFor(rollout);
    announce(`Rollout ${rollout.id} is now ${rollout.state.replace(/_/g, ' ')}, ${waveProgress(rollout)}.${waiting ? ` ${waiting}` : ''}`);
  }

  afterRender() {
    // A command's button may be gone or disabled after the re-render: keep the keyboard
    // user near the actions rather than back at the heading.
    if (!this.focusAction) return;
    const active = document.activeElement;
    if (active && this.contains(active) && active.tagName !== 'H1') return;
    const want = [this.focusAction, FOCUS_NEXT[this.focusAction]].filter(Boolean);
    for (const name of want) {
      const button = this.querySelector(`button[data-action="${name}"]`);
      if (button && !button.disabled) { button.focus(); break; }
    }
    this.focusAction = null;
  }

  async command(verb, body = {}) {
    const rollout = this.rollout;
    this.outcome.replaceChildren(h('p.muted', {}, `Sending ${verb}…`));
    try {
      const { data } = await post(`/v1/rollouts/${encodeURIComponent(rollout.id)}/${verb}`, body);
      const what = verb === 'approve' ? `Approval of wave ${body.wave}` : verb === 'abort' && body.rollback ? 'Abort with rollback' : `${verb[0].toUpperCase()}${verb.slice(1)}`;
      this.outcomeAt = Date.now();
      this.outcome.replaceChildren(notice('success', `${what} accepted; the orchestrator applies it within a second or so.`,
        data?.command ? h('span.visually-hidden', {}, ` Command ${data.command.kind}.`) : null));
      announce(`${what} accepted for rollout ${rollout.id}.`);
    } catch (err) {
      if (err instanceof ApiError && err.status === 403 && /perform rollout\./.test(err.problem.detail || '')) {
        rememberRefusal(`rollout.${verb}`, rollout.environment, err.problem.detail);
      }
      this.outcome.replaceChildren(notice('error', `${verb[0].toUpperCase()}${verb.slice(1)} was refused: ${describeError(err)}`));
    }
    this.scheduleRefresh(0);
  }

  async abort() {
    const r = this.rollout;
    const values = await confirmDialog({
      title: `Abort rollout ${r.id}?`,
      body: [h('p', {}, `No new deploy of ${r.release} starts; runs in flight finish. Stores already deployed keep ${r.release} unless you roll back the current wave.`)],
      fields: [{ name: 'rollback', type: 'checkbox', label: `Roll back the current wave (${waveName(r.current_wave).toLowerCase()})`,
        help: 'Its deployed stores return to the release they had before this rollout. Earlier waves are not rolled back.' }],
      confirmLabel: 'Abort rollout',
      danger: true,
    });
    if (!values) return;
    await this.command('abort', { rollback: Boolean(values.rollback) });
  }

  async approve(wave) {
    const r = this.rollout;
    const size = (r.waves || []).find((w) => w.index === wave)?.size;
    const values = await confirmDialog({
      title: `Approve ${waveName(wave).toLowerCase()} of rollout ${r.id}?`,
      body: [h('p', {}, `Release ${r.release} is then deployed to ${size ?? 'the'} store${size === 1 ? '' : 's'} of ${waveName(wave).toLowerCase()} in ${r.environment}.`)],
      confirmLabel: `Approve wave ${wave}`,
      danger: r.environment === 'production',
    });
    if (!values) return;
    await this.command('approve', { wave });
  }

  onLiveEvent(event) {
    const data = event.data || {};
    const id = this.params.id;
    if (event.type === 'reset') this.scheduleRefresh(0);
    else if (event.type.startsWith('rollout.') && data.rollout?.id === id) this.scheduleRefresh(250);
    else if (event.type.startsWith('run.') && data.run?.rollout_id === id) this.scheduleRefresh(500);
  }
}

customElements.define('sp-rollout-page', SpRolloutPage);
