#!/usr/bin/env node
// Runs the flagd-testbed *evaluator* Gherkin suite (tests/flagd_testbed/*.feature) against an OFREP
// server through the official OpenFeature server SDK + OFREP provider.
//
// usage: node tests/node/flagd_testbed.mjs [-v] [--tags EXPR] BASE_URL FEATURE_DIR
//          e.g. node tests/node/flagd_testbed.mjs http://127.0.0.1:8016 tests/flagd_testbed
//
// The server under test must serve tests/flagd_testbed/testkit-flags.json. Feature files are parsed
// and compiled to pickles (one per scenario or example row, Background steps included) by
// @cucumber/gherkin; scenarios are selected by a Cucumber tag expression (@cucumber/tag-expressions),
// by default `not @fractional-v1`: Fledge buckets like flagd's current high-precision `fractional`
// (v2), and the v1 examples contradict the v2 ones by design. Every step is matched against the
// step table below; a step that matches no definition (undefined) or more than one (ambiguous) fails
// its scenario, as does a feature file that does not parse.
//
// Output is TAP-like: one `ok - FILE:LINE NAME [EXAMPLE]` / `not ok - ...: details` line per
// scenario, `# ...` comments (every HTTP exchange with -v), then `N passed, M failed`. Exit status 1
// if any scenario failed, 2 on bad usage.
//
// Step semantics follow the flagd providers' step definitions (open-feature js-sdk-contrib and
// java-sdk-contrib): quoted step arguments are Cucumber strings (`\"` stands for `"`), a context
// value of type String may be empty (the key is then set to ""), Integer and Float flags are
// evaluated with getNumberDetails, and an expected value is parsed with the flag's type before
// comparison (Float numerically, Object as JSON, deep-equal).

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';

import { AstBuilder, GherkinClassicTokenMatcher, Parser, compile } from '@cucumber/gherkin';
import { IdGenerator } from '@cucumber/messages';
import { parse as parseTagExpression } from '@cucumber/tag-expressions';
import { OFREPProvider } from '@openfeature/ofrep-provider';
import { ErrorCode, OpenFeature, StandardResolutionReasons } from '@openfeature/server-sdk';

import { createReporter, show } from './tap.mjs';

const DEFAULT_TAGS = 'not @fractional-v1';
const REQUEST_TIMEOUT_MS = 10000;
const RUN_TIMEOUT_MS = 180000;

// ---- arguments -----------------------------------------------------------------------------------
function usage(message) {
  if (message) process.stderr.write(`flagd_testbed: ${message}\n`);
  process.stderr.write('usage: node tests/node/flagd_testbed.mjs [-v] [--tags EXPR] BASE_URL FEATURE_DIR\n');
  process.exit(2);
}

const argv = process.argv.slice(2);
let verbose = false;
let tagExpression = DEFAULT_TAGS;
const positional = [];
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '-v') verbose = true;
  else if (a === '--tags') {
    if (i + 1 >= argv.length) usage('--tags needs an expression');
    tagExpression = argv[++i];
  } else if (a.startsWith('-')) usage(`unknown option ${a}`);
  else positional.push(a);
}
if (positional.length !== 2) usage();
const baseUrl = positional[0].replace(/\/+$/, '');
try {
  new URL(baseUrl);
} catch {
  usage(`not a URL: ${positional[0]}`);
}
const featureDir = resolve(positional[1]);
let featureFiles;
try {
  if (!statSync(featureDir).isDirectory()) usage(`not a directory: ${positional[1]}`);
  featureFiles = readdirSync(featureDir)
    .filter((f) => f.endsWith('.feature'))
    .sort();
} catch (err) {
  usage(`cannot read ${positional[1]}: ${err.message}`);
}
if (featureFiles.length === 0) usage(`no .feature files in ${positional[1]}`);
let tagFilter;
try {
  tagFilter = parseTagExpression(tagExpression);
} catch (err) {
  usage(`bad tag expression ${JSON.stringify(tagExpression)}: ${err.message}`);
}

// ---- reporting -----------------------------------------------------------------------------------
const { ok, notOk, comment, finish } = createReporter('flagd_testbed', RUN_TIMEOUT_MS);

