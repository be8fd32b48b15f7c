/**
 * What ships: bin/updater.mjs running the build in dist/. Tests that start the updater as a
 * process start this, so they test the bundle a device runs (test/run.mjs builds it first).
 * Importing this fails at once, with the fix, when dist/ is missing or older than the sources.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../src/paths.js';

export const LAUNCHER = join(PACKAGE_ROOT, 'bin', 'updater.mjs');
const BUILT = join(PACKAGE_ROOT, 'dist', 'updater.js');

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

if (!existsSync(BUILT)) throw new Error(`no build at ${BUILT}: run \`npm run build\` (npm test does it first)`);
const sources = Math.max(...['src', 'machines', 'scripts'].map((d) => newest(join(PACKAGE_ROOT, d))));
if (sources > statSync(BUILT).mtimeMs) throw new Error(`the build in dist/ is older than the sources: run \`npm run build\` (npm test does it first)`);
