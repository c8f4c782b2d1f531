// Small DOM helpers: elements built with textContent only (never innerHTML with data), badges
// for closed values (text and colour, never colour alone), times, and focus after navigation.

/** h('tag.class', {attrs}, ...children): children are nodes, strings or arrays; null skipped. */
export function h(spec, attrs = {}, ...children) {
  const [tag, ...classes] = spec.split('.');
  const el = document.createElement(tag || 'div');
  if (classes.length) el.className = classes.join(' ');
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (key in el && typeof value !== 'string') {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

// The tone of a closed value, for its badge colour. Every badge also shows the value as text.
const TONES = {
  healthy: 'good', online: 'good', active: 'good', succeeded: 'good', verified: 'good', executed: 'good',
  pass: 'good', allow: 'good', ready: 'good',
  degraded: 'warn', stale: 'warn', warn: 'warn', pending: 'warn', provisioning: 'warn', verifying: 'warn',
  queued: 'warn', delivered: 'warn', triggered: 'warn', running: 'warn', decommissioning: 'warn',
  registered: 'info', never_seen: 'muted', unknown: 'muted', decommissioned: 'muted', expired: 'muted',
  cancelled: 'muted', 'no agent': 'muted',
  unhealthy: 'bad', offline: 'bad', failed: 'bad', fail: 'bad', timed_out: 'bad', verification_failed: 'bad',
  provision_failed: 'bad', decommission_failed: 'bad', rejected: 'bad', deny: 'bad', revoked: 'bad',
  // rollouts (src/core/rollout.h) and their targets
  waiting_between_waves: 'info', awaiting_approval: 'warn', paused: 'warn', halting: 'bad', aborting: 'bad',
  rolling_back: 'bad', aborted: 'bad', deploying: 'warn', waiting: 'plain', skipped: 'muted', not_started: 'muted',
  rollback_waiting: 'warn', rolled_back: 'info', rollback_failed: 'bad', not_rolled_back: 'bad',
};

export function badge(value, label) {
  const text = value === null || value === undefined || value === '' ? '—' : String(value);
  return h(`span.badge.tone-${TONES[text] || 'plain'}`, {}, label ? `${label}: ${text}` : text);
}

export function time(iso) {
  if (!iso) return h('span.muted', {}, '—');
  const d = new Date(iso);
  return h('time', { datetime: iso, title: iso }, formatTime(d));
}

export function formatTime(d) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function code(text) {
  return h('code', {}, text ?? '—');
}

/** A table with caption and column headers (scope=col). rows: arrays of cells (node|string). */
export function table(caption, headers, rows, { empty = 'Nothing to show.', className = '' } = {}) {
  const thead = h('thead', {}, h('tr', {}, headers.map((col) => (col instanceof Node ? col : h('th', { scope: 'col' }, col)))));
  const tbody = h('tbody', {});
  if (!rows.length) {
    tbody.append(h('tr', {}, h('td.empty', { colSpan: headers.length }, empty)));
  }
  for (const row of rows) {
    const tr = h('tr', {});
    row.forEach((cell, i) => tr.append(i === 0 && row.rowHeader !== false ? h('th', { scope: 'row' }, cell) : h('td', {}, cell)));
    tbody.append(tr);
  }
  return h(`table.data${className ? '.' + className : ''}`, {}, h('caption', {}, caption), thead, tbody);
}

/** A definition list from [term, value] pairs. */
export function facts(pairs) {
  const dl = h('dl.facts', {});
  for (const [term, value] of pairs) dl.append(h('dt', {}, term), h('dd', {}, value ?? '—'));
  return dl;
}

let liveTimer = null;
/** Announces a short message to screen readers (the page's aria-live region). */
export function announce(message) {
  const live = document.getElementById('live');
  if (!live) return;
  clearTimeout(liveTimer);
  live.textContent = '';
  liveTimer = setTimeout(() => { live.textContent = message; }, 50);
}

/** A notice (error, success, info) that screen readers hear: role=alert for errors. */
export function notice(kind, ...children) {
  return h(`div.notice.notice-${kind}`, { role: kind === 'error' ? 'alert' : 'status' }, children);
}

/** A button that is disabled with its reason visible next to it (and linked by aria-describedby). */
let reasonIds = 0;
export function actionButton(label, { disabledReason = null, onClick, className = '', hint = null, name } = {}) {
  const button = h(`button${className ? '.' + className : ''}`, { type: 'button', dataset: name ? { action: name } : undefined }, label);
  const wrap = h('span.action', {}, button);
  if (disabledReason) {
    const id = `reason-${++reasonIds}`;
    button.disabled = true;
    button.setAttribute('aria-describedby', id);
    wrap.append(h('span.reason', { id }, disabledReason));
  } else {
    if (onClick) button.addEventListener('click', onClick);
    if (hint) {
      const id = `reason-${++reasonIds}`;
      button.setAttribute('aria-describedby', id);
      wrap.append(h('span.hint', { id }, hint));
    }
  }
  return wrap;
}

/**
 * A link to a URL that came from outside (a CI/CD provider's run page): only http(s) URLs
 * become links, opened without a referrer or opener; anything else is shown as text.
 */
export function externalLink(url, label) {
  let parsed = null;
  try { parsed = new URL(url); } catch { parsed = null; }
  if (!parsed || !['http:', 'https:'].includes(parsed.protocol)) return document.createTextNode(label || '—');
  return h('a', { href: parsed.href, rel: 'noreferrer noopener', target: '_blank' }, label || parsed.host);
}
