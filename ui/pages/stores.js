// Stores table: the API's filters (environment, isolation_mode, state, selector) with cursor
// pagination, then health and id search applied to the page shown (the API has no health
// filter); sortable columns (aria-sort). Filters live in the URL (#/stores?...).
import { h, badge, table, notice } from '../lib/dom.js';
import { get } from '../lib/api.js';
import { Page, keep } from '../lib/page.js';
import { loadAgents, joinStore } from '../lib/fleet.js';

const ENVIRONMENTS = ['production', 'staging', 'development'];
const ISOLATION = ['shared', 'dedicated', 'isolated'];
const STATES = ['registered', 'provisioning', 'active', 'decommissioning', 'decommissioned', 'provision_failed', 'decommission_failed'];
const HEALTH = ['healthy', 'degraded', 'unhealthy', 'unknown'];
const AVAILABILITY = ['online', 'stale', 'offline', 'never_seen', 'revoked', 'no agent'];
const COLUMNS = [
  ['id', 'Store', (r) => r.store.id],
  ['name', 'Name', (r) => r.store.name],
  ['environment', 'Environment', (r) => r.store.environment],
  ['isolation', 'Isolation', (r) => r.store.isolation_mode],
  ['state', 'State', (r) => r.store.state],
  ['health', 'Health', (r) => HEALTH.indexOf(r.health)],
  ['availability', 'Agent', (r) => r.availability],
  ['release', 'Release', (r) => r.store.current_release || ''],
];

class SpStoresPage extends Page {
  title() { return 'Stores'; }

  async render() {
    const q = this.query;
    const apiQuery = {
      environment: q.get('environment'), isolation_mode: q.get('isolation_mode'), state: q.get('state'),
      selector: q.get('selector'), cursor: q.get('cursor'), limit: q.get('limit') || 50,
    };
    const [page, agents] = await Promise.all([get('/v1/stores', apiQuery), loadAgents()]);
    let rows = page.items.map((s) => joinStore(s, agents.byStore.get(s.id)));
    const loaded = rows.length;
    const health = q.get('health');
    const availability = q.get('availability');
    const search = (q.get('q') || '').toLowerCase();
    if (health) rows = rows.filter((r) => r.health === health);
    if (availability) rows = rows.filter((r) => r.availability === availability);
    if (search) rows = rows.filter((r) => r.store.id.toLowerCase().includes(search) || r.store.name.toLowerCase().includes(search));

    const sortKey = q.get('sort') || 'id';
    const descending = q.get('dir') === 'desc';
    const column = COLUMNS.find((c) => c[0] === sortKey) || COLUMNS[0];
    rows.sort((a, b) => {
      const x = column[2](a);
      const y = column[2](b);
      const cmp = typeof x === 'number' ? x - y : String(x).localeCompare(String(y));
      return descending ? -cmp : cmp;
    });

    const headers = COLUMNS.map(([key, label]) => {
      const active = key === sortKey;
      const nextDir = active && !descending ? 'desc' : 'asc';
      const th = h('th', { scope: 'col', 'aria-sort': active ? (descending ? 'descending' : 'ascending') : 'none' },
        h('button.sort', { type: 'button', onclick: () => this.setQuery({ ...Object.fromEntries(q), sort: key, dir: nextDir }) },
          label, h('span', { 'aria-hidden': 'true' }, active ? (descending ? ' ▼' : ' ▲') : '')));
      return th;
    });
    const body = rows.map((r) => [
      h('a', { href: `#/stores/${encodeURIComponent(r.store.id)}` }, r.store.id),
      r.store.name, r.store.environment, badge(r.store.isolation_mode), badge(r.store.state),
      h('span', {}, badge(r.health), r.reasons.length && r.health !== 'healthy' ? h('small.reasons', {}, ' ', r.reasons.join(', ')) : null),
      badge(r.availability), r.store.current_release || '—',
    ]);
    const narrowed = health || availability || search;
    const caption = `Stores${narrowed ? `: ${rows.length} of ${loaded} on this page match health, agent and search` : ''}`;
    const pager = h('nav.pager', { 'aria-label': 'Pages' },
      q.get('cursor') ? h('a', { href: `#/stores?${withQuery(q, { cursor: null })}` }, 'First page') : null,
      page.next_cursor ? h('a', { href: `#/stores?${withQuery(q, { cursor: page.next_cursor })}`, rel: 'next' }, 'Next page') : null);
    this.form ||= keep(this.filterForm(q)); // built once: typing survives live refreshes
    // The API finds one store by its exact id even when it is not on this page.
    const exact = search && /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(search) && !rows.some((r) => r.store.id === search)
      ? h('p', {}, h('a', { href: `#/stores/${encodeURIComponent(search)}` }, `Open store ${search}`), ' (not on this page; it may not exist or be outside your scope)')
      : null;
    return [
      this.form,
      exact,
      agents.error ? notice('info', `Health and agent columns are unknown: ${agents.error}`) : null,
      table(caption, headers, body, { empty: 'No store matches these filters.', className: 'stores' }),
      pager,
    ];
  }

  filterForm(q) {
    const select = (name, label, values) => h('div.field', {}, h('label', { for: `f-${name}` }, label),
      h('select', { id: `f-${name}`, name }, h('option', { value: '' }, 'any'),
        values.map((v) => h('option', { value: v, selected: q.get(name) === v }, v))));
    const form = h('form.filters', { role: 'search', 'aria-label': 'Filter stores' },
      h('div.field', {}, h('label', { for: 'f-q' }, 'Search id or name'), h('input', { id: 'f-q', name: 'q', type: 'search', value: q.get('q') || '' })),
      select('environment', 'Environment', ENVIRONMENTS),
      select('isolation_mode', 'Isolation', ISOLATION),
      select('state', 'State', STATES),
      select('health', 'Health', HEALTH),
      select('availability', 'Agent', AVAILABILITY),
      h('div.field', {}, h('label', { for: 'f-selector' }, 'Label selector'),
        h('input', { id: 'f-selector', name: 'selector', type: 'text', value: q.get('selector') || '', placeholder: 'team=web,!legacy', 'aria-describedby': 'f-selector-help' }),
        h('small', { id: 'f-selector-help' }, 'Kubernetes syntax: k=v, k!=v, k in (a,b), k, !k')),
      h('div.field.buttons', {}, h('button.primary', { type: 'submit' }, 'Apply'),
        h('button.secondary', { type: 'button', onclick: () => this.setQuery({}) }, 'Clear')));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const values = Object.fromEntries(new FormData(form));
      this.setQuery({ ...values, sort: q.get('sort'), dir: q.get('dir') });
    });
    return form;
  }

  onLiveEvent(event) {
    if (/^(store|agent)\./.test(event.type) || event.type === 'reset') this.scheduleRefresh(500);
  }
}

function withQuery(q, changes) {
  const next = new URLSearchParams(q);
  for (const [k, v] of Object.entries(changes)) {
    if (v === null) next.delete(k);
    else next.set(k, v);
  }
  return next.toString();
}

customElements.define('sp-stores-page', SpStoresPage);
