// Routes: each route's target, the weights of split routes (sliders: moved, then applied as one
// write, only if nobody changed the split since the sliders were moved), and the audit log with a
// diff of every change. Refreshed every 5 s.
import { h, fill, errorText } from '../dom.js';
import { seg } from '../api.js';
import { fmtTime, fmtWeight } from '../format.js';
import { routeMatch, routeTarget } from './overview.js';
import { activeRollouts } from '../rollout_util.js';

const round4 = (x) => Math.round(x * 10000) / 10000;
const AUDIT_PAGE = 50;

export function mount(main, ctx) {
  const list = h('div', { class: 'route-list' });
  const audit = h('div', { id: 'audit' });
  const older = h('button', { id: 'audit-older', type: 'button', hidden: true }, 'Older entries');
  fill(main,
    h('h1', {}, 'Routes'), list,
    h('section', { class: 'card audit-card' }, h('h2', {}, 'Audit log ', h('span', { class: 'muted small' }, 'newest first')), audit, older));
  const cards = new Map();
  const log = makeAudit(audit, older, ctx);

  ctx.poll(async (read) => {
    const config = await read.get('/api/v1/config');
    const rollouts = activeRollouts(config.rollouts, 'route');  // route name → [rollout name, phase]
    const names = new Set(config.routes.map((r) => r.name));
    for (const [name, card] of cards) if (!names.has(name)) { card.el.remove(); cards.delete(name); }
    let prev = null;
    for (const route of config.routes) {  // in match order
      let card = cards.get(route.name);
      if (!card || card.isSplit !== !!route.split) {
        if (card) card.el.remove();
        card = makeCard(route, ctx);
        cards.set(route.name, card);
      }
      const want = prev ? prev.nextSibling : list.firstChild;
      if (want !== card.el) list.insertBefore(card.el, want);
      prev = card.el;
      updateCard(card, route, rollouts.get(route.name));
    }
    await log.refresh(config.version);
    ctx.ready();
  }, 5000);
}

// ---- route cards -----------------------------------------------------------------------------

// card.server: the arms as applied (last seen); card.model: the sliders; card.base: the weights
// the sliders were moved from (taken when the first one moves), which applying compares with the
// route as it is then.
function makeCard(route, ctx) {
  const card = { name: route.name, isSplit: !!route.split, write: ctx.write, server: [], model: [], base: null, rollout: null, locked: false };
  card.target = h('span', { class: 'route-target' });
  card.note = h('p', { class: 'note', hidden: true });
  card.body = h('div', { class: 'route-body' });
  card.el = h('article', { class: 'card route', 'data-route': route.name },
    h('header', { class: 'card-head' }, h('h3', { class: 'name' }, route.name), h('span', { class: 'mono muted' }, routeMatch(route)), card.target),
    card.note, card.body);
  if (!card.isSplit) return card;

  card.bar = h('div', { class: 'weight-bar' });
  card.arms = h('table', { class: 'grid-table arms' });
  card.body.append(card.bar, card.arms);
  if (ctx.write) {
    card.error = h('p', { class: 'field-error', 'data-for': 'split', role: 'alert' });
    card.apply = h('button', { type: 'button', class: 'primary', 'data-action': 'apply-weights', 'data-write': true, onclick: () => applyWeights(card, ctx) }, 'Apply weights');
    card.reset = h('button', { type: 'button', 'data-action': 'reset-weights', 'data-write': true, onclick: () => {
      card.model = card.server.map((a) => ({ ...a }));
      card.base = null;
      card.error.textContent = '';
      syncArms(card);
    } }, 'Reset');
    card.body.append(card.error, h('div', { class: 'actions' }, card.apply, card.reset));
  }
  return card;
}

const dirty = (card) => card.model.some((a, i) => a.weight !== card.server[i].weight);
const weightsOf = (arms) => arms.map((a) => ({ name: a.name, weight: a.weight }));
const sameWeights = (x, y) => x.length === y.length && x.every((a, i) => a.name === y[i].name && a.weight === y[i].weight);

function updateCard(card, route, rollout) {
  card.rollout = rollout;
  card.locked = !!rollout && rollout[1] === 'progressing';
  card.note.hidden = !rollout;
  if (rollout) {
    card.note.textContent = card.locked
      ? `Under rollout "${rollout[0]}" (progressing): its weights are the rollout's; pause or abort it to change them.`
      : `Under rollout "${rollout[0]}" (paused): a change made now is overwritten by its next step or a rollback.`;
  }
  const mirror = route.mirror ? ` · mirror ${route.mirror.percent ?? 100}% → ${route.mirror.cluster}` : '';
  if (!card.isSplit) {
    card.target.textContent = `cluster ${route.cluster}${mirror}`;
    return;
  }
  card.target.textContent = `split${mirror}`;
  const arms = route.split.arms.map((a) => ({ name: a.name, cluster: a.cluster, weight: Number(a.weight) }));
  const sameArms = arms.length === card.server.length && arms.every((a, i) => a.name === card.server[i].name);
  const keep = sameArms && card.model.length > 0 && dirty(card);  // moved but not applied: keep
  card.server = arms;
  if (!keep) {
    card.model = arms.map((a) => ({ ...a }));
    card.base = null;
  }
  syncArms(card);
}

