// TAP-like reporting shared by the Node test clients: `ok - ...` / `not ok - ...: details` lines,
// `# ...` comments, a final `N passed, M failed` with exit status 1 on any failure, and a
// watchdog that fails the run if it hangs.
import { inspect } from 'node:util';

export const show = (v) => inspect(v, { depth: 6, breakLength: Infinity, compact: true });

export function createReporter(name, timeoutMs) {
  let passed = 0;
  let failed = 0;
  const r = {
    ok(description) {
      passed++;
      process.stdout.write(`ok - ${description}\n`);
    },
    notOk(description, details) {
      failed++;
      process.stdout.write(`not ok - ${description}: ${details}\n`);
    },
    comment(text) {
      process.stdout.write(`# ${text}\n`);
    },
    finish() {
      process.stdout.write(`${passed} passed, ${failed} failed\n`);
      process.exitCode = failed ? 1 : 0;
    },
  };
  const watchdog = setTimeout(() => {
    r.notOk(name, `timed out after ${timeoutMs / 1000}s (server hanging?)`);
    r.finish();
    process.exit(1);
  }, timeoutMs);
  watchdog.unref();
  return r;
}
