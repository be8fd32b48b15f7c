/**
 * A real process running a real run, for the crash matrix: `crash-child.ts ROOT start VERSION`
 * or `crash-child.ts ROOT recover`. UPDATER_FAULT (see src/engine/faults.ts) makes it SIGKILL
 * itself at a named point. Prints the run as JSON on its last line.
 */
import { openHarness } from './harness.js';

const [root, action, version] = process.argv.slice(2);
if (!root || !action) {
  console.error('usage: crash-child.ts ROOT start VERSION | recover');
  process.exit(64);
}
const h = openHarness(root, { stepDelayMs: Number(process.env.STEP_DELAY_MS ?? 0) });
if (action === 'start') {
  const { runId } = await h.engine.startRun('dir', { version: version ?? null });
  const run = await h.engine.waitForRun(runId);
  console.log(JSON.stringify(run));
} else {
  const runs = await h.engine.recover();
  console.log(JSON.stringify(runs));
}
h.close();