// ---- HTTP: the provider's fetch, recording the exchanges of the running scenario -----------------
let exchanges = [];
async function recordingFetch(input, init) {
  const req = new Request(input, init);
  const ex = { method: req.method, path: new URL(req.url).pathname, reqBody: await req.clone().text() };
  exchanges.push(ex);
  try {
    const res = await fetch(req, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    ex.status = res.status;
    ex.resBody = await res.clone().text();
    return res;
  } catch (err) {
    ex.failure = err.cause?.message ?? err.message;
    throw err;
  } finally {
    if (verbose) comment(describeExchange(ex));
  }
}
const describeExchange = (ex) =>
  `${ex.method} ${ex.path} ${ex.reqBody} -> ${ex.failure === undefined ? `${ex.status} ${ex.resBody}` : `no answer (${ex.failure})`}`;

// ---- typed values --------------------------------------------------------------------------------
// A step argument of the given testbed type, or throws with a message naming `what`.
function typedValue(raw, type, what) {
  switch (type) {
    case 'String':
      return raw;
    case 'Boolean':
      if (raw === 'true') return true;
      if (raw === 'false') return false;
      break;
    case 'Integer':
      if (/^[+-]?\d+$/.test(raw)) return Number(raw);
      break;
    case 'Float': {
      const n = Number(raw);
      if (raw.trim() !== '' && Number.isFinite(n)) return n;
      break;
    }
    case 'Object':
      try {
        const v = JSON.parse(raw);
        if (v !== null && typeof v === 'object' && !Array.isArray(v)) return v;
      } catch {
        // reported below
      }
      break;
    default:
      throw new StepError(`${what}: unsupported type ${JSON.stringify(type)}`);
  }
  throw new StepError(`${what}: ${JSON.stringify(raw)} is not a ${type}`);
}

// Whether `actual` is the testbed value `expected` of `type` (already parsed by typedValue).
function sameValue(actual, expected, type) {
  switch (type) {
    case 'Integer':
    case 'Float':
      return typeof actual === 'number' && actual === expected;
    case 'Object':
      return isDeepStrictEqual(actual, expected);
    default:
      return actual === expected;
  }
}

// ---- step definitions ----------------------------------------------------------------------------
// A double-quoted Cucumber string argument; `\"` inside it stands for `"`.
const STR = '"((?:[^"\\\\]|\\\\.)*)"';
const unquote = (s) => s.replace(/\\"/g, '"');

// A check that did not hold (the server's answer is wrong) ...
class StepFailure extends Error {}
// ... and a step that cannot run as written (bad argument, wrong order): the scenario fails either way.
class StepError extends Error {}
function expect(condition, message) {
  if (!condition) throw new StepFailure(message);
}

const FLAG_TYPES = new Set(['Boolean', 'String', 'Integer', 'Float', 'Object']);
const CONTEXT_TYPES = new Set(['String', 'Integer', 'Float', 'Boolean']);
const ERROR_CODES = new Set(Object.values(ErrorCode));
const REASONS = new Set(Object.values(StandardResolutionReasons));

function requireDetails(s) {
  if (!s.details) throw new StepError('no evaluation yet: a "the flag was evaluated with details" step must come first');
  return s.details;
}

function setContextValue(s, key, value) {
  if (key === 'targetingKey' && typeof value !== 'string') throw new StepError('targetingKey must be a String');
  s.context[key] = value;
}

const stepDefinitions = [
  {
    pattern: /^an evaluator$/,
    run(s) {
      s.client = OpenFeature.getClient('flagd-testbed');
    },
  },
  {
    pattern: new RegExp(`^a ([A-Za-z]+)-flag with key ${STR} and a fallback value ${STR}$`),
    run(s, type, key, fallback) {
      if (!s.client) throw new StepError('no evaluator: "an evaluator" must come first');
      if (!FLAG_TYPES.has(type)) throw new StepError(`unsupported flag type ${JSON.stringify(type)}`);
      s.flag = { type, key: unquote(key), fallback: typedValue(unquote(fallback), type, 'fallback value') };
    },
  },
  {
    pattern: new RegExp(`^a context containing a key ${STR}, with type ${STR} and with value ${STR}$`),
    run(s, key, type, value) {
      const t = unquote(type);
      if (!CONTEXT_TYPES.has(t)) throw new StepError(`unsupported context value type ${JSON.stringify(t)}`);
      setContextValue(s, unquote(key), typedValue(unquote(value), t, `context value of ${JSON.stringify(unquote(key))}`));
    },
  },
  {
    pattern: new RegExp(`^a context containing a targeting key with value ${STR}$`),
    run(s, value) {
      setContextValue(s, 'targetingKey', unquote(value));
    },
  },
  {
    pattern: new RegExp(`^a context containing a nested property with outer key ${STR} and inner key ${STR}, with value ${STR}$`),
    run(s, outer, inner, value) {
      const o = unquote(outer);
      const prev = s.context[o];
      const base = prev !== null && typeof prev === 'object' && !Array.isArray(prev) ? prev : {};
      setContextValue(s, o, { ...base, [unquote(inner)]: unquote(value) });
    },
  },
  {
    pattern: /^the flag was evaluated with details$/,
    async run(s) {
      if (!s.flag) throw new StepError('no flag: a "a <Type>-flag with key ..." step must come first');
      const { type, key, fallback } = s.flag;
      const first = exchanges.length;
      let d;
      switch (type) {
        case 'Boolean':
          d = await s.client.getBooleanDetails(key, fallback, s.context);
          break;
        case 'String':
          d = await s.client.getStringDetails(key, fallback, s.context);
          break;
        case 'Integer':
        case 'Float':
          d = await s.client.getNumberDetails(key, fallback, s.context);
          break;
        case 'Object':
          d = await s.client.getObjectDetails(key, fallback, s.context);
          break;
      }
      s.evaluation = exchanges.slice(first);
      s.details = valueLessAnswer(s, d) ?? d;
    },
  },
  {
    pattern: new RegExp(`^the resolved details value should be ${STR}$`),
    run(s, value) {
      const d = requireDetails(s);
      const want = typedValue(unquote(value), s.flag.type, 'expected value');
      expect(sameValue(d.value, want, s.flag.type), `value ${show(d.value)}, want ${show(want)}`);
    },
  },
  {
    pattern: new RegExp(`^the reason should be ${STR}$`),
    run(s, reason) {
      const d = requireDetails(s);
      const want = unquote(reason);
      if (!REASONS.has(want)) throw new StepError(`${JSON.stringify(want)} is not an OpenFeature resolution reason`);
      expect(d.reason === want, `reason ${show(d.reason)}, want ${show(want)}`);
    },
  },
  {
    pattern: new RegExp(`^the error-code should be ${STR}$`),
    run(s, code) {
      const d = requireDetails(s);
      const want = unquote(code);
      if (!ERROR_CODES.has(want)) throw new StepError(`${JSON.stringify(want)} is not an OpenFeature error code`);
      expect(d.errorCode === want, `errorCode ${show(d.errorCode)}, want ${show(want)}`);
    },
  },
  {
    pattern: /^the resolved metadata should contain$/,
    needsTable: true,
    run(s, table) {
      const d = requireDetails(s);
      const [header, ...rows] = table;
      const col = Object.fromEntries((header ?? []).map((name, i) => [name, i]));
      for (const name of ['key', 'metadata_type', 'value']) {
        if (!(name in col)) throw new StepError(`metadata table has no "${name}" column (columns: ${show(header)})`);
      }
      const metadata = d.flagMetadata ?? {};
      const problems = [];
      for (const row of rows) {
        const key = row[col.key];
        const type = row[col.metadata_type];
        const want = typedValue(row[col.value], type, `metadata ${JSON.stringify(key)}`);
        if (!Object.hasOwn(metadata, key)) problems.push(`${key} missing, want ${show(want)}`);
        else if (!sameValue(metadata[key], want, type)) problems.push(`${key}=${show(metadata[key])}, want ${show(want)} (${type})`);
      }
      expect(problems.length === 0, `metadata ${problems.join('; ')}; got ${show(metadata)}`);
    },
  },
  {
    pattern: /^the resolved metadata is empty$/,
    run(s) {
      const d = requireDetails(s);
      const metadata = d.flagMetadata ?? {};
      expect(Object.keys(metadata).length === 0, `metadata ${show(metadata)}, want {}`);
    },
  },
];

// @openfeature/ofrep-provider 0.1.3 (the only published version) predates OFREP's value-less success
// answers (`200 {"key":..,"reason":"DISABLED"}`: "use the code default"): it requires a `value` member
// and reports such an answer as a GENERAL error. When the wire shows exactly that case, the details
// are rebuilt the way the OFREP specification defines them (value = the caller's fallback, reason,
// variant and metadata from the answer), so the scenario checks the server's answer rather than the
// provider's gap. Any other GENERAL error is left as it is.
function valueLessAnswer(s, d) {
  if (d.errorCode !== ErrorCode.GENERAL || !/does not match the expected format/.test(d.errorMessage ?? '')) return undefined;
  const ex = s.evaluation.at(-1);
  if (!ex || s.evaluation.length !== 1 || ex.status !== 200) return undefined;
  let wire;
  try {
    wire = JSON.parse(ex.resBody);
  } catch {
    return undefined;
  }
  if (wire === null || typeof wire !== 'object' || Array.isArray(wire)) return undefined;
  if ('value' in wire || 'errorCode' in wire || wire.key !== s.flag.key || typeof wire.reason !== 'string') return undefined;
  const metadata = wire.metadata !== null && typeof wire.metadata === 'object' ? wire.metadata : {};
  s.notes.push(`value-less OFREP answer ${ex.resBody} read from the wire (ofrep-provider 0.1.3 reports it as a GENERAL error)`);
  return {
    flagKey: s.flag.key,
    value: s.flag.fallback,
    variant: wire.variant,
    reason: wire.reason,
    flagMetadata: Object.fromEntries(Object.entries(metadata).filter(([, v]) => ['string', 'number', 'boolean'].includes(typeof v))),
  };
}

function matchStep(text) {
  const hits = [];
  for (const def of stepDefinitions) {
    const m = def.pattern.exec(text);
    if (m) hits.push({ def, args: m.slice(1) });
  }
  return hits;
}

// ---- features -> pickles ------------------------------------------------------------------------
// For scenario-outline pickles: the example row they came from, as "name=value, ..." text.
function exampleRows(gherkinDocument) {
  const rows = new Map();
  const visit = (children) => {
    for (const child of children ?? []) {
      if (child.rule) visit(child.rule.children);
      for (const examples of child.scenario?.examples ?? []) {
        const names = (examples.tableHeader?.cells ?? []).map((c) => c.value);
        for (const row of examples.tableBody ?? []) {
          rows.set(row.id, row.cells.map((c, i) => `${names[i]}=${c.value}`).join(', '));
        }
      }
    }
  };
  visit(gherkinDocument.feature?.children);
  return rows;
}

function loadScenarios() {
  const newId = IdGenerator.incrementing();
  const scenarios = [];
  let total = 0;
  for (const file of featureFiles) {
    const source = readFileSync(join(featureDir, file), 'utf8');
    let document;
    try {
      document = new Parser(new AstBuilder(newId), new GherkinClassicTokenMatcher()).parse(source);
    } catch (err) {
      const errors = err.errors ?? [err];
      notOk(file, `does not parse: ${errors.map((e) => e.message).join('; ')}`);
      continue;
    }
    const rows = exampleRows(document);
    const pickles = compile(document, file, newId);
    total += pickles.length;
    for (const pickle of pickles) {
      if (!tagFilter.evaluate(pickle.tags.map((t) => t.name))) continue;
      const example = pickle.astNodeIds.length > 1 ? rows.get(pickle.astNodeIds.at(-1)) : undefined;
      const line = pickle.location?.line;
      scenarios.push({ pickle, title: `${file}:${line} ${pickle.name}${example ? ` [${example}]` : ''}` });
    }
  }
  return { scenarios, total };
}

// ---- running -------------------------------------------------------------------------------------
async function runScenario({ pickle, title }) {
  const s = { client: undefined, flag: undefined, context: {}, details: undefined, evaluation: [], notes: [] };
  exchanges = [];
  for (const step of pickle.steps) {
    const hits = matchStep(step.text);
    if (hits.length === 0) return notOk(title, `undefined step "${step.text}"`);
    if (hits.length > 1) {
      return notOk(title, `ambiguous step "${step.text}" (matches ${hits.map((h) => h.def.pattern).join(' and ')})`);
    }
    const [{ def, args }] = hits;
    const table = step.argument?.dataTable?.rows.map((r) => r.cells.map((c) => c.value));
    if (Boolean(def.needsTable) !== Boolean(table)) {
      return notOk(title, `step "${step.text}" ${def.needsTable ? 'needs a data table' : 'takes no data table'}`);
    }
    try {
      await def.run(s, ...args, ...(table ? [table] : []));
    } catch (err) {
      const what =
        err instanceof StepFailure
          ? err.message
          : err instanceof StepError
            ? `cannot run: ${err.message}`
            : `unexpected exception: ${err && err.stack ? err.stack : err}`;
      const details = s.details
        ? `; details ${show({ value: s.details.value, variant: s.details.variant, reason: s.details.reason, errorCode: s.details.errorCode, errorMessage: s.details.errorMessage, flagMetadata: s.details.flagMetadata })}`
        : '';
      const http = s.evaluation.length ? `; HTTP ${s.evaluation.map(describeExchange).join(' | ')}` : '';
      const notes = s.notes.length ? `; note: ${s.notes.join('; ')}` : '';
      return notOk(title, `step "${step.text}": ${what}${details}${http}${notes}`);
    }
  }
  ok(`${title}${s.notes.length ? ` # ${s.notes.join('; ')}` : ''}`);
}

async function main() {
  const { scenarios, total } = loadScenarios();
  comment(`${basename(featureDir)}: ${featureFiles.length} feature files, ${total} scenarios, ${scenarios.length} selected by ${JSON.stringify(tagExpression)}`);
  if (scenarios.length === 0) {
    notOk('flagd_testbed', 'no scenario selected');
    return;
  }
  await OpenFeature.setProviderAndWait(new OFREPProvider({ baseUrl, fetchImplementation: recordingFetch }));
  for (const scenario of scenarios) await runScenario(scenario);
  await OpenFeature.close();
}

main()
  .catch((err) => notOk('flagd_testbed', `unexpected exception: ${err && err.stack ? err.stack : err}`))
  .finally(finish);
