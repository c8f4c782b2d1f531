// <sp-connection>: the live-update indicator in the header. Text and colour together
// (never colour alone); screen readers hear changes through role=status.
const LABELS = {
  connecting: ['Connecting…', 'warn'],
  live: ['Live', 'good'],
  reconnecting: ['Reconnecting', 'warn'],
  unavailable: ['Live updates unavailable', 'muted'],
  forbidden: ['Live updates not allowed', 'muted'],
  stopped: ['Offline', 'muted'],
};

class SpConnection extends HTMLElement {
  connectedCallback() {
    this.setAttribute('role', 'status');
    if (!this.dataset.state) this.update('stopped', '');
  }

  update(state, detail) {
    const [label, tone] = LABELS[state] || [state, 'plain'];
    this.dataset.state = state;
    this.className = `connection tone-${tone}`;
    this.textContent = label;
    this.title = detail ? `${label}: ${detail}` : label;
    if (detail) this.setAttribute('aria-description', detail);
    else this.removeAttribute('aria-description');
  }
}

customElements.define('sp-connection', SpConnection);
