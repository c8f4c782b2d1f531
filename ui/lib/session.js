// The login session: the bearer token lives in sessionStorage only (this tab, gone when the
// browser session ends; never localStorage, never a cookie), and the principal from
// GET /v1/whoami. Logging out forgets both.
const KEY = 'storeplane.token';

export const session = {
  principal: null, // {id, name, kind, roles, token_id}
  get token() { return sessionStorage.getItem(KEY); },
  set token(value) {
    if (value) sessionStorage.setItem(KEY, value);
    else sessionStorage.removeItem(KEY);
  },
  clear() {
    sessionStorage.removeItem(KEY);
    this.principal = null;
  },
};
