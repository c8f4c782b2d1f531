// What the rollout pages share: the closed sets of src/core/rollout.h (states, target states,
// skip reasons), wave names, the segmented progress bar of a rollout's or a wave's counts,
// and the "waiting for" sentence of a rollout's header.
import { h, formatTime } from './dom.js';

export const ROLLOUT_STATES = ['pending', 'running', 'waiting_between_waves', 'awaiting_approval', 'paused', 'halting', 'aborting',
  'rolling_back', 'succeeded', 'failed', 'aborted'];
export const FINAL_ROLLOUT_STATES = ['succeeded', 'failed', 'aborted'];
export const TARGET_STATES = ['waiting', 'deploying', 'succeeded', 'failed', 'skipped', 'rollback_waiting', 'rolling_back', 'rolled_back',
  'rollback_failed', 'not_rolled_back', 'not_started'];
export const SKIP_REASONS = {
  agent_offline: 'agent offline or never seen',
  unhealthy: 'health unhealthy or unknown',
  active_run: 'another run was active on the store',
  not_active: 'the store is not active',
  window_closed: 'the deploy window was closed',
  already_at_release: 'the store already runs this release',
};
export const ENVIRONMENTS = ['production', 'staging', 'development'];
export const ISOLATION_MODES = ['shared', 'dedicated', 'isolated'];

/** "Canary (wave 0)" or "Wave 3": waves are numbered from 0, as the API and approve name them. */
export function waveName(index) {
  return index === 0 ? 'Canary (wave 0)' : `Wave ${index}`;
}

/** The wave a rollout is at, counting the canary as the first: "2/4 (wave 1)". */
export function waveProgress(rollout) {
  if (!rollout.wave_count) return '—';
  const i = rollout.current_wave ?? 0;
  return `${i + 1}/${rollout.wave_count} (${i === 0 ? 'canary' : `wave ${i}`})`;
}

// The segments of a progress bar, in the order they are drawn, with their legend names.
const SEGMENTS = [
  ['succeeded', 'succeeded'],
  ['failed', 'failed'],
  ['rollback_failed', 'rollback failed'],
  ['not_rolled_back', 'not rolled back'],
  ['rolled_back', 'rolled back'],
  ['skipped', 'skipped'],
  ['in_flight', 'in flight'],
  ['waiting', 'waiting'],
  ['not_started', 'not started'],
];

/** Targets that need no more work (done one way or another). */
export function doneCount(counts) {
  if (!counts) return 0;
  return ['succeeded', 'failed', 'skipped', 'rolled_back', 'rollback_failed', 'not_rolled_back', 'not_started']
    .reduce((n, key) => n + (counts[key] || 0), 0);
}

/** One line of text for counts: "4 succeeded, 1 skipped, 2 in flight, 3 waiting (of 10)". */
export function countsText(counts) {
  if (!counts) return '—';
  const parts = SEGMENTS.filter(([key]) => counts[key]).map(([key, label]) => `${counts[key]} ${label}`);
  const planned = counts.planned ?? SEGMENTS.reduce((n, [key]) => n + (counts[key] || 0), 0);
  return `${parts.length ? parts.join(', ') : 'nothing yet'} (of ${planned})`;
}

/**
 * A segmented bar of the counts: one coloured segment per non-zero count, its width in
 * proportion (set through the CSSOM: no style attribute in markup, CSP-safe). Colour is never
 * alone: the bar is an image whose name is the counts' text, and a text line can follow it.
 */
export function progressBar(counts, { label = 'Progress', withText = true } = {}) {
  const text = countsText(counts);
  const bar = h('div.progress', { role: 'img', 'aria-label': `${label}: ${text}` });
  const total = counts ? (counts.planned || SEGMENTS.reduce((n, [key]) => n + (counts[key] || 0), 0)) : 0;
  for (const [key, name] of SEGMENTS) {
    const n = counts ? counts[key] || 0 : 0;
    if (!n || !total) continue;
    const seg = h(`span.seg.seg-${key.replace(/_/g, '-')}`, { title: `${n} ${name}` });
    seg.style.flexGrow = String(n);
    bar.append(seg);
  }
  if (!bar.childElementCount) bar.append(h('span.seg.seg-empty', {}));
  return withText ? h('div.progress-wrap', {}, bar, h('small.progress-text', { 'aria-hidden': 'true' }, text)) : bar;
}

