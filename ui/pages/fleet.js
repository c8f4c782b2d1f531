// Fleet overview: problems first (agents offline or never seen, unhealthy stores, isolation
// mismatches, stores in maintenance mode, failed runs), then counts by health, availability,
// lifecycle state and environment. Each count links to the stores table filtered by it.
import { h, badge, table, time, notice, code } from '../lib/dom.js';
import { get, ApiError } from '../lib/api.js';
import { Page, section } from '../lib/page.js';
import { loadFleet, countBy, FAILED_RUN_STATES } from '../lib/fleet.js';
import { waveProgress, progressBar } from '../lib/rollouts.js';

class SpFleetPage extends Page {
  title() { return 'Fleet overview'; }

  async render() {
    const [fleet, runs, rollouts] = await Promise.all([loadFleet(), loadFailedRuns(), loadActiveRollouts()]);
    const rows = fleet.rows;
    const problems = [];
    for (const r of rows) {
      const link = h('a', { href: `#/stores/${encodeURIComponent(r.store.id)}` }, r.store.id);
      if (['offline', 'stale', 'never_seen'].includes(r.availability)) problems.push([link, 'Agent not reporting', badge(r.availability), r.reasons.join(', ')]);
      if (r.health === 'unhealthy') problems.push([link, 'Unhealthy store', badge(r.health), r.reasons.join(', ')]);
      if (r.mismatch) problems.push([link, 'Isolation mismatch', h('span.badge.tone-bad', {}, 'isolation mismatch'), `recorded ${r.store.isolation_mode}, agent reports ${r.agent?.reported_isolation ?? 'none'}`]);
      if (r.maintenance) problems.push([link, 'In maintenance mode', h('span.badge.tone-warn', {}, 'maintenance on'), r.reasons.filter((x) => x.endsWith(':maintenance')).join(', ')]);
      if (['provision_failed', 'decommission_failed'].includes(r.store.state)) problems.push([link, 'Lifecycle failed', badge(r.store.state), '']);
      if (r.store.state === 'active' && !r.agent && !fleet.agentsError) problems.push([link, 'Active store without an agent', badge('no agent'), 'enroll its shop-agent']);
    }
    for (const run of runs.items) {
      problems.push([h('a', { href: `#/stores/${encodeURIComponent(run.store_id)}` }, run.store_id), `Run ${run.kind} ${run.state}`, badge(run.state),
        h('span', {}, code(run.id), ' ', run.detail || '', ' ', time(run.finished_at || run.updated_at))]);
    }
    const filterLink = (param, value, label) => h('a', { href: `#/stores?${new URLSearchParams({ [param]: value })}` }, label ?? value);
    const countTable = (caption, entries, param) => table(caption, ['Value', 'Stores'],
      entries.map(([value, n]) => [param ? filterLink(param, value, badge(value)) : badge(value), String(n)]), { className: 'counts' });

    return [
      h('p.summary', {}, `${rows.length} store${rows.length === 1 ? '' : 's'} you may read${fleet.complete ? '' : ' (first pages only)'}.`),
      fleet.agentsError ? notice('info', `Agent availability and health are hidden: ${fleet.agentsError}`) : null,
      runs.error ? notice('info', `Failed runs are hidden: ${runs.error}`) : null,
      section(`Problems (${problems.length})`,
        table('Problems, most urgent kinds first', ['Store', 'Problem', 'Status', 'Details'], problems, { empty: 'No problems: every readable store is reporting and healthy.', className: 'problems' })),
      h('div.grid', {},
        section('By health', countTable('Stores by health', countBy(rows, (r) => r.health), 'health')),
        section('By agent availability', countTable('Stores by agent availability', countBy(rows, (r) => r.availability), 'availability')),
        section('By lifecycle state', countTable('Stores by lifecycle state', countBy(rows, (r) => r.store.state), 'state')),
        section('By environment', countTable('Stores by environment', countBy(rows, (r) => r.store.environment), 'environment'))),
      section(`Active rollouts${rollouts.error ? '' : ` (${rollouts.items.length}${rollouts.more ? '+' : ''})`}`,
        rollouts.error ? notice('info', `Rollouts are hidden: ${rollouts.error}`)
          : table('Rollouts in progress, newest first', ['Rollout', 'Release', 'Environment', 'State', 'Wave', 'Progress'],
            rollouts.items.map((r) => [h('a', { href: `#/rollouts/${encodeURIComponent(r.id)}` }, code(r.id)), r.release, badge(r.environment),
              badge(r.state), waveProgress(r), progressBar(r.counts, { label: `Targets of ${r.id}` })]),
            { empty: 'No rollout is in progress.', className: 'rollouts' }),
        h('p', {}, h('a', { href: '#/rollouts' }, 'All rollouts'), ' · ', h('a', { href: '#/rollouts/new' }, 'New rollout'))),
    ];
  }

  onLiveEvent(event) {
    // The whole fleet is read again: at most every 2 s, however busy the stream.
    if (event.type === 'reset') this.scheduleRefresh(0);
    else if (/^(store|agent|run|rollout)\./.test(event.type)) this.scheduleRefresh(2000);
  }
}

async function loadFailedRuns() {
  const items = [];
  try {
    for (const state of FAILED_RUN_STATES) {
      const data = await get('/v1/runs', { state, limit: 20 });
      items.push(...data.items);
    }
  } catch (err) {
    if (err instanceof ApiError && err.status === 403) return { items: [], error: err.problem.detail };
    throw err;
  }
  // The 20 most recent failures.
  items.sort((a, b) => String(b.updated_at).localeCompare(String(a.updated_at)));
  return { items: items.slice(0, 20), error: null };
}

async function loadActiveRollouts() {
  try {
    const data = await get('/v1/rollouts', { active: 'true', limit: 10 });
    return { items: data.items, more: Boolean(data.next_cursor), error: null };
  } catch (err) {
    if (err instanceof ApiError && (err.status === 403 || err.status === 404)) {
      return { items: [], more: false, error: err.status === 404 ? 'this server has no rollouts API' : err.problem.detail };
    }
    throw err;
  }
}

customElements.define('sp-fleet-page', SpFleetPage);
