// Oracle for Fledge's canary split: the arm flagd-core's `fractional` picks for a key when the
// bucketing key is salt + key and the weights are the arms' weights in parts per million.
//
// usage: node tests/node/split_oracle.mjs SALT ARM:PARTS[,ARM:PARTS...] < keys (one per line)
// prints one arm name per input line.
import { FlagdCore } from '@openfeature/flagd-core';
import { readFileSync } from 'node:fs';

const [salt, spec] = process.argv.slice(2);
if (salt === undefined || !spec) {
  console.error('usage: node tests/node/split_oracle.mjs SALT ARM:PARTS[,ARM:PARTS...] < keys');
  process.exit(2);
}
const arms = spec.split(',').map((s) => {
  const [name, parts] = s.split(':');
  return [name, Number(parts)];
});
const flag = {
  state: 'ENABLED',
  variants: Object.fromEntries(arms.map(([n]) => [n, n])),
  defaultVariant: arms[0][0],
  targeting: { fractional: [{ cat: [salt, { var: 'targetingKey' }] }, ...arms] },
};
const core = new FlagdCore();
core.setConfigurations(JSON.stringify({ flags: { split: flag } }));
const noop = { debug() {}, info() {}, warn() {}, error() {} };
const keys = readFileSync(0, 'utf8').split('\n').filter((k) => k.length > 0);
const out = keys.map((k) => core.resolveStringEvaluation('split', '', { targetingKey: k }, noop).value);
process.stdout.write(out.join('\n') + '\n');
