#!/usr/bin/env node
// Differential oracle for flagd's `fractional` operator.
//
// usage: node tests/node/fractional_oracle.mjs [--cases N] [--seed S]     (defaults: N=5000, S=1)
//
// Generates N random `fractional` flags from a seeded PRNG (same seed => same output), evaluates
// each with @openfeature/flagd-core (the reference JS implementation) and prints one JSON object
// per line:
//
//   {"flagKey":..., "targetingKey":..., "targeting":{"fractional":[...]}, "variant":..., "reason":...}
//
// The flag behind every line is, with K+1 = number of buckets in `targeting` (2..5):
//
//   {"state":"ENABLED", "variants":{"v0":"v0", ..., "vK":"vK"}, "defaultVariant":"v0", "targeting":<targeting>}
//
// evaluated as a string flag with the context {"targetingKey": <targetingKey>}. `variant` is the
// variant flagd-core resolved (null if none) and `reason` its resolution reason (TARGETING_MATCH,
// or DEFAULT when `fractional` yields null: empty targetingKey without a bucketing string, total
// weight 0, ...).
//
// Case mix: flagKey [a-z0-9-]{1,20}; targetingKey printable ASCII of length 0..40 (about 5%
// empty); weights uniform in [-5, 1000] (negative weights clamp to 0), about 10% of buckets
// without a weight (=> 1), about 5% of cases with huge weights whose total stays <= 2^31-1
// (some hit exactly 2^31-1), about 2% with every weight in [-5, 0] (total 0 => DEFAULT);
// about 30% of cases start with a bucketing-key string (printable
// ASCII, length 0..40) that replaces flagKey+targetingKey as the hash input.

import { FlagdCore } from '@openfeature/flagd-core';

function parseArgs(argv) {
  const opts = { cases: 5000, seed: 1 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const take = () => {
      if (i + 1 >= argv.length) usage(`missing value for ${a}`);
      return argv[++i];
    };
    if (a === '--cases') opts.cases = Number(take());
    else if (a === '--seed') opts.seed = Number(take());
    else if (a === '-h' || a === '--help') usage();
    else usage(`unknown argument ${a}`);
  }
  if (!Number.isInteger(opts.cases) || opts.cases < 0) usage('--cases must be a non-negative integer');
  if (!Number.isInteger(opts.seed)) usage('--seed must be an integer');
  return opts;
}

function usage(msg) {
  if (msg) process.stderr.write(`fractional_oracle: ${msg}\n`);
  process.stderr.write('usage: node tests/node/fractional_oracle.mjs [--cases N] [--seed S]\n');
  process.exit(msg ? 2 : 0);
}

// mulberry32: tiny, fast, deterministic 32-bit PRNG.
function mulberry32(seed) {
  let a = seed >>> 0;
  return function next() {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const MAX_INT32 = 2147483647;
const KEY_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789-';

function makeGen(seed) {
  const rnd = mulberry32(seed);
  const int = (lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1)); // inclusive
  const chance = (p) => rnd() < p;
  const flagKey = () => {
    let s = '';
    const n = int(1, 20);
    for (let i = 0; i < n; i++) s += KEY_ALPHABET[int(0, KEY_ALPHABET.length - 1)];
    return s;
  };
  const printable = (maxLen) => {
    let s = '';
    const n = int(0, maxLen);
    for (let i = 0; i < n; i++) s += String.fromCharCode(int(0x20, 0x7e));
    return s;
  };
  return { rnd, int, chance, flagKey, printable };
}

function makeBuckets(g) {
  const n = g.int(2, 5);
  const buckets = [];
  if (g.chance(0.05)) {
    // Huge weights: split a budget <= 2^31-1 across the buckets (sometimes exactly 2^31-1).
    let budget = g.chance(0.3) ? MAX_INT32 : g.int(1 << 30, MAX_INT32);
    for (let i = 0; i < n; i++) {
      const w = i === n - 1 ? budget : g.int(0, budget);
      budget -= w;
      buckets.push([`v${i}`, w]);
    }
    return buckets;
  }
  if (g.chance(0.02)) {
    // Every weight <= 0: total weight 0, fractional yields null => DEFAULT.
    for (let i = 0; i < n; i++) buckets.push([`v${i}`, g.int(-5, 0)]);
    return buckets;
  }
  for (let i = 0; i < n; i++) {
    if (g.chance(0.1)) buckets.push([`v${i}`]); // weight omitted => 1
    else buckets.push([`v${i}`, g.int(-5, 1000)]);
  }
  return buckets;
}

const noopLogger = { debug() {}, info() {}, warn() {}, error() {} };

function main() {
  const { cases, seed } = parseArgs(process.argv.slice(2));
  const g = makeGen(seed);
  const core = new FlagdCore(undefined, noopLogger);
  const out = [];
  const flush = () => {
    if (out.length) {
      process.stdout.write(out.join(''));
      out.length = 0;
    }
  };

  for (let c = 0; c < cases; c++) {
    const flagKey = g.flagKey();
    const targetingKey = g.chance(0.05) ? '' : g.printable(40);
    const buckets = makeBuckets(g);
    const args = g.chance(0.3) ? [g.printable(40), ...buckets] : buckets;
    const targeting = { fractional: args };

    const variants = {};
    for (const b of buckets) variants[b[0]] = b[0];
    const flag = { state: 'ENABLED', variants, defaultVariant: 'v0', targeting };

    core.setConfigurations(JSON.stringify({ flags: { [flagKey]: flag } }));
    const r = core.resolveStringEvaluation(flagKey, 'CODE_DEFAULT', { targetingKey }, noopLogger);
    if (r.errorCode) {
      // Not expected for these flags; surface it instead of emitting a misleading expectation.
      process.stderr.write(`fractional_oracle: case ${c} (${flagKey}) resolved with ${r.errorCode}: ${r.errorMessage}\n`);
      flush();
      process.exit(1);
    }
    out.push(
      JSON.stringify({ flagKey, targetingKey, targeting, variant: r.variant ?? null, reason: r.reason }) + '\n',
    );
    if (out.length >= 1024) flush();
  }
  flush();
}

main();
