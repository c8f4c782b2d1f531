// Login: paste a bearer token. It is kept in sessionStorage only (this browser session) and
// checked with GET /v1/whoami before anything else is shown.
import { h, notice } from '../lib/dom.js';
import { describeError } from '../lib/api.js';

class SpLoginPage extends HTMLElement {
  connectedCallback() {
    const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', spellcheck: false, required: true });
    const status = h('div', { id: 'login-status' });
    const form = h('form.login', { 'aria-describedby': 'login-help' },
      h('div.field', {}, h('label', { for: 'token' }, 'Bearer token'), input,
        h('small', { id: 'login-help' }, 'Paste your storeplane token (created with “storeplane tokens create”). It is kept for this browser session only and removed when you log out or close the browser.')),
      h('button.primary', { type: 'submit' }, 'Log in'), status);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const token = input.value.trim();
      if (!token) return;
      status.replaceChildren(h('p.muted', {}, 'Checking the token…'));
      try {
        await this.onLogin(token);
      } catch (err) {
        status.replaceChildren(notice('error', `Login failed: ${describeError(err)}`));
        input.focus();
      }
    });
    this.replaceChildren(h('div.page.narrow', {},
      h('h1', { tabIndex: -1 }, 'Log in to storeplane'),
      this.message ? notice('info', this.message) : null,
      form));
    input.focus();
  }
}

customElements.define('sp-login-page', SpLoginPage);
