// The console shell: sign-in, header, hash router, the confirm dialog and toast, and the polling
// every page uses (stopped when the page is left, skipped while a request is in flight or the tab
// is hidden, answers of a page left meanwhile dropped, answers older than one already received
// dropped too).
import { api, ApiError, getToken, setToken, clearToken, onUnauthorized, versionOf } from './api.js';
import { h, errorText } from './dom.js';
import * as overview from './pages/overview.js';
import * as rollouts from './pages/rollouts.js';
import * as flags from './pages/flags.js';
import * as routes from './pages/routes.js';

const PAGES = { overview, rollouts, flags, routes };
const $ = (sel) => document.querySelector(sel);
const main = $('#page');

let me = null;          // GET /api/v1/whoami
let generation = 0;     // bumped on every page load and sign-out: older answers are dropped
let timers = [];
let tickers = [];       // the pollers of the current page, run again when the tab shows
let routerOn = false;

// Thrown (and swallowed by the pollers) when an answer arrives for a page that was left.
const STALE = Symbol('stale');
// Thrown in a poll tick whose answers are older than one already received (the poller drops
// the tick and runs again).
const OUTDATED = Symbol('outdated');

// Every answer with an ETag names the config version it shows; `newest` is the highest one
// received (writes' answers included). A poll tick whose oldest answer is older than that is
// dropped, so a GET sent before a write and answered after it never puts the state before the
// write back on the page (resetting a textarea or sliders the write's answer had just set). A
// poller whose ticks stay behind (two dropped in a row: the server started again with a new
// store, or another instance of a fleet answers) takes the next one rather than showing nothing.
let newest = 0;
const BEHIND_MAX = 2;  // dropped ticks in a row before the server's older version is taken

function noteVersion(etag, tick = null) {
  const v = versionOf(etag);
  if (v === null) return;
  if (v > newest) newest = v;
  if (tick && (tick.own === null || v < tick.own)) tick.own = v;
}

// Throws OUTDATED when the tick's answers so far are older than the newest received.
function checkTick(tick) {
  if (tick.own === null || tick.own >= newest) return;
  if (tick.behind < BEHIND_MAX) throw OUTDATED;
  newest = tick.own;
}

// ---- sign-in -------------------------------------------------------------------------------

async function boot() {
  onUnauthorized(() => signOut('Session expired or token revoked'));
  $('#signin').addEventListener('submit', onSignin);
  $('#signout').addEventListener('click', () => signOut(''));
  try {
    me = (await api('GET', '/api/v1/whoami', { quiet401: true })).data;
  } catch (e) {
    if (e.status === 401) {
      const had = getToken() !== '';
      clearToken();
      return showSignin(had ? 'Session expired or token revoked' : '');
    }
    main.replaceChildren(h('div', { class: 'card error-text' }, `Cannot load the console: ${errorText(e)}`));
    return;
  }
  startApp();
}

async function onSignin(ev) {
  ev.preventDefault();
  const token = $('#token').value.trim();
  const error = $('#signin-error');
  if (!token) { error.textContent = 'Enter a token'; return; }
  setToken(token);
  $('#signin-button').disabled = true;
  try {
    me = (await api('GET', '/api/v1/whoami', { quiet401: true })).data;
  } catch (e) {
    clearToken();
    error.textContent = e.status === 401 ? 'Unknown token' : errorText(e);
    return;
  } finally {
    $('#signin-button').disabled = false;
  }
  $('#token').value = '';
  error.textContent = '';
  startApp();
}

function showSignin(message) {
  document.body.className = 'signed-out';
  $('#signin-view').hidden = false;
  $('#signin-error').textContent = message;
  $('#whoami').textContent = '';
  $('#signout').hidden = true;
  $('#readonly-badge').hidden = true;
  $('#token').focus();
}

function signOut(message) {
  stopPage();
  newest = 0;
  main.replaceChildren();
  main.removeAttribute('data-page');
  me = null;
  clearToken();
  closeConfirm(false);
  $('#toast').hidden = true;
  showSignin(message);
}

function startApp() {
  $('#signin-view').hidden = true;
  document.body.className = me.write ? 'signed-in' : 'signed-in readonly';
  $('#readonly-badge').hidden = me.write;
  $('#whoami').textContent = me.tokens ? `${me.name} (${me.write ? 'write' : 'read'})` : 'local (open, loopback only)';
  $('#signout').hidden = !me.tokens;
  if (!routerOn) {
    window.addEventListener('hashchange', route);
    document.addEventListener('visibilitychange', () => { if (!document.hidden) tickers.forEach((t) => t()); });
    routerOn = true;
  }
  route();
}

// ---- router and polling ----------------------------------------------------------------------

function stopPage() {
  generation++;
  timers.forEach(clearInterval);
  timers = [];
  tickers = [];
  setConn('');
}

