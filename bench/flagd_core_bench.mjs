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

// 10 request headers as a proxy sees them (names lowercased, as Node's http module delivers them).
// A few copies with different users so that loads cannot be treated as constants.
const headerSets = Array.from({ length: 16 }, (_, i) => ({
  'x-user-id': `user-${42 + i}`,
  'x-plan': i % 2 ? 'pro' : 'enterprise',
  'x-country': 'DE',
  'x-app-version': '1.2.3',
  'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36',
  accept: '*/*',
  host: 'shop.example',
  'x-forwarded-for': '10.0.0.1',
  cookie: 'uid=abc',
  'x-email': `a${i}@example.com`,
}));
// header (lowercase) -> context attribute: x-user-id becomes the targetingKey, five more headers
// become attributes, the other four are ignored. Written as an object literal, the fastest way in
// V8 (a data-driven loop `ctx[attr] = headers[name]` over a mapping table measured ~9x slower,
// ~145 ns, because the keyed stores go megamorphic); the comparison should favour the JS side.
function contextFromHeaders(h) {
  return {
    targetingKey: h['x-user-id'],
    plan: h['x-plan'],
    country: h['x-country'],
    appVersion: h['x-app-version'],
    email: h['x-email'],
    userAgent: h['user-agent'],
  };
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
    check: () => contextFromHeaders(headerSets[0]),
    loop(n) {
      for (let i = 0; i < n; i++) {
        const ctx = contextFromHeaders(headerSets[i & 15]);
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
  if (c.name === 'context_from_10_headers' && Object.keys(res).length !== 6) die(`${c.name}: bad context ${JSON.stringify(res)}`);
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
