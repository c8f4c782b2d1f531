// Audit log: records filtered by principal, action and target (GET /v1/audit, paged with
// `after`), and the chain's status as far as the API shows it: the latest signed checkpoint
// (GET /v1/audit/checkpoints) and the last record. The API has no verification endpoint, so
// the UI verifies nothing itself: it says how (storeplane audit verify).
import { h, badge, table, time, code, facts, notice } from '../lib/dom.js';
import { get, getAll } from '../lib/api.js';
import { Page, section, keep } from '../lib/page.js';

class SpAuditPage extends Page {
  title() { return 'Audit log'; }

  async render() {
    const q = this.query;
    const checkpoints = await getAll('/v1/audit/checkpoints', { limit: 1000 }, { cursorParam: 'after', maxPages: 100 });
    const latest = checkpoints.items[checkpoints.items.length - 1] || null;
    // The tail of the chain: records after the latest checkpoint.
    const tail = await getAll('/v1/audit', { after: latest ? latest.seq : 0, limit: 1000 }, { cursorParam: 'after', maxPages: 20 });
    const last = tail.items[tail.items.length - 1] || null;
    const lastSeq = last ? last.seq : latest ? latest.seq : 0;

    const filtered = Boolean(q.get('principal') || q.get('action') || q.get('target'));
    const after = q.get('after') ?? String(filtered ? 0 : Math.max(0, lastSeq - 100));
    const page = await get('/v1/audit', { principal: q.get('principal'), action: q.get('action'), target: q.get('target'), after, limit: 100 });
    this.form ||= keep(this.filterForm(q));
    const rows = page.items.map((r) => [String(r.seq), time(r.time), r.principal || '—', r.source || '—', code(r.action), r.target || '—',
      h('span', {}, badge(r.decision), r.rule ? h('small', {}, ' ', r.rule) : null), r.outcome,
      Object.keys(r.params || {}).length ? Object.entries(r.params).map(([k, v]) => `${k}=${v}`).join(', ') : '—',
      h('code.hash', { title: r.hash }, r.hash.slice(0, 12))]);
    const next = new URLSearchParams(q);
    if (page.next_cursor !== null && page.next_cursor !== undefined) next.set('after', page.next_cursor);
    return [
      section('Chain status', facts([
        ['Latest signed checkpoint', latest ? h('span', {}, `seq ${latest.seq}, `, time(new Date(latest.time_ms).toISOString()), ', key ', code(latest.key_id), ', hash ', h('code.hash', { title: latest.hash }, latest.hash.slice(0, 16))) : 'none yet'],
        ['Last record', last ? h('span', {}, `seq ${last.seq}, `, time(last.time), ', hash ', h('code.hash', { title: last.hash }, last.hash.slice(0, 16))) : latest ? `seq ${latest.seq} (the checkpoint)` : 'none'],
        ['Records after the checkpoint', String(tail.items.length) + (tail.complete ? '' : '+')],
        ['Verification', h('span', {}, 'Not verified by this page (the API offers no verification). Run ', code('storeplane audit verify'),
          ' to check the hash chain and the checkpoint signatures.')],
      ])),
      this.form,
      table(`Audit records after seq ${after}${filtered ? ' matching the filters' : ''}`,
        ['Seq', 'Time', 'Principal', 'Source', 'Action', 'Target', 'Decision', 'Outcome', 'Parameters', 'Hash'], rows,
        { empty: 'No records match.', className: 'audit' }),
      h('nav.pager', { 'aria-label': 'Pages' },
        h('a', { href: `#/audit?${new URLSearchParams({ ...Object.fromEntries(q), after: '0' })}` }, 'From the start'),
        page.next_cursor !== null && page.next_cursor !== undefined ? h('a', { href: `#/audit?${next}`, rel: 'next' }, 'Next page') : null),
      !filtered ? null : notice('info', 'A filtered page is a selection, not a chain.'),
    ];
  }

  filterForm(q) {
    const input = (name, label, placeholder) => h('div.field', {}, h('label', { for: `a-${name}` }, label),
      h('input', { id: `a-${name}`, name, type: 'text', value: q.get(name) || '', placeholder }));
    const form = h('form.filters', { role: 'search', 'aria-label': 'Filter audit records' },
      input('principal', 'Principal', 'admin, system, agent:demo'), input('action', 'Action', 'deploy.request'),
      input('target', 'Target', 'store/demo'), h('div.field.buttons', {}, h('button.primary', { type: 'submit' }, 'Apply'),
        h('button.secondary', { type: 'button', onclick: () => this.setQuery({}) }, 'Clear')));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.setQuery(Object.fromEntries(new FormData(form)));
    });
    return form;
  }
}

customElements.define('sp-audit-page', SpAuditPage);
