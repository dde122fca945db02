// Flags: state (kill switch), default variant and targeting of each flag, with evaluation counts
// per variant. Refreshed every 2 s without overwriting a targeting text being edited; a targeting
// edit is saved only if nobody changed the flag's targeting since the edit began.
import { h, fill, select, errorText } from '../dom.js';
import { seg, versionOf } from '../api.js';
import { fmtCount, fmtPct } from '../format.js';
import { activeRollouts } from '../rollout_util.js';

// JSON indented by two, with arrays and objects that fit in a line kept on one.
function pretty(v, indent = '') {
  const flat = JSON.stringify(v);
  if (v === null || typeof v !== 'object' || flat.length + indent.length <= 64) return flat;
  const inner = `${indent}  `;
  const items = Array.isArray(v) ? v.map((x) => inner + pretty(x, inner))
    : Object.entries(v).map(([k, x]) => `${inner}${JSON.stringify(k)}: ${pretty(x, inner)}`);
  return Array.isArray(v) ? `[\n${items.join(',\n')}\n${indent}]` : `{\n${items.join(',\n')}\n${indent}}`;
}

// JSON with the keys of every object sorted: two targetings are the same when these are equal.
function canonical(v) {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(',')}}`;
}
const targetingOf = (flag) => canonical((flag && flag.targeting) ?? {});

export function mount(main, ctx) {
  const search = h('input', { id: 'flag-search', type: 'search', placeholder: 'Filter by key…', spellcheck: 'false', 'aria-label': 'Filter flags by key' });
  const list = h('div', { class: 'flag-list' });
  const empty = h('p', { class: 'muted', hidden: true }, 'No flag matches.');
  const none = h('p', { class: 'muted', hidden: true }, 'No flags are defined.');
  fill(main, h('div', { class: 'toolbar' }, h('h1', {}, 'Flags'), search), list, empty, none);
  const cards = new Map();  // key → card

  const applyFilter = () => {
    const q = search.value.trim().toLowerCase();
    let shown = 0;
    for (const [key, card] of cards) {
      card.el.hidden = q !== '' && !key.toLowerCase().includes(q);
      if (!card.el.hidden) shown++;
    }
    empty.hidden = shown > 0 || cards.size === 0;
  };
  search.addEventListener('input', applyFilter);

  ctx.poll(async (read) => {
    const [config, stats] = await Promise.all([read.get('/api/v1/config'), read.tryGet('/api/v1/stats/flags')]);
    const flags = (config.flags && config.flags.flags) || {};
    const rollouts = activeRollouts(config.rollouts, 'flag');  // flag key → [rollout name, phase]
    const keys = Object.keys(flags).sort();
    for (const [key, card] of cards) if (!(key in flags)) { card.el.remove(); cards.delete(key); }
    let prev = null;
    for (const key of keys) {
      let card = cards.get(key);
      if (!card) {
        card = makeCard(key, ctx);
        cards.set(key, card);
      }
      // Keep the listed order (sorted by key) without moving cards that are in place.
      const want = prev ? prev.nextSibling : list.firstChild;
      if (want !== card.el) list.insertBefore(card.el, want);
      prev = card.el;
      updateCard(card, flags[key], (stats && stats.flags && stats.flags[key]) || (stats ? {} : null), rollouts.get(key));
    }
    none.hidden = keys.length > 0;
    applyFilter();
    ctx.ready();
  }, 2000);
}

// The targeting an edit began from: `shown` is the targeting (canonical JSON) the clean textarea
// holds; when the first input makes the textarea dirty, it becomes `base`, which a save compares
// with the flag as it is then (a change by someone else meanwhile refuses the save).
function makeCard(key, ctx) {
  const card = { key, flag: null, serverText: '', serverTargeting: '', shown: '', base: '', dirty: false, busy: false, locked: false };
  const url = `/api/v1/flags/${seg(key)}`;
  card.state = h('span', { class: 'flag-state badge' });
  card.note = h('p', { class: 'note', hidden: true });
  card.variants = h('table', { class: 'grid-table variants' });
  card.error = h('p', { class: 'field-error', 'data-for': 'targeting', role: 'alert' });

  const head = h('header', { class: 'card-head' }, h('h3', { class: 'name' }, key), card.state);
  const left = h('div', { class: 'flag-variants' }, card.variants);
  const right = h('div', { class: 'flag-targeting' }, h('div', { class: 'label' }, 'Targeting'));

  if (ctx.write) {
    card.toggle = h('button', { type: 'button', 'data-action': 'toggle-state', 'data-write': true, onclick: async () => {
      const enable = card.flag.state !== 'ENABLED';
      if (!await ctx.confirm(`${enable ? 'Enable' : 'Disable'} flag "${key}"`)) return;
      await write(ctx, 'PUT', `${url}/state`, { state: enable ? 'ENABLED' : 'DISABLED' }, `Flag "${key}" ${enable ? 'enabled' : 'disabled'}`);
    } });
    head.append(card.toggle);

    card.select = select({ 'data-field': 'defaultVariant', 'data-write': true, 'aria-label': `Default variant of ${key}` }, []);
    card.select.addEventListener('change', async () => {
      const from = card.flag.defaultVariant, to = card.select.value;
      card.busy = true;
      const ok = await ctx.confirm(`Set default variant of flag "${key}": ${from ?? '(none)'} → ${to}`);
      card.busy = false;
      if (!ok) { card.select.value = from ?? ''; return; }
      await write(ctx, 'PUT', `${url}/default-variant`, { defaultVariant: to }, `Default variant of "${key}" is now ${to}`);
    });
    left.append(h('label', { class: 'inline' }, 'Default variant ', card.select));

    card.textarea = h('textarea', { 'data-field': 'targeting', 'data-write': true, rows: 8, spellcheck: 'false', 'aria-label': `Targeting of ${key}` });
    card.textarea.addEventListener('input', () => {
      const was = card.dirty;
      card.dirty = card.textarea.value !== card.serverText;
      if (!card.dirty) card.shown = card.serverTargeting;  // back to the flag as it is
      else if (!was) card.base = card.shown;                // an edit begins
      card.revert.hidden = !card.dirty;
    });
    card.save = h('button', { type: 'button', class: 'primary', 'data-action': 'save-targeting', 'data-write': true, onclick: () => saveTargeting(card, ctx) }, 'Save targeting');
    card.revert = h('button', { type: 'button', 'data-action': 'revert-targeting', 'data-write': true, hidden: true, onclick: () => {
      card.textarea.value = card.serverText;
      card.shown = card.serverTargeting;
      card.dirty = false;
      card.revert.hidden = true;
      setFieldError(card, '');
    } }, 'Discard edits');
    right.append(card.textarea, card.error, h('div', { class: 'actions' }, card.save, card.revert));
  } else {
    card.defaultText = h('span', { class: 'mono' });
    left.append(h('div', { class: 'inline' }, 'Default variant ', card.defaultText));
    card.pre = h('pre', { class: 'targeting' });
    right.append(card.pre);
  }
  card.el = h('article', { class: 'card flag', 'data-flag': key }, head, card.note, h('div', { class: 'flag-body' }, left, right));
  return card;
}

function updateCard(card, flag, counts, rollout) {
  card.flag = flag;
  const enabled = flag.state === 'ENABLED';
  card.state.textContent = enabled ? 'ENABLED' : 'DISABLED';
  card.state.className = `flag-state badge ${enabled ? 'state-enabled' : 'state-disabled'}`;
  // A progressing rollout owns the flag (the server answers 409); a paused one lets changes through.
  card.locked = !!rollout && rollout[1] === 'progressing';
  card.note.hidden = !rollout;
  if (rollout) {
    card.note.textContent = card.locked
      ? `Under rollout "${rollout[0]}" (progressing): changes are refused until it is paused or finished. Its targeting is the rollout's.`
      : `Under rollout "${rollout[0]}" (paused): a change made now is overwritten by its next step or a rollback.`;
  }

  const variants = Object.keys(flag.variants || {});
  const total = counts ? variants.reduce((n, v) => n + (counts[v] || 0), 0) : 0;
  fill(card.variants,
    h('tr', {}, h('th', {}, 'variant'), h('th', {}, 'value'), h('th', { class: 'num' }, 'evaluations')),
    variants.map((v) => {
      const n = counts ? counts[v] || 0 : null;
      return h('tr', { 'data-variant-row': v },
        h('td', { class: 'name' }, v, v === flag.defaultVariant ? h('span', { class: 'badge default-badge' }, 'default') : null),
        h('td', { class: 'mono value' }, JSON.stringify(flag.variants[v])),
        h('td', { class: 'num' },
          h('span', { class: 'variant-count', 'data-variant': v }, n === null ? '–' : String(n)),
          total > 0 ? h('span', { class: 'muted small' }, ` ${fmtPct(n / total, 0)}`) : null));
    }),
    counts ? h('tr', { class: 'muted' }, h('td', {}, 'total'), h('td'), h('td', { class: 'num' }, fmtCount(total))) : null);

  const text = pretty(flag.targeting ?? {});
  if (card.pre) {
    card.pre.textContent = text;
    card.defaultText.textContent = flag.defaultVariant ?? '(none)';
    return;
  }
  card.serverText = text;
  card.serverTargeting = targetingOf(flag);
  const ta = card.textarea;
  if (!card.dirty && document.activeElement !== ta && ta.value !== text) ta.value = text;
  if (ta.value === text) {  // (a clean textarea with the focus is left as it is, and keeps its `shown`)
    card.shown = card.serverTargeting;
    if (card.dirty) { card.dirty = false; card.revert.hidden = true; }
  }

  const options = [...(flag.defaultVariant == null ? [['', '(none)']] : []), ...variants.map((v) => [v, v])];
  const sel = card.select;
  if (sel.options.length !== options.length || options.some(([v], i) => sel.options[i].value !== v))
    fill(sel, ...options.map(([v, l]) => h('option', { value: v, disabled: v === '' }, l)));
  if (!card.busy && document.activeElement !== sel) sel.value = flag.defaultVariant ?? '';

  for (const el of [card.toggle, sel, ta, card.save, card.revert]) el.disabled = card.locked;
  card.toggle.textContent = enabled ? 'Disable' : 'Enable';
  card.toggle.className = enabled ? 'danger' : '';
}

