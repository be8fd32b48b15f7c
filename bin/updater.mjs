#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=1
// The updater's command (`updater serve | check | update | …`): runs the build, dist/updater.js,
// with plain node. `npm run build` makes it (npm start and npm test build first).
// The flags keep a small device's memory low (docs/performance.md, "Boot and idle"): a young
// generation of 1 MB semi-spaces instead of 16 MB, and two malloc arenas instead of one per
// thread. deploy/updater.service and deploy/Dockerfile start node with the same ones
// (test/launch.test.ts checks that the three agree).
// On a node older than Node 24 it stops first, with one sentence saying how to get Node 24.
import './check-node.cjs';
import { existsSync } from 'node:fs';

const entry = new URL('../dist/updater.js', import.meta.url);
if (!existsSync(entry)) {
  console.error(`dune-updater is not built (no ${entry.pathname}): run \`npm run build\` in ${new URL('..', import.meta.url).pathname}`);
  process.exit(3);
}
await import(entry.href);