// The arms table, built once per set of arms; syncArms shows card.model (the sliders) and
// card.server (what is applied) in it without replacing the sliders.
function buildArms(card) {
  card.rows = card.model.map((a, i) => {
    const last = i === card.model.length - 1;
    const row = { value: h('td', { class: 'num weight-value' }), applied: h('td', { class: 'muted small applied' }) };
    const cells = [h('td', { class: 'name' }, h('i', { class: `swatch seg-${i % 6}` }), a.name), h('td', { class: 'muted' }, `cluster ${a.cluster}`)];
    if (card.write) {
      row.slider = h('input', { type: 'range', class: `slider-${i % 6}`, min: 0, max: 100, step: 1, 'data-arm': a.name, 'data-write': true, 'aria-label': `Weight of ${a.name}` });
      row.fixed = card.model.length > 2 && last;  // takes the remainder
      const onMove = () => {
        if (!dirty(card)) card.base = weightsOf(card.server);  // the first move: what it starts from
        moveArm(card, i, Number(row.slider.value));
        syncArms(card);
      };
      row.slider.addEventListener('input', onMove);
      row.slider.addEventListener('change', onMove);
      cells.push(h('td', { class: 'slider-cell' }, row.slider));
    }
    cells.push(row.value, row.applied);
    card.arms.append(h('tr', { 'data-arm-row': a.name }, cells));
    return row;
  });
}

function syncArms(card) {
  const names = card.server.map((a) => `${a.name}=${a.cluster}`).join('\n');
  if (card.built !== names) {
    fill(card.arms);
    buildArms(card);
    card.built = names;
  }
  fill(card.bar, ...card.model.map((a, i) => {
    const s = h('span', { class: `seg seg-${i % 6}`, title: `${a.name} ${fmtWeight(a.weight)}` }, a.weight >= 12 ? `${a.name} ${fmtWeight(a.weight)}` : '');
    s.style.width = `${a.weight}%`;  // CSSOM, allowed by the CSP (unlike style attributes)
    return s;
  }));
  card.model.forEach((a, i) => {
    const row = card.rows[i];
    row.value.textContent = fmtWeight(a.weight);
    row.applied.textContent = a.weight !== card.server[i].weight ? `applied: ${fmtWeight(card.server[i].weight)}` : '';
    if (row.slider) {
      if (Number(row.slider.value) !== a.weight) row.slider.value = String(a.weight);
      row.slider.disabled = card.locked || row.fixed;
    }
  });
  if (card.apply) {
    const changed = dirty(card);
    card.apply.disabled = card.locked || !changed;
    card.reset.disabled = card.locked || !changed;
  }
}

// Two arms: the other takes 100 − v. More: the last arm takes the remainder (its slider is off).
function moveArm(card, i, v) {
  const m = card.model;
  if (m.length === 2) {
    m[i].weight = v;
    m[1 - i].weight = 100 - v;
    return;
  }
  const last = m.length - 1;
  if (i === last) return;
  const others = m.reduce((s, a, j) => (j === i || j === last ? s : s + a.weight), 0);
  m[i].weight = Math.max(0, Math.min(v, Math.floor(100 - others)));
  m[last].weight = round4(100 - others - m[i].weight);
}

async function applyWeights(card, ctx) {
  card.error.textContent = '';
  const changes = card.model.filter((a, i) => a.weight !== card.server[i].weight)
    .map((a) => `${a.name} ${fmtWeight(card.server.find((s) => s.name === a.name).weight)} → ${fmtWeight(a.weight)}`);
  if (changes.length === 0) return;
  if (!await ctx.confirm(`Set split of route "${card.name}": ${changes.join(', ')}`)) return;
  const base = card.base || weightsOf(card.server);
  const arms = card.model.map((a) => ({ name: a.name, weight: a.weight }));
  const url = `/api/v1/routes/${seg(card.name)}`;
  try {
    let route;
    // A 412 says some write (anywhere: the version is global) came between the GET and the PUT:
    // look again; only a change of this split stops the write.
    for (let attempt = 0; ; attempt++) {
      const { data: now, etag } = await ctx.getWithEtag(url);
      const nowArms = now && now.split && Array.isArray(now.split.arms) ? now.split.arms.map((a) => ({ name: a.name, weight: Number(a.weight) })) : [];
      if (!sameWeights(nowArms, base)) {
        const message = `The split changed since you moved the sliders: now ${routeTarget(now || {})}. Reset to see it.`;
        if (nowArms.length > 0) updateCard(card, now, card.rollout);  // the sliders stay; Reset shows it
        card.error.textContent = message;
        ctx.toast(message, 'error');
        ctx.refresh();
        return;
      }
      try {
        route = await ctx.send('PUT', `${url}/split`, { arms }, { ifMatch: etag });
        break;
      } catch (e) {
        if (e.status !== 412 || attempt >= 2) throw e;
      }
    }
    card.model = [];  // take the answer as it is
    updateCard(card, route, card.rollout);
    ctx.toast(`Split of "${card.name}" applied`, 'ok');
  } catch (e) {
    if (e.status && e.status !== 401) card.error.textContent = errorText(e);
    ctx.fail(e);
  }
  ctx.refresh();
}