function setFieldError(card, message) {
  card.error.textContent = message;
  if (message) card.textarea.setAttribute('aria-invalid', 'true');
  else card.textarea.removeAttribute('aria-invalid');
}

async function write(ctx, method, url, body, done) {
  try {
    await ctx.send(method, url, body);
    ctx.toast(done, 'ok');
  } catch (e) {
    ctx.fail(e);
  }
  ctx.refresh();
}

async function saveTargeting(card, ctx) {
  const key = card.key;
  setFieldError(card, '');
  // The targeting the text was edited from (a clean textarea: the one it shows), taken with the
  // text: a poll during the confirmation may refill a clean textarea.
  const base = card.dirty ? card.base : card.shown;
  const text = card.textarea.value.trim();
  let targeting;
  try {
    targeting = text === '' ? {} : JSON.parse(text);
  } catch (e) {
    setFieldError(card, `Invalid JSON: ${e.message}`);
    return;
  }
  const remove = targeting !== null && typeof targeting === 'object' && !Array.isArray(targeting) && Object.keys(targeting).length === 0;
  const shown = JSON.stringify(targeting);
  const question = remove
    ? `Remove the targeting of flag "${key}" (every evaluation gets the default variant)`
    : `Set the targeting of flag "${key}" to ${shown.length > 300 ? `${shown.slice(0, 300)}…` : shown}`;
  if (!await ctx.confirm(question)) return;
  const url = `/api/v1/flags/${seg(key)}`;
  try {
    let after;
    // A 412 says some write (anywhere: the version is global) came between the GET and the PUT:
    // look again; only a change of this flag's targeting stops the save.
    for (let attempt = 0; ; attempt++) {
      // The flag as it is now, so that nothing else in it is overwritten with an older copy.
      const { data: flag, etag } = await ctx.getWithEtag(url);
      if (targetingOf(flag) !== base) {
        refuseStale(card, ctx, flag, versionOf(etag));
        ctx.refresh();
        return;
      }
      if (remove) delete flag.targeting; else flag.targeting = targeting;
      try {
        after = await ctx.send('PUT', url, flag, { ifMatch: etag });
        break;
      } catch (e) {
        if (e.status !== 412 || attempt >= 2) throw e;
      }
    }
    card.dirty = false;
    card.revert.hidden = true;
    card.serverText = pretty((after && after.targeting) ?? {});
    card.serverTargeting = card.shown = targetingOf(after);
    card.textarea.value = card.serverText;
    ctx.toast(`Targeting of "${key}" saved`, 'ok');
  } catch (e) {
    if (e.status && e.status !== 401) setFieldError(card, e.status === 412 ? 'The configuration changed meanwhile: save again' : errorText(e));
    ctx.fail(e);
  }
  ctx.refresh();
}

// The flag's targeting changed since the edit began: nothing is written, the user's text stays,
// and "Discard edits" shows the flag as it is now.
function refuseStale(card, ctx, flag, version) {
  const message = `The flag changed since you started editing (now version ${version ?? '?'}). Discard edits to see it, then edit again.`;
  card.serverText = pretty(flag.targeting ?? {});
  card.serverTargeting = targetingOf(flag);
  if (card.textarea.value !== card.serverText) {
    if (!card.dirty) card.base = card.shown;
    card.dirty = true;
  } else {  // the text is the flag's targeting as it is now
    card.shown = card.serverTargeting;
    card.dirty = false;
  }
  card.revert.hidden = !card.dirty;
  setFieldError(card, message);
  ctx.toast(message, 'error');
}
