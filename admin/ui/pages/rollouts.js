// Rollouts: a form to start one on a split route, and a card per rollout with its step, the
// analysis checks, live canary-vs-baseline charts and the controls. Polled every second.
import { h, fill, select, errorText } from '../dom.js';
import { seg } from '../api.js';
import { fmtTime, fmtWeight, fmtDuration, fmtMs, fmtNum, fmtPct, fmtCount } from '../format.js';
import { drawChart } from '../chart.js';
import { isActive } from '../rollout_util.js';

const WINDOW_S = 120;
const METRICS = [
  { metric: 'rps', title: 'requests/s', value: (p) => p.rps, fmt: (v) => `${fmtNum(v, v < 10 ? 1 : 0)}/s` },
  { metric: 'error_rate', title: '5xx %', value: (p) => (p.error_rate === null || p.error_rate === undefined ? null : p.error_rate * 100), fmt: (v) => `${fmtNum(v, v < 1 ? 2 : 1)}%` },
  { metric: 'p50', title: 'p50 ms', value: (p) => p.p50_ms, fmt: fmtMs },
  { metric: 'p99', title: 'p99 ms', value: (p) => p.p99_ms, fmt: fmtMs },
];

export function mount(main, ctx) {
  const list = h('div', { class: 'rollout-list' });
  const none = h('p', { class: 'muted', hidden: true }, 'No rollouts yet.');
  const form = ctx.write ? makeForm(ctx) : null;
  fill(main,
    h('h1', {}, 'Rollouts'),
    form ? h('details', { class: 'card start-card', open: true }, h('summary', {}, h('h2', {}, 'Start a rollout on a split route')), form.el) : null,
    list, none);
  const cards = new Map();
  let ticks = 0;

  ctx.poll(async (read) => {
    const wantRoutes = form && ticks % 10 === 0;  // counted once the tick is shown (a dropped one does not count)
    const [data, routes] = await Promise.all([read.get('/api/v1/rollouts'), wantRoutes ? read.get('/api/v1/routes') : null]);
    if (routes) form.setRoutes(routes.routes);
    const views = data.rollouts.filter((v) => v.status && v.spec);
    const active = views.filter((v) => isActive(v.status.phase)).sort((a, b) => b.status.started_ms - a.status.started_ms);
    const done = views.filter((v) => !isActive(v.status.phase)).sort((a, b) => (b.status.finished_ms || b.status.started_ms) - (a.status.finished_ms || a.status.started_ms));
    const stats = await Promise.all(active.map((v) => read.tryGet(v.spec.flag
      ? `/api/v1/stats/flags/${seg(v.spec.flag)}?seconds=${WINDOW_S}`
      : `/api/v1/stats/routes/${seg(v.spec.route)}?seconds=${WINDOW_S}`)));

    const seen = new Set();
    let prev = null;
    [...active, ...done].forEach((view) => {
      const finished = !isActive(view.status.phase);
      let card = cards.get(view.name);
      if (!card || card.finished !== finished) {
        if (card) card.el.remove();
        card = finished ? finishedCard(view, ctx) : activeCard(view, ctx);
        cards.set(view.name, card);
      }
      seen.add(view.name);
      const want = prev ? prev.nextSibling : list.firstChild;
      if (want !== card.el) list.insertBefore(card.el, want);
      prev = card.el;
      card.update(view, finished ? null : stats[active.indexOf(view)]);
    });
    for (const [name, card] of cards) if (!seen.has(name)) { card.el.remove(); cards.delete(name); }
    none.hidden = views.length > 0;
    ticks++;
    ctx.ready();
  }, 1000);
  ctx.every(() => cards.forEach((c) => c.tick && c.tick()), 1000);
}

// ---- pieces of a card --------------------------------------------------------------------------

const baselineOf = (view) => (view.spec.flag ? (view.status.flag_before && view.status.flag_before.defaultVariant) : view.spec.baseline_arm);
const canaryOf = (view) => (view.spec.flag ? view.spec.variant : view.spec.canary_arm);

function targetText(view) {
  const { spec } = view;
  return spec.flag
    ? `flag "${spec.flag}": variant "${spec.variant}" against "${baselineOf(view) ?? 'the default'}"`
    : `route "${spec.route}": arm "${spec.canary_arm}" against "${spec.baseline_arm}"`;
}

const lastWhy = (status) => {
  const hist = status.history || [];
  return hist.length ? hist[hist.length - 1].why : status.reason || '';
};

