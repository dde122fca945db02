#!/usr/bin/env node
// Micro-benchmarks of @openfeature/flagd-core (the reference JS flagd evaluator) on the flags in
// bench/flags/bench_flags.json, case for case the same work as the C++ benchmark
// build/bench/fledge_flag_bench (see bench/flags_compare).
//
// usage: node bench/flagd_core_bench.mjs [--json] [--min-time SECONDS] [--reps N] [--warmup N]
//
//   --json        print {"static_bool": ns, ...} (median ns/op per case) instead of a table
//   --min-time S  minimum duration of one timed repetition (default 0.5)
//   --reps N      timed repetitions per case; the median is reported (default 5)
//   --warmup N    untimed iterations before timing (default 200000)
//
// Needs the packages of tests/node (scripts/setup runs `npm ci` there).
//
// Each case has its own hand-written timing loop so that V8 sees a monomorphic call site per case,
// and every result is stored into a module-level sink (plus a checksum) so that neither the call
// nor the allocation of the result can be optimised away.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..');
// Resolve flagd-core from tests/node/node_modules (the only place it is installed).
const requireFromTests = createRequire(join(repo, 'tests', 'node', 'package.json'));
let FlagdCore;
try {
  ({ FlagdCore } = requireFromTests('@openfeature/flagd-core'));
} catch (err) {
  process.stderr.write(
    `flagd_core_bench: cannot load @openfeature/flagd-core from tests/node (${err.message}).\n` +
      `Install it with: npm ci --prefix ${join(repo, 'tests', 'node')}   (or run scripts/setup)\n`,
  );
  process.exit(1);
}

function parseArgs(argv) {
  const o = { json: false, minTime: 0.5, reps: 5, warmup: 200000 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const num = () => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v <= 0) die(`${a} needs a positive number`);
      return v;
    };
    if (a === '--json') o.json = true;
    else if (a === '--min-time') o.minTime = num();
    else if (a === '--reps') o.reps = Math.floor(num());
    else if (a === '--warmup') o.warmup = Math.floor(num());
    else if (a === '-h' || a === '--help') {
      process.stdout.write('usage: node bench/flagd_core_bench.mjs [--json] [--min-time S] [--reps N] [--warmup N]\n');
      process.exit(0);
    } else die(`unknown argument ${a}`);
  }
  return o;
}

function die(msg) {
  process.stderr.write(`flagd_core_bench: ${msg}\n`);
  process.exit(2);
}

const opts = parseArgs(process.argv.slice(2));

const noopLogger = { debug() {}, info() {}, warn() {}, error() {} };
const core = new FlagdCore(undefined, noopLogger);
core.setConfigurations(readFileSync(join(repo, 'bench', 'flags', 'bench_flags.json'), 'utf8'));

// ---- sinks -------------------------------------------------------------------------------------
let sink = null; // last result of every loop iteration escapes here
let checksum = 0; // and a cheap function of it is accumulated here

// ---- inputs ------------------------------------------------------------------------------------
const ctxStatic = { targetingKey: 'user-1' };
const ctxThree = { targetingKey: 'user-1', email: 'alice@example.com', plan: 'pro', age: 30 };
const fractionalCtxs = Array.from({ length: 1024 }, (_, i) => ({ targetingKey: `user-${i}` }));
const ctxTwenty = { targetingKey: 'user-42', email: 'bob@example.com', plan: 'enterprise', age: 40 };

const reqFlags = Object.keys(JSON.parse(readFileSync(join(repo, 'bench', 'flags', 'bench_flags.json'), 'utf8')).flags)
  .filter((k) => k.startsWith('req-'))
  .map((k) => {
    const v = core.getFlag(k).defaultVariant;
    const type = typeof core.getFlag(k).variants.get(v);
    return { key: k, type };
  });
