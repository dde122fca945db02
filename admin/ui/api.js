// The admin API over fetch: bearer token from sessionStorage, JSON in and out, errors thrown as
// ApiError {status, message, field}; answers come back as {data, etag}.

const TOKEN_KEY = 'fledge.token';

export class ApiError extends Error {
  constructor(status, message, field = '') {
    super(message);
    this.name = 'ApiError';
    this.status = status;  // 0: no answer (network)
    this.field = field;
  }
}

export const getToken = () => sessionStorage.getItem(TOKEN_KEY) || '';
export const setToken = (t) => sessionStorage.setItem(TOKEN_KEY, t);
export const clearToken = () => sessionStorage.removeItem(TOKEN_KEY);

let unauthorized = () => {};
// Called on any 401 (the token was revoked or the session is gone), except with {quiet401: true}.
export function onUnauthorized(fn) { unauthorized = fn; }

// api('PUT', '/api/v1/flags/x/state', {body: {state: 'DISABLED'}, ifMatch: '"7"'})
export async function api(method, path, { body, ifMatch, quiet401 = false } = {}) {
  const headers = { Accept: 'application/json' };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (ifMatch) headers['If-Match'] = ifMatch;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method, headers, cache: 'no-store', credentials: 'omit',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, `cannot reach the admin API (${e.message})`);
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) {
    const message = (data && typeof data.error === 'string' && data.error) || text.trim() || `HTTP ${res.status}`;
    const err = new ApiError(res.status, message, (data && typeof data.field === 'string' && data.field) || '');
    if (res.status === 401 && !quiet401) unauthorized(err);
    throw err;
  }
  if (text && data === null) throw new ApiError(res.status, `${method} ${path}: the answer is not JSON`);
  return { data, etag: res.headers.get('ETag') };
}

// The config version an ETag names ('"12"' → 12), or null (no ETag, or not a version).
export function versionOf(etag) {
  const m = /^(?:W\/)?"(\d+)"$/.exec((etag || '').trim());
  return m ? Number(m[1]) : null;
}

// A path segment: names are [A-Za-z0-9._-] on the server, but never trust that here.
export const seg = (s) => encodeURIComponent(s);
