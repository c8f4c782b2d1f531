// New rollout (#/rollouts/new): the spec of POST /v1/rollouts as a form. "Preview" posts it
// with ?dry_run=true and shows the planned waves (nothing is stored); "Create" posts it and
// opens the new rollout, or, when an approval rule holds it (202), shows the change request.
// A 422 problem's "field" member puts the server's message next to that field.
import { h, notice, code, table, announce, formatTime } from '../lib/dom.js';
import { api, post, ApiError, describeError } from '../lib/api.js';
import { Page, keep, section } from '../lib/page.js';
import { ENVIRONMENTS, ISOLATION_MODES, waveName, countsText } from '../lib/rollouts.js';

// The API's field names (the problem's "field") -> the input that holds them.
const FIELD_INPUTS = {
  release: 'nr-release',
  selector: 'nr-labels',
  'selector.environment': 'nr-environment',
  'selector.isolation_mode': 'nr-isolation',
  'selector.labels': 'nr-labels',
  waves: 'nr-canary',
  'waves.canary_size': 'nr-canary',
  'waves.growth_factor': 'nr-growth',
  'waves.wave_size': 'nr-wave-size',
  max_concurrent: 'nr-max-concurrent',
  'failure_budget.max_failures': 'nr-max-failures',
  'failure_budget.max_failure_percent': 'nr-max-percent',
  between_waves: 'nr-between',
  pause_s: 'nr-pause',
  pause_ms: 'nr-pause',
};

class SpRolloutNewPage extends Page {
  constructor() {
    super();
    this.result = keep(h('div.outcome.rollout-preview', { 'aria-live': 'polite' }));
    this.form = null;
  }

  title() { return 'New rollout'; }

  async render() {
    this.form ||= keep(this.buildForm());
    return [
      h('p.subtitle', {}, h('a', { href: '#/rollouts' }, 'All rollouts')),
      h('p.note.muted', {}, 'One release to the stores that match, in waves: a canary, then growing waves, at most so many runs at once, '
        + 'halted when more deploys fail than the failure budget allows. The plan is fixed when the rollout is created; preview it first.'),
      this.form,
      this.result,
    ];
  }