if (reqFlags.length !== 20) die(`expected 20 req-* flags in bench_flags.json, found ${reqFlags.length}`);
const reqBoolKeys = reqFlags.filter((f) => f.type === 'boolean').map((f) => f.key);
const reqStringKeys = reqFlags.filter((f) => f.type === 'string').map((f) => f.key);
if (reqBoolKeys.length + reqStringKeys.length !== 20) die('req-* flags must be boolean or string flags');

// 10 request headers as a proxy receives them: Node's `req.rawHeaders` (a flat [name, value, ...]
// array, original case). A few copies with different users so loads cannot be constant-folded.
const rawHeaderSets = Array.from({ length: 16 }, (_, i) => [
  'Host', 'shop.example',
  'User-Agent', 'Mozilla/5.0 (X11; Linux x86_64)',
  'Accept', '*/*',
  'X-User-Id', `user-${42 + i}`,
  'X-Plan', i % 2 ? 'pro' : 'enterprise',
  'X-Country', 'DE',
  'X-App-Version', '1.2.3',
  'X-Forwarded-For', '10.0.0.1',
  'Cookie', 'uid=abc; theme=dark',
  'X-Email', `a${i}@example.com`,
]);

// The same job Fledge's per-request context builder does (bench/flag_bench.cpp,
// BM_ContextFrom10Headers, same mapping): targetingKey from header x-user-id, else cookie uid;
// attributes plan/country/version/email from headers and theme from a cookie, all matched
// case-insensitively because the mapping is configuration; plus the built-in request object.
const HEADER_ATTRS = [['x-plan', 'plan'], ['x-country', 'country'], ['x-app-version', 'version'], ['x-email', 'email']];
const COOKIE_ATTRS = [['theme', 'theme']];
function cookieValue(cookie, name) {
  for (const part of cookie.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
function contextFromHeaders(raw, method, path, ip) {
  const ctx = {};
  let userId, cookie, host;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    if (name === 'x-user-id') { if (userId === undefined) userId = raw[i + 1]; }
    else if (name === 'cookie') cookie = raw[i + 1];
    else if (name === 'host') host = raw[i + 1];
    else for (const [h, attr] of HEADER_ATTRS) if (name === h && ctx[attr] === undefined) ctx[attr] = raw[i + 1];
  }
  if (userId === undefined && cookie !== undefined) userId = cookieValue(cookie, 'uid');
  if (userId !== undefined && userId !== '') ctx.targetingKey = userId;
  if (cookie !== undefined) for (const [c, attr] of COOKIE_ATTRS) { const v = cookieValue(cookie, c); if (v !== undefined) ctx[attr] = v; }
  ctx.request = { ip, method, path: path.split('?')[0], host };
  return ctx;
}

// ---- cases (each loop(n) runs n operations) -----------------------------------------------------
const cases = [
  {
    name: 'static_bool',
    check: () => core.resolveBooleanEvaluation('static-bool', false, ctxStatic),
    loop(n) {
      for (let i = 0; i < n; i++) {
        const r = core.resolveBooleanEvaluation('static-bool', false, ctxStatic);
        sink = r;
        checksum += r.value ? 1 : 0;
      }
    },
  },
  {
    name: 'three_conditions',
    check: () => core.resolveBooleanEvaluation('three-conditions', false, ctxThree),
    loop(n) {
      for (let i = 0; i < n; i++) {
        const r = core.resolveBooleanEvaluation('three-conditions', false, ctxThree);
        sink = r;
        checksum += r.value ? 1 : 0;
      }
    },
  },
  {
    name: 'fractional_3',
    check: () => core.resolveStringEvaluation('fractional-3', 'x', fractionalCtxs[7]),
    loop(n) {
      for (let i = 0; i < n; i++) {
        const r = core.resolveStringEvaluation('fractional-3', 'x', fractionalCtxs[i & 1023]);
        sink = r;
        checksum += r.value.length;
      }
    },
  },
  {
    name: 'twenty_flags',
    check: () => [
      ...reqBoolKeys.map((k) => core.resolveBooleanEvaluation(k, false, ctxTwenty)),
      ...reqStringKeys.map((k) => core.resolveStringEvaluation(k, 'x', ctxTwenty)),
    ],
    loop(n) {
      const nb = reqBoolKeys.length;
      const ns = reqStringKeys.length;
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < nb; j++) {
          const r = core.resolveBooleanEvaluation(reqBoolKeys[j], false, ctxTwenty);
          sink = r;
          checksum += r.value ? 1 : 0;
        }
        for (let j = 0; j < ns; j++) {
          const r = core.resolveStringEvaluation(reqStringKeys[j], 'x', ctxTwenty);
          sink = r;
          checksum += r.value.length;
        }
      }
    },
  },
  {
    name: 'context_from_10_headers',
    check: () => contextFromHeaders(rawHeaderSets[0], 'GET', '/shop/cart?x=1', '10.0.0.1'),
    loop(n) {
      for (let i = 0; i < n; i++) {
        const ctx = contextFromHeaders(rawHeaderSets[i & 15], 'GET', '/shop/cart?x=1', '10.0.0.1');
        sink = ctx;
        checksum += ctx.targetingKey.length;
      }
    },
  },
];

