// Pipeline runs (GET /v1/runs): filters by store, rollout, state and activity, cursor
// pagination; ?run=<id> marks that run's row (links from a rollout's targets).
import { h, badge, table, time, code, externalLink } from '../lib/dom.js';
import { get } from '../lib/api.js';
import { Page, keep } from '../lib/page.js';

const STATES = ['pending', 'triggered', 'running', 'succeeded', 'failed', 'cancelled', 'timed_out', 'verifying', 'verified', 'verification_failed'];

class SpRunsPage extends Page {
  title() { return 'Pipeline runs'; }

  async render() {
    const q = this.query;
    const page = await get('/v1/runs', { store: q.get('store'), rollout: q.get('rollout'), state: q.get('state'), active: q.get('active'), cursor: q.get('cursor'), limit: 50 });
    this.form ||= keep(this.filterForm(q));
    const marked = q.get('run');
    const rows = page.items.map((r) => [r.id === marked ? h('mark.run-marked', { 'aria-current': 'true' }, code(r.id)) : code(r.id),
      h('a', { href: `#/stores/${encodeURIComponent(r.store_id)}` }, r.store_id), r.kind, badge(r.state),
      r.release || '—', r.requested_by, r.reason || '—', r.detail || '—', time(r.created_at), time(r.finished_at),
      r.external_url ? externalLink(r.external_url, r.provider) : r.provider || '—',
      r.rollout_id ? h('a', { href: `#/rollouts/${encodeURIComponent(r.rollout_id)}` }, code(r.rollout_id)) : '—']);
    const next = new URLSearchParams(q);
    if (page.next_cursor) next.set('cursor', page.next_cursor);
    return [
      this.form,
      table('Pipeline runs', ['Run', 'Store', 'Kind', 'State', 'Release', 'Requested by', 'Reason', 'Detail', 'Created', 'Finished', 'Provider', 'Rollout'], rows,
        { empty: 'No runs match.', className: 'runs' }),
      h('nav.pager', { 'aria-label': 'Pages' }, page.next_cursor ? h('a', { href: `#/runs?${next}`, rel: 'next' }, 'Next page') : null),
    ];
  }

  filterForm(q) {
    const form = h('form.filters', { role: 'search', 'aria-label': 'Filter runs' },
      h('div.field', {}, h('label', { for: 'r-store' }, 'Store id'), h('input', { id: 'r-store', name: 'store', type: 'text', value: q.get('store') || '' })),
      h('div.field', {}, h('label', { for: 'r-rollout' }, 'Rollout id'), h('input', { id: 'r-rollout', name: 'rollout', type: 'text', value: q.get('rollout') || '' })),
      h('div.field', {}, h('label', { for: 'r-state' }, 'State'), h('select', { id: 'r-state', name: 'state' }, h('option', { value: '' }, 'any'),
        STATES.map((s) => h('option', { value: s, selected: q.get('state') === s }, s)))),
      h('div.field', {}, h('label', { for: 'r-active' }, 'Active'), h('select', { id: 'r-active', name: 'active' }, h('option', { value: '' }, 'any'),
        h('option', { value: 'true', selected: q.get('active') === 'true' }, 'active only'))),
      h('div.field.buttons', {}, h('button.primary', { type: 'submit' }, 'Apply')));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.setQuery(Object.fromEntries(new FormData(form)));
    });
    return form;
  }

  onLiveEvent(event) {
    if (event.type.startsWith('run.') || event.type === 'reset') this.scheduleRefresh(300);
  }
}

customElements.define('sp-runs-page', SpRunsPage);
