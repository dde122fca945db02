#!/usr/bin/env node
// OpenFeature OFREP compatibility client for Fledge.
//
// usage: node tests/node/ofrep_client.mjs [-v] BASE_URL        e.g. http://127.0.0.1:8016
//
// Resolves the flags of tests/node/ofrep_flags.json (the server under test must serve exactly that
// flag set) through the official OpenFeature server SDK + OFREP provider and checks the results.
// Expected values for fractional flags are computed with @openfeature/flagd-core in this process,
// so a pass also proves that the server buckets like flagd.
//
// Output is TAP-like: one `ok - ...` / `not ok - ...: details` line per check, `# ...` comments
// (every HTTP exchange with -v), then `N passed, M failed`. Exit status 1 if any check failed,
// 2 on bad usage.
//
// Notes on @openfeature/ofrep-provider 0.1.3 (the pinned version): it has no cache and no polling;
// every get*Details() call is one `POST {BASE_URL}/ofrep/v1/evaluate/flags/{key}` with body
// {"context": <merged evaluation context>}. The bulk endpoint is never used by this provider.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';

import { FlagdCore } from '@openfeature/flagd-core';
import { OFREPProvider } from '@openfeature/ofrep-provider';
import { OpenFeature } from '@openfeature/server-sdk';

import { createReporter, show } from './tap.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const TIMEOUT_MS = 30000;

// ---- arguments -----------------------------------------------------------------------------------
const argv = process.argv.slice(2);
const verbose = argv.includes('-v');
const positional = argv.filter((a) => a !== '-v');
if (positional.length !== 1 || positional[0].startsWith('-')) {
  process.stderr.write('usage: node tests/node/ofrep_client.mjs [-v] BASE_URL   (e.g. http://127.0.0.1:8016)\n');
  process.exit(2);
}
const baseUrl = positional[0].replace(/\/+$/, '');
try {
  new URL(baseUrl);
} catch {
  process.stderr.write(`ofrep_client: not a URL: ${positional[0]}\n`);
  process.exit(2);
}

// ---- reporting -----------------------------------------------------------------------------------
const { ok, notOk, comment, finish } = createReporter('ofrep_client', TIMEOUT_MS);

// ---- HTTP logging fetch (handed to the provider) -------------------------------------------------
const exchanges = []; // every request the provider made: {method, path, status, ...}
async function loggingFetch(input, init) {
  const req = new Request(input, init);
  const reqBody = await req.clone().text();
  const res = await fetch(req);
  const resBody = await res.clone().text();
  const path = new URL(req.url).pathname;
  const ex = { method: req.method, path, status: res.status, reqBody, resBody, contentType: res.headers.get('content-type') };
  exchanges.push(ex);
  if (verbose) {
    comment(`${req.method} ${path} ${reqBody} -> ${res.status} [${ex.contentType}] ${resBody}`);
    comment(`  request headers: ${show(Object.fromEntries(req.headers))}`);
  }
  return res;
}
let mark = 0; // exchanges[mark..] belong to the current SDK call
const lastExchange = () => (exchanges.length > mark ? exchanges[exchanges.length - 1] : undefined);
const httpNote = () => {
  const ex = lastExchange();
  return ex ? ` [last HTTP: ${ex.method} ${ex.path} -> ${ex.status} ${ex.resBody}]` : ' [no HTTP exchange]';
};

// ---- expectations from flagd-core ---------------------------------------------------------------
const flagsJson = readFileSync(join(here, 'ofrep_flags.json'), 'utf8');
const core = new FlagdCore(undefined, { debug() {}, info() {}, warn() {}, error() {} });
core.setConfigurations(flagsJson);

// ---- checks ----------------------------------------------------------------------------------------
function expectDetails(description, d, want) {
  const problems = [];
  for (const [k, v] of Object.entries(want)) {
    if (!isDeepStrictEqual(d[k], v)) problems.push(`${k}=${show(d[k])} want ${show(v)}`);
  }
  if (problems.length) notOk(description, `${problems.join(', ')}; details ${show(d)}${httpNote()}`);
  else ok(description);
}