// Sanity: every case must resolve without an error before it is timed.
for (const c of cases) {
  const res = c.check();
  for (const r of Array.isArray(res) ? res : [res]) {
    if (r && r.errorCode) die(`${c.name}: evaluation failed: ${r.errorCode} ${r.errorMessage ?? ''}`);
  }
  if (c.name === 'context_from_10_headers' && Object.keys(res).length !== 7) die(`${c.name}: bad context ${JSON.stringify(res)}`);
}

// ---- timing ------------------------------------------------------------------------------------
function timeLoop(c, n) {
  const t0 = process.hrtime.bigint();
  c.loop(n);
  return Number(process.hrtime.bigint() - t0); // ns
}

function measure(c) {
  c.loop(opts.warmup);
  // Calibrate: grow n until a run takes >= 50 ms, then size one repetition to >= minTime.
  let n = 1000;
  let t = timeLoop(c, n);
  while (t < 50e6) {
    n *= t < 5e6 ? 10 : 2;
    t = timeLoop(c, n);
  }
  n = Math.ceil((n * (opts.minTime * 1e9)) / t * 1.05);
  const perOp = [];
  for (let r = 0; r < opts.reps; r++) {
    let el = timeLoop(c, n);
    // Guarantee the >= minTime property even if this repetition ran faster than calibrated.
    let total = n;
    while (el < opts.minTime * 1e9) {
      el += timeLoop(c, n);
      total += n;
    }
    perOp.push(el / total);
  }
  const sorted = [...perOp].sort((a, b) => a - b);
  return { median: sorted[Math.floor(sorted.length / 2)], min: sorted[0], max: sorted[sorted.length - 1], n };
}

const results = {};
const details = {};
for (const c of cases) {
  const m = measure(c);
  results[c.name] = Math.round(m.median * 100) / 100;
  details[c.name] = m;
  if (!opts.json) process.stderr.write('.');
}

if (sink === null || !Number.isFinite(checksum)) die('sink was never written'); // keeps the sinks alive

if (opts.json) {
  process.stdout.write(JSON.stringify(results) + '\n');
} else {
  process.stderr.write('\n');
  const w = Math.max(...cases.map((c) => c.name.length));
  const line = (a, b, c, d) => `${a.padEnd(w)}  ${b.padStart(12)}  ${c.padStart(12)}  ${d.padStart(12)}\n`;
  let out = `flagd-core ${requireFromTests('@openfeature/flagd-core/package.json').version}, node ${process.version}, median of ${opts.reps} x >= ${opts.minTime}s\n`;
  out += line('case', 'ns/op', 'min', 'max');
  for (const c of cases) {
    const d = details[c.name];
    out += line(c.name, d.median.toFixed(1), d.min.toFixed(1), d.max.toFixed(1));
  }
  process.stdout.write(out);
}
