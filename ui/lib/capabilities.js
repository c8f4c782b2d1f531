// What the signed-in principal may do, from what the API offers and nothing else:
//   1. POST /v1/authz/explain about itself, when the principal holds authz.explain: the
//      policy's own answer (allowed, denied by which rule, or allowed after approval).
//      Whether explain is available is learned once per session from one explain request.
//   2. A 403 the server gave this session: its problem detail names the refused action;
//      the action is shown disabled with that detail from then on (for that store).
//   3. Otherwise the answer is "unknown": the control stays enabled and the server decides
//      (deny by default); the UI never guesses from role names, since roles are whatever
//      the policy file says.
// Facts the UI knows for sure are checked beside this (the store's state, the agent's
// allow-list, separation of duties on approvals) by the pages themselves.
import { api, ApiError, onApiError } from './api.js';
import { session } from './session.js';

let explainAvailable = null; // null: not asked yet; true/false once known
let explainDenial = '';
const explained = new Map(); // `${action}|${store}` -> Promise<verdict>
const refused = new Map(); // `${action}|${store}` -> detail of a 403

// Remember every 403: "principal 'x' is not allowed to perform <action>".
onApiError((error, method, path) => {
  if (!(error instanceof ApiError) || error.status !== 403) return;
  const detail = error.problem.detail || 'refused by the policy (403)';
  const match = /perform ([a-z][a-z.]*[a-z])/.exec(detail);
  if (!match) return;
  const storeMatch = /^\/v1\/stores\/([^/]+)/.exec(path);
  refused.set(`${match[1]}|${storeMatch ? decodeURIComponent(storeMatch[1]) : ''}`, detail);
  if (match[1] === 'authz.explain') {
    explainAvailable = false;
    explainDenial = detail;
  }
});

export function resetCapabilities() {
  explainAvailable = null;
  explainDenial = '';
  explained.clear();
  refused.clear();
}

/** Forget explained answers (the policy may have been reloaded; a store's labels changed). */
export function forgetExplained() { explained.clear(); }

/** {available, reason}: whether this principal may use the explain endpoint. */
export async function explainStatus() {
  if (explainAvailable === null) {
    try {
      await explainRaw(session.principal.id, 'principal.whoami', null);
      explainAvailable = true;
    } catch (err) {
      if (err instanceof ApiError && err.status === 403) {
        explainAvailable = false;
        explainDenial = err.problem.detail || 'refused (403)';
      } else {
        throw err;
      }
    }
  }
  return { available: explainAvailable, reason: explainDenial };
}

export async function explainRaw(principal, action, storeId, environment = null) {
  const body = { principal, action };
  if (storeId) body.target = { store: storeId };
  else if (environment) body.target = { environment };
  return (await api('POST', '/v1/authz/explain', { body })).data;
}

/**
 * What the UI knows about `action` on `storeId` (null for a global action):
 * {state: 'allowed'|'denied'|'unknown', reason, approval, source: 'explain'|'refusal'|'none'}
 */
export async function can(action, storeId = null, { environment = null } = {}) {
  const key = environment && !storeId ? `${action}|env:${environment}` : `${action}|${storeId || ''}`;
  if (refused.has(key)) return { state: 'denied', reason: refused.get(key), source: 'refusal' };
  let status;
  try {
    status = await explainStatus();
  } catch {
    return { state: 'unknown', reason: '', source: 'none' };
  }
  if (!status.available) return { state: 'unknown', reason: '', source: 'none' };
  if (!explained.has(key)) {
    explained.set(key, explainRaw(session.principal.id, action, storeId, environment).catch((err) => {
      explained.delete(key);
      throw err;
    }));
  }
  try {
    const verdict = await explained.get(key);
    if (verdict.allowed) {
      return { state: 'allowed', reason: verdict.reason, rule: verdict.rule, approval: verdict.approval || null, source: 'explain' };
    }
    const reason = verdict.reason.includes(verdict.rule) ? verdict.reason : `${verdict.reason} (rule ${verdict.rule})`;
    return { state: 'denied', reason, rule: verdict.rule, source: 'explain' };
  } catch {
    return { state: 'unknown', reason: '', source: 'none' };
  }
}

/**
 * Remember a 403 for an action decided against an environment (rollouts: the path names the
 * rollout, not its environment, so the page that knows the environment records it).
 */
export function rememberRefusal(action, environment, detail) {
  refused.set(`${action}|env:${environment}`, detail || 'refused by the policy (403)');
}

/** The reason to show on a disabled control, or null when it may be enabled. */
export function disabledReason(verdict) {
  if (verdict.state !== 'denied') return null;
  return verdict.source === 'refusal' ? `The server refused it (403): ${verdict.reason}` : `Not allowed: ${verdict.reason}`;
}

/** A hint for an enabled control: approval needed, or "the server decides". */
export function approvalHint(verdict) {
  if (verdict.state === 'allowed' && verdict.approval) {
    const a = verdict.approval;
    return `Needs ${a.approvals} approval${a.approvals === 1 ? '' : 's'} by ${a.approver_role} (${a.rule})`;
  }
  return null;
}
