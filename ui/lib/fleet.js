// Joins what the API returns about the fleet: stores (GET /v1/stores) with their agents
// (GET /v1/agents: availability, health, reasons, reported isolation). A store without an
// agent has availability "no agent" and health "unknown". When the principal may not read
// agents, health is unknown and the reason is kept for the page to show.
import { get, getAll, ApiError } from './api.js';

export async function loadAgents() {
  try {
    const data = await get('/v1/agents');
    return { byStore: new Map(data.items.map((a) => [a.store_id, a])), error: null };
  } catch (err) {
    if (err instanceof ApiError && err.status === 403) return { byStore: new Map(), error: err.problem.detail || 'agent.read refused' };
    throw err;
  }
}

export function joinStore(store, agent) {
  const availability = agent ? (agent.revoked_at ? 'revoked' : agent.availability) : 'no agent';
  const health = agent ? agent.health : 'unknown';
  const reasons = agent ? agent.health_reasons || [] : ['no_agent'];
  const mismatch = Boolean(agent && agent.reported_isolation && agent.reported_isolation !== store.isolation_mode) ||
    reasons.includes('isolation_mismatch');
  const maintenance = reasons.some((r) => r.endsWith(':maintenance'));
  return { store, agent, availability, health, reasons, mismatch, maintenance };
}

export async function loadFleet(query = {}) {
  const [stores, agents] = await Promise.all([getAll('/v1/stores', { ...query, limit: 1000 }), loadAgents()]);
  return {
    rows: stores.items.map((s) => joinStore(s, agents.byStore.get(s.id))),
    complete: stores.complete,
    agentsError: agents.error,
  };
}

export function countBy(rows, key) {
  const counts = new Map();
  for (const row of rows) counts.set(key(row), (counts.get(key(row)) || 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || String(a[0]).localeCompare(String(b[0])));
}

export const FAILED_RUN_STATES = ['failed', 'timed_out', 'verification_failed'];
