/**
 * The updater updating itself, end to end (test/support/self-world.ts): releases packaged by
 * `npm run package` from this build, installed by install.sh, run by the real launch under a plain
 * restart loop, releases from the local GitHub stand-in, requests over REST.
 *
 * - request → the new release answering: POST of 9.2.0 on 9.1.0, until /healthz answers 9.2.0
 *   with a writable journal and the run has ended `succeeded`;
 * - request → back on the old release after a broken one: POST of a 9.3.0 that exits at once
 *   (launch's defaults: given up at its 4th start), until the run has ended `rolled_back` and
 *   9.1.0 answers again.
 * Baseline, in the same worlds: the updater restarted by its supervisor (SIGTERM to the running
 * release → /healthz answers again from a new process): a self-update is at least one such
 * restart, a failed one four starts and a restart of the old release.
 */
import { loadavg } from 'node:os';
import { packageSelfReleases, selfWorld, sleep, type SelfWorld } from '../test/support/self-world.js';
import { cleanup, tempDir } from '../test/support/harness.js';
import { fmt, percentile, type Section } from './util.js';

const ROUNDS = 3;
const median = (v: number[]) => percentile(v, 50);
const s = (ms: number) => `${fmt(ms / 1000, 2)} s`;

async function restartTime(w: SelfWorld, version: string): Promise<number> {
  const [pid] = w.releaseProcesses();
  if (!pid) throw new Error('no updater process to restart');
  const t0 = performance.now();
  process.kill(pid, 'SIGTERM');
  for (;;) {
    const now = w.releaseProcesses();
    if (now.length === 1 && now[0] !== pid) {
      await w.waitVersion(version);
      return performance.now() - t0;
    }
    await sleep(20);
  }
}

export async function benchSelfUpdate(): Promise<Section> {
  const dir = tempDir('updater-bench-self-');
  const load0 = loadavg()[0]!;
  try {
    await packageSelfReleases(dir);
    const good: number[] = [];
    const broken: number[] = [];
    const restarts: number[] = [];
    const handOver: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const w = await selfWorld({ releasesDir: dir, supervisor: 'loop', variant: 'broken' });
      try {
        await w.waitVersion('9.1.0');
        restarts.push(await restartTime(w, '9.1.0'));
        const [old] = w.releaseProcesses();
        const t0 = performance.now();
        const runId = await w.update('9.2.0');
        // The old release's exit: the hand-over to the supervisor.
        while (w.releaseProcesses().includes(old!)) await sleep(10);
        handOver.push(performance.now() - t0);
        await w.waitVersion('9.2.0');
        const run = await w.waitRun(runId);
        if (run.result !== 'succeeded') throw new Error(`the good update ended ${run.result}: ${run.message}`);
        good.push(performance.now() - t0);
        restarts.push(await restartTime(w, '9.2.0'));
        const t1 = performance.now();
        const bad = await w.waitRun(await w.update('9.3.0'));
        if (bad.result !== 'rolled_back') throw new Error(`the broken update ended ${bad.result}: ${bad.message}`);
        await w.waitVersion('9.2.0');
        broken.push(performance.now() - t1);
      } finally {
        await w.close();
      }
    }
    const base = median(restarts);
    const row = (figure: string, values: number[]) => [figure, s(median(values)), `${s(base)} (the updater restarted by its supervisor)`, fmt(median(values) / base, 2), '—', ''];
    return {
      title: `The updater updating itself: request → new release answering, and back after a broken one (${ROUNDS} rounds)`,
      rows: [row('request → new release answering, run succeeded (median)', good), row('request → back on the old release after one that exits at once, run rolled_back (median)', broken)],
      notes: [
        'Each round is a fresh install root (9.1.0 installed by its install.sh) under `ROOT/launch` in a plain restart loop (0.2 s between restarts), releases from the local GitHub stand-in on loopback. Times are the bench\'s clock, from the POST to what a client sees (/healthz and the run).',
        `Good updates: ${good.map(s).join(', ')}; of which request → the old release gone (validate's download and sha256, extraction, trial file, links, hand-over): ${handOver.map(s).join(', ')}. The rest is the new release starting: node and the bundle, the journal copy, migrations, listening, its own check.`,
        `Broken releases: ${broken.map(s).join(', ')}: three starts of 9.3.0 that exit at once, launch giving it up at the 4th start (links and journal back), 9.2.0 starting and ending the run.`,
        `Baseline, restarts: ${restarts.map(s).join(', ')}.`,
        'No goal was set for these; they are the figures a device owner sees. A release that starts but never verifies itself is given up after launch\'s trial time (120 s by default), not after a number of starts.',
        `Load average (1 min) ${fmt(load0, 2)} before, ${fmt(loadavg()[0]!, 2)} after, on this machine.`,
      ],
    };
  } finally {
    cleanup(dir);
  }
}
