// storeplane web UI: hash routing, login, the live event stream and the pages. Plain ES
// modules and custom elements; no framework, no build step (served as is by storeplaned).
import { h, announce, notice } from './lib/dom.js';
import { get, onApiError, ApiError, describeError } from './lib/api.js';
import { session } from './lib/session.js';
import { resetCapabilities, forgetExplained } from './lib/capabilities.js';
import { EventStream } from './lib/events.js';
import './components/sp-connection.js';
import './pages/login.js';
import './pages/fleet.js';
import './pages/stores.js';
import './pages/store.js';
import './pages/approvals.js';
import './pages/runs.js';
import './pages/rollouts.js';
import './pages/rollout.js';
import './pages/rollout-new.js';
import './pages/audit.js';
import './pages/explain.js';

const ROUTES = [
  [/^\/?$/, 'sp-fleet-page', 'fleet'],
  [/^\/fleet$/, 'sp-fleet-page', 'fleet'],
  [/^\/stores$/, 'sp-stores-page', 'stores'],
  [/^\/stores\/([^/]+)$/, 'sp-store-page', 'stores', ['id']],
  [/^\/approvals$/, 'sp-approvals-page', 'approvals'],
  [/^\/runs$/, 'sp-runs-page', 'runs'],
  [/^\/rollouts$/, 'sp-rollouts-page', 'rollouts'],
  [/^\/rollouts\/new$/, 'sp-rollout-new-page', 'rollouts'],
  [/^\/rollouts\/([^/]+)$/, 'sp-rollout-page', 'rollouts', ['id']],
  [/^\/audit$/, 'sp-audit-page', 'audit'],
  [/^\/explain$/, 'sp-explain-page', 'explain'],
];

const main = document.getElementById('main');
const connection = document.getElementById('connection');
const events = new EventStream(() => session.token);
let pollTimer = null;

events.addEventListener('status', (ev) => {
  const { state, detail } = ev.detail;
  connection.update(state, detail);
  // Without a live stream, the page on screen is refreshed every 10 s instead.
  clearInterval(pollTimer);
  if (state !== 'live' && session.token) {
    pollTimer = setInterval(() => currentPage()?.refresh(), 10_000);
  }
});
events.addEventListener('event', (ev) => {
  const event = ev.detail;
  if (event.type === 'reset') {
    forgetExplained();
    announce('Live updates resumed after a gap; the page was reloaded.');
  }
  currentPage()?.onLiveEvent(event);
});
events.addEventListener('unauthenticated', () => logout('Your token is no longer valid. Log in again.'));

onApiError((error) => {
  if (error instanceof ApiError && error.status === 401 && session.token) {
    logout('Your token is no longer valid (expired or revoked). Log in again.');
  }
});

function currentPage() {
  const page = main.firstElementChild;
  return page && typeof page.refresh === 'function' && page.tagName !== 'SP-LOGIN-PAGE' ? page : null;
}

export async function login(token) {
  session.token = token;
  try {
    session.principal = await get('/v1/whoami');
  } catch (err) {
    session.clear();
    throw err;
  }
  resetCapabilities();
  showSession();
  events.start();
  events.retryNow();
  if (!location.hash || location.hash === '#/login') location.hash = '#/fleet';
  else route();
}

function logout(message) {
  events.stop();
  clearInterval(pollTimer);
  session.clear();
  resetCapabilities();
  showSession();
  renderLogin(message);
}

function showSession() {
  const signedIn = Boolean(session.principal);
  document.getElementById('nav').hidden = !signedIn;
  document.getElementById('session').hidden = !signedIn;
  const who = document.getElementById('whoami');
  who.replaceChildren();
  if (signedIn) {
    const p = session.principal;
    who.append('Acting as ', h('strong', {}, p.id), ` (${p.kind}; roles: ${p.roles.length ? p.roles.join(', ') : 'none'})`);
  }
}

function renderLogin(message) {
  const page = document.createElement('sp-login-page');
  page.message = message || '';
  page.onLogin = login;
  main.replaceChildren(page);
  document.title = 'Log in — storeplane';
}

function route() {
  if (!session.principal) {
    renderLogin();
    return;
  }
  const [path, queryString] = location.hash.replace(/^#/, '').split('?');
  for (const [pattern, tag, nav, names = []] of ROUTES) {
    const match = pattern.exec(path || '/');
    if (!match) continue;
    const page = document.createElement(tag);
    names.forEach((name, i) => { page.params[name] = decodeURIComponent(match[i + 1]); });
    page.query = new URLSearchParams(queryString || '');
    main.replaceChildren(page);
    for (const link of document.querySelectorAll('#nav a[data-route]')) {
      if (link.dataset.route === nav) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
    return;
  }
  main.replaceChildren(h('div.page', {}, h('h1', { tabIndex: -1 }, 'Not found'), notice('error', `No page at ${location.hash}.`),
    h('p', {}, h('a', { href: '#/fleet' }, 'Go to the fleet overview'))));
  main.querySelector('h1').focus();
}

// The skip link moves focus to the content without touching the hash (the router's).
document.querySelector('.skip-link').addEventListener('click', (ev) => {
  ev.preventDefault();
  const target = main.querySelector('h1') || main;
  target.focus();
});
document.getElementById('logout').addEventListener('click', () => logout('You are logged out. The token was removed from this browser session.'));
window.addEventListener('hashchange', route);
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && events.running && events.state !== 'live') events.retryNow();
});

(async function start() {
  if (session.token) {
    try {
      await login(session.token);
      return;
    } catch (err) {
      renderLogin(`Your saved token did not work: ${describeError(err)}`);
      return;
    }
  }
  renderLogin();
})();