function stepPills(view) {
  const { status, spec } = view;
  return h('ol', { class: 'pills' }, (spec.steps || []).map((s, i) => {
    const state = isActive(status.phase) ? (i < status.step ? 'done' : i === status.step ? (status.entered === false ? 'next' : 'current') : 'todo')
      : (status.phase === 'succeeded' || i < status.step ? 'done' : 'todo');
    // hold_s and min_requests may be left out of a spec (PUT with curl): the server takes 0.
    const hold = s.hold_s ?? 0, min = s.min_requests ?? 0;
    return h('li', { class: `pill ${state}`, title: `hold ${hold} s${min ? `, at least ${min} canary requests` : ''}` },
      `${fmtWeight(s.weight)} · ${fmtDuration(hold * 1000)}`);
  }));
}

function analysisBlock(view) {
  const a = view.analysis;
  if (!a) return h('p', { class: 'muted small' }, isActive(view.status.phase) ? 'No analysis yet (it starts with the next second of traffic, on the instance that drives rollouts).' : 'No analysis kept for this rollout.');
  const arm = (label, name, c) => h('tr', { 'data-arm': label },
    h('td', { class: `name ${label}` }, h('i', { class: `swatch ${label}` }), `${label} `, h('span', { class: 'muted' }, name ?? '')),
    h('td', { class: 'num' }, fmtCount(c.requests)), h('td', { class: 'num' }, fmtCount(c.errors)),
    h('td', { class: 'num' }, c.requests ? fmtPct(c.errors / c.requests, 2) : '–'),
    ['p50_ms', 'p90_ms', 'p99_ms'].map((q) => h('td', { class: 'num' }, c.requests ? fmtMs(c[q]) : '–')));
  return h('div', { class: 'analysis' },
    h('table', { class: 'grid-table checks' },
      h('tr', {}, h('th', {}, 'check'), h('th', {}, 'verdict'), h('th', {}, 'summary')),
      (a.checks || []).map((c) => h('tr', { class: `check ${c.verdict}`, 'data-check': c.name },
        h('td', { class: 'name' }, c.name),
        h('td', {}, h('span', { class: `verdict badge verdict-${c.verdict}` }, c.verdict)),
        h('td', { class: 'summary mono small' }, c.summary)))),
    h('table', { class: 'grid-table totals' },
      h('tr', {}, h('th', {}, 'since start'), h('th', { class: 'num' }, 'requests'), h('th', { class: 'num' }, 'errors'), h('th', { class: 'num' }, 'rate'),
        h('th', { class: 'num' }, 'p50'), h('th', { class: 'num' }, 'p90'), h('th', { class: 'num' }, 'p99')),
      a.canary ? arm('canary', canaryOf(view), a.canary) : null,
      a.baseline ? arm('baseline', baselineOf(view), a.baseline) : null));
}

function historyBlock(details, view) {
  const hist = [...(view.status.history || [])].reverse();
  const total = (view.spec.steps || []).length;
  fill(details,
    h('summary', {}, `History (${hist.length})`),
    h('table', { class: 'grid-table history-table' },
      h('tr', {}, h('th', {}, 'time'), h('th', {}, 'phase'), h('th', {}, 'step'), h('th', { class: 'num' }, 'canary'), h('th', {}, 'actor'), h('th', {}, 'why')),
      hist.map((e) => h('tr', {},
        h('td', { class: 'nowrap' }, fmtTime(e.at_ms)),
        h('td', {}, h('span', { class: `badge phase-${e.phase}` }, e.phase)),
        h('td', {}, `${e.step + 1}/${total}`), h('td', { class: 'num' }, fmtWeight(e.canary_weight)),
        h('td', {}, e.actor), h('td', { class: 'why' }, e.why)))));
}

// What each control does, said in the confirm dialog.
function question(action, view) {
  const { name, spec, status } = view;
  const total = spec.steps.length;
  const at = `step ${status.step + 1}/${total} (canary ${fmtWeight(status.canary_weight)})`;
  switch (action) {
    case 'pause': return `Pause rollout "${name}" at ${at}: weights are held, the analysis goes on`;
    case 'resume': return `Resume rollout "${name}" from ${at}`;
    case 'abort': return `Abort rollout "${name}": the canary goes to 0%`;
    case 'delete': return `Delete rollout "${name}" (${status.phase}) and its history`;
    case 'promote': {
      if (status.entered === false) {  // the step's weight still waits for its pre-step webhooks
        return `Promote rollout "${name}" to step ${status.step + 1} (${fmtWeight(spec.steps[status.step].weight)}) now, without waiting for its pre-step webhooks`;
      }
      if (status.step + 1 < total) return `Promote rollout "${name}" to step ${status.step + 2} (${fmtWeight(spec.steps[status.step + 1].weight)})`;
      return spec.flag
        ? `Promote rollout "${name}": finish it now (succeeded): "${spec.variant}" becomes the default variant of flag "${spec.flag}"`
        : `Promote rollout "${name}": finish it now (succeeded): arm "${spec.baseline_arm}" serves the canary's cluster at 100%`;
    }
    default: return action;
  }
}

