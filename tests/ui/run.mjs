// Browser tests of the web UI against the real storeplaned and shop-agent (issue 7, "Done when"):
// log in; filter the fleet and the stores; open a store; run an operation and see its result;
// request a production deploy as a deployer and approve it as an approver in a second browser
// context, seeing the run appear; watch a store go offline/unknown when its agent is killed.
// Screenshots of each page go to the artifacts directory. Started by run-ui-tests.sh (ctest
// test ui.browser), which installs playwright-core and passes the paths.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { createServer } from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, arg, i, all) => {
  if (arg.startsWith('--')) pairs.push([arg.slice(2), all[i + 1]]);
  return pairs;
}, []));
for (const key of ['playwright', 'chromium', 'storeplaned', 'shop-agent', 'artifacts', 'fake-magento', 'policy']) {
  if (!args[key]) { console.error(`run.mjs: --${key} is required`); process.exit(2); }
}
const require = createRequire(import.meta.url);
const { chromium } = require(args.playwright);

const TIMEOUT = 30_000;
const started = Date.now();
const children = new Set();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'storeplane-ui-'));
fs.mkdirSync(args.artifacts, { recursive: true });
for (const old of fs.readdirSync(args.artifacts)) if (old.endsWith('.png')) fs.rmSync(path.join(args.artifacts, old));
let browser = null;
let stub = null;

function log(message) { console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${message}`); }

// ---- processes ------------------------------------------------------------------------
function startProcess(name, command, argv, env = {}) {
  const logFile = path.join(tmp, `${name}.log`);
  const out = fs.openSync(logFile, 'a');
  const child = spawn(command, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', out] });
  child.logFile = logFile;
  children.add(child);
  child.on('exit', () => children.delete(child));
  child.stdoutText = '';
  child.stdout.on('data', (d) => { child.stdoutText += d; fs.appendFileSync(logFile, d); });
  return child;
}

function killAll() {
  for (const child of children) { try { child.kill('SIGKILL'); } catch { /* gone */ } }
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { killAll(); process.exit(1); });

async function waitFor(what, fn, timeoutMs = TIMEOUT) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      const value = await fn();
      if (value) return value;
    } catch (err) { last = err; }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

// ---- the stub CI provider (webhook): accepts triggers; provision runs succeed when polled --
// Deploys and rollbacks of the rollout scenario's stores (those with a Magento root in
// `deployable`) succeed too: the first poll "deploys" by writing the release marker the
// store's shop-agent reports, so that the health gate sees the release and verifies the run.
// Other deploys stay queued (the production deploy scenario only needs its run to appear).
const triggers = [];
const deployable = new Map(); // store id -> its fake Magento root
function pipelineStatus(trigger) {
  if (trigger.kind === 'provision') return 'succeeded';
  const root = deployable.get(trigger.store_id);
  if (!root || !['deploy', 'rollback'].includes(trigger.kind)) return 'queued';
  if (!trigger.deployed && trigger.release) {
    fs.writeFileSync(path.join(root, '.storeplane-release'), `${trigger.release}\n`);
    trigger.deployed = true;
  }
  return 'succeeded';
}
async function startStubCi() {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/trigger') {
        const trigger = JSON.parse(body);
        triggers.push(trigger);
        res.writeHead(202, { 'Content-Type': 'application/json' });
        // A provider's run link is outside data: a hostile one must not become a link.
        const externalUrl = trigger.kind === 'provision' ? 'javascript:alert(document.domain)' : `http://ci.example.test/runs/${triggers.length}`;
        res.end(JSON.stringify({ external_id: `ext-${triggers.length}`, external_url: externalUrl }));
        return;
      }
      const m = /^\/runs\/([^/?]+)/.exec(req.url);
      if (req.method === 'GET' && m) {
        const trigger = triggers.find((t) => t.correlation_id === m[1]);
        if (!trigger) { res.writeHead(404); res.end(); return; }
        res.writeHead(200, { 'Content-Type': 'application/json' });
        // Provisioning "succeeds" so that stores become active; see pipelineStatus.
        res.end(JSON.stringify({ status: pipelineStatus(trigger) }));
        return;
      }
      res.writeHead(404);
      res.end();
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

// ---- the API, for setting up (the UI is what is tested) ---------------------------------
let base = '';
async function call(token, method, urlPath, body) {
  const res = await fetch(base + urlPath, {
    method, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) throw new Error(`${method} ${urlPath}: ${res.status} ${text}`);
  return { status: res.status, data };
}

// ---- checks ---------------------------------------------------------------------------
const results = [];
function assert(condition, message) { if (!condition) throw new Error(`assertion failed: ${message}`); }
async function shot(page, name) { await page.screenshot({ path: path.join(args.artifacts, `${name}.png`), fullPage: true }); }
async function scenario(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push([name, 'PASS', Date.now() - t0]);
    log(`PASS ${name}`);
  } catch (err) {
    results.push([name, 'FAIL', Date.now() - t0, err]);
    log(`FAIL ${name}: ${err.stack || err}`);
    throw err;
  }
}

async function newSession(label) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  context.setDefaultTimeout(TIMEOUT);
  const page = await context.newPage();
  page.problems = [];
  page.on('console', (msg) => { if (msg.type() === 'error') page.problems.push(`${label} console: ${msg.text()}`); });
  page.on('pageerror', (err) => page.problems.push(`${label} page error: ${err.message}`));
  return page;
}

async function login(page, token, principal) {
  const response = await page.goto(`${base}/ui/`);
  assert(response.status() === 200, `/ui/ answers ${response.status()}`);
  const headers = response.headers();
  assert(headers['content-security-policy']?.includes("script-src 'self'") && headers['content-security-policy'].includes("default-src 'none'"), 'the CSP header is set');
  assert(headers['x-content-type-options'] === 'nosniff', 'nosniff is set');
  assert(headers['referrer-policy'] === 'no-referrer', 'no-referrer is set');
  assert(headers['cache-control'] === 'no-cache', `one Cache-Control, no-cache: ${headers['cache-control']}`);
  await page.getByLabel('Bearer token').fill(token);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.locator('#whoami').filter({ hasText: `Acting as ${principal}` }).waitFor();
  await page.getByRole('heading', { level: 1, name: 'Fleet overview' }).waitFor();
}

