// The web UI's event-stream client (ui/lib/events.js) against a local Server-Sent Events
// server, in Node (no browser): parsing (comments, CRLF, several data lines, chunks split
// anywhere), the bearer token, reconnection with Last-Event-ID, reset, and the statuses for
// a server without the stream (404) or a principal without event.watch (403).
// Run by ctest (ui.events_client): node --test tests/ui/events_client_test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// The browser's CustomEvent, for a Node without it as a global (before 19).
globalThis.CustomEvent ??= class CustomEvent extends Event {
  constructor(type, options = {}) {
    super(type, options);
    this.detail = options.detail ?? null;
  }
};
// ui/ has no package.json (it is served as is): load the module from an .mjs copy.
const source = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../ui/lib/events.js');
const copy = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'storeplane-events-')), 'events.mjs');
fs.copyFileSync(source, copy);
const { EventStream } = await import(pathToFileURL(copy).href);
fs.rmSync(path.dirname(copy), { recursive: true, force: true });

async function serve(handler) {
  const server = createServer(handler);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${server.address().port}/v1/events` };
}

function collect(stream) {
  const seen = { events: [], statuses: [] };
  stream.addEventListener('event', (ev) => seen.events.push(ev.detail));
  stream.addEventListener('status', (ev) => seen.statuses.push(ev.detail.state));
  return seen;
}

async function until(what, predicate, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('parses events split across chunks, skips comments, joins data lines', async () => {
  const requests = [];
  const { server, url } = await serve((req, res) => {
    requests.push(req.headers);
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    // One event split in the middle of a field, CRLF line ends, a comment, two data lines.
    res.write(': keep-alive\n\nid: 7\r\nevent: store.up');
    setTimeout(() => {
      res.write('dated\r\ndata: {"id":"7","type":"store.updated",\r\ndata: "store_id":"acme"}\r\n\r\n');
      res.write('id: 8\nevent: agent.status\ndata: {"id":"8","type":"agent.status","store_id":"acme","availability":"offline","health":"unknown"}\n\n');
    }, 50);
  });
  const stream = new EventStream(() => 'spt_test', url);
  const seen = collect(stream);
  stream.start();
  try {
    await until('two events', () => seen.events.length === 2);
    assert.equal(requests[0].authorization, 'Bearer spt_test');
    assert.equal(requests[0].accept, 'text/event-stream');
    assert.equal(requests[0]['last-event-id'], undefined);
    assert.deepEqual(seen.events.map((e) => [e.id, e.type]), [['7', 'store.updated'], ['8', 'agent.status']]);
    assert.equal(seen.events[0].data.store_id, 'acme');
    assert.equal(seen.events[1].data.availability, 'offline');
    assert.ok(seen.statuses.includes('live'));
  } finally {
    stream.stop();
    server.close();
    server.closeAllConnections();
  }
});

test('reconnects after the stream ends, resuming with Last-Event-ID, and passes reset on', async () => {
  const requests = [];
  const { server, url } = await serve((req, res) => {
    requests.push(req.headers);
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    if (requests.length === 1) {
      res.end('id: a1\nevent: run.created\ndata: {"id":"a1","type":"run.created","store_id":"acme"}\n\n');
    } else {
      res.write('id: b1\nevent: reset\ndata: {"id":"b1","type":"reset","reason":"server restarted"}\n\n');
    }
  });
  const stream = new EventStream(() => 'spt_test', url);
  const seen = collect(stream);
  stream.start();
  try {
    await until('the reset after a reconnection', () => seen.events.some((e) => e.type === 'reset'));
    assert.equal(requests.length, 2);
    assert.equal(requests[1]['last-event-id'], 'a1');
    assert.equal(seen.events.at(-1).data.reason, 'server restarted');
    assert.ok(seen.statuses.includes('reconnecting'), seen.statuses.join(','));
    assert.equal(seen.statuses.at(-1), 'live');
  } finally {
    stream.stop();
    server.close();
    server.closeAllConnections();
  }
});

test('a server without the stream (404) makes it "unavailable", without retrying at once', async () => {
  let calls = 0;
  const { server, url } = await serve((req, res) => {
    calls += 1;
    res.writeHead(404, { 'Content-Type': 'application/problem+json' });
    res.end('{"status":404}');
  });
  const stream = new EventStream(() => 'spt_test', url);
  const seen = collect(stream);
  stream.start();
  try {
    await until('unavailable', () => seen.statuses.includes('unavailable'));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(calls, 1);
  } finally {
    stream.stop();
    server.close();
  }
  assert.equal(seen.statuses.at(-1), 'stopped');
});

test('a principal without event.watch (403) sees why', async () => {
  const { server, url } = await serve((req, res) => {
    res.writeHead(403, { 'Content-Type': 'application/problem+json' });
    res.end('{"status":403,"detail":"not allowed to perform event.watch"}');
  });
  const stream = new EventStream(() => 'spt_test', url);
  const details = [];
  stream.addEventListener('status', (ev) => details.push(ev.detail));
  stream.start();
  try {
    await until('forbidden', () => details.some((d) => d.state === 'forbidden'));
    assert.equal(details.find((d) => d.state === 'forbidden').detail, 'not allowed to perform event.watch');
  } finally {
    stream.stop();
    server.close();
  }
});

test('a 401 ends the stream and says so', async () => {
  const { server, url } = await serve((req, res) => {
    res.writeHead(401);
    res.end();
  });
  const stream = new EventStream(() => 'spt_revoked', url);
  let unauthenticated = false;
  stream.addEventListener('unauthenticated', () => { unauthenticated = true; });
  stream.start();
  try {
    await until('unauthenticated', () => unauthenticated);
    assert.equal(stream.running, false);
  } finally {
    stream.stop();
    server.close();
  }
});
