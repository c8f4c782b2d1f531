// Modal dialogs on <dialog>.showModal(): the rest of the page is inert, focus is kept inside
// (Tab and Shift+Tab wrap), Escape cancels, and focus returns to what opened the dialog.
import { h } from '../lib/dom.js';

/**
 * confirmDialog({title, body: [nodes], confirmLabel, danger, fields}) resolves to the form's
 * values (an object, {} without fields; a checkbox field gives true/false) when confirmed, or
 * null when cancelled.
 */
export function confirmDialog({ title, body = [], confirmLabel = 'Confirm', danger = false, fields = [] }) {
  return new Promise((resolve) => {
    const opener = document.activeElement;
    const titleId = `dlg-title-${Math.random().toString(36).slice(2)}`;
    const form = h('form', { method: 'dialog' });
    const inputs = [];
    for (const field of fields) {
      const id = `dlg-${field.name}`;
      if (field.type === 'checkbox') {
        const box = h('input', { id, name: field.name, type: 'checkbox', checked: Boolean(field.checked) });
        const helpId = field.help ? `${id}-help` : null;
        if (helpId) box.setAttribute('aria-describedby', helpId);
        inputs.push(box);
        form.append(h('div.field', {}, h('label.check', { for: id }, box, ' ', field.label), field.help ? h('small', { id: helpId }, field.help) : null));
        continue;
      }
      const input = field.multiline
        ? h('textarea', { id, name: field.name, rows: 3, maxLength: field.maxLength || 500 })
        : h('input', { id, name: field.name, type: 'text', value: field.value || '', required: field.required || false, autocomplete: 'off' });
      inputs.push(input);
      form.append(h('div.field', {}, h('label', { for: id }, field.label), input, field.help ? h('small', {}, field.help) : null));
    }
    const cancel = h('button.secondary', { type: 'button', value: 'cancel' }, 'Cancel');
    const confirm = h(`button${danger ? '.danger' : '.primary'}`, { type: 'submit', value: 'confirm' }, confirmLabel);
    form.append(h('div.dialog-buttons', {}, cancel, confirm));
    const dialog = h('dialog.dialog', { 'aria-labelledby': titleId }, h('h2', { id: titleId }, title), h('div.dialog-body', {}, body), form);
    let result = null;
    cancel.addEventListener('click', () => dialog.close());
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      result = Object.fromEntries(inputs.map((i) => [i.name, i.type === 'checkbox' ? i.checked : i.value.trim()]));
      dialog.close();
    });
    dialog.addEventListener('keydown', (ev) => {
      if (ev.key !== 'Tab') return;
      const focusable = [...dialog.querySelectorAll('button, input, textarea, select, a[href]')].filter((el) => !el.disabled);
      if (!focusable.length) return;
      const first = focusable[0];
      const last = focusable[focusable.length - 1];
      if (ev.shiftKey && document.activeElement === first) { ev.preventDefault(); last.focus(); }
      else if (!ev.shiftKey && document.activeElement === last) { ev.preventDefault(); first.focus(); }
    });
    dialog.addEventListener('close', () => {
      dialog.remove();
      if (opener && opener.isConnected && typeof opener.focus === 'function') opener.focus();
      resolve(result);
    });
    document.body.append(dialog);
    dialog.showModal();
    (inputs[0] || cancel).focus();
  });
}