// ---- audit log -------------------------------------------------------------------------------

// path → JSON text of every leaf of a JSON value ("routes[0].split.arms[1].weight": "90").
function flatten(value, prefix = '', out = new Map()) {
  if (value !== null && typeof value === 'object') {
    const entries = Array.isArray(value) ? value.map((v, i) => [`[${i}]`, v]) : Object.entries(value).map(([k, v]) => [prefix ? `.${k}` : k, v]);
    if (entries.length === 0) out.set(prefix || '(value)', Array.isArray(value) ? '[]' : '{}');
    for (const [k, v] of entries) flatten(v, prefix + k, out);
  } else if (prefix || value !== null) {
    out.set(prefix || '(value)', JSON.stringify(value));
  }
  return out;
}

export function diffLines(before, after) {
  const a = flatten(before), b = flatten(after);
  const lines = [];
  for (const [path, v] of b) {
    if (!a.has(path)) lines.push(['add', path, v]);
    else if (a.get(path) !== v) lines.push(['del', path, a.get(path)], ['add', path, v]);
  }
  for (const [path, v] of a) if (!b.has(path)) lines.push(['del', path, v]);
  return lines;
}

function auditEntry(e) {
  const lines = diffLines(e.before ?? null, e.after ?? null).map(([kind, path, v]) =>
    h('li', { class: `diff-${kind}` }, h('span', { class: 'diff-sign' }, kind === 'add' ? '+ ' : '− '), `${path}: ${v}`));
  const SHOWN = 16;
  return h('div', { class: 'audit-entry', 'data-seq': e.seq },
    h('div', { class: 'audit-head' },
      h('span', { class: 'seq' }, `#${e.seq}`),
      h('span', { class: 'time' }, fmtTime(e.time)),
      h('span', { class: 'actor' }, e.actor),
      h('span', { class: 'action mono' }, e.action),
      h('span', { class: 'resource mono' }, e.resource)),
    lines.length === 0 ? h('p', { class: 'muted small' }, 'no change') : h('ul', { class: 'diff' }, lines.slice(0, SHOWN)),
    lines.length > SHOWN ? h('details', { class: 'diff-more' }, h('summary', {}, `${lines.length - SHOWN} more lines`), h('ul', { class: 'diff' }, lines.slice(SHOWN))) : null);
}

// The newest entries first; the config version is the newest seq (every write is one entry).
function makeAudit(container, older, ctx) {
  const shown = new Map();  // seq → element
  const bounds = () => {
    const seqs = [...shown.keys()];
    return seqs.length ? [Math.min(...seqs), Math.max(...seqs)] : [0, 0];
  };
  const add = (entries) => {
    let added = false;
    for (const e of entries) if (!shown.has(e.seq)) { shown.set(e.seq, auditEntry(e)); added = true; }
    if (added) fill(container, ...[...shown.entries()].sort((x, y) => y[0] - x[0]).map(([, el]) => el));
    const [oldest] = bounds();
    older.hidden = shown.size === 0 || oldest <= 1;
  };
  const fetchRange = async (since, limit) =>
    (await ctx.get(`/api/v1/audit?since=${since}&limit=${limit}`)).entries || [];

  older.addEventListener('click', async () => {
    const [oldest] = bounds();
    const since = Math.max(1, oldest - AUDIT_PAGE);
    older.disabled = true;
    try {
      const entries = await fetchRange(since, oldest - since);
      add(entries);
      if (entries.length === 0) older.hidden = true;
    } catch (e) {
      ctx.fail(e);
    } finally {
      older.disabled = false;
    }
  });

  return {
    async refresh(version) {
      const [, newest] = bounds();
      // `since` is inclusive: the newest 50 are version-49 … version.
      if (shown.size === 0 || version < newest || version - newest > AUDIT_PAGE) {
        const entries = await fetchRange(Math.max(1, version - AUDIT_PAGE + 1), AUDIT_PAGE);
        shown.clear();
        fill(container);
        add(entries);
        if (entries.length === 0) fill(container, h('p', { class: 'muted' }, 'No changes recorded.'));
      } else if (version > newest) {
        add(await fetchRange(newest + 1, AUDIT_PAGE));
      }
    },
  };
}