// The controls of a card, made once: a click always lands on the button it aimed at, even when
// the card is refreshed meanwhile. `getView` gives the rollout as last seen.
function makeButtons(name, getView, ctx) {
  const label = { pause: 'Pause', resume: 'Resume', promote: 'Promote', abort: 'Abort', delete: 'Delete' };
  const cls = { promote: 'primary', abort: 'danger', delete: 'danger' };
  const buttons = {};
  for (const action of Object.keys(label)) {
    buttons[action] = h('button', {
      type: 'button', 'data-action': action, 'data-write': true, class: cls[action] || null,
      onclick: async (ev) => {
        ev.preventDefault();  // inside <summary>: do not toggle
        ev.stopPropagation();
        if (!await ctx.confirm(question(action, getView()))) return;
        const path = `/api/v1/rollouts/${seg(name)}`;
        try {
          if (action === 'delete') await ctx.send('DELETE', path);
          else await ctx.send('POST', `${path}/${action}`);
          ctx.toast(`Rollout "${name}": ${action === 'delete' ? 'deleted' : `${action} done`}`, 'ok');
        } catch (e) {
          ctx.fail(e);
        }
        ctx.refresh();
      },
    }, label[action]);
  }
  return buttons;
}

// Shows the buttons that apply to the phase in `box`, moving none that stays.
function showButtons(box, buttons, phase) {
  const want = phase === 'progressing' ? ['pause', 'promote', 'abort']
    : phase === 'paused' ? ['resume', 'promote', 'abort'] : ['delete'];
  const now = [...box.children].map((b) => b.dataset.action);
  if (now.join() === want.join()) return;
  if (now.length === 3 && want.length === 3) {  // pause <-> resume in place
    box.firstChild.replaceWith(buttons[want[0]]);
    return;
  }
  fill(box, ...want.map((a) => buttons[a]));
}

// ---- cards -------------------------------------------------------------------------------------

function activeCard(first, ctx) {
  const phase = h('span', { class: 'phase badge' });
  const actions = h('div', { class: 'actions' });
  const info = h('div', { class: 'rollout-info' });
  const stepTime = h('b', { class: 'step-time' });
  const waiting = h('p', { class: 'waiting', hidden: true });
  const reason = h('span', { class: 'reason' });
  const analysis = h('div', { class: 'analysis-box' });
  const charts = METRICS.map((m) => h('div', { class: 'chart', 'data-metric': m.metric }));
  const history = h('details', { class: 'history' });
  const el = h('article', { class: 'card rollout active', 'data-rollout': first.name },
    h('header', { class: 'card-head' }, h('h3', { class: 'name' }, first.name), phase,
      h('span', { class: 'muted' }, targetText(first)), h('span', { class: 'spacer' }), actions),
    info, waiting, h('p', { class: 'reason-line' }, h('span', { class: 'muted' }, 'last: '), reason),
    h('div', { class: 'rollout-main' }, h('div', { class: 'charts' }, charts), analysis),
    history);
  let view = first;
  const buttons = ctx.write ? makeButtons(first.name, () => view, ctx) : null;
  const card = {
    el, finished: false,
    tick() {
      const started = view.status.step_started_ms;
      const step = view.spec.steps[view.status.step];
      const hold = step ? step.hold_s ?? 0 : undefined;
      stepTime.textContent = `${fmtDuration(Date.now() - started)}${hold !== undefined ? ` of ${fmtDuration(hold * 1000)}` : ''}`;
    },
    update(v, stats) {
      view = v;
      const { status, spec } = v;
      phase.textContent = status.phase;
      phase.className = `phase badge phase-${status.phase}`;
      if (buttons) showButtons(actions, buttons, status.phase);
      fill(info,
        h('span', { class: 'kv' }, 'step ', h('b', { class: 'step' }, `${status.step + 1}/${spec.steps.length}`)),
        h('span', { class: 'kv' }, 'canary ', h('b', { class: 'weight' }, fmtWeight(status.canary_weight))),
        h('span', { class: 'kv' }, status.entered === false ? 'waiting for pre-step webhooks ' : 'in step ', stepTime),
        h('span', { class: 'kv' }, 'started ', h('b', {}, fmtTime(status.started_ms))),
        stepPills(v));
      card.tick();
      waiting.hidden = !status.waiting;
      waiting.textContent = status.waiting ? `waiting: ${status.waiting}` : '';
      reason.textContent = lastWhy(status);
      fill(analysis, analysisBlock(v));
      historyBlock(history, v);
      drawCharts(charts, v, stats);
    },
  };
  return card;
}

