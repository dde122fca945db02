// The web console (served at /ui/ by a running Fledge) in headless Chromium, through
// puppeteer-core and Debian's /usr/bin/chromium (nothing is downloaded). Started by
// tests/integration/console_browser_test.cpp, which starts Fledge, its upstreams and its tokens:
//   FLEDGE_ADMIN, FLEDGE_PROXY   base URLs of the admin listener and the proxy
//   FLEDGE_WRITE_TOKEN, FLEDGE_READ_TOKEN
//   FLEDGE_SCREENSHOTS           directory for one screenshot per page
//   FLEDGE_OPEN_ADMIN            (optional) the admin listener of a Fledge without tokens
// Prints `ok - ...` / `not ok - ...` lines; exits 1 on any failure.
import puppeteer from 'puppeteer-core';
import { createReporter, show } from './tap.mjs';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const ADMIN = env('FLEDGE_ADMIN');
const PROXY = env('FLEDGE_PROXY');
const WRITE = env('FLEDGE_WRITE_TOKEN');
const READ = env('FLEDGE_READ_TOKEN');
const SHOTS = env('FLEDGE_SCREENSHOTS');
const OPEN_ADMIN = process.env.FLEDGE_OPEN_ADMIN;  // a second Fledge whose admin listener has no tokens

const t = createReporter('console_test', 240_000);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The admin API and the proxy, straight (to check what the console did).
async function api(path, { method = 'GET', body, token = WRITE } = {}) {
  const res = await fetch(ADMIN + path, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json().catch(() => null) };
}
async function proxied(path, headers = {}) {
  const res = await fetch(PROXY + path, { headers });
  return res.json();
}
const header = (echo, name) => (echo.headers.find(([k]) => k.toLowerCase() === name) || [])[1];
async function until(what, fn, timeoutMs = 10_000) {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

// Traffic to both split routes from many users while rollouts run.
let traffic = false;
async function trafficLoop() {
  let user = 0;
  while (traffic) {
    await Promise.all(['/pay/x', '/shop/x', '/pay/y', '/shop/y'].map((p) =>
      fetch(PROXY + p, { headers: { 'x-user-id': `u${user++}` } }).then((r) => r.arrayBuffer()).catch(() => {})));
    await sleep(10);  // a steady few hundred requests a second, leaving the two cores to Fledge and Chromium
  }
}

const browser = await puppeteer.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  defaultViewport: { width: 1280, height: 900 },
});
const page = await browser.newPage();
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(e.message));
page.on('console', (m) => {
  // 401s while signing in are expected; CSP violations and script errors are not.
  if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) pageErrors.push(m.text());
});

const text = (sel) => page.$eval(sel, (el) => el.textContent.trim());
const pageIs = (name) => page.waitForFunction((n) => document.querySelector('main#page')?.dataset.page === n, { timeout: 10_000 }, name);
async function go(name) {
  await page.click(`nav a[href="#/${name}"]`);
  await pageIs(name);
}
async function confirm(expect) {
  await page.waitForSelector('dialog#confirm[open]', { timeout: 5_000 });
  const said = await text('#confirm-text');
  if (expect && !said.includes(expect)) throw new Error(`confirmation says ${show(said)}, expected ${show(expect)}`);
  await page.click('#confirm-ok');
  await page.waitForSelector('dialog#confirm:not([open])', { timeout: 5_000 });
  return said;
}
const shot = (name) => page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
async function signIn(token) {
  await page.waitForSelector('form#signin input#token', { visible: true });
  await page.$eval('#token', (el) => { el.value = ''; });
  await page.type('#token', token);
  await page.click('#signin-button');
}

// Fills the rollouts page's form (canary arm "canary" against "stable") and confirms.
async function startRollout(name, route, steps) {
  for (const field of ['name', 'steps']) await page.$eval(`#rollout-form input[name=${field}]`, (el) => { el.value = ''; });
  await page.type('#rollout-form input[name=name]', name);
  await page.select('#rollout-form select[name=route]', route);
  await page.select('#rollout-form select[name=canary_arm]', 'canary');
  await page.select('#rollout-form select[name=baseline_arm]', 'stable');
  await page.type('#rollout-form input[name=steps]', steps);
  await page.click('#rollout-form button[type=submit]');
  await confirm(name);
}

