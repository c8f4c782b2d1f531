// The live event stream: GET /v1/events read with fetch() (EventSource cannot send the bearer
// token) and parsed as Server-Sent Events here: "id:", "event:", "data:" lines, a blank line
// ends an event, lines starting with ":" are comments (keep-alives). Reconnects with
// exponential backoff and jitter, resuming with Last-Event-ID. Emits:
//   'status' {state: 'connecting'|'live'|'reconnecting'|'unavailable'|'forbidden'|'stopped', detail}
//   'event'  {id, type, data}   (data: the parsed JSON; for 'reset', refetch everything shown)
export class EventStream extends EventTarget {
  constructor(tokenFn, url = '/v1/events') {
    super();
    this.tokenFn = tokenFn;
    this.url = url;
    this.lastEventId = null;
    this.controller = null;
    this.running = false;
    this.attempt = 0;
    this.state = 'stopped';
    this.generation = 0;
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.attempt = 0;
    this.loop(++this.generation);
  }

  stop() {
    this.running = false;
    this.generation += 1; // a loop still sleeping ends when it wakes
    if (this.controller) this.controller.abort();
    if (this.wake) this.wake();
    this.lastEventId = null;
    this.setStatus('stopped', '');
  }

  setStatus(state, detail) {
    this.state = state;
    this.dispatchEvent(new CustomEvent('status', { detail: { state, detail } }));
  }

  async loop(generation) {
    const current = () => this.running && generation === this.generation;
    while (current()) {
      this.setStatus(this.attempt === 0 ? 'connecting' : 'reconnecting', '');
      const outcome = await this.connectOnce();
      if (!current()) return;
      if (outcome === 'unavailable' || outcome === 'forbidden') {
        // The server has no event stream (404) or the principal may not watch (403): say so
        // and look again after a while (a server upgrade, a policy reload).
        await this.sleep(60_000);
        continue;
      }
      if (!current()) return;
      this.attempt += 1;
      const base = Math.min(30_000, 1000 * 2 ** Math.min(this.attempt - 1, 5));
      const delay = base / 2 + Math.random() * (base / 2);
      this.setStatus('reconnecting', `retrying in ${Math.round(delay / 1000)} s`);
      await this.sleep(delay);
    }
  }

  sleep(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => { clearTimeout(timer); resolve(); };
    });
  }

  /** Reconnect now (after a login, or when the page becomes visible again). */
  retryNow() {
    if (this.wake) this.wake();
  }

  async connectOnce() {
    this.controller = new AbortController();
    const headers = { Accept: 'text/event-stream', Authorization: `Bearer ${this.tokenFn()}` };
    if (this.lastEventId) headers['Last-Event-ID'] = this.lastEventId;
    let response;
    try {
      response = await fetch(this.url, { headers, signal: this.controller.signal, cache: 'no-store' });
    } catch {
      return 'error';
    }
    if (response.status === 404) {
      this.setStatus('unavailable', 'this server has no event stream');
      return 'unavailable';
    }
    if (response.status === 403) {
      let detail = 'not allowed to watch events';
      try { detail = (await response.json()).detail || detail; } catch { /* keep the default */ }
      this.setStatus('forbidden', detail);
      return 'forbidden';
    }
    if (response.status === 401) {
      this.dispatchEvent(new CustomEvent('unauthenticated'));
      this.running = false;
      return 'error';
    }
    if (!response.ok || !response.body) return 'error';
    this.attempt = 0;
    this.setStatus('live', '');
    try {
      await this.read(response.body.getReader());
    } catch {
      // the connection broke or was aborted: reconnect
    }
    return 'error';
  }

  async read(reader) {
    const decoder = new TextDecoder();
    let buffer = '';
    let event = { id: null, type: '', data: [] };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let newline;
      while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + (buffer.startsWith('\r\n', newline) ? 2 : 1));
        if (line === '') {
          if (event.data.length || event.type) this.deliver(event);
          event = { id: null, type: '', data: [] };
          continue;
        }
        if (line.startsWith(':')) continue; // a comment: keep-alive
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let value2 = colon < 0 ? '' : line.slice(colon + 1);
        if (value2.startsWith(' ')) value2 = value2.slice(1);
        if (field === 'id') event.id = value2;
        else if (field === 'event') event.type = value2;
        else if (field === 'data') event.data.push(value2);
      }
    }
  }

  deliver(event) {
    if (event.id !== null && event.id !== '') this.lastEventId = event.id;
    let data = null;
    try { data = JSON.parse(event.data.join('\n')); } catch { data = null; }
    const type = event.type || (data && data.type) || 'message';
    this.dispatchEvent(new CustomEvent('event', { detail: { id: event.id, type, data: data || {} } }));
  }
}