// The page's heading is shown and, after a navigation, has the keyboard focus (the login
// page focuses its token field instead).
async function heading(page, name, { focus = 'H1' } = {}) {
  const h1 = page.getByRole('heading', { level: 1, name, exact: true });
  await h1.waitFor();
  await waitFor(`focus on the ${focus} of "${name}"`, () => page.evaluate((tag) => document.activeElement?.tagName === tag, focus));
}

async function main() {
  stub = await startStubCi();
  const ciUrl = `http://127.0.0.1:${stub.address().port}`;
  const policy = fs.readFileSync(args.policy, 'utf8').replace(
    /(\n  admin:\n    kind: operator\n    roles: \[security-admin, operator\]\n)/,
    '$1  keys:\n    kind: operator\n    roles: [security-admin]\n  alice:\n    kind: operator\n    roles: [deployer]\n  bob:\n    kind: operator\n    roles: [approver]\n');
  assert(policy.includes('alice:'), 'the policy names alice');
  // A freeze on development that is always active, for the deploy-window scenario.
  fs.writeFileSync(path.join(tmp, 'policy.yaml'), policy + 'windows:\n  - kind: deny\n    environments: [development]\n' +
    '    schedule: "* * * * *"\n    duration: 1m\n    description: ui test freeze\n');
  fs.writeFileSync(path.join(tmp, 'trigger.secret'), 'trigger-secret-for-the-ui-test\n');
  fs.writeFileSync(path.join(tmp, 'config.yaml'), [
    'agents:', '  heartbeat_interval_s: 1', '  flush_interval_ms: 200',
    'audit:', '  checkpoint_every_records: 10', '  checkpoint_every_ms: 1000',
    'cicd:', '  poll_interval_s: 1', '  trigger_retry_max_s: 2',
    '  providers:', '    hook:', '      type: webhook', `      base_url: ${ciUrl}/trigger`,
    `      secret_file: ${tmp}/trigger.secret`, `      settings: {status_url: ${ciUrl}/runs}`,
    '  routes:', '    - provider: hook', ''].join('\n'));

  const server = startProcess('storeplaned', args.storeplaned, ['--config', path.join(tmp, 'config.yaml'), '--data-dir', path.join(tmp, 'data'),
    '--listen', '127.0.0.1:0', '--admin-token-file', path.join(tmp, 'admin.token'), '--policy', path.join(tmp, 'policy.yaml')]);
  base = await waitFor('storeplaned to listen', () => {
    if (server.exitCode !== null) throw new Error(`storeplaned exited ${server.exitCode}: ${fs.readFileSync(server.logFile, 'utf8').slice(-2000)}`);
    return /STOREPLANE_ADDR=(\S+)/.exec(server.stdoutText)?.[1];
  });
  const admin = fs.readFileSync(path.join(tmp, 'admin.token'), 'utf8').trim();
  log(`storeplaned at ${base}`);
  // A token minted by the requester cannot approve the requester's change (separation of
  // duties): a second security admin mints the deployer's and the approver's tokens.
  const keys = (await call(admin, 'POST', '/v1/tokens', { principal: 'keys', description: 'ui test token minter' })).data.token;
  const alice = (await call(keys, 'POST', '/v1/tokens', { principal: 'alice', description: 'ui test deployer' })).data.token;
  const bob = (await call(keys, 'POST', '/v1/tokens', { principal: 'bob', description: 'ui test approver' })).data.token;

  // The fleet: a production store with an agent, made active through the stub CI (both the
  // registration and the provisioning need bob's approval in production), and two others.
  const change = (await call(admin, 'POST', '/v1/stores', { id: 'shop-prod', name: 'Shop Production', environment: 'production',
    isolation_mode: 'dedicated', labels: { team: 'web', tier: 'gold' } })).data;
  await call(bob, 'POST', `/v1/changes/${change.id}/approve`, {});
  const provision = (await call(admin, 'POST', '/v1/stores/shop-prod/provision', {})).data;
  if (provision.id.startsWith('chg_')) await call(bob, 'POST', `/v1/changes/${provision.id}/approve`, {});
  await call(admin, 'POST', '/v1/stores', { id: 'shop-stage', name: 'Shop Staging', environment: 'staging', isolation_mode: 'shared', labels: { team: 'web' } });
  await call(admin, 'POST', '/v1/stores', { id: 'data-dev', name: 'Data Dev', environment: 'development', isolation_mode: 'shared', labels: { team: 'data' } });
  await waitFor('shop-prod to be active', async () => (await call(admin, 'GET', '/v1/stores/shop-prod')).data.state === 'active');

  const enrollment = (await call(admin, 'POST', '/v1/stores/shop-prod/enrollment-tokens', {})).data.token;
  const agentDir = path.join(tmp, 'agent');
  fs.mkdirSync(path.join(agentDir, 'state'), { recursive: true });
  fs.cpSync(args['fake-magento'], path.join(agentDir, 'magento'), { recursive: true });
  fs.mkdirSync(path.join(agentDir, 'magento', 'var'), { recursive: true });
  fs.writeFileSync(path.join(agentDir, 'magento', 'var', '.storeplane-cron'), '');
  fs.writeFileSync(path.join(agentDir, 'agent.yaml'), [
    `control_plane_url: ${base}`, 'store_id: shop-prod', `credential_file: ${agentDir}/credential`, `state_dir: ${agentDir}/state`,
    `magento_root: ${agentDir}/magento`, `php_binary: ${agentDir}/magento/php`, 'isolation_mode: dedicated',
    'allowed_operations: [health.probe, cache.flush, release.report, indexer.status, maintenance.enable]', 'checks:', '  cron_max_age_s: 86400', ''].join('\n'));
  const agent = startProcess('shop-agent', args['shop-agent'], ['--config', path.join(agentDir, 'agent.yaml')], { SHOP_AGENT_ENROLLMENT_TOKEN: enrollment });
  await waitFor('the agent to be online', async () => (await call(admin, 'GET', '/v1/stores/shop-prod/agent')).data.availability === 'online');
  const eventsStatus = (await fetch(`${base}/v1/events`, { headers: { Authorization: `Bearer ${admin}` }, signal: AbortSignal.timeout(10_000) })
    .then((r) => { r.body?.cancel(); return r.status; }).catch(() => 'no answer'));
  // 200: the stream exists (headers come at once, as for any SSE stream); 404: this server
  // has none yet. Anything else is a fault to report, not a mode to guess.
  assert(eventsStatus === 200 || eventsStatus === 404, `GET /v1/events answered ${eventsStatus} (expected 200, or 404 without the stream)`);
  const hasEvents = eventsStatus === 200;
  log(`setup done; GET /v1/events answers ${eventsStatus}: live updates ${hasEvents ? 'expected' : 'unavailable on this server'}`);

  browser = await chromium.launch({
    executablePath: args.chromium, headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const adminPage = await newSession('admin');

  await scenario('log in (token in sessionStorage only), see who you are', async () => {
    await adminPage.goto(`${base}/ui/`);
    await heading(adminPage, 'Log in to storeplane', { focus: 'INPUT' });
    assert(!(await adminPage.getByRole('button', { name: 'Log out' }).isVisible()), 'no Log out button before login');
    assert(!(await adminPage.getByRole('navigation', { name: 'Main' }).isVisible()), 'no navigation before login');
    await shot(adminPage, 'login');
    await login(adminPage, admin, 'admin');
    assert(await adminPage.evaluate(() => sessionStorage.getItem('storeplane.token')) === admin, 'the token is in sessionStorage');
    assert(await adminPage.evaluate(() => localStorage.length === 0 && document.cookie === ''), 'nothing in localStorage or cookies');
    const roles = await adminPage.locator('#whoami').textContent();
    assert(roles.includes('security-admin') && roles.includes('operator'), `whoami shows the roles: ${roles}`);
    const state = hasEvents ? 'live' : 'unavailable';
    await adminPage.locator(`sp-connection[data-state="${state}"]`).waitFor();
  });

  await scenario('fleet overview: counts, problems first, filter by environment', async () => {
    await adminPage.getByText('3 stores you may read').waitFor();
    const env = adminPage.getByRole('table', { name: 'Stores by environment' });
    for (const e of ['production', 'staging', 'development']) assert(await env.getByRole('link', { name: e }).count() === 1, `count for ${e}`);
    const problems = adminPage.getByRole('table', { name: /^Problems/ });
    await problems.waitFor();
    // Problems come before the counts.
    assert(await adminPage.evaluate(() => {
      const tables = [...document.querySelectorAll('table caption')].map((c) => c.textContent);
      return tables[0].startsWith('Problems') && tables.indexOf('Stores by health') > 0;
    }), 'the problems table is first');
    await shot(adminPage, 'fleet');
    // Keyboard: the skip link comes first and brings focus back to the content.
    await adminPage.locator('nav a[href="#/fleet"]').focus();
    await adminPage.keyboard.press('Shift+Tab');
    assert(await adminPage.evaluate(() => document.activeElement?.classList.contains('skip-link')), 'the skip link comes before the navigation');
    await adminPage.keyboard.press('Enter');
    assert(await adminPage.evaluate(() => document.activeElement?.tagName === 'H1' && location.hash === '#/fleet'), 'the skip link focuses the heading and keeps the page');
    await env.getByRole('link', { name: 'production' }).click();
    await heading(adminPage, 'Stores');
    const table = adminPage.getByRole('table', { name: /^Stores/ });
    await waitFor('only production stores', async () => (await table.locator('tbody tr').count()) === 1 && (await table.locator('tbody').textContent()).includes('shop-prod'));
  });

  await scenario('stores table: filter by selector and health, search, sort', async () => {
    await adminPage.goto(`${base}/ui/#/stores`);
    await heading(adminPage, 'Stores');
    const table = adminPage.getByRole('table', { name: /^Stores/ });
    await waitFor('3 stores', async () => (await table.locator('tbody tr').count()) === 3);
    await adminPage.getByLabel('Label selector').fill('team=web');
    await adminPage.getByRole('button', { name: 'Apply', exact: true }).click();
    await waitFor('2 team=web stores', async () => (await table.locator('tbody tr').count()) === 2);
    const ids = await table.locator('tbody tr th').allTextContents();
    assert(ids.join(',') === 'shop-prod,shop-stage', `selector team=web: ${ids}`);
    await adminPage.getByLabel('Agent', { exact: true }).selectOption('no agent');
    await adminPage.getByRole('button', { name: 'Apply', exact: true }).click();
    await waitFor('1 web store without an agent', async () => (await table.locator('tbody th').allTextContents()).join(',') === 'shop-stage');
    assert((await table.locator('caption').textContent()).includes('1 of 2 on this page'), 'the caption says the page was narrowed');
    await adminPage.getByRole('button', { name: 'Clear' }).click();
    await waitFor('3 stores again', async () => (await table.locator('tbody tr').count()) === 3);
    await adminPage.getByRole('button', { name: /^Store/ }).click(); // sort by id, descending
    await waitFor('sorted descending', async () => (await table.locator('tbody th').allTextContents()).join(',') === 'shop-stage,shop-prod,data-dev');
    assert(await adminPage.getByRole('columnheader', { name: /^Store/ }).getAttribute('aria-sort') === 'descending', 'aria-sort');
    await adminPage.getByLabel('Label selector').fill('team=web');
    await adminPage.getByLabel('Search id or name').fill('data-dev');
    await adminPage.getByRole('button', { name: 'Apply', exact: true }).click();
    await adminPage.getByRole('link', { name: 'Open store data-dev' }).waitFor(); // exact id, filtered out of the page
    await adminPage.getByLabel('Label selector').fill('');
    await adminPage.getByLabel('Search id or name').fill('stage');
    await adminPage.getByRole('button', { name: 'Apply', exact: true }).click();
    await waitFor('search', async () => (await table.locator('tbody th').allTextContents()).join(',') === 'shop-stage');
    await shot(adminPage, 'stores');
  });

  await scenario('open a store: metadata, isolation, agent, checks, releases, runs', async () => {
    await adminPage.goto(`${base}/ui/#/stores`);
    await adminPage.getByRole('link', { name: 'shop-prod' }).click();
    await heading(adminPage, 'Store shop-prod');
    const agentPanel = adminPage.getByRole('region', { name: 'Agent', exact: true });
    await agentPanel.locator('.badge', { hasText: 'online' }).first().waitFor();
    assert((await agentPanel.textContent()).includes('health.probe'), 'the allow-list is shown');
    const meta = await adminPage.getByRole('region', { name: 'Metadata' }).textContent();
    assert(meta.includes('dedicated') && meta.includes('team=web') && meta.includes('Last known good release'), 'metadata');
    await adminPage.getByRole('table', { name: 'The latest runs of this store' }).getByText('provision', { exact: true }).first().waitFor();
    // Operations outside the agent's allow-list are disabled with the reason.
    assert(await adminPage.locator('#op-name option[value="maintenance.disable"]').isDisabled(), 'maintenance.disable is disabled');
    assert(!(await adminPage.locator('#op-name option[value="maintenance.enable"]').isDisabled()), 'maintenance.enable is enabled');
    await adminPage.getByText('maintenance.disable: The store\'s agent does not allow maintenance.disable').waitFor();
    await shot(adminPage, 'store');
  });

  await scenario('run an operation and see its result', async () => {
    await adminPage.getByLabel('Operation', { exact: true }).selectOption('health.probe');
    await adminPage.getByRole('button', { name: 'Run operation' }).click();
    const result = adminPage.locator('.result[data-state="succeeded"]');
    await result.waitFor({ timeout: 60_000 });
    assert((await result.textContent()).includes('health.probe'), 'the result names the operation');
    await result.getByRole('table', { name: 'Checks' }).waitFor();
    await adminPage.getByLabel('Operation', { exact: true }).selectOption('cache.flush');
    await adminPage.getByLabel('full_page').check();
    await adminPage.getByRole('button', { name: 'Run operation' }).click();
    await adminPage.locator('.result[data-state="succeeded"]').filter({ hasText: 'cache.flush' }).waitFor({ timeout: 60_000 });
    assert((await adminPage.locator('.result').textContent()).includes('Flushed: full_page'), 'flushed types are shown');
    await adminPage.getByRole('table', { name: 'The latest operations on this store' }).getByText('cache.flush', { exact: true }).first().waitFor();
    await shot(adminPage, 'operation');
    // Maintenance mode on: the store shows up among the fleet's problems.
    await adminPage.getByLabel('Operation', { exact: true }).selectOption('maintenance.enable');
    await adminPage.getByRole('button', { name: 'Run operation' }).click();
    await adminPage.locator('.result[data-state="succeeded"]').filter({ hasText: 'maintenance.enable' }).waitFor({ timeout: 60_000 });
    await adminPage.goto(`${base}/ui/#/fleet`);
    await heading(adminPage, 'Fleet overview');
    const problems = adminPage.getByRole('table', { name: /^Problems/ });
    await problems.getByRole('row').filter({ hasText: 'shop-prod' }).filter({ hasText: 'In maintenance mode' }).waitFor({ timeout: 45_000 });
    await shot(adminPage, 'fleet-maintenance');
  });

  const alicePage = await newSession('alice');
  const bobPage = await newSession('bob');
  let changeId = '';
  await scenario('request a production deploy as the deployer: confirmation, then a change request', async () => {
    await login(alicePage, alice, 'alice');
    await alicePage.goto(`${base}/ui/#/stores/shop-prod`);
    await heading(alicePage, 'Store shop-prod');
    // The deployer may not flush caches. Without authz.explain the UI cannot know in advance:
    // the server's 403 is shown, then the operation is disabled with that reason.
    await alicePage.getByText('decided by the server when you submit them').waitFor();
    await alicePage.getByLabel('Operation', { exact: true }).selectOption('cache.flush');
    await alicePage.getByRole('button', { name: 'Run operation' }).click();
    await alicePage.locator('.notice').filter({ hasText: 'cache.flush was refused: 403' }).waitFor();
    await waitFor('cache.flush disabled after the refusal', () => alicePage.locator('#op-name option[value="cache.flush"]').isDisabled());
    await alicePage.locator('.unavailable li').filter({ hasText: 'refused it (403): not allowed to perform operation.run.cache.flush' }).waitFor();
    await alicePage.getByLabel('Release to deploy').fill('2025.12.1');
    const deploy = alicePage.getByRole('button', { name: 'Deploy…' });
    await deploy.click();
    const dialog = alicePage.getByRole('dialog');
    await dialog.waitFor();
    assert((await dialog.textContent()).includes('production'), 'the dialog says production');
    // Focus stays inside the modal dialog.
    for (let i = 0; i < 4; i++) {
      await alicePage.keyboard.press('Tab');
      assert(await alicePage.evaluate(() => Boolean(document.activeElement?.closest('dialog'))), 'Tab keeps focus in the dialog');
    }
    await alicePage.keyboard.press('Shift+Tab');
    assert(await alicePage.evaluate(() => Boolean(document.activeElement?.closest('dialog'))), 'Shift+Tab keeps focus in the dialog');
    await alicePage.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    assert(await deploy.evaluate((el) => document.activeElement === el), 'focus returns to the Deploy button');
    await deploy.click();
    await alicePage.getByRole('dialog').getByRole('button', { name: 'Deploy', exact: true }).click();
    const notice = alicePage.locator('.notice').filter({ hasText: 'Approval required' });
    await notice.waitFor();
    changeId = /chg_[0-9a-f]+/.exec(await notice.textContent())[0];
    await shot(alicePage, 'deploy-requested');
    await alicePage.goto(`${base}/ui/#/approvals`);
    await heading(alicePage, 'Approvals');
    const row = alicePage.getByRole('row').filter({ hasText: changeId });
    assert(await row.getByRole('button', { name: 'Approve…' }).isDisabled(), 'the requester cannot approve');
    await row.getByText(/You requested this change/).waitFor();
  });

  await scenario('approve it as the approver in a second browser context; the run appears', async () => {
    await login(bobPage, bob, 'bob');
    await bobPage.goto(`${base}/ui/#/approvals`);
    await heading(bobPage, 'Approvals');
    const row = bobPage.getByRole('row').filter({ hasText: changeId });
    await row.waitFor();
    await shot(bobPage, 'approvals');
    // Alice watches the store meanwhile: the run must appear there without a reload.
    await alicePage.goto(`${base}/ui/#/stores/shop-prod`);
    await heading(alicePage, 'Store shop-prod');
    await row.getByRole('button', { name: 'Approve…' }).click();
    await bobPage.getByRole('dialog').getByRole('button', { name: 'Approve', exact: true }).click();
    await bobPage.locator('.notice').filter({ hasText: `${changeId} is now executed` }).waitFor();
    const runs = alicePage.getByRole('table', { name: 'The latest runs of this store' });
    await runs.getByRole('row').filter({ hasText: 'deploy' }).filter({ hasText: '2025.12.1' }).waitFor({ timeout: hasEvents ? TIMEOUT : 45_000 });
    await shot(alicePage, 'store-deploy-run');
    await bobPage.goto(`${base}/ui/#/runs`);
    await heading(bobPage, 'Pipeline runs');
    const runsTable = bobPage.getByRole('table', { name: 'Pipeline runs' });
    await runsTable.getByRole('row').filter({ hasText: '2025.12.1' }).getByRole('link', { name: 'hook' }).waitFor();
    const hrefs = await runsTable.locator('a[href]').evaluateAll((links) => links.map((a) => a.getAttribute('href')));
    assert(hrefs.includes('http://ci.example.test/runs/2'), `the deploy's run link is shown: ${hrefs}`);
    assert(!hrefs.some((href) => href.startsWith('javascript:')), `no javascript: link: ${hrefs}`);
    await shot(bobPage, 'runs');
  });

  await scenario('outside a deploy window the store page says so and asks for a break-glass reason', async () => {
    await alicePage.goto(`${base}/ui/#/stores/data-dev`);
    await heading(alicePage, 'Store data-dev');
    await alicePage.locator('.deploy-window .notice').filter({ hasText: 'Outside the deploy window' })
      .filter({ hasText: 'window/1 (ui test freeze)' }).waitFor();
    await alicePage.getByLabel('Break-glass reason (10–500 characters)').waitFor();
    await shot(alicePage, 'store-deploy-window');
    await alicePage.goto(`${base}/ui/#/stores/shop-stage`);
    await heading(alicePage, 'Store shop-stage');
    assert(await alicePage.locator('.deploy-window').count() === 0, 'staging is inside its window: no notice');
  });

  await scenario('audit log with filters and chain status', async () => {
    await adminPage.goto(`${base}/ui/#/audit`);
    await heading(adminPage, 'Audit log');
    const status = adminPage.getByRole('region', { name: 'Chain status' });
    await status.getByText('storeplane audit verify').waitFor();
    assert(!(await status.textContent()).includes('none yet'), 'a signed checkpoint exists');
    await adminPage.getByLabel('Action', { exact: true }).fill('deploy.request');
    await adminPage.getByRole('button', { name: 'Apply', exact: true }).click();
    const table = adminPage.getByRole('table', { name: /^Audit records/ });
    await waitFor('deploy.request records only', async () => {
      const actions = await table.locator('tbody td:nth-child(5)').allTextContents();
      return actions.length >= 1 && actions.every((a) => a === 'deploy.request');
    });
    await shot(adminPage, 'audit');
  });

  await scenario('"why can\'t I?": explain as security-admin, disabled with the reason otherwise', async () => {
    await adminPage.goto(`${base}/ui/#/explain`);
    await heading(adminPage, 'Why can\'t I?');
    await adminPage.getByLabel('Principal', { exact: true }).fill('alice');
    await adminPage.getByLabel('Action', { exact: true }).fill('change.approve');
    await adminPage.getByLabel('Store (for store-scoped actions)').fill('shop-prod');
    await adminPage.getByRole('button', { name: 'Explain', exact: true }).click();
    await adminPage.getByText('decision: deny').waitFor();
    await shot(adminPage, 'explain');
    await alicePage.goto(`${base}/ui/#/explain`);
    await heading(alicePage, 'Why can\'t I?');
    assert(await alicePage.getByRole('button', { name: 'Explain', exact: true }).isDisabled(), 'explain is disabled for alice');
    await alicePage.getByText('authz.explain').first().waitFor();
  });

  // Rollouts: three staging stores with their own shop-agents, deployed for real through the
  // stub CI (see pipelineStatus). They are added here, after the scenarios that count stores.
  const rolloutStores = ['roll-a', 'roll-b', 'roll-c'];
  let rolloutId = '';
  await scenario('rollouts: a fleet of three staging stores with agents (set up through the API)', async () => {
    for (const id of rolloutStores) {
      await call(admin, 'POST', '/v1/stores', { id, name: `Rollout ${id}`, environment: 'staging', isolation_mode: 'shared', labels: { fleet: 'rollout' } });
      await call(admin, 'POST', `/v1/stores/${id}/provision`, {});
    }
    for (const id of rolloutStores) {
      await waitFor(`${id} to be active`, async () => (await call(admin, 'GET', `/v1/stores/${id}`)).data.state === 'active');
      const token = (await call(admin, 'POST', `/v1/stores/${id}/enrollment-tokens`, {})).data.token;
      const dir = path.join(tmp, `agent-${id}`);
      fs.mkdirSync(path.join(dir, 'state'), { recursive: true });
      fs.cpSync(args['fake-magento'], path.join(dir, 'magento'), { recursive: true });
      fs.mkdirSync(path.join(dir, 'magento', 'var'), { recursive: true });
      fs.writeFileSync(path.join(dir, 'magento', 'var', '.storeplane-cron'), '');
      fs.writeFileSync(path.join(dir, 'magento', '.storeplane-release'), 'r1\n');
      fs.writeFileSync(path.join(dir, 'agent.yaml'), [
        `control_plane_url: ${base}`, `store_id: ${id}`, `credential_file: ${dir}/credential`, `state_dir: ${dir}/state`,
        `magento_root: ${dir}/magento`, `php_binary: ${dir}/magento/php`, 'isolation_mode: shared',
        'allowed_operations: [health.probe, release.report]', 'checks:', '  cron_max_age_s: 86400', ''].join('\n'));
      deployable.set(id, path.join(dir, 'magento'));
      startProcess(`shop-agent-${id}`, args['shop-agent'], ['--config', path.join(dir, 'agent.yaml')], { SHOP_AGENT_ENROLLMENT_TOKEN: token });
    }
    for (const id of rolloutStores) {
      await waitFor(`${id}'s agent to be online and healthy`, async () => {
        const health = (await call(admin, 'GET', `/v1/stores/${id}/health`)).data;
        return health.availability === 'online' && health.health === 'healthy';
      });
    }
  });

  await scenario('rollouts: create one through the form (a 422 next to its field, a preview first)', async () => {
    await alicePage.goto(`${base}/ui/#/rollouts`);
    await heading(alicePage, 'Rollouts');
    await alicePage.getByRole('heading', { level: 2, name: 'No rollouts yet' }).waitFor();
    await shot(alicePage, 'rollouts-empty');
    await alicePage.locator('.page-actions').getByRole('link', { name: 'New rollout' }).click();
    await heading(alicePage, 'New rollout');
    await alicePage.getByLabel('Release', { exact: true }).fill('r2');
    await alicePage.getByLabel('Environment', { exact: true }).selectOption('staging');
    await alicePage.getByLabel('Label selector').fill('fleet=nowhere');
    await alicePage.getByRole('button', { name: 'Preview' }).click();
    // The server's 422 names the field: its message is shown next to the selector, which
    // takes the focus.
    const selectorError = alicePage.locator('#nr-labels-error');
    await selectorError.waitFor();
    assert((await selectorError.textContent()).length > 0, 'the 422 detail is shown by the selector');
    assert(await alicePage.getByLabel('Label selector').getAttribute('aria-invalid') === 'true', 'the selector is marked invalid');
    assert(await alicePage.evaluate(() => document.activeElement?.id === 'nr-labels'), 'focus moves to the field');
    await shot(alicePage, 'rollout-new-field-error');
    await alicePage.getByLabel('Label selector').fill('fleet=rollout');
    assert(await selectorError.isHidden(), 'typing clears the field error');
    await alicePage.getByLabel('Max concurrent runs').fill('2');
    await alicePage.getByLabel('Between waves', { exact: true }).selectOption('approval');
    await alicePage.getByRole('button', { name: 'Preview' }).click();
    const planned = alicePage.getByRole('table', { name: 'Planned waves' });
    await planned.waitFor();
    const sizes = await planned.locator('tbody tr td:nth-child(2)').allTextContents();
    assert(sizes.join(',') === '1,2', `the preview plans a canary of 1 and a wave of 2: ${sizes}`);
    const which = await planned.locator('tbody tr td:nth-child(3)').allTextContents();
    assert(which.join('|') === 'roll-a|roll-b, roll-c', `the planned stores, in id order: ${which}`);
    assert((await alicePage.locator('.rollout-preview').textContent()).includes('3 stores of staging in 2 waves'), 'the preview sums it up');
    assert((await call(alice, 'GET', '/v1/rollouts')).data.items.length === 0, 'a preview creates nothing');
    await shot(alicePage, 'rollout-new-preview');
    await alicePage.getByRole('button', { name: 'Create rollout' }).click();
    await alicePage.getByRole('heading', { level: 1, name: /^Rollout rol_/ }).waitFor();
    rolloutId = /#\/rollouts\/(rol_[^/?]+)/.exec(alicePage.url())?.[1];
    assert(rolloutId, `the detail page of the new rollout opens: ${alicePage.url()}`);
    log(`rollout ${rolloutId} created`);
  });

  const rolloutState = (page, state) => page.locator(`.rollout-state[data-state="${state}"]`);
  await scenario('rollouts: the canary deploys live; pause and resume while it awaits approval', async () => {
    const p = alicePage;
    // Live: the canary's target goes to succeeded and the rollout waits for approval, with
    // no reload of the page.
    await p.locator('[data-target="roll-a"][data-state="succeeded"]').waitFor({ timeout: 90_000 });
    await rolloutState(p, 'awaiting_approval').waitFor({ timeout: 30_000 });
    await p.locator('.waiting-for').filter({ hasText: 'approval of wave 1' }).waitFor();
    const approve = p.getByRole('button', { name: 'Approve wave 1…' });
    assert(await approve.isDisabled(), 'the creator cannot approve a wave');
    await p.getByText('You created this rollout: a different principal must approve').waitFor();
    assert(await p.getByRole('button', { name: 'Resume' }).isDisabled(), 'Resume is disabled unless paused');
    await p.getByText('Resume applies to a paused rollout').waitFor();
    const canaryRow = p.getByRole('table', { name: /^Waves/ }).getByRole('row').filter({ hasText: 'Canary (wave 0)' });
    assert((await canaryRow.getByRole('img').getAttribute('aria-label')).includes('1 succeeded'), 'the canary bar says 1 succeeded');
    await shot(p, 'rollout-awaiting-approval');
    // Pause: the state changes live, the live region announces it, focus lands on Resume.
    await p.getByRole('button', { name: 'Pause' }).click();
    await rolloutState(p, 'paused').waitFor();
    await waitFor('the pause announced', async () => (await p.locator('#live').textContent()).includes('is now paused'));
    await waitFor('focus on Resume', () => p.evaluate(() => document.activeElement?.dataset.action === 'resume'));
    await p.locator('.waiting-for').filter({ hasText: 'Paused by an operator' }).waitFor();
    assert(await p.getByRole('button', { name: 'Pause' }).isDisabled(), 'Pause is disabled while paused');
    await shot(p, 'rollout-paused');
    await p.keyboard.press('Enter'); // Resume, from the keyboard
    await rolloutState(p, 'awaiting_approval').waitFor();
    // A principal with authz.explain sees the policy's answer in advance: the security
    // admin may not approve rollouts (its role denies it).
    await adminPage.goto(`${base}/ui/#/rollouts/${rolloutId}`);
    await heading(adminPage, `Rollout ${rolloutId}`);
    assert(await adminPage.getByRole('button', { name: 'Approve wave 1…' }).isDisabled(), 'the security admin cannot approve');
    await adminPage.locator('.rollout-actions .reason').filter({ hasText: /^Not allowed: .*security-admin\/deny/ }).waitFor();
    assert(!(await adminPage.getByRole('button', { name: 'Pause' }).isDisabled()), 'the operator role may pause');
  });

  await scenario('rollouts: another principal approves wave 1; the deployer watches it finish live', async () => {
    await bobPage.goto(`${base}/ui/#/rollouts/${rolloutId}`);
    await heading(bobPage, `Rollout ${rolloutId}`);
    await bobPage.getByRole('button', { name: 'Approve wave 1…' }).click();
    const dialog = bobPage.getByRole('dialog');
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Approve wave 1', exact: true }).click();
    await bobPage.locator('.notice').filter({ hasText: 'Approval of wave 1 accepted' }).waitFor();
    // Alice's page follows it: wave 1 runs, then the rollout succeeds.
    const p = alicePage;
    await rolloutState(p, 'succeeded').waitFor({ timeout: 120_000 });
    await waitFor('3 succeeded targets', async () => (await p.locator('.targets [data-state="succeeded"]').count()) === 3);
    const bar = await p.getByRole('region', { name: 'Status' }).getByRole('img').getAttribute('aria-label');
    assert(bar.includes('3 succeeded') && bar.includes('(of 3)'), `the rollout's bar: ${bar}`);
    assert(await p.getByRole('button', { name: 'Abort…' }).isDisabled(), 'a finished rollout cannot be aborted');
    await waitFor('the end announced', async () => (await p.locator('#live').textContent()).includes('is now succeeded'));
    await shot(p, 'rollout-succeeded');
    // The deploy runs link to the runs page, where the run is marked.
    const runLink = p.getByRole('table', { name: /^Targets/ }).getByRole('row').filter({ hasText: 'roll-b' }).getByRole('link', { name: /^run_/ });
    const runId = (await runLink.textContent()).trim();
    await runLink.click();
    await heading(p, 'Pipeline runs');
    await p.locator('mark.run-marked').filter({ hasText: runId }).waitFor();
    await p.getByRole('row').filter({ hasText: runId }).getByRole('link', { name: rolloutId }).waitFor();
    const release = await waitFor('roll-b at r2', async () => {
      const store = (await call(admin, 'GET', '/v1/stores/roll-b')).data;
      return store.current_release === 'r2' && store.last_known_good_release === 'r2';
    });
    assert(release, 'roll-b runs r2');
  });

  await scenario('rollouts: a closed deploy window holds a rollout, and the page says so', async () => {
    // The development freeze of this test's policy: the rollout waits, nothing is skipped.
    const held = (await call(alice, 'POST', '/v1/rollouts', { release: 'r9', selector: { environment: 'development' } })).data;
    const p = alicePage;
    await p.goto(`${base}/ui/#/rollouts/${held.id}`);
    await heading(p, `Rollout ${held.id}`);
    await p.locator('.waiting-for[data-reason="window_closed"]').filter({ hasText: 'The deploy window of development is closed' }).waitFor();
    assert(await p.locator('.targets [data-state="skipped"]').count() === 0, 'nothing is skipped while the window is closed');
    await shot(p, 'rollout-window-closed');
    await p.getByRole('button', { name: 'Abort…' }).click();
    await p.getByRole('dialog').getByRole('button', { name: 'Abort rollout' }).click(); // without rollback
    await rolloutState(p, 'aborted').waitFor();
  });

  await scenario('rollouts: abort one and roll back its canary; the list and its filters', async () => {
    const p = alicePage;
    await p.goto(`${base}/ui/#/rollouts/new`);
    await heading(p, 'New rollout');
    await p.getByLabel('Release', { exact: true }).fill('r3');
    await p.getByLabel('Environment', { exact: true }).selectOption('staging');
    await p.getByLabel('Label selector').fill('fleet=rollout');
    await p.getByLabel('Between waves', { exact: true }).selectOption('approval');
    await p.getByRole('button', { name: 'Create rollout' }).click();
    await p.getByRole('heading', { level: 1, name: /^Rollout rol_/ }).waitFor();
    const second = /#\/rollouts\/(rol_[^/?]+)/.exec(p.url())[1];
    assert(second !== rolloutId, 'a new rollout');
    await rolloutState(p, 'awaiting_approval').waitFor({ timeout: 90_000 });
    const abort = p.getByRole('button', { name: 'Abort…' });
    await abort.click();
    const dialog = p.getByRole('dialog');
    await dialog.waitFor();
    for (let i = 0; i < 4; i++) {
      await p.keyboard.press('Tab');
      assert(await p.evaluate(() => Boolean(document.activeElement?.closest('dialog'))), 'Tab keeps focus in the dialog');
    }
    await p.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    assert(await abort.evaluate((el) => document.activeElement === el), 'focus returns to Abort…');
    assert(await p.locator('.rollout-state').getAttribute('data-state') === 'awaiting_approval', 'cancelling aborts nothing');
    await abort.click();
    await dialog.getByLabel(/Roll back the current wave/).check();
    await shot(p, 'rollout-abort-dialog');
    await dialog.getByRole('button', { name: 'Abort rollout' }).click();
    await rolloutState(p, 'aborted').waitFor({ timeout: 90_000 });
    await p.locator('[data-target="roll-a"][data-state="rolled_back"]').waitFor();
    assert(await p.locator('.targets [data-state="not_started"]').count() === 2, 'wave 1 never started');
    await p.locator('.subtitle').getByText('aborted by an operator').waitFor();
    await shot(p, 'rollout-aborted');
    // The list: both rollouts, filtered by state.
    await p.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Rollouts' }).click();
    await heading(p, 'Rollouts');
    const list = p.getByRole('table', { name: /^Rollouts/ });
    await waitFor('three rollouts listed', async () => (await list.locator('tbody tr').count()) === 3);
    await p.getByLabel('Environment', { exact: true }).selectOption('staging');
    await p.getByLabel('State', { exact: true }).selectOption('aborted');
    await p.getByRole('button', { name: 'Apply', exact: true }).click();
    await waitFor('only the aborted staging one', async () => {
      const rows = await list.locator('tbody tr').allTextContents();
      return rows.length === 1 && rows[0].includes(second) && rows[0].includes('r3');
    });
    await p.getByRole('button', { name: 'Clear' }).click();
    await waitFor('three again', async () => (await list.locator('tbody tr').count()) === 3);
    await shot(p, 'rollouts');
    await p.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Fleet' }).click();
    await heading(p, 'Fleet overview');
    await p.getByRole('table', { name: /^Rollouts in progress/ }).getByText('No rollout is in progress.').waitFor();
  });

  await scenario('rollouts: a production rollout waits for approval (202: the change request is shown)', async () => {
    const p = alicePage;
    await p.goto(`${base}/ui/#/rollouts/new`);
    await heading(p, 'New rollout');
    await p.getByLabel('Release', { exact: true }).fill('2025.12.2');
    await p.getByLabel('Environment', { exact: true }).selectOption('production');
    await p.getByRole('button', { name: 'Create rollout' }).click();
    const held = p.locator('.rollout-preview .notice').filter({ hasText: 'Approval required' });
    await held.waitFor();
    assert(/chg_[0-9a-f]+/.test(await held.textContent()), 'the change request is named');
    await held.getByRole('link', { name: 'See approvals' }).waitFor();
    assert(p.url().endsWith('#/rollouts/new'), 'no rollout page opens');
    await shot(p, 'rollout-new-approval');
  });

  await scenario('watch the store go offline and unknown when its agent is killed', async () => {
    await adminPage.goto(`${base}/ui/#/stores/shop-prod`);
    await heading(adminPage, 'Store shop-prod');
    const agentPanel = adminPage.getByRole('region', { name: 'Agent', exact: true });
    await agentPanel.locator('.badge', { hasText: 'online' }).first().waitFor();
    agent.kill('SIGKILL');
    await agentPanel.locator('.badge', { hasText: 'offline' }).waitFor({ timeout: hasEvents ? TIMEOUT : 45_000 });
    await adminPage.locator('.subtitle .badge', { hasText: 'health: unknown' }).waitFor();
    await shot(adminPage, 'store-offline');
    await adminPage.goto(`${base}/ui/#/fleet`);
    await heading(adminPage, 'Fleet overview');
    await adminPage.getByRole('table', { name: /^Problems/ }).getByRole('row').filter({ hasText: 'shop-prod' }).filter({ hasText: 'offline' }).first().waitFor();
    await shot(adminPage, 'fleet-offline');
  });

  await scenario('log out forgets the token', async () => {
    await adminPage.getByRole('button', { name: 'Log out' }).click();
    await heading(adminPage, 'Log in to storeplane', { focus: 'INPUT' });
    assert(await adminPage.evaluate(() => sessionStorage.getItem('storeplane.token')) === null, 'the token is gone');
    assert(!(await adminPage.getByRole('button', { name: 'Log out' }).isVisible()), 'no Log out button after logout');
    await adminPage.reload();
    await heading(adminPage, 'Log in to storeplane', { focus: 'INPUT' });
  });

  const problems = [adminPage, alicePage, bobPage].flatMap((p) => p.problems)
    // Refusals the UI shows on purpose (403 of the explain probe, 404 without /v1/events, the
    // 422 of the rollout form's bad selector).
    .filter((p) => !/Failed to load resource: the server responded with a status of (403|404|422)/.test(p));
  await scenario('no CSP violation or script error in any page', async () => {
    assert(problems.length === 0, problems.join('\n'));
  });
}

let failed = false;
try {
  await main();
} catch (err) {
  failed = true;
  if (!results.some((r) => r[1] === 'FAIL')) log(`setup failed: ${err.stack || err}`);
  for (const child of children) log(`log of ${path.basename(child.logFile)} (last lines):\n${fs.readFileSync(child.logFile, 'utf8').split('\n').slice(-15).join('\n')}`);
} finally {
  if (browser) {
    if (failed) {
      // What each browser context showed when the test failed.
      for (const [i, context] of browser.contexts().entries()) {
        for (const page of context.pages()) await page.screenshot({ path: path.join(args.artifacts, `failure-context-${i}.png`), fullPage: true }).catch(() => {});
      }
    }
    await browser.close().catch(() => {});
  }
  killAll();
  if (stub) stub.close();
}
console.log('\nscenario results:');
for (const [name, status, ms] of results) console.log(`  ${status}  ${name}  (${(ms / 1000).toFixed(1)} s)`);
console.log(`ui tests: ${failed ? 'FAILED' : 'passed'} in ${((Date.now() - started) / 1000).toFixed(1)} s; screenshots in ${args.artifacts}`);
if (!failed) fs.rmSync(tmp, { recursive: true, force: true });
process.exit(failed ? 1 : 0);
