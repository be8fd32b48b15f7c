/**
 * Reads under load, as a dashboard, the frontend and scripts make them at once: 200 concurrent
 * `GET /api/components` against the build (`bin/updater.mjs serve`) with three `command`-managed
 * app components whose status command is the demo's (a pid file and `kill -0`), beside 200
 * concurrent `GET /api/runs` (50 runs of a 200-run journal: no service is asked) as the baseline.
 * Each burst starts more than 2 s after the previous one, so every components burst finds no
 * fresh answer and pays for one status command per component (the worst case); the status
 * commands log themselves, so the note counts what ran.
 */
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { openDatabase } from '../src/journal/database.js';
import { Journal } from '../src/journal/journal.js';
import { startFakeGitHub } from '../src/demo/local-github.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { buildDist } from '../scripts/build.js';
import { cleanup, tempDir } from '../test/support/harness.js';
import { freePort } from '../test/support/testbed.js';
import { fmt, percentile, type Section } from './util.js';

const LAUNCHER = join(PACKAGE_ROOT, 'bin', 'updater.mjs');
const CONCURRENT = 200;
const ROUNDS = 5;
const NAMES = ['core', 'remote', 'scheduler'];

const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

function fillJournal(dataDir: string, runs: number): void {
  mkdirSync(dataDir, { recursive: true });
  const db = openDatabase(join(dataDir, 'updater.db'));
  const j = new Journal(db);
  db.transaction(() => {
    for (let i = 0; i < runs; i++) {
      const component = NAMES[i % NAMES.length]!;
      const runId = j.createRun({ component, kind: 'app', mode: 'update', requestedVersion: null, fromVersion: '1.0.0', dryRun: false, machineVersion: 1, snapshot: () => '{}' });
      for (const to of ['discover', 'validate', 'backup', 'apply', 'verify', 'succeeded']) {
        j.commitTransition({ runId, to, event: 'bench', message: `step ${to}`, level: 'info', snapshot: '{}', fromVersion: '1.0.0', toVersion: '1.1.0', recoveries: 0, result: to === 'succeeded' ? 'succeeded' : null });
      }
    }
  })();
  db.close();
}

/** The latency (ms) of each of `n` concurrent GETs of `url`, all started at once. */
async function burst(url: string, n: number): Promise<number[]> {
  return Promise.all(
    Array.from({ length: n }, async () => {
      const t0 = performance.now();
      const r = await fetch(url);
      await r.arrayBuffer();
      if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
      return performance.now() - t0;
    }),
  );
}

export async function benchReads(): Promise<Section> {
  await buildDist();
  const github = await startFakeGitHub();
  const dir = tempDir('updater-bench-reads-');
  const port = await freePort();
  const counter = join(dir, 'status.count');
  const components = NAMES.map((name) => {
    mkdirSync(join(dir, name));
    writeFileSync(join(dir, name, 'VERSION'), '1.0.0\n');
    const pid = q(join(dir, `${name}.pid`));
    return {
      name,
      kind: 'app',
      repo: `acme/${name}`,
      installPath: join(dir, name),
      service: {
        manager: 'command',
        start: `sleep 600 >/dev/null 2>&1 </dev/null & echo $! > ${pid}`,
        stop: `if [ -f ${pid} ]; then kill "$(cat ${pid})" 2>/dev/null; rm -f ${pid}; fi; true`,
        status: `echo ${name} >> ${q(counter)}; [ -f ${pid} ] && kill -0 "$(cat ${pid})" 2>/dev/null`,
      },
    };
  });
  for (const c of components) execFileSync('sh', ['-c', c.service.start], { stdio: 'ignore' });
  writeFileSync(
    join(dir, 'updater.yaml'),
    JSON.stringify({ server: { port }, dataDir: './data', checkIntervalHours: 0, github: { apiUrl: github.apiUrl, rawUrl: github.rawUrl }, components }, null, 2),
  );
  fillJournal(join(dir, 'data'), 200);
  const child = spawn(LAUNCHER, ['serve'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, UPDATER_LOG_LEVEL: 'warn' } });
  const base = `http://127.0.0.1:${port}`;
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`the updater exited (${child.exitCode}) before it was ready`);
      const ready = await fetch(`${base}/healthz`).then(
        async (r) => r.ok && !((await r.json()) as { recovering?: boolean }).recovering,
        () => false,
      );
      if (ready) break;
      await sleep(20);
    }
    // Warm-up: connections, JIT, the first status commands.
    await burst(`${base}/api/components`, CONCURRENT);
    await burst(`${base}/api/runs`, CONCURRENT);
    const lines = () => (existsSync(counter) ? readFileSync(counter, 'utf8').split('\n').filter(Boolean).length : 0);

    const comps: number[] = [];
    const runs: number[] = [];
    const warm: number[] = [];
    const commands: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      await sleep(2200); // no fresh answer left
      const before = lines();
      comps.push(...(await burst(`${base}/api/components`, CONCURRENT)));
      commands.push(lines() - before);
      // A second burst at once: within the 2 s, answered from what the first one learnt.
      warm.push(...(await burst(`${base}/api/components`, CONCURRENT)));
      await sleep(2200);
      runs.push(...(await burst(`${base}/api/runs`, CONCURRENT)));
    }
    const p = (xs: number[], n: number) => percentile(xs, n);
    const ratio = (a: number, b: number) => fmt(a / b, 2);
    return {
      title: `Reads: ${CONCURRENT} concurrent GET /api/components, ${NAMES.length} command-managed components`,
      rows: [
        ['GET /api/components p50', `${fmt(p(comps, 50))} ms`, `${fmt(p(runs, 50))} ms (GET /api/runs)`, ratio(p(comps, 50), p(runs, 50)), '-', '-'],
        ['GET /api/components p99', `${fmt(p(comps, 99))} ms`, `${fmt(p(runs, 99))} ms (GET /api/runs)`, ratio(p(comps, 99), p(runs, 99)), '-', '-'],
      ],
      notes: [
        `${ROUNDS} bursts of each, ${ROUNDS * CONCURRENT} samples each; latency from the burst's start to each answer's last byte. Client and service share the machine (load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}, 2 cores).`,
        `Status commands run per burst of ${CONCURRENT} (${NAMES.length} components): ${commands.join(', ')}. Each status command is the demo's (\`[ -f PID ] && kill -0 "$(cat PID)"\`), run by sh.`,
        `A second burst right after each (answers under 2 s old, no status command): p50 ${fmt(p(warm, 50))} ms, p99 ${fmt(p(warm, 99))} ms.`,
        'Before the cache (commit e9fb91c: every request ran every status command), this bench measured GET /api/components p50 4588.7 ms, p99 7587.6 ms against GET /api/runs p50 209.3 ms, p99 687.2 ms, with 600 status commands per burst (2026-12-02, same machine, load average 3.3 from other work).',
      ],
    };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode === null ? child.once('exit', r) : r(null)));
    for (const c of components) execFileSync('sh', ['-c', c.service.stop], { stdio: 'ignore' });
    await github.close();
    cleanup(dir);
  }
}
