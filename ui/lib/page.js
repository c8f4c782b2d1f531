// The base of every page element: loads, shows "Loading…" once, renders, shows API errors as
// alerts, refreshes on demand (debounced, for live events) without stealing focus, and on
// first render moves focus to the page's heading (so keyboard and screen-reader users land
// on the new page).
import { h, clear, notice } from './dom.js';
import { describeError } from './api.js';

export class Page extends HTMLElement {
  constructor() {
    super();
    this.params = {};
    this.query = new URLSearchParams();
    this.generation = 0;
    this.rendered = false;
    this.refreshTimer = null;
  }

  connectedCallback() {
    this.classList.add('page');
    if (!this.rendered) {
      this.replaceChildren(h('h1', { tabIndex: -1 }, this.title()), h('p.muted', {}, 'Loading…'));
      this.focusHeading();
    }
    this.refresh();
  }

  disconnectedCallback() {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = null;
    this.generation += 1;
  }

  title() { return 'storeplane'; }

  /** Builds the page's content (nodes); may throw ApiError. */
  async render() { return []; }

  async refresh() {
    // Never re-render under an open dialog: try again once it is closed.
    if (document.querySelector('dialog[open]')) {
      this.scheduleRefresh(500);
      return;
    }
    // One load at a time: a refresh asked for meanwhile runs once this one is done, so a
    // busy event stream cannot keep discarding loads before they finish.
    if (this.loading) {
      this.again = true;
      return;
    }
    this.loading = true;
    const generation = ++this.generation;
    let content;
    try {
      content = [await this.render()].flat().filter(Boolean);
    } catch (err) {
      content = [notice('error', `Could not load this page: ${describeError(err)}`)];
    } finally {
      this.loading = false;
      if (this.again) {
        this.again = false;
        this.scheduleRefresh(0);
      }
    }
    if (generation !== this.generation || !this.isConnected) return;
    this.dataset.loaded = String(generation);
    // Unchanged content is left alone: no flicker, no lost focus or half-done click.
    const print = content.map(fingerprint).join('');
    if (this.rendered && print === this.lastPrint) return;
    this.lastPrint = print;
    const active = document.activeElement;
    const hadFocusInside = this.contains(active) && active !== this.querySelector('h1');
    const heading = h('h1', { tabIndex: -1 }, this.title());
    this.replaceChildren(heading, ...content);
    document.title = `${this.title()} — storeplane`;
    if (!this.rendered) {
      this.rendered = true;
      this.focusHeading();
    } else if (hadFocusInside) {
      // A control kept across renders (a form) keeps focus; otherwise the heading takes it.
      if (this.contains(active)) active.focus();
      else heading.focus();
    }
    this.afterRender();
  }

  afterRender() {}

  focusHeading() {
    const heading = this.querySelector('h1');
    if (heading) heading.focus({ preventScroll: false });
  }

  /**
   * Refresh within `delayMs`, once, however many events arrive meanwhile. A steady flow of
   * events cannot postpone it forever: a pending refresh is only ever brought forward.
   */
  scheduleRefresh(delayMs = 300) {
    const due = Date.now() + delayMs;
    if (this.refreshTimer && this.refreshDue <= due) return;
    clearTimeout(this.refreshTimer);
    this.refreshDue = due;
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = null;
      this.refresh();
    }, delayMs);
  }

  /** A live event ({type, data}); pages refresh when it touches what they show. */
  onLiveEvent(event) {
    if (event.type === 'reset') this.scheduleRefresh(0);
  }

  /** Navigate to this page with other query parameters. */
  setQuery(values) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(values)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
    const base = location.hash.split('?')[0] || '#/';
    const next = q.toString() ? `${base}?${q}` : base;
    if (next === location.hash) this.refresh();
    else location.hash = next;
  }
}

/** Marks a node that a page keeps across renders (forms being filled, an outcome shown). */
let keepIds = 0;
export function keep(node) {
  if (!node.dataset.keep) node.dataset.keep = String(++keepIds);
  return node;
}

// A cheap structural print of freshly rendered nodes; kept nodes count by identity only.
function fingerprint(node) {
  if (node.nodeType === Node.TEXT_NODE) return node.data;
  if (node.nodeType !== Node.ELEMENT_NODE) return '';
  if (node.dataset.keep) return `<keep ${node.dataset.keep}>`;
  let out = `<${node.tagName}`;
  for (const attr of node.attributes) out += ` ${attr.name}="${attr.value}"`;
  out += '>';
  for (const child of node.childNodes) out += fingerprint(child);
  return `${out}</>`;
}

/** A section with a labelled heading (a landmark region for screen readers). */
let sectionIds = 0;
export function section(title, ...children) {
  const id = `sec-${++sectionIds}`;
  return h('section.panel', { 'aria-labelledby': id }, h('h2', { id }, title), children);
}

export { clear };
