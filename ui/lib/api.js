// The operator API client: fetch() with the session's bearer token, JSON in and out, and
// RFC 9457 problems turned into ApiError (status, type, title, detail). A 403 is remembered by
// the capability layer, so that the action is shown disabled with the server's own reason.
import { session } from './session.js';

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
  get kind() { return (this.problem.type || '').replace('urn:storeplane:problem:', ''); }
}

const listeners = new Set();
/** Called with (error, method, path) after every failed request (the app logs out on 401). */
export function onApiError(fn) { listeners.add(fn); }

export async function api(method, path, { body, query, headers = {} } = {}) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(key, value);
  }
  const init = { method, headers: { Accept: 'application/json', ...headers }, cache: 'no-store' };
  const token = session.token;
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    const error = new ApiError(0, { title: 'The server cannot be reached', detail: String(err.message || err) });
    listeners.forEach((fn) => fn(error, method, path));
    throw error;
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = { detail: text }; }
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data || { title: response.statusText });
    listeners.forEach((fn) => fn(error, method, path));
    throw error;
  }
  return { status: response.status, data, headers: response.headers };
}

export const get = async (path, query) => (await api('GET', path, { query })).data;
export const post = (path, body) => api('POST', path, { body, headers: { 'Idempotency-Key': randomKey() } });

function randomKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Every page of a cursor-paged list (bounded: at most `maxPages`). */
export async function getAll(path, query = {}, { maxPages = 50, cursorParam = 'cursor' } = {}) {
  const items = [];
  let cursor = null;
  for (let page = 0; page < maxPages; page++) {
    const data = await get(path, { ...query, ...(cursor ? { [cursorParam]: cursor } : {}) });
    items.push(...(data.items || []));
    cursor = data.next_cursor;
    if (cursor === null || cursor === undefined) return { items, complete: true };
  }
  return { items, complete: false };
}

/** A short text for an error, for notices. */
export function describeError(err) {
  if (!(err instanceof ApiError)) return String(err && err.message ? err.message : err);
  const p = err.problem || {};
  const parts = [`${err.status || ''} ${p.title || ''}`.trim()];
  if (p.detail && p.detail !== p.title) parts.push(p.detail);
  if (p.field) parts.push(`(field ${p.field})`);
  return parts.join(': ');
}