function finishedCard(first, ctx) {
  const summary = h('summary', {});
  const body = h('div', { class: 'rollout-body' });
  const history = h('details', { class: 'history' });
  const el = h('details', { class: 'card rollout finished', 'data-rollout': first.name }, summary, body, history);
  let key = '', view = first;
  const buttons = ctx.write ? makeButtons(first.name, () => view, ctx) : null;
  return {
    el, finished: true,
    update(v) {
      view = v;
      const k = JSON.stringify(v);
      if (k === key) return;  // finished rollouts do not change (rebuilding would close the details)
      key = k;
      const { status, spec } = v;
      fill(summary,
        h('span', { class: 'name' }, v.name), ' ',
        h('span', { class: `phase badge phase-${status.phase}` }, status.phase), ' ',
        h('span', { class: 'muted' }, targetText(v)), ' ',
        h('span', { class: 'muted nowrap' }, `finished ${fmtTime(status.finished_ms)}`), ' ',
        h('span', { class: 'reason', title: lastWhy(status) }, lastWhy(status)),
        buttons ? buttons.delete : null);
      fill(body,
        h('div', { class: 'rollout-info' },
          h('span', { class: 'kv' }, 'ended at step ', h('b', {}, `${status.step + 1}/${spec.steps.length}`)),
          h('span', { class: 'kv' }, 'canary ', h('b', {}, fmtWeight(status.canary_weight))),
          h('span', { class: 'kv' }, 'started ', h('b', {}, fmtTime(status.started_ms))),
          h('span', { class: 'kv' }, 'ran ', h('b', {}, fmtDuration((status.finished_ms || Date.now()) - status.started_ms))),
          stepPills(v)),
        analysisBlock(v));
      historyBlock(history, v);
    },
  };
}

function drawCharts(charts, view, stats) {
  const series = (stats && stats.series) || [];
  const canary = canaryOf(view), baseline = baselineOf(view);
  let picked;
  if (baseline) {
    picked = [[canary, 'canary'], [baseline, 'baseline']].map(([name, cls]) =>
      ({ name, cls, points: (series.find((s) => s.name === name) || { points: [] }).points }));
  } else {  // the baseline is unknown: every series
    picked = series.map((s, i) => ({ name: s.name, cls: s.name === canary ? 'canary' : `s${i % 4}`, points: s.points }));
  }
  let t1 = 0;
  for (const s of picked) if (s.points.length) t1 = Math.max(t1, s.points[s.points.length - 1].t);
  if (!t1) t1 = Date.now();
  const t0 = t1 - WINDOW_S * 1000;
  METRICS.forEach((m, i) => drawChart(charts[i], {
    title: m.title, fmt: m.fmt, t0, t1,
    series: picked.map((s) => ({ name: s.name, cls: s.cls, points: s.points.map((p) => [p.t, m.value(p) ?? null]) })),
  }));
}

// ---- the start form ----------------------------------------------------------------------------

// "5:20, 25:20, 100:10" → [{weight: 5, hold_s: 20}, ...]; throws a message on bad syntax.
export function parseSteps(text) {
  const parts = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (parts.length === 0) throw new Error('at least one step, written weight:hold_s (e.g. 5:20, 100:10)');
  return parts.map((p, i) => {
    const m = /^(\d+)\s*:\s*(\d+)$/.exec(p);
    if (!m) throw new Error(`step ${i + 1} "${p}": write weight:hold_s, e.g. 25:60`);
    return { weight: Number(m[1]), hold_s: Number(m[2]) };
  });
}

const FIELDS = ['name', 'route', 'canary_arm', 'baseline_arm', 'steps', 'analysis'];