async function main() {
  await OpenFeature.setProviderAndWait(new OFREPProvider({ baseUrl, fetchImplementation: loggingFetch }));
  const client = OpenFeature.getClient('fledge-ofrep-client');

  // bool-flag
  mark = exchanges.length;
  let d = await client.getBooleanDetails('bool-flag', false, { targetingKey: 'u1', plan: 'pro' });
  expectDetails('bool-flag plan=pro -> true, variant on, TARGETING_MATCH', d, {
    value: true,
    variant: 'on',
    reason: 'TARGETING_MATCH',
    errorCode: undefined,
  });
  mark = exchanges.length;
  d = await client.getBooleanDetails('bool-flag', true, { targetingKey: 'u1', plan: 'free' });
  expectDetails('bool-flag plan=free -> false, variant off, DEFAULT', d, {
    value: false,
    variant: 'off',
    reason: 'DEFAULT',
    errorCode: undefined,
  });

  // string-flag
  mark = exchanges.length;
  d = await client.getStringDetails('string-flag', 'code-default', { targetingKey: 'u1' });
  expectDetails('string-flag -> "#f00", variant red, STATIC', d, {
    value: '#f00',
    variant: 'red',
    reason: 'STATIC',
    errorCode: undefined,
  });

  // number-flag
  mark = exchanges.length;
  d = await client.getNumberDetails('number-flag', -1, { targetingKey: 'u1', email: 'x@corp.example' });
  expectDetails('number-flag email=x@corp.example -> 1000.5 (big)', d, {
    value: 1000.5,
    variant: 'big',
    reason: 'TARGETING_MATCH',
    errorCode: undefined,
  });
  mark = exchanges.length;
  d = await client.getNumberDetails('number-flag', -1, { targetingKey: 'u1', email: 'x@other.example' });
  expectDetails('number-flag email=x@other.example -> 1 (small)', d, {
    value: 1,
    variant: 'small',
    reason: 'DEFAULT',
    errorCode: undefined,
  });

  // object-flag: fractional, expectation from flagd-core
  const want = core.resolveObjectEvaluation('object-flag', {}, { targetingKey: 'u1' });
  mark = exchanges.length;
  d = await client.getObjectDetails('object-flag', { code: 'default' }, { targetingKey: 'u1' });
  if (want.errorCode) notOk('object-flag expectation from flagd-core', show(want));
  else {
    comment(`flagd-core buckets object-flag/u1 into variant ${show(want.variant)} = ${show(want.value)}`);
    expectDetails(`object-flag targetingKey=u1 -> variant ${want.variant} like flagd-core`, d, {
      value: want.value,
      variant: want.variant,
      reason: want.reason,
      errorCode: undefined,
    });
    if (!d.errorCode && d.value !== null && typeof d.value === 'object' && !Array.isArray(d.value)) ok('object-flag value is an object');
    else notOk('object-flag value is an object', `got ${show(d.value)}, errorCode ${show(d.errorCode)}`);
  }
  // A few more targeting keys, so that a server agreeing by luck on u1 does not pass.
  const mismatches = [];
  for (let i = 0; i < 16; i++) {
    const tk = `user-${i}`;
    const w = core.resolveObjectEvaluation('object-flag', {}, { targetingKey: tk });
    mark = exchanges.length;
    const g = await client.getObjectDetails('object-flag', {}, { targetingKey: tk });
    if (g.variant !== w.variant || !isDeepStrictEqual(g.value, w.value)) mismatches.push(`${tk}: got ${show(g.variant)} want ${show(w.variant)}`);
  }
  if (mismatches.length) notOk('object-flag bucketing agrees with flagd-core for user-0..user-15', mismatches.join('; '));
  else ok('object-flag bucketing agrees with flagd-core for user-0..user-15');

  // unknown flag
  mark = exchanges.length;
  d = await client.getBooleanDetails('no-such-flag', true, { targetingKey: 'u1' });
  expectDetails('no-such-flag -> code default true, FLAG_NOT_FOUND', d, {
    value: true,
    errorCode: 'FLAG_NOT_FOUND',
    reason: 'ERROR',
  });
  {
    const ex = lastExchange();
    if (ex && ex.status === 404) ok('no-such-flag: HTTP 404');
    else notOk('no-such-flag: HTTP 404', `got ${ex ? `${ex.status} ${ex.resBody}` : 'no request'}`);
  }

  // disabled flag. The code default (false) differs from the flag's defaultVariant value (true), so
  // a server that answered with the flag's value would be caught.
  mark = exchanges.length;
  d = await client.getBooleanDetails('disabled-flag', false, { targetingKey: 'u1' });
  const dex = lastExchange();
  comment(`disabled-flag via SDK: ${show({ value: d.value, variant: d.variant, reason: d.reason, errorCode: d.errorCode, errorMessage: d.errorMessage })}`);
  if (dex) comment(`disabled-flag on the wire: HTTP ${dex.status} ${dex.resBody}`);
  let wire;
  try {
    wire = dex ? JSON.parse(dex.resBody) : undefined;
  } catch {
    wire = undefined;
  }
  const wireOk = dex && dex.status === 200 && wire && wire.key === 'disabled-flag' && wire.reason === 'DISABLED' && !('value' in wire);
  if (wireOk) ok('disabled-flag: server answers 200 {"key":"disabled-flag","reason":"DISABLED"} without a value');
  else notOk('disabled-flag: server answers 200 {"key":"disabled-flag","reason":"DISABLED"} without a value', dex ? `got HTTP ${dex.status} ${dex.resBody}` : 'no request');
  if (d.value !== false) {
    notOk('disabled-flag -> code default (false)', `value=${show(d.value)}; details ${show(d)}`);
  } else if (d.reason === 'DISABLED' && !d.errorCode) {
    ok('disabled-flag -> code default (false), reason DISABLED');
  } else if (wireOk && d.errorCode === 'GENERAL' && /does not match the expected format/.test(d.errorMessage ?? '')) {
    // ofrep-provider 0.1.3 predates OFREP's value-less ("code default") success responses: it
    // requires a `value` member and turns the spec-conformant DISABLED answer into a GENERAL error.
    // The caller still gets the code default; the reason is lost on the client side.
    ok('disabled-flag -> code default (false)');
    comment('ofrep-provider 0.1.3 reports a value-less DISABLED answer as reason=ERROR errorCode=GENERAL; reason DISABLED is only visible on the wire');
  } else {
    notOk('disabled-flag -> code default (false), reason DISABLED', `details ${show(d)}`);
  }

  // wrong type: detected client-side by the provider
  mark = exchanges.length;
  d = await client.getNumberDetails('string-flag', 42, { targetingKey: 'u1' });
  expectDetails('getNumberDetails(string-flag) -> code default 42, TYPE_MISMATCH', d, {
    value: 42,
    errorCode: 'TYPE_MISMATCH',
    reason: 'ERROR',
  });

  // Contract summary: which endpoints the provider used.
  const endpoints = [...new Set(exchanges.map((e) => `${e.method} ${e.path.replace(/\/flags\/[^/]+$/, '/flags/{key}')}`))];
  comment(`provider requests: ${exchanges.length}, endpoints: ${endpoints.join(', ')}`);

  await OpenFeature.close();
}

main()
  .catch((err) => notOk('ofrep_client', `unexpected exception: ${err && err.stack ? err.stack : err}`))
  .finally(finish);
