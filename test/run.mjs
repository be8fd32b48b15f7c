#!/usr/bin/env node
// The whole test suite (the README's test command): brings up the test bed (test/env/: a
// private dockerd, a registry on 127.0.0.1:5001, a systemd container), installing its Debian
// packages first when they are missing and we are root, then runs every test/**/*.test.ts
// through node's test runner with tsx (files listed here, in a stable order, three at a time). It builds dist/
// first (scripts/build.ts). Extra arguments are passed on (e.g. `npm test -- --test-name-pattern crash`).
// NO_TESTBED=1 skips the bed (its tests then skip, or fail under CI=true).
// Everything runs on the node that runs this (Node 24, package.json's engines): the build and the
// test runner through process.execPath, and whatever they start by name (`node`, bin/updater.mjs's
// `#!/usr/bin/env node`, the test bed's scripts) through PATH, which gets this node's directory first.
import { readdirSync } from 'node:fs';
import { delimiter, dirname, join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
process.env.PATH = [dirname(process.execPath), process.env.PATH].filter(Boolean).join(delimiter);
const sh = (script) => spawnSync('bash', [join(root, 'test', 'env', script)], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] }).status;

// The build (dist/) first: the tests that start the updater as a process run what ships.
const built = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'scripts', 'build.ts')], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
if (built.status !== 0) {
  console.error('npm test: the build failed (scripts/build.ts); nothing was tested');
  process.exit(built.status ?? 1);
}

if (process.env.NO_TESTBED !== '1') {
  const isRoot = process.getuid?.() === 0;
  if (isRoot && sh('install.sh') !== 0) console.error('test bed: install failed; tests that need it will fail or skip');
  if (sh('up.sh') !== 0) console.error('test bed: not started; tests that need it will fail (CI) or skip');
}

const files = [];
const walk = (dir) => {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory() && e.name !== 'node_modules') walk(join(dir, e.name));
    else if (e.name.endsWith('.test.ts')) files.push(relative(root, join(dir, e.name)));
  }
};
walk(join(root, 'test'));
// Files run in parallel (each in its own process; they share nothing but the test bed, where each
// makes its own containers, units, ports and temp dirs). The longest go first, so that they do not
// start last and leave the others waiting: the crash matrices alone are about 8 of the 19 minutes
// a serial run takes. UPDATER_TEST_CONCURRENCY=1 runs them one after another.
const LONGEST_FIRST = ['container-crash', 'app-crash', 'faults', 'disk-full', 'image', 'dashboard', 'service', 'crash-matrix', 'self-crash', 'self-update', 'fleet-devices', 'fail-fast', 'app', 'container', 'cli-ops'];
const rank = (f) => {
  const i = LONGEST_FIRST.indexOf(f.replace(/^test\//, '').replace(/\.test\.ts$/, ''));
  return i < 0 ? LONGEST_FIRST.length : i;
};
files.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
const concurrency = Number(process.env.UPDATER_TEST_CONCURRENCY ?? 3);
if (!Number.isInteger(concurrency) || concurrency < 1) {
  console.error(`UPDATER_TEST_CONCURRENCY must be a whole number ≥ 1, not ${process.env.UPDATER_TEST_CONCURRENCY}`);
  process.exit(2);
}
// Files that take a shared resource away from the others run alone, after the rest: these remove
// the sample image from the test bed's engine (to make a run pull it), which another file's run
// may be using at that moment.
const ALONE = ['test/container.test.ts', 'test/faults.test.ts'];
const together = files.filter((f) => !ALONE.includes(f));
const alone = files.filter((f) => ALONE.includes(f));
const runTests = (list, n) => (list.length === 0 ? 0 : (spawnSync(process.execPath, ['--import', 'tsx', '--test', `--test-concurrency=${n}`, ...process.argv.slice(2), ...list], { cwd: root, stdio: 'inherit' }).status ?? 1));
const first = runTests(together, concurrency);
const second = runTests(alone, 1);
process.exit(first || second);
