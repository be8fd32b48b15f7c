#!/usr/bin/env node
// The whole test suite: every test/**/*.test.ts through node's test runner with tsx.
// Node 20's runner takes no globs, so the files are listed here. Extra arguments are passed
// on (e.g. `npm test -- --test-name-pattern crash`).
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const files = [];
const walk = (dir) => {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory() && e.name !== 'node_modules') walk(join(dir, e.name));
    else if (e.name.endsWith('.test.ts')) files.push(relative(root, join(dir, e.name)));
  }
};
walk(join(root, 'test'));
files.sort();
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', ...process.argv.slice(2), ...files], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
