// Rollouts (GET /v1/rollouts): newest first, filtered by environment, state and activity
// (filters live in the URL, #/rollouts?...), cursor pages; each row shows the wave reached and
// a segmented progress bar of its targets. Live: rollout.created / rollout.updated refresh the
// table (debounced). "New rollout" opens the form (#/rollouts/new).
import { h, badge, table, time, code, notice } from '../lib/dom.js';
import { get } from '../lib/api.js';
import { Page, keep } from '../lib/page.js';
import { ROLLOUT_STATES, ENVIRONMENTS, waveProgress, progressBar, progressLegend } from '../lib/rollouts.js';

class SpRolloutsPage extends Page {
  title() { return 'Rollouts'; }

  async render() {
    const q = this.query;
    const page = await get('/v1/rollouts', {
      environment: q.get('environment'), state: q.get('state'), active: q.get('active'), cursor: q.get('cursor'), limit: 50,
    });
    this.form ||= keep(this.filterForm(q));
    const rows = page.items.map((r) => [
      h('a', { href: `#/rollouts/${encodeURIComponent(r.id)}`, 'aria-label': `Rollout ${r.id}` }, code(r.id)),
      r.release, badge(r.environment), badge(r.state), waveProgress(r),
      progressBar(r.counts, { label: `Targets of ${r.id}` }),
      `${r.failed_deploys ?? 0} / ${r.allowed_failures ?? 0}`,
      r.created_by, time(r.created_at),
    ]);
    const filtered = ['environment', 'state', 'active'].some((k) => q.get(k));
    const pager = h('nav.pager', { 'aria-label': 'Pages' },
      q.get('cursor') ? h('a', { href: `#/rollouts?${withQuery(q, { cursor: null })}` }, 'First page') : null,
      page.next_cursor ? h('a', { href: `#/rollouts?${withQuery(q, { cursor: page.next_cursor })}`, rel: 'next' }, 'Next page') : null);
    const empty = !rows.length && !filtered && !q.get('cursor')
      ? h('div.empty-state.panel', {}, h('h2', {}, 'No rollouts yet'),
        h('p', {}, 'A rollout deploys one release to many stores in waves: a canary first, then growing waves, within a failure budget. ',
          h('a', { href: '#/rollouts/new' }, 'Start a rollout'), '.'))
      : null;
    return [
      h('p.page-actions', {}, h('a.button-link', { href: '#/rollouts/new' }, 'New rollout')),
      this.form,
      ...(empty ? [empty] : [
        table('Rollouts, newest first', ['Rollout', 'Release', 'Environment', 'State', 'Wave', 'Progress', 'Failures (used / allowed)', 'Created by', 'Created'],
          rows, { empty: 'No rollout matches these filters.', className: 'rollouts' }),
        rows.length ? progressLegend() : null,
        pager,
      ]),
    ];
  }

  filterForm(q) {
    const select = (name, label, options) => h('div.field', {}, h('label', { for: `ro-${name}` }, label),
      h('select', { id: `ro-${name}`, name }, h('option', { value: '' }, 'any'),
        options.map(([value, text]) => h('option', { value, selected: q.get(name) === value }, text))));
    const form = h('form.filters', { role: 'search', 'aria-label': 'Filter rollouts' },
      select('environment', 'Environment', ENVIRONMENTS.map((e) => [e, e])),
      select('state', 'State', ROLLOUT_STATES.map((s) => [s, s])),
      select('active', 'Active', [['true', 'active only']]),
      h('div.field.buttons', {}, h('button.primary', { type: 'submit' }, 'Apply'),
        h('button.secondary', { type: 'button', onclick: () => this.setQuery({}) }, 'Clear')));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.setQuery(Object.fromEntries(new FormData(form)));
    });
    return form;
  }

  onLiveEvent(event) {
    if (event.type.startsWith('rollout.') || event.type === 'reset') this.scheduleRefresh(event.type === 'reset' ? 0 : 300);
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

customElements.define('sp-rollouts-page', SpRolloutsPage);