function makeForm(ctx) {
  let routes = [];
  const input = (attrs) => h('input', { 'data-write': true, autocomplete: 'off', spellcheck: 'false', ...attrs });
  const controls = {
    name: input({ name: 'name', placeholder: 'shop-v2', required: true }),
    route: select({ name: 'route', 'data-write': true }, []),
    canary_arm: select({ name: 'canary_arm', 'data-write': true }, []),
    baseline_arm: select({ name: 'baseline_arm', 'data-write': true }, []),
    steps: input({ name: 'steps', value: '5:20, 25:20, 50:20, 100:10', class: 'mono' }),
    analysis: h('textarea', { name: 'analysis', rows: 3, class: 'mono', 'data-write': true, spellcheck: 'false', placeholder: '{"errors": {"max_rate": 0.05}, "latency": {"p99_max_ms": 250}}   (empty: the defaults)' }),
  };
  const labels = { name: 'Name', route: 'Route', canary_arm: 'Canary arm', baseline_arm: 'Baseline arm', steps: 'Steps (weight:hold_s, …)', analysis: 'Analysis (JSON, optional)' };
  const submit = h('button', { type: 'submit', class: 'primary', 'data-write': true }, 'Start rollout');
  const wrap = Object.fromEntries(FIELDS.map((f) => [f, h('label', { class: `field field-${f}` }, h('span', { class: 'label' }, labels[f]), controls[f])]));
  const formError = h('div', { class: 'form-error-slot' });
  const el = h('form', { id: 'rollout-form', 'data-write': true, novalidate: true, autocomplete: 'off' },
    h('div', { class: 'form-grid' }, FIELDS.map((f) => wrap[f])), formError, h('div', { class: 'actions' }, submit));

  const setArms = () => {
    const route = routes.find((r) => r.name === controls.route.value);
    const arms = route ? route.split.arms.map((a) => a.name) : [];
    for (const [sel, idx] of [[controls.canary_arm, 0], [controls.baseline_arm, 1]]) {
      fill(sel, ...arms.map((a) => h('option', { value: a }, a)));
      if (arms[idx] !== undefined) sel.value = arms[idx];
    }
  };
  controls.route.addEventListener('change', setArms);

  // Errors: one .field-error at the field it is about (or above the button), none otherwise.
  const clearErrors = () => el.querySelectorAll('.field-error').forEach((e) => e.remove());
  const showError = (field, message) => {
    clearErrors();
    const f = FIELDS.find((x) => field === x || field.startsWith(`${x}.`) || field.startsWith(`${x}[`));
    const msg = h('p', { class: 'field-error', 'data-for': f || 'form', role: 'alert' }, message);
    if (f) { wrap[f].append(msg); controls[f].setAttribute('aria-invalid', 'true'); } else formError.append(msg);
  };
  el.addEventListener('input', (ev) => ev.target.removeAttribute && ev.target.removeAttribute('aria-invalid'));

  el.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors();
    FIELDS.forEach((f) => controls[f].removeAttribute('aria-invalid'));
    const name = controls.name.value.trim();
    if (!/^[A-Za-z0-9._-]{1,128}$/.test(name)) return showError('name', 'a name of 1-128 letters, digits, ".", "_" or "-"');
    if (!controls.route.value) return showError('route', 'choose a split route');
    let steps, analysis;
    try { steps = parseSteps(controls.steps.value); } catch (e) { return showError('steps', e.message); }
    const text = controls.analysis.value.trim();
    if (text) {
      try { analysis = JSON.parse(text); } catch (e) { return showError('analysis', `Invalid JSON: ${e.message}`); }
      if (analysis === null || typeof analysis !== 'object' || Array.isArray(analysis)) return showError('analysis', 'must be a JSON object');
    }
    const body = { route: controls.route.value, canary_arm: controls.canary_arm.value, baseline_arm: controls.baseline_arm.value, steps };
    if (analysis) body.analysis = analysis;
    const plan = steps.map((s) => `${fmtWeight(s.weight)} (${s.hold_s} s)`).join(' → ');
    if (!await ctx.confirm(`Start rollout "${name}" on route "${body.route}": arm "${body.canary_arm}" against "${body.baseline_arm}", steps ${plan}${analysis ? `, analysis ${JSON.stringify(analysis)}` : ' (default analysis)'}`)) return;
    submit.disabled = true;
    try {
      await ctx.send('PUT', `/api/v1/rollouts/${seg(name)}`, body);
      ctx.toast(`Rollout "${name}" started`, 'ok');
      controls.name.value = '';
    } catch (e) {
      if (e.status && e.status !== 401) showError(e.field || '', errorText(e));
      ctx.fail(e);
    } finally {
      submit.disabled = false;
    }
    ctx.refresh();
  });

  return {
    el,
    setRoutes(all) {
      routes = all.filter((r) => r.split && Array.isArray(r.split.arms));
      const names = routes.map((r) => r.name);
      const current = controls.route.value;
      const have = [...controls.route.options].map((o) => o.value);
      if (have.join('\n') !== names.join('\n')) {
        fill(controls.route, ...names.map((n) => h('option', { value: n }, n)));
        controls.route.value = names.includes(current) ? current : names[0] || '';
        setArms();
      } else if (controls.canary_arm.options.length === 0) {
        setArms();
      }
    },
  };
}
