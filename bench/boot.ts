/**
 * Boot, as on a device: the build (`npm run build`, started by bin/updater.mjs with its flags, as
 * the systemd unit does) with a realistic configuration (one container and one app component,
 * checks against a local stand-in for GitHub) and 10 000 runs in the journal: spawn → `/healthz`
 * answers with recovery done, against the same start on an empty journal, measured in the same
 * run; and, when a Node 20 is on the machine, the same build started by it in the same rounds
 * (bench/other-node.ts), so a figure taken on a busy machine can still be compared. The helpers
 * here also serve the idle-memory bench (bench/idle.ts).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { openDatabase } from '../src/journal/database.js';
import { Journal } from '../src/journal/journal.js';
import { startFakeGitHub, type FakeGitHub } from '../src/demo/local-github.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { buildDist } from '../scripts/build.js';
import { cleanup, tempDir } from '../test/support/harness.js';
import { freePort } from '../test/support/testbed.js';
import { findNode, packageFor } from './other-node.js';
import { fmt, verdict, type Section } from './util.js';

const LAUNCHER = join(PACKAGE_ROOT, 'bin', 'updater.mjs');
const RUNS = 10_000;
const ROUNDS = 5;

export function fillJournal(dataDir: string, runs: number): void {
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
export function writeDevice(dir: string, github: FakeGitHub, port: number): void {
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

export interface Booted {
  child: ChildProcess;
  readyMs: number;
  /** Resolves when the log says the boot check is done. */
  checked: Promise<void>;
  stop(): Promise<void>;
}

export async function boot(cwd: string, port: number, command: string[], env: NodeJS.ProcessEnv = {}): Promise<Booted> {
  const t0 = performance.now();
  const child = spawn(command[0]!, command.slice(1), { cwd, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, UPDATER_LOG_LEVEL: 'info', ...env } });
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
    const node20 = findNode(20);
    const pkg20 = node20 ? packageFor(node20, join(empty, 'package-node20')) : 'no Node 20 on this machine';
    // dist/ run directly: the launcher refuses Node 20. Its settings are given as bin/updater.mjs's line has them.
    const built20 = node20 && typeof pkg20 !== 'string' ? [node20, '--max-semi-space-size=1', join(pkg20.dir, 'dist', 'updater.js'), 'serve'] : null;
    await (await boot(empty, port, built)).stop(); // the page cache warm, as on a device's restart
    if (built20) await (await boot(full, port, built20, { MALLOC_ARENA_MAX: '2' })).stop();
    const fullRuns: number[] = [];
    const emptyRuns: number[] = [];
    const node20Runs: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const e = await boot(empty, port, built);
      emptyRuns.push(e.readyMs);
      await e.stop();
      const f = await boot(full, port, built);
      fullRuns.push(f.readyMs);
      await f.stop();
      if (built20) {
        const o = await boot(full, port, built20, { MALLOC_ARENA_MAX: '2' });
        node20Runs.push(o.readyMs);
        await o.stop();
      }
    }
    const f = median(fullRuns);
    const e = median(emptyRuns);
    const v20 = node20 ? spawnSync(node20, ['--version'], { encoding: 'utf8' }).stdout.trim() : '';
    return {
      title: `Boot: ${RUNS.toLocaleString('en')} runs (${(RUNS * 6).toLocaleString('en')} transitions) in the journal`,
      rows: [
        [`boot to ready (median of ${ROUNDS})`, `${fmt(f, 0)} ms`, `${fmt(e, 0)} ms (empty journal)`, fmt(f / e, 2), '≤ 1000 ms', verdict(f <= 1000)],
      ],
      notes: [
        `The service: \`bin/updater.mjs serve\` on ${process.version}, i.e. the build (dist/, \`npm run build\`) run by plain node with the flags the systemd unit uses (\`--max-semi-space-size=1\`, \`MALLOC_ARENA_MAX=2\`), configured with one container and one app component, checks on (the boot check asks a local stand-in for GitHub). Ready = \`GET /healthz\` answers with recovery done, timed from spawning it; the files are in the page cache, as on a device's restart.`,
        `Boot times (10k runs): ${fullRuns.map((x) => `${fmt(x, 0)} ms`).join(', ')}; empty journal: ${emptyRuns.map((x) => `${fmt(x, 0)} ms`).join(', ')}. Load average while measuring: ${loadavg().map((x) => x.toFixed(1)).join(' ')} (2 cores).`,
        built20
          ? `The same build on ${v20} (${node20}, dist/ run directly with the same settings and a better-sqlite3 compiled for it), 10k runs, in the same rounds: ${node20Runs.map((x) => `${fmt(x, 0)} ms`).join(', ')} (median ${fmt(median(node20Runs), 0)} ms).`
          : `Node 20: not measured (${typeof pkg20 === 'string' ? pkg20 : 'unavailable'}).`,
        'The journal\'s size does not show in the boot time: recovery reads only unfinished runs, through an index.',
        'Its memory once idle is the next section ("Idle memory").',
      ],
    };
  } finally {
    await github.close();
    cleanup(full);
    cleanup(empty);
  }
}
