/**
 * Boot and idle, as on a device: the build (`npm run build`, started by bin/updater.mjs with its
 * flags, as the systemd unit does) with a realistic configuration (one container and one app
 * component, checks against a local stand-in for GitHub) and 10 000 runs in the journal.
 * - boot to ready: spawn → `/healthz` answers with recovery done, against the same start on an
 *   empty journal, measured in the same run;
 * - idle RSS: 60 s after the boot check is done, no client connected (V8's memory reducer has run
 *   by then; the curve from 5 s is in the notes), against a bare node process; and, as notes, after
 *   a client has looked (components, dashboard) and the same service run from the sources through
 *   tsx (what it ran as before the build existed).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { openDatabase } from '../src/journal/database.js';
import { Journal } from '../src/journal/journal.js';
import { startFakeGitHub, type FakeGitHub } from '../src/demo/local-github.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { buildDist } from '../scripts/build.js';
import { cleanup, tempDir, TSX_IMPORT } from '../test/support/harness.js';
import { freePort } from '../test/support/testbed.js';
import { fmt, verdict, type Section } from './util.js';

const LAUNCHER = join(PACKAGE_ROOT, 'bin', 'updater.mjs');
const SOURCE_CLI = join(PACKAGE_ROOT, 'src', 'cli.ts');
const RUNS = 10_000;
const ROUNDS = 5;

function fillJournal(dataDir: string, runs: number): void {
  mkdirSync(dataDir, { recursive: true });
  const db = openDatabase(join(dataDir, 'updater.db'));
  const j = new Journal(db);
  const snapshot = JSON.stringify({ machineVersion: 1, state: 'succeeded', context: { pad: 'x'.repeat(400) } });
  db.pragma('synchronous = OFF'); // filling only; the updater sets FULL again on open
  db.transaction(() => {
    for (let i = 0; i < runs; i++) {
      const component = i % 2 ? 'web' : 'core';
      const runId = j.createRun({ component, kind: i % 2 ? 'container' : 'app', mode: 'update', requestedVersion: null, fromVersion: '1.0.0', dryRun: false, machineVersion: 1, snapshot: () => snapshot });
      for (const [k, to] of ['discover', 'validate', 'backup', 'apply', 'verify', 'succeeded'].entries()) {
        j.commitTransition({ runId, to, event: 'bench', message: `step ${k}`, level: 'info', snapshot, fromVersion: '1.0.0', toVersion: '1.1.0', recoveries: 0, result: to === 'succeeded' ? 'succeeded' : null });
      }
    }
  })();
  db.close();
}

/** A device's configuration: a compose service and an installed app, both on 1.0.0, 1.1.0 offered. */
function writeDevice(dir: string, github: FakeGitHub, port: number): void {
  mkdirSync(join(dir, 'compose'), { recursive: true });
  mkdirSync(join(dir, 'core'), { recursive: true });
  writeFileSync(join(dir, 'compose', 'docker-compose.yml'), 'services:\n  web:\n    image: 127.0.0.1:5001/web:1.0.0\n    network_mode: host\n');
  writeFileSync(join(dir, 'core', 'VERSION'), '1.0.0\n');
  writeFileSync(
    join(dir, 'updater.yaml'),
    [
      `server: {port: ${port}}`,
      'dataDir: ./data',
      'checkIntervalHours: 24',
      `github: {apiUrl: ${github.apiUrl}, rawUrl: ${github.rawUrl}}`,
      'components:',
      `  - {name: web, kind: container, repo: acme/web, composeFile: ${join(dir, 'compose', 'docker-compose.yml')}, service: web}`,
      `  - {name: core, kind: app, repo: acme/core, installPath: ${join(dir, 'core')}, asset: "core-{version}.tar.gz",`,
      '     service: {manager: command, start: "true", stop: "true", status: "true"}}',
      '',
    ].join('\n'),
  );
}

interface Booted {
  child: ChildProcess;
  readyMs: number;
  /** Resolves when the log says the boot check is done. */
  checked: Promise<void>;
  stop(): Promise<void>;
}