function route() {
  if (!me) return;
  const name = (location.hash.match(/^#\/(\w+)/) || [])[1];
  if (!Object.hasOwn(PAGES, name || '')) { location.replace('#/overview'); return; }  // fires hashchange
  const page = name;
  stopPage();
  main.removeAttribute('data-page');
  main.replaceChildren();
  for (const a of document.querySelectorAll('nav a')) {
    const on = a.getAttribute('href') === `#/${page}`;
    a.classList.toggle('active', on);
    if (on) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  PAGES[page].mount(main, makeContext(page));
}

function setConn(problem) {
  const el = $('#conn');
  el.textContent = problem ? `⚠ ${problem}` : '';
  el.hidden = !problem;
}

// What a page gets: API calls bound to this page load, pollers, the dialog and the toast.
function makeContext(page) {
  const gen = generation;
  const alive = () => gen === generation;
  const guard = async (promise) => {
    try {
      const r = await promise;
      if (!alive()) throw STALE;
      return r;
    } catch (e) {
      throw alive() ? e : STALE;
    }
  };
  // Every request notes the config version of its answer (`tick`: the poll tick it is part of).
  const call = (method, path, opts, tick = null) => guard(api(method, path, opts).then((r) => {
    noteVersion(r.etag, tick);
    return r;
  }));
  // A GET whose failure (other than 401, leaving the page or an outdated tick) is answered with null.
  const orNull = (promise) => promise.catch((e) => {
    if (e === STALE || e === OUTDATED || e.status === 401) throw e;
    return null;
  });
  // The GETs of a poll tick: each answer, when it arrives, checks that the tick is not outdated
  // (so with Promise.all the last answer checks the others too, before any of them is shown).
  const tickReader = (tick) => {
    const get = async (path) => {
      let r = null, error = null;
      try { r = await call('GET', path, {}, tick); } catch (e) { error = e; }
      if (error === STALE || !alive()) throw STALE;
      checkTick(tick);
      if (error) throw error;
      return r.data;
    };
    return { get, tryGet: (path) => orNull(get(path)) };
  };
  const ctx = {
    write: me.write,
    alive,
    get: (path) => call('GET', path).then((r) => r.data),
    getWithEtag: (path) => call('GET', path),
    tryGet: (path) => orNull(ctx.get(path)),
    send: (method, path, body, opts = {}) => call(method, path, { body, ...opts }).then((r) => r.data),
    // Runs fn(read) now and every `ms`; a tick is skipped while the last one runs or the tab is
    // hidden. `read` has get and tryGet like ctx, for the tick's GETs: a tick whose answers turn
    // out older than one received meanwhile is dropped (nothing of it is shown) and run again.
    poll(fn, ms) {
      let busy = false;
      let again = false;  // refresh() came while a tick ran: run once more right after it
      let behind = 0;     // ticks dropped in a row as outdated
      const tick = async (now = false) => {
        if (busy) { if (now) again = true; return; }
        if (document.hidden || !alive()) return;
        busy = true;
        try {
          await fn(tickReader({ own: null, behind }));
          behind = 0;
          setConn('');
        } catch (e) {
          if (e === OUTDATED) { behind++; again = true; return; }
          behind = 0;
          if (e === STALE || !alive()) return;
          if (e instanceof ApiError && e.status === 401) return;
          setConn(e instanceof ApiError ? errorText(e) : String(e));
          if (!(e instanceof ApiError)) console.error(e);
        } finally {
          busy = false;
          if (again) {
            again = false;
            tick();
          }
        }
      };
      tickers.push(tick);
      timers.push(setInterval(() => tick(), ms));
      tick();
      return tick;
    },
    // A local timer (no requests), stopped with the page.
    every(fn, ms) { timers.push(setInterval(() => { if (alive() && !document.hidden) fn(); }, ms)); },
    // Runs every poller again now (after a write); a poller in the middle of a tick runs again
    // as soon as that tick ends, since its answers may predate the write.
    refresh() { tickers.forEach((t) => t(true)); },
    ready() { if (alive()) main.setAttribute('data-page', page); },
    confirm: openConfirm,
    toast,
    // A failed write: toast it (the page shows it at the field too when there is one).
    fail(e) {
      if (e === STALE || (e instanceof ApiError && e.status === 401)) return;
      toast(e instanceof ApiError ? errorText(e) : String(e), 'error');
      if (!(e instanceof ApiError)) console.error(e);
    },
  };
  return ctx;
}

// ---- confirm dialog and toast ----------------------------------------------------------------

let confirmResolve = null;

function openConfirm(text) {
  if (confirmResolve) return Promise.resolve(false);  // one question at a time
  const dialog = $('#confirm');
  $('#confirm-text').textContent = text;
  dialog.showModal();
  $('#confirm-cancel').focus();
  return new Promise((resolve) => { confirmResolve = resolve; });
}

function closeConfirm(answer) {
  const dialog = $('#confirm');
  if (dialog.open) dialog.close();
  const resolve = confirmResolve;
  confirmResolve = null;
  if (resolve) resolve(answer);
}

$('#confirm-ok').addEventListener('click', () => closeConfirm(true));
$('#confirm-cancel').addEventListener('click', () => closeConfirm(false));
$('#confirm').addEventListener('close', () => closeConfirm(false));  // Escape

let toastTimer = 0;
function toast(message, kind = 'error') {
  const el = $('#toast');
  el.textContent = message;
  el.className = kind;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, kind === 'error' ? 8000 : 3000);
}

boot();
