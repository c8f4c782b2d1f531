// Approvals inbox: pending change requests (GET /v1/changes?status=pending), approve or reject
// each after a confirmation. Approving your own request is disabled (separation of duties:
// the server refuses it too); so is anything the policy refused or would refuse.
import { h, badge, table, time, code, notice, announce, actionButton } from '../lib/dom.js';
import { get, post, describeError } from '../lib/api.js';
import { Page, section, keep } from '../lib/page.js';
import { session } from '../lib/session.js';
import { can, disabledReason } from '../lib/capabilities.js';
import { confirmDialog } from '../components/sp-dialog.js';

class SpApprovalsPage extends Page {
  constructor() {
    super();
    this.outcome = keep(h('div.outcome', { 'aria-live': 'polite' }));
  }

  title() { return 'Approvals'; }

  async render() {
    const [pending, recent] = await Promise.all([get('/v1/changes', { status: 'pending' }), get('/v1/changes')]);
    const me = session.principal.id;
    const rows = [];
    for (const c of pending.items) {
      const store = c.target.startsWith('store/') ? c.target.slice(6) : null;
      const [approve, reject] = await Promise.all([can('change.approve', store), can('change.reject', store)]);
      let approveReason = disabledReason(approve);
      let rejectReason = disabledReason(reject);
      if (c.requester === me) approveReason = 'You requested this change: another principal must approve it (separation of duties).';
      else if (c.approvers.includes(me)) approveReason = 'You approved it already; each principal counts once.';
      rows.push([code(c.id), c.action, store ? h('a', { href: `#/stores/${encodeURIComponent(store)}` }, store) : c.target, badge(c.environment),
        describeRequest(c.request), c.requester, `${c.approvers.length} of ${c.approvals_needed}${c.approvers.length ? ` (${c.approvers.join(', ')})` : ''}`,
        time(c.expires_at),
        h('div.row-actions', {},
          actionButton('Approve…', { disabledReason: approveReason, onClick: () => this.decide(c, 'approve'), className: 'primary', name: 'approve' }),
          actionButton('Reject…', { disabledReason: rejectReason, onClick: () => this.decide(c, 'reject'), className: 'secondary', name: 'reject' }))]);
    }
    const done = recent.items.filter((c) => c.status !== 'pending').slice(0, 20);
    return [
      this.outcome,
      section(`Waiting for approval (${pending.items.length})`,
        table('Pending change requests', ['Change', 'Action', 'Target', 'Environment', 'Request', 'Requested by', 'Approvals', 'Expires', 'Decide'],
          rows, { empty: 'Nothing is waiting for approval.', className: 'approvals' })),
      section('Recently decided',
        table('The latest change requests that are no longer pending', ['Change', 'Action', 'Target', 'Status', 'Requested by', 'Approvers', 'Outcome', 'Created'],
          done.map((c) => [code(c.id), c.action, c.target, badge(c.status), c.requester, c.approvers.join(', ') || '—', c.outcome || '—', time(c.created_at)]),
          { empty: 'None yet.' })),
    ];
  }

  async decide(change, verb) {
    const fields = verb === 'reject' ? [{ name: 'reason', label: 'Reason (optional, kept in the change)', multiline: true, maxLength: 500 }] : [];
    const values = await confirmDialog({
      title: `${verb === 'approve' ? 'Approve' : 'Reject'} ${change.action} on ${change.target}?`,
      body: [h('p', {}, `Requested by ${change.requester}: `, describeRequest(change.request), '.'),
        verb === 'approve' && change.approvers.length + 1 >= change.approvals_needed
          ? h('p', {}, h('strong', {}, 'This is the last approval needed: the change executes at once.')) : null],
      confirmLabel: verb === 'approve' ? 'Approve' : 'Reject',
      danger: verb === 'reject' || change.environment === 'production',
      fields,
    });
    if (!values) return;
    try {
      const body = verb === 'reject' && values.reason ? { reason: values.reason } : {};
      const { data } = await post(`/v1/changes/${encodeURIComponent(change.id)}/${verb}`, body);
      this.outcome.replaceChildren(notice('success', `Change `, code(data.id), ` is now ${data.status}${data.outcome ? `: ${data.outcome}` : ''}.`));
      announce(`Change ${data.id} ${data.status}.`);
    } catch (err) {
      this.outcome.replaceChildren(notice('error', `Could not ${verb} ${change.id}: ${describeError(err)}`));
    }
    this.refresh();
  }

  onLiveEvent(event) {
    if (event.type.startsWith('change.') || event.type === 'reset') this.scheduleRefresh(300);
  }
}

function describeRequest(request) {
  if (!request || typeof request !== 'object') return '—';
  const entries = Object.entries(request);
  if (!entries.length) return '(no parameters)';
  return entries.map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`).join(', ');
}

customElements.define('sp-approvals-page', SpApprovalsPage);
