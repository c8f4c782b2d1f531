// "Why can't I?": asks POST /v1/authz/explain whether a principal may perform an action on a
// store, and by which rule. Only principals holding authz.explain may ask (by default
// security-admin); for anyone else the form is disabled with the server's reason.
import { h, badge, facts, notice, code } from '../lib/dom.js';
import { describeError } from '../lib/api.js';
import { Page, keep } from '../lib/page.js';
import { session } from '../lib/session.js';
import { explainStatus, explainRaw } from '../lib/capabilities.js';
import { OPERATIONS } from '../lib/catalog.js';

const ACTIONS = ['store.read', 'store.register', 'store.label', 'store.provision', 'store.decommission', 'deploy.request', 'rollback.request',
  'isolation.migrate', ...OPERATIONS.map(([n]) => `operation.run.${n}`), 'operation.read', 'agent.read', 'agent.enroll', 'agent.revoke',
  'run.read', 'change.read', 'change.approve', 'change.reject', 'audit.read', 'audit.export', 'authz.explain', 'token.create', 'token.read',
  'token.revoke', 'principal.whoami', 'event.watch', 'metrics.read'];

class SpExplainPage extends Page {
  title() { return 'Why can\'t I?'; }

  async render() {
    const status = await explainStatus();
    const result = h('div.outcome', { 'aria-live': 'polite' });
    const field = (id, label, control, help) => h('div.field', {}, h('label', { for: id }, label), control, help ? h('small', {}, help) : null);
    const principal = h('input', { id: 'x-principal', name: 'principal', type: 'text', value: session.principal.id, required: true });
    const action = h('input', { id: 'x-action', name: 'action', type: 'text', list: 'x-actions', required: true, value: this.query.get('action') || '' });
    const store = h('input', { id: 'x-store', name: 'store', type: 'text', value: this.query.get('store') || '' });
    const submit = h('button.primary', { type: 'submit' }, 'Explain');
    const form = h('form.explain', { 'aria-label': 'Explain a decision' },
      field('x-principal', 'Principal', principal),
      field('x-action', 'Action', action, 'A catalog action, e.g. deploy.request'),
      h('datalist', { id: 'x-actions' }, ACTIONS.map((a) => h('option', { value: a }))),
      field('x-store', 'Store (for store-scoped actions)', store),
      submit, result);
    if (!status.available) {
      for (const el of [principal, action, store, submit]) el.disabled = true;
      submit.setAttribute('aria-describedby', 'x-why');
      form.prepend(notice('info', h('span', { id: 'x-why' }, `Explanations are not available to ${session.principal.id}: ${status.reason}. `,
        'The explain endpoint reveals other principals\' authority, so only principals holding authz.explain (by default security-admin) may use it. ',
        'A refused action still shows the server\'s reason next to its button.')));
    }
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      result.replaceChildren(h('p.muted', {}, 'Asking…'));
      try {
        const v = await explainRaw(principal.value.trim(), action.value.trim(), store.value.trim() || null);
        result.replaceChildren(h('div.result', {}, h('h2', {}, badge(v.allowed ? 'allow' : 'deny', 'decision')),
          facts([['Rule', code(v.rule)], ['Reason', v.reason],
            ['Approval', !v.allowed ? '—' : v.approval ? `needs ${v.approval.approvals} by ${v.approval.approver_role} (${v.approval.rule})` : 'none needed']])));
      } catch (err) {
        result.replaceChildren(notice('error', describeError(err)));
      }
    });
    this.form ||= keep(form);
    return [h('p', {}, 'Ask the policy in force whether a principal may perform an action, and which rule decides. Nothing is changed; the question is audited.'), this.form];
  }
}

customElements.define('sp-explain-page', SpExplainPage);