/** The bar's legend (once per page). */
export function progressLegend() {
  return h('ul.legend', { 'aria-label': 'Progress bar colours' },
    SEGMENTS.map(([key, name]) => h('li', {}, h(`span.swatch.seg-${key.replace(/_/g, '-')}`, { 'aria-hidden': 'true' }), name)));
}

/** What the rollout waits for, as a sentence, or null when it is not waiting. */
export function waitingFor(rollout) {
  const at = (iso) => (iso ? formatTime(new Date(iso)) : null);
  const w = rollout.waiting_for;
  if (FINAL_ROLLOUT_STATES.includes(rollout.state)) return null;
  switch (rollout.state) {
    case 'paused':
      return `Paused by an operator (it was ${String(rollout.paused_from || 'running').replace(/_/g, ' ')}); it waits for Resume. In-flight runs go on.`;
    case 'awaiting_approval':
      return `Waiting for the approval of ${waveName(rollout.awaiting_wave ?? rollout.current_wave + 1).toLowerCase()} by someone other than ${rollout.created_by}.`;
    case 'waiting_between_waves':
      return `Pausing between waves until ${at(rollout.resume_at || w?.until) || 'the pause ends'}.`;
    case 'halting':
      return 'The failure budget is exceeded: no new deploys; waiting for the runs in flight to finish.';
    case 'aborting':
      return 'Aborted: no new deploys; waiting for the runs in flight to finish.';
    case 'rolling_back':
      return 'Rolling back the stores of the current wave that were deployed.';
    case 'pending':
      return 'Created; the orchestrator starts the canary wave within a second or so.';
    default:
      break;
  }
  if (!w) return null;
  if (w.reason === 'window_closed') return `The deploy window of ${rollout.environment} is closed${w.until ? ` until ${at(w.until)}` : ''}: no deploy starts (nothing is skipped); runs in flight finish.`;
  if (w.reason === 'provider_pacing') return 'Provider pacing: the CI/CD provider\'s trigger budget is used up for now; the next deploys start when it refills.';
  if (w.reason === 'approval') return 'Waiting for an approval.';
  if (w.reason === 'pause') return `Pausing${w.until ? ` until ${at(w.until)}` : ''}.`;
  return `Waiting (${w.reason}).`;
}

/** The spec as [term, value] pairs for facts(). */
export function specFacts(spec) {
  if (!spec) return [];
  const sel = spec.selector || {};
  const waves = spec.waves || {};
  const budget = spec.failure_budget || {};
  return [
    ['Release', spec.release],
    ['Environment', sel.environment],
    ['Isolation mode', sel.isolation_mode || 'any'],
    ['Label selector', sel.labels ? h('code', {}, sel.labels) : 'all stores of the environment'],
    ['Canary size', String(waves.canary_size ?? 1)],
    ['Later waves', waves.wave_size != null ? `${waves.wave_size} stores each` : waves.growth_factor != null ? `the previous wave × ${waves.growth_factor}` : '—'],
    ['Max concurrent runs', String(spec.max_concurrent ?? 1)],
    ['Failure budget', budget.max_failure_percent != null ? `${budget.max_failure_percent}% of the planned stores` : `${budget.max_failures ?? 0} failed deploy${budget.max_failures === 1 ? '' : 's'}`],
    ['Between waves', spec.between_waves === 'pause' ? `pause ${spec.pause_s} s` : spec.between_waves === 'approval' ? 'approval by someone other than the creator' : 'none (the next wave starts at once)'],
  ];
}