async function boot(cwd: string, port: number, command: string[]): Promise<Booted> {
  const t0 = performance.now();
  const child = spawn(command[0]!, command.slice(1), { cwd, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, UPDATER_LOG_LEVEL: 'info' } });
  let out = '';
  const checked = new Promise<void>((resolve) => {
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('"msg":"boot check done"')) resolve();
    });
  });
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`updater exited (${code}) before it was ready:\n${out}`))));
  const ready = (async () => {
    for (;;) {
      try {
        const r = await fetch(`http://127.0.0.1:${port}/healthz`);
        const body = (await r.json()) as { recovering?: boolean };
        if (r.ok && !body.recovering) return;
      } catch {
        // not listening yet
      }
      await sleep(5);
    }
  })();
  await Promise.race([ready, exited]);
  const readyMs = performance.now() - t0;
  return {
    child,
    readyMs,
    checked: Promise.race([checked, exited]),
    stop: () =>
      new Promise<void>((resolve) => {
        child.removeAllListeners('exit');
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

const rssMB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
/** RSS at 5, 15, 30 and 60 s after now: [seconds, MB]. */
async function idleCurve(pid: number): Promise<Array<[number, number]>> {
  const out: Array<[number, number]> = [];
  let at = 0;
  for (const t of [5, 15, 30, 60]) {
    await sleep((t - at) * 1000);
    at = t;
    out.push([t, rssMB(pid)]);
  }
  return out;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function benchBoot(): Promise<Section> {
  await buildDist();
  const github = await startFakeGitHub();
  for (const repo of ['acme/web', 'acme/core']) {
    github.addRelease(repo, { tag: 'v1.0.0', body: 'first' });
    github.addRelease(repo, { tag: 'v1.1.0', body: 'second', assets: [{ name: 'core-1.1.0.tar.gz', content: 'x' }] });
  }
  const full = tempDir('updater-bench-');
  const empty = tempDir('updater-bench-');
  const port = await freePort();
  try {
    for (const dir of [full, empty]) writeDevice(dir, github, port);
    fillJournal(join(full, 'data'), RUNS);
    const built = [LAUNCHER, 'serve'];
    await (await boot(empty, port, built)).stop(); // the page cache warm, as on a device's restart
    const fullRuns: number[] = [];
    const emptyRuns: number[] = [];
    let idle: Array<[number, number]> = [];
    let afterClient = 0;
    for (let i = 0; i < ROUNDS; i++) {
      const e = await boot(empty, port, built);
      emptyRuns.push(e.readyMs);
      await e.stop();
      const f = await boot(full, port, built);
      fullRuns.push(f.readyMs);
      if (i === ROUNDS - 1) {
        await f.checked;
        idle = await idleCurve(f.child.pid!);
        for (const path of ['/api/components', '/', '/dashboard/app.js', '/api/runs?limit=50']) await (await fetch(`http://127.0.0.1:${port}${path}`)).arrayBuffer();
        await sleep(2000);
        afterClient = rssMB(f.child.pid!);
      }
      await f.stop();
    }
    const noFlags = await boot(full, port, [process.execPath, join(PACKAGE_ROOT, 'dist', 'updater.js'), 'serve']);
    await noFlags.checked;
    const noFlagsIdle = await idleCurve(noFlags.child.pid!);
    await noFlags.stop();

    const viaTsx = await boot(full, port, [process.execPath, '--import', TSX_IMPORT, SOURCE_CLI, 'serve']);
    await viaTsx.checked;
    const tsxIdle = (await idleCurve(viaTsx.child.pid!)).at(-1)![1];
    await viaTsx.stop();

    const bare = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    await sleep(2000);
    const bareRss = rssMB(bare.pid!);
    bare.kill();
    const steady = idle.at(-1)![1];
    const f = median(fullRuns);
    const e = median(emptyRuns);
    return {
      title: `Boot and idle: ${RUNS.toLocaleString('en')} runs (${(RUNS * 6).toLocaleString('en')} transitions) in the journal`,
      rows: [
        [`boot to ready (median of ${ROUNDS})`, `${fmt(f, 0)} ms`, `${fmt(e, 0)} ms (empty journal)`, fmt(f / e, 2), '≤ 1000 ms', verdict(f <= 1000)],
        ['idle RSS, 60 s after the boot check', `${fmt(steady, 1)} MB`, `${fmt(bareRss, 1)} MB (bare node process)`, fmt(steady / bareRss, 2), '≤ 80 MB', verdict(steady <= 80)],
      ],
      notes: [
        'The service: `bin/updater.mjs serve`, i.e. the build (dist/, `npm run build`) run by plain node with the flags the systemd unit uses (`--max-semi-space-size=1`, `MALLOC_ARENA_MAX=2`), configured with one container and one app component, checks on (the boot check asks a local stand-in for GitHub). Ready = `GET /healthz` answers with recovery done, timed from spawning it; the files are in the page cache, as on a device\'s restart.',
        `Boot times (10k runs): ${fullRuns.map((x) => `${fmt(x, 0)} ms`).join(', ')}; empty journal: ${emptyRuns.map((x) => `${fmt(x, 0)} ms`).join(', ')}. Load average while measuring: ${loadavg().map((x) => x.toFixed(1)).join(' ')} (2 cores).`,
        `Idle RSS after the boot check: ${idle.map(([t, mb]) => `${t} s ${fmt(mb, 1)} MB`).join(', ')} (V8's memory reducer runs some 8 s into idleness; the peak of the start is behind it by then).`,
        `After a client has looked (GET /api/components, which asks Docker and so loads dockerode, the dashboard, 50 runs): ${fmt(afterClient, 1)} MB.`,
        `The same build without the launcher's memory settings (plain \`node dist/updater.js\`): ${noFlagsIdle.map(([t, mb]) => `${t} s ${fmt(mb, 1)} MB`).join(', ')}. The settings matter while the service works (the young generation otherwise grows to 16 MB semi-spaces); idle, the memory reducer brings both close.`,
        `The same service run from the sources through tsx (as before the build): ${fmt(viaTsx.readyMs, 0)} ms to ready, ${fmt(tsxIdle, 1)} MB idle at 60 s.`,
        'The journal\'s size does not show in the boot time: recovery reads only unfinished runs, through an index.',
      ],
    };
  } finally {
    await github.close();
    cleanup(full);
    cleanup(empty);
  }
}