  buildForm() {
    const q = this.query;
    const field = (id, label, input, help) => {
      const helpId = help ? `${id}-help` : null;
      const errorId = `${id}-error`;
      input.setAttribute('aria-describedby', [helpId, errorId].filter(Boolean).join(' '));
      return h('div.field', { dataset: { for: id } }, h('label', { for: id }, label), input,
        help ? h('small', { id: helpId }, help) : null, h('span.field-error', { id: errorId, hidden: true }));
    };
    const number = (id, name, attrs) => h('input', { id, name, type: 'number', inputMode: 'decimal', ...attrs });
    const radio = (name, value, label, checked) => h('label.check', {}, h('input', { type: 'radio', name, value, checked }), ' ', label);

    const release = h('input', { id: 'nr-release', name: 'release', type: 'text', required: true, autocomplete: 'off', value: q.get('release') || '' });
    const environment = h('select', { id: 'nr-environment', name: 'environment', required: true },
      h('option', { value: '' }, 'choose…'), ENVIRONMENTS.map((e) => h('option', { value: e, selected: q.get('environment') === e }, e)));
    const isolation = h('select', { id: 'nr-isolation', name: 'isolation_mode' }, h('option', { value: '' }, 'any'),
      ISOLATION_MODES.map((m) => h('option', { value: m }, m)));
    const labels = h('input', { id: 'nr-labels', name: 'labels', type: 'text', autocomplete: 'off', placeholder: 'tier=gold,region in (eu)' });
    const canary = number('nr-canary', 'canary_size', { value: '1', min: '1', step: '1' });
    const growth = number('nr-growth', 'growth_factor', { value: '2', step: 'any' });
    const waveSize = number('nr-wave-size', 'wave_size', { value: '5', min: '1', step: '1', disabled: true });
    const maxConcurrent = number('nr-max-concurrent', 'max_concurrent', { value: '1', min: '1', step: '1' });
    const maxFailures = number('nr-max-failures', 'max_failures', { value: '0', min: '0', step: '1' });
    const maxPercent = number('nr-max-percent', 'max_failure_percent', { value: '10', min: '0', max: '100', step: '1', disabled: true });
    const between = h('select', { id: 'nr-between', name: 'between_waves' },
      h('option', { value: 'none' }, 'none: the next wave starts at once'),
      h('option', { value: 'pause' }, 'pause: wait a number of seconds'),
      h('option', { value: 'approval' }, 'approval: someone else approves each wave'));
    const pause = number('nr-pause', 'pause_s', { value: '600', min: '1', max: '604800', step: '1' });
    const pauseField = field('nr-pause', 'Pause between waves (seconds)', pause, '1 to 604800 (a week)');
    pauseField.hidden = true;

    const waveMode = h('fieldset.group', {}, h('legend', {}, 'Later waves'),
      radio('wave_mode', 'growth', 'grow by a factor', true), radio('wave_mode', 'size', 'fixed size', false),
      h('div.row', {}, field('nr-growth', 'Growth factor', growth, 'each wave is the previous one × this, rounded up (more than 1)'),
        field('nr-wave-size', 'Wave size', waveSize, 'stores per wave after the canary')));
    const budgetMode = h('fieldset.group', {}, h('legend', {}, 'Failure budget'),
      radio('budget_mode', 'count', 'a number of failed deploys', true), radio('budget_mode', 'percent', 'a percentage of the planned stores', false),
      h('div.row', {}, field('nr-max-failures', 'Max failed deploys', maxFailures, '0 halts at the first failure'),
        field('nr-max-percent', 'Max failed deploys (%)', maxPercent, 'of all planned stores, rounded down')));

    const previewButton = h('button.secondary', { type: 'submit', dataset: { action: 'preview' } }, 'Preview');
    const createButton = h('button.primary', { type: 'button', dataset: { action: 'create' } }, 'Create rollout');
    const form = h('form.rollout-form.panel', { 'aria-label': 'New rollout', noValidate: true },
      h('div.form-grid', {},
        field('nr-release', 'Release', release, 'the release id the pipeline deploys'),
        field('nr-environment', 'Environment', environment),
        field('nr-isolation', 'Isolation mode', isolation, 'only stores recorded with this mode'),
        field('nr-labels', 'Label selector', labels, 'empty: every store of the environment; k=v, k!=v, k in (a,b), k, !k')),
      h('div.form-grid', {},
        field('nr-canary', 'Canary size', canary, 'stores in the first wave'),
        field('nr-max-concurrent', 'Max concurrent runs', maxConcurrent, 'deploy and rollback runs at once')),
      waveMode, budgetMode,
      h('div.form-grid', {}, field('nr-between', 'Between waves', between), pauseField),
      h('div.field.buttons', {}, previewButton, createButton),
      h('div.form-error', {}));

    const sync = () => {
      const byGrowth = form.querySelector('input[name=wave_mode]:checked').value === 'growth';
      growth.disabled = !byGrowth;
      waveSize.disabled = byGrowth;
      const byCount = form.querySelector('input[name=budget_mode]:checked').value === 'count';
      maxFailures.disabled = !byCount;
      maxPercent.disabled = byCount;
      pauseField.hidden = between.value !== 'pause';
    };
    form.addEventListener('change', sync);
    form.addEventListener('input', (ev) => {
      const box = ev.target.closest('.field');
      if (box) this.clearError(box.dataset.for);
    });
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.send(true);
    });
    createButton.addEventListener('click', () => this.send(false));
    this.spec = () => {
      const int = (input) => (input.value.trim() === '' ? undefined : Number(input.value));
      const spec = {
        release: release.value.trim(),
        selector: { environment: environment.value },
        waves: { canary_size: int(canary) },
        max_concurrent: int(maxConcurrent),
        failure_budget: maxFailures.disabled ? { max_failure_percent: int(maxPercent) } : { max_failures: int(maxFailures) },
        between_waves: between.value,
      };
      if (isolation.value) spec.selector.isolation_mode = isolation.value;
      if (labels.value.trim()) spec.selector.labels = labels.value.trim();
      if (growth.disabled) spec.waves.wave_size = int(waveSize);
      else spec.waves.growth_factor = int(growth);
      if (between.value === 'pause') spec.pause_s = int(pause);
      return spec;
    };
    return form;
  }

  clearError(inputId) {
    const input = inputId && this.form.querySelector(`#${inputId}`);
    if (!input) return;
    input.removeAttribute('aria-invalid');
    const slot = this.form.querySelector(`#${inputId}-error`);
    slot.textContent = '';
    slot.hidden = true;
  }

  clearErrors() {
    for (const slot of this.form.querySelectorAll('.field-error')) {
      slot.textContent = '';
      slot.hidden = true;
    }
    for (const input of this.form.querySelectorAll('[aria-invalid]')) input.removeAttribute('aria-invalid');
    this.form.querySelector('.form-error').replaceChildren();
  }

  /** Shows a 422's message next to its field (and focuses it); true when a field took it. */
  showFieldError(err) {
    const p = err.problem || {};
    let inputId = FIELD_INPUTS[p.field];
    if (!inputId && p.field === 'failure_budget') inputId = this.form.querySelector('#nr-max-failures').disabled ? 'nr-max-percent' : 'nr-max-failures';
    const input = inputId && this.form.querySelector(`#${inputId}`);
    if (!input) return false;
    input.setAttribute('aria-invalid', 'true');
    const slot = this.form.querySelector(`#${inputId}-error`);
    slot.textContent = p.detail || p.title || 'invalid';
    slot.hidden = false;
    input.focus();
    return true;
  }

  async send(dryRun) {
    this.clearErrors();
    const spec = this.spec();
    const formError = this.form.querySelector('.form-error');
    if (!spec.release) return this.localError('nr-release', 'A release is required.');
    if (!spec.selector.environment) return this.localError('nr-environment', 'Choose an environment.');
    const buttons = [...this.form.querySelectorAll('button')];
    buttons.forEach((b) => { b.disabled = true; });
    this.result.replaceChildren(h('p.muted', {}, dryRun ? 'Planning the waves…' : 'Creating the rollout…'));
    try {
      if (dryRun) {
        const { data } = await api('POST', '/v1/rollouts', { body: spec, query: { dry_run: 'true' } });
        this.showPreview(data);
        announce(`Preview: ${data.counts?.planned ?? '?'} stores in ${data.wave_count ?? (data.waves || []).length} waves.`);
      } else {
        const { status, data } = await post('/v1/rollouts', spec);
        if (status === 202 || (data && typeof data.id === 'string' && data.id.startsWith('chg_'))) {
          this.result.replaceChildren(notice('warn', h('strong', {}, 'Approval required. '), 'Change request ', code(data.id), ` is ${data.status}`,
            data.approvals_needed ? `: it needs ${data.approvals_needed} approval${data.approvals_needed === 1 ? '' : 's'}${data.approval_rule ? ` (rule ${data.approval_rule})` : ''} by someone other than you` : '',
            data.expires_at ? `, before ${formatTime(new Date(data.expires_at))}` : '', '. The rollout is created once it is approved. ',
            h('a', { href: '#/approvals' }, 'See approvals')));
          announce(`Change request ${data.id} is waiting for approval.`);
        } else {
          announce(`Rollout ${data.id} created.`);
          location.hash = `#/rollouts/${encodeURIComponent(data.id)}`;
        }
      }
    } catch (err) {
      const placed = err instanceof ApiError && err.status === 422 && this.showFieldError(err);
      this.result.replaceChildren();
      formError.replaceChildren(notice('error', `${dryRun ? 'The preview' : 'The rollout'} was refused: ${describeError(err)}`,
        placed ? ' The field is marked.' : ''));
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
    return undefined;
  }

  localError(inputId, message) {
    const input = this.form.querySelector(`#${inputId}`);
    input.setAttribute('aria-invalid', 'true');
    const slot = this.form.querySelector(`#${inputId}-error`);
    slot.textContent = message;
    slot.hidden = false;
    input.focus();
  }

  showPreview(r) {
    const waves = r.waves || [];
    const stores = r.counts?.planned ?? waves.reduce((n, w) => n + (w.size || 0), 0);
    this.result.replaceChildren(section('Preview (nothing was created)',
      h('p', { dataset: { planned: String(stores), waves: String(waves.length) } },
        `${r.release} to ${stores} store${stores === 1 ? '' : 's'} of ${r.environment} in ${waves.length} wave${waves.length === 1 ? '' : 's'}; `,
        `the rollout halts after more than ${r.allowed_failures ?? 0} failed deploy${r.allowed_failures === 1 ? '' : 's'}.`),
      table('Planned waves', ['Wave', 'Stores', 'Which stores'], waves.map((w) => [waveName(w.index), String(w.size ?? w.counts?.planned ?? '—'),
        Array.isArray(w.stores) ? storeList(w.stores) : countsText(w.counts)]),
      { empty: 'No waves.', className: 'planned-waves' }),
      h('p.muted.note', {}, 'Stores are assigned to waves in id order, so creating the rollout now gives this plan, unless stores change in between.')));
  }
}

// The store ids of a planned wave (a dry run's waves[].stores), the first 50 of them.
function storeList(ids) {
  const shown = ids.slice(0, 50);
  return h('span', {}, shown.map((id, i) => [i ? ', ' : '', h('a', { href: `#/stores/${encodeURIComponent(id)}` }, id)]),
    ids.length > shown.length ? ` and ${ids.length - shown.length} more` : '');
}

customElements.define('sp-rollout-new-page', SpRolloutNewPage);