async function step(name, fn) {
  try {
    await fn();
    t.ok(name);
  } catch (e) {
    t.notOk(name, e.stack || String(e));
    await page.screenshot({ path: `${SHOTS}/failed-${name.replace(/\W+/g, '-').slice(0, 60)}.png`, fullPage: true }).catch(() => {});
  }
}

try {
  await step('an unknown token is refused at sign-in; the admin token signs in and sees the overview', async () => {
    await page.goto(`${ADMIN}/ui/`);
    await signIn('not-a-token');
    await page.waitForFunction(() => document.querySelector('#signin-error')?.textContent.trim().length > 0, { timeout: 5_000 });
    await shot('signin');
    await signIn(WRITE);
    await pageIs('overview');
    const who = await text('#whoami');
    if (!who.includes('ops')) throw new Error(`#whoami says ${show(who)}`);
    const version = await api('/api/v1/config');
    await page.waitForFunction((v) => document.querySelector('#ov-version')?.textContent.includes(String(v)), { timeout: 5_000 }, version.json.version);
    const shop = await text('#ov-routes [data-route="shop"]');
    if (!shop.includes('10%') || !shop.includes('90%')) throw new Error(`shop row says ${show(shop)}`);
    await page.waitForSelector('#ov-clusters [data-cluster="canary"] .health.healthy', { timeout: 10_000 });
    const flags = await text('#ov-flags-count');
    if (!flags.includes('2')) throw new Error(`flags count says ${show(flags)}`);
    await shot('overview');
  });

  await step('a flag toggled in the console changes what the proxy sends upstream', async () => {
    await go('flags');
    await page.type('#flag-search', 'BAN');
    await page.waitForFunction(() => {
      const visible = (el) => el && el.offsetParent !== null;
      return visible(document.querySelector('[data-flag="banner"]')) && !visible(document.querySelector('[data-flag="new-checkout"]'));
    }, { timeout: 5_000 });
    const flagsHeader = async () => header(await proxied('/home', { 'x-user-id': 'u1' }), 'x-fledge-flags');
    const before = await flagsHeader();
    if (!before.includes('banner=red')) throw new Error(`upstream saw x-fledge-flags ${show(before)}`);

    await page.select('[data-flag="banner"] select[data-field="defaultVariant"]', 'green');
    await confirm('banner');
    await until('banner=green upstream', async () => (await flagsHeader()).includes('banner=green'));

    if ((await text('[data-flag="banner"] .flag-state')) !== 'ENABLED') throw new Error('banner is not shown ENABLED');
    await page.click('[data-flag="banner"] button[data-action="toggle-state"]');
    await confirm('Disable flag "banner"');
    await page.waitForFunction(() => document.querySelector('[data-flag="banner"] .flag-state')?.textContent.trim() === 'DISABLED', { timeout: 5_000 });
    const after = await until('a change upstream', async () => { const h = await flagsHeader(); return h !== undefined && !h.includes('banner=green') ? h : (h === undefined ? 'absent' : null); });
    const stored = await api('/api/v1/flags/banner');
    if (stored.json.state !== 'DISABLED') throw new Error(`the API has ${show(stored.json)}`);
    t.comment(`x-fledge-flags before: ${before}; after disabling: ${after}`);
    // Evaluation counts per variant are on the card.
    await page.$eval('#flag-search', (el) => { el.value = ''; el.dispatchEvent(new Event('input', { bubbles: true })); });
    await page.waitForFunction(() => Number((document.querySelector('[data-flag="banner"] .variant-count[data-variant="red"]')?.textContent || '').replace(/\D/g, '')) > 0, { timeout: 10_000 });
  });

  await step('a bad targeting edit shows the server\'s error at the field and changes nothing', async () => {
    const card = '[data-flag="new-checkout"]';
    const before = await api('/api/v1/flags/new-checkout');
    const audit = (await api('/api/v1/audit?limit=1000')).json.entries.length;
    // A JSON syntax error is caught in the page, before any request.
    await page.$eval(`${card} textarea[data-field="targeting"]`, (el) => { el.value = '{"if": [oops'; el.dispatchEvent(new Event('input', { bubbles: true })); });
    await page.click(`${card} button[data-action="save-targeting"]`);
    await page.waitForFunction((c) => document.querySelector(`${c} .field-error[data-for="targeting"]`)?.textContent.trim().length > 0, { timeout: 5_000 }, card);
    // Valid JSON that is no valid targeting: the server says why.
    const bad = { nosuchop: [1, 2] };
    const expected = await api('/api/v1/flags/new-checkout', { method: 'PUT', body: { ...before.json, targeting: bad } });
    if (expected.status !== 400) throw new Error(`the API took the bad targeting: ${show(expected)}`);
    await page.$eval(`${card} textarea[data-field="targeting"]`, (el, v) => { el.value = v; el.dispatchEvent(new Event('input', { bubbles: true })); }, JSON.stringify(bad, null, 2));
    await page.click(`${card} button[data-action="save-targeting"]`);
    await confirm('new-checkout');
    await page.waitForFunction((c, msg) => document.querySelector(`${c} .field-error[data-for="targeting"]`)?.textContent.includes(msg), { timeout: 5_000 }, card, expected.json.error);
    const invalid = await page.$eval(`${card} textarea[data-field="targeting"]`, (el) => el.getAttribute('aria-invalid'));
    if (invalid !== 'true') throw new Error(`aria-invalid is ${show(invalid)}`);
    const after = await api('/api/v1/flags/new-checkout');
    if (JSON.stringify(after.json) !== JSON.stringify(before.json)) throw new Error(`the flag changed: ${show(after.json)}`);
    if ((await api('/api/v1/audit?limit=1000')).json.entries.length !== audit) throw new Error('an audit entry was written');
    await shot('flags');
    // A valid edit is saved and clears the error.
    const good = { if: [{ '==': [{ var: 'plan' }, 'enterprise'] }, 'on', 'off'] };
    await page.$eval(`${card} textarea[data-field="targeting"]`, (el, v) => { el.value = v; el.dispatchEvent(new Event('input', { bubbles: true })); }, JSON.stringify(good));
    await page.click(`${card} button[data-action="save-targeting"]`);
    await confirm('new-checkout');
    await until('the new targeting stored', async () => JSON.stringify((await api('/api/v1/flags/new-checkout')).json.targeting) === JSON.stringify(good));
    await page.waitForFunction((c) => !document.querySelector(`${c} .field-error[data-for="targeting"]`)?.textContent.trim(), { timeout: 5_000 }, card);
    const pro = header(await proxied('/home', { 'x-user-id': 'u2', 'x-plan': 'enterprise' }), 'x-fledge-flags');
    if (!pro.includes('new-checkout=on')) throw new Error(`upstream saw ${show(pro)}`);
  });

  await step('an edit begun before someone else changed the targeting is refused, not saved over it', async () => {
    const card = '[data-flag="new-checkout"]';
    await page.$eval(`${card} textarea[data-field="targeting"]`, (el) => { el.value = '{"if": [true, "on", "off"]}'; el.dispatchEvent(new Event('input', { bubbles: true })); });
    // Meanwhile, through the API:
    const theirs = { if: [{ '==': [{ var: 'plan' }, 'team'] }, 'on', 'off'] };
    const current = (await api('/api/v1/flags/new-checkout')).json;
    if ((await api('/api/v1/flags/new-checkout', { method: 'PUT', body: { ...current, targeting: theirs } })).status !== 200) throw new Error('the API refused');
    await page.click(`${card} button[data-action="save-targeting"]`);
    await confirm('new-checkout');
    await page.waitForFunction((c) => /changed since you started editing/.test(document.querySelector(`${c} .field-error[data-for="targeting"]`)?.textContent || ''),
      { timeout: 5_000 }, card);
    const stored = (await api('/api/v1/flags/new-checkout')).json.targeting;
    if (JSON.stringify(stored) !== JSON.stringify(theirs)) throw new Error(`their change was overwritten: ${show(stored)}`);
    const kept = await page.$eval(`${card} textarea[data-field="targeting"]`, (el) => el.value);
    if (!kept.includes('[true')) throw new Error(`the edit was lost: ${show(kept)}`);
    await page.click(`${card} button[data-action="revert-targeting"]`);
    await page.waitForFunction((c) => document.querySelector(`${c} textarea[data-field="targeting"]`)?.value.includes('team'), { timeout: 5_000 }, card);
  });

  await step('a split moved with the slider is applied after confirmation, served, and audited with its diff', async () => {
    await go('routes');
    const slider = '[data-route="shop"] input[type=range][data-arm="canary"]';
    await page.$eval(slider, (el) => { el.value = '30'; el.dispatchEvent(new Event('input', { bubbles: true })); el.dispatchEvent(new Event('change', { bubbles: true })); });
    const other = await page.$eval('[data-route="shop"] input[type=range][data-arm="stable"]', (el) => el.value);
    if (other !== '70') throw new Error(`the stable slider is at ${other}`);
    await page.click('[data-route="shop"] button[data-action="apply-weights"]');
    const said = await confirm('shop');
    if (!said.includes('30') || !said.includes('70')) throw new Error(`confirmation says ${show(said)}`);
    await until('canary at 30 in the API', async () => {
      const r = await api('/api/v1/routes/shop');
      return r.json.split.arms.find((a) => a.name === 'canary').weight === 30;
    });
    // The proxy follows: about 30 % of users now reach the canary.
    let canary = 0;
    const users = 400;
    for (let i = 0; i < users; i++) if ((await proxied('/shop/x', { 'x-user-id': `split-${i}` })).name === 'canary') canary++;
    if (canary < users * 0.2 || canary > users * 0.4) throw new Error(`${canary} of ${users} users reached the canary`);
    t.comment(`after the move, ${canary} of ${users} users reach the shop canary`);
    await page.waitForFunction(() => [...document.querySelectorAll('#audit .audit-entry')].some((e) =>
      e.textContent.includes('routes/shop/split') && e.querySelector('.diff-add')?.textContent.includes('30')), { timeout: 10_000 });
    await shot('routes');
  });

  traffic = true;
  const load = trafficLoop();
  await step('a rollout of a failing canary started from the form is rolled back, and the page shows it', async () => {
    await go('rollouts');
    await startRollout('pay-v2', 'pay', '20:30, 50:30, 100:30');
    await page.waitForSelector('[data-rollout="pay-v2"]', { timeout: 5_000 });
    const t0 = Date.now();
    await page.waitForFunction(() => document.querySelector('[data-rollout="pay-v2"] .phase')?.textContent.trim() === 'rolled_back', { timeout: 90_000 });
    t.comment(`the page showed the rollback ${((Date.now() - t0) / 1000).toFixed(1)} s after the rollout appeared`);
    const reason = await text('[data-rollout="pay-v2"] .reason');
    if (!/error/i.test(reason)) throw new Error(`the reason shown is ${show(reason)}`);
    const r = await api('/api/v1/rollouts/pay-v2');
    if (r.json.status.phase !== 'rolled_back') throw new Error(`the API says ${show(r.json.status)}`);
    const route = await api('/api/v1/routes/pay');
    if (route.json.split.arms.find((a) => a.name === 'canary').weight !== 0) throw new Error(`pay is ${show(route.json.split)}`);
  });

  await step('a healthy rollout shows live charts and is paused, promoted and aborted through confirmations', async () => {
    await startRollout('shop-v2', 'shop', '40:600, 60:600, 100:600');
    const card = '[data-rollout="shop-v2"]';
    await page.waitForFunction((c) => document.querySelector(`${c} .phase`)?.textContent.trim() === 'progressing', { timeout: 10_000 }, card);
    // Charts fill with points as traffic flows (each shows its latest value as text).
    for (const m of ['rps', 'error_rate', 'p50', 'p99'])
      await page.waitForSelector(`${card} .chart[data-metric="${m}"]`, { timeout: 10_000 });
    for (const arm of ['canary', 'baseline']) {
      await page.waitForSelector(`${card} .chart[data-metric="rps"] path.line.${arm}`, { timeout: 15_000 });
      await page.waitForFunction((c, a) => /[1-9]/.test(document.querySelector(`${c} .chart[data-metric="rps"] .legend-item.${a} .latest`)?.textContent || ''),
        { timeout: 15_000 }, card, arm);
    }
    await sleep(3000);  // a few seconds of lines in the screenshot
    await shot('rollouts');

    await page.click(`${card} button[data-action="pause"]`);
    await confirm('shop-v2');
    await page.waitForFunction((c) => document.querySelector(`${c} .phase`)?.textContent.trim() === 'paused', { timeout: 10_000 }, card);
    await page.waitForSelector(`${card} button[data-action="resume"]`, { timeout: 5_000 });
    await page.click(`${card} button[data-action="promote"]`);
    await confirm('60');
    await until('step 2 in the API', async () => (await api('/api/v1/rollouts/shop-v2')).json.status.step === 1);
    await page.click(`${card} button[data-action="abort"]`);
    await confirm('0%');
    await page.waitForFunction((c) => document.querySelector(`${c} .phase`)?.textContent.trim() === 'aborted', { timeout: 10_000 }, card);
    const shop = await api('/api/v1/routes/shop');
    if (shop.json.split.arms.find((a) => a.name === 'canary').weight !== 0) throw new Error(`shop is ${show(shop.json.split)}`);
  });
  traffic = false;
  await load;

  await step('a read token sees every page and no write control', async () => {
    await page.click('#signout');
    await signIn(READ);
    await page.waitForFunction(() => document.querySelector('#whoami')?.textContent.includes('viewer'), { timeout: 10_000 });
    for (const name of ['overview', 'flags', 'routes', 'rollouts']) {
      await go(name);
      await sleep(300);
      const writes = await page.$$eval('[data-write], button[data-action], #rollout-form, input[type=range]', (els) => els.map((e) => e.outerHTML.slice(0, 80)));
      if (writes.length) throw new Error(`${name} shows write controls: ${show(writes)}`);
      if (name === 'flags') await shot('readonly');
    }
    // The API agrees.
    const w = await api('/api/v1/flags/banner/state', { method: 'PUT', body: { state: 'ENABLED' }, token: READ });
    if (w.status !== 403) throw new Error(`a reader's write got ${w.status}`);
  });

  if (OPEN_ADMIN) {
    await step('without tokens (loopback) the console opens without sign-in and its writes are accepted', async () => {
      await page.goto(`${OPEN_ADMIN}/ui/#/flags`);
      await pageIs('flags');
      const who = await text('#whoami');
      if (!who.includes('local')) throw new Error(`#whoami says ${show(who)}`);
      if (await page.$('form#signin input#token:not([hidden])') && await page.$eval('form#signin', (el) => el.offsetParent !== null))
        throw new Error('the sign-in form is shown');
      await page.click('[data-flag="f"] button[data-action="toggle-state"]');
      await confirm('Disable flag "f"');
      await page.waitForFunction(() => document.querySelector('[data-flag="f"] .flag-state')?.textContent.trim() === 'DISABLED', { timeout: 5_000 });
      const r = await fetch(`${OPEN_ADMIN}/api/v1/flags/f`);
      if ((await r.json()).state !== 'DISABLED') throw new Error('the flag is not disabled in the API');
      await shot('open');
    });
  }

  await step('no script error and no content-security-policy violation on any page', async () => {
    if (pageErrors.length) throw new Error(show(pageErrors));
  });
} finally {
  traffic = false;
  await browser.close();
  t.finish();
}
