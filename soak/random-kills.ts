/**
 * Random kills: real updater processes (the crash children of the drivers' crash matrices)
 * SIGKILLed at a random moment instead of at a named fault point, then a fresh process
 * recovers, and the world is checked exactly as test/container-crash.test.ts and
 * test/app-crash.test.ts check it.
 *
 * - Both kinds (container: the real engine, registry and compose of the test bed; app: the
 *   real systemd of the test bed), each with a good (1.1.0) and a bad (1.2.0, fails its
 *   health check) target, balanced and shuffled by the seeded PRNG.
 * - The delay is uniform in [0, window] from the child's spawn, window = the typical
 *   duration of an unkilled child of that kind and target (KILL_WINDOWS_MS, measured with
 *   `npm run soak -- measure`). So some kills land before the run exists (process start-up)
 *   and some after it ended ("finished before the kill").
 * - The kill is SIGKILL to the child's whole process group (as a power cut, or systemd killing
 *   the unit's cgroup, would): the updater and anything it spawned (docker compose, docker
 *   exec, esbuild). What the Docker daemon or systemd was already asked to do goes on.
 * - Each iteration has its own SQLite file (its run is run 1). The container world (compose
 *   project, fake GitHub) is reused, reset to 1.0.0 between iterations; an app world is built
 *   fresh for each iteration.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { probeBed, type Bed } from '../test/support/testbed.js';
import { containerWorld, type ContainerWorld } from '../test/support/container-world.js';
import { appWorld, leftovers, treeHash } from '../test/support/app-world.js';
import type { CrashWorld } from '../test/support/container-crash-child.js';
import type { AppCrashWorld } from '../test/support/app-crash-child.js';
import { runCrashChild } from '../test/support/crash-table.js';
import { TSX_IMPORT } from '../test/support/harness.js';
import { openDatabase } from '../src/journal/database.js';
import { Journal, type RunView } from '../src/journal/journal.js';
import { mulberry32 } from './rng.js';
import { minutes, table, today } from './docs.js';

export type Kind = 'container' | 'app';
export type Target = '1.1.0' | '1.2.0';

const SUPPORT = join(import.meta.dirname, '..', 'test', 'support');
const CHILD: Record<Kind, string> = {
  container: join(SUPPORT, 'container-crash-child.ts'),
  app: join(SUPPORT, 'app-crash-child.ts'),
};
const HEALTH_TIMEOUT_SECONDS = 3;
const APP_RELEASES = [{ version: '1.1.0', sha256: true }, { version: '1.2.0', behaviour: 'unhealthy' as const }];

/**
 * Typical spawn-to-exit duration of an unkilled child, per kind and target, measured on the
 * 2-core test machine with `npm run soak -- measure` (median of 3, on 2026-11-24: container 4.0 / 7.0 s, app
 * 5.4 / 9.4 s for good / bad, process start-up included).
 * Fixed here, not measured per run, so that a seed always gives the same schedule.
 */
export const KILL_WINDOWS_MS: Record<Kind, Record<Target, number>> = {
  container: { '1.1.0': 4000, '1.2.0': 7000 },
  app: { '1.1.0': 5400, '1.2.0': 9400 },
};

export interface Planned {
  i: number;
  kind: Kind;
  target: Target;
  delayMs: number;
}

/** Balanced kinds × targets, shuffled, each with a uniform delay in [0, window]: a pure function of the seed. */
export function killSchedule(seed: number, n: number): Planned[] {
  const rng = mulberry32(seed);
  const combos: Array<[Kind, Target]> = [['container', '1.1.0'], ['container', '1.2.0'], ['app', '1.1.0'], ['app', '1.2.0']];
  const list = Array.from({ length: n }, (_, i) => combos[i % combos.length]!);
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [list[i], list[j]] = [list[j]!, list[i]!];
  }
  return list.map(([kind, target], i) => ({ i: i + 1, kind, target, delayMs: Math.round(rng() * KILL_WINDOWS_MS[kind][target]) }));
}

export interface KillResult extends Planned {
  /** false: the child exited on its own before the delay elapsed. */
  killed: boolean;
  /** The run's `state` column right after the kill (or its end state when it finished first). */
  stateAtKill: string;
  outcome: string;
  /** The run's last message after recovery. */
  message: string;
  /** What resetting the reused container world took beyond `compose up -d` (a trace of the previous iteration). */
  resetNote: string;
  result: string | null;
  recoveries: number;
  consistent: boolean;
  reason: string;
  /** Files beside the compose file besides itself (informational; the container test does not check them). */
  stackLeftovers: string[];
  ms: number;
}

interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  killed: boolean;
  stderr: string;
  ms: number;
}

/** Runs a crash child (as runCrashChild does) in its own process group; SIGKILLs the group after delayMs unless it has exited. */
function childKilledAfter(script: string, world: unknown, args: string[], delayMs: number | null): Promise<ChildExit> {
  const env: NodeJS.ProcessEnv = { ...process.env, CRASH_WORLD: JSON.stringify(world) };
  delete env.UPDATER_FAULT;
  const t0 = Date.now();
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', TSX_IMPORT, script, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    let stderr = '';
    let killed = false;
    let exited = false;
    p.stderr.on('data', (b) => (stderr += b));
    const killGroup = () => {
      if (exited) return;
      killed = true;
      try {
        process.kill(-p.pid!, 'SIGKILL');
      } catch {
        p.kill('SIGKILL');
      }
    };
    const timer = delayMs === null ? null : setTimeout(killGroup, delayMs);
    const guard = setTimeout(killGroup, 120_000);
    p.on('exit', (code, signal) => {
      exited = true;
      if (timer) clearTimeout(timer);
      clearTimeout(guard);
      resolve({ code, signal, killed: killed && signal === 'SIGKILL', stderr, ms: Date.now() - t0 });
    });
  });
}

/** The run's state column as it is on disk now ('(no run)' if the process died before creating it). */
function stateOnDisk(dbPath: string): string {
  if (!existsSync(dbPath)) return '(no run)';
  let db;
  try {
    db = openDatabase(dbPath, { readonly: true });
  } catch {
    return '(no run)';
  }
  try {
    return new Journal(db).getRunRow(1)?.state ?? '(no run)';
  } catch {
    return '(no run)';
  } finally {
    db.close();
  }
}

function readRun(dbPath: string): RunView | undefined {
  if (!existsSync(dbPath)) return undefined;
  const db = openDatabase(dbPath);
  try {
    return new Journal(db).getRun(1);
  } finally {
    db.close();
  }
}

function chainBroken(run: RunView): string | null {
  const ts = run.transitions ?? [];
  for (let i = 1; i < ts.length; i++) if (ts[i]!.from !== ts[i - 1]!.to) return `transition ${ts[i]!.seq} starts at ${ts[i]!.from}, the previous one ended at ${ts[i - 1]!.to}`;
  return null;
}

async function healthVersion(port: number): Promise<string> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(5000) });
    return String(((await r.json()) as { version?: unknown }).version);
  } catch (error) {
    return `(no answer: ${(error as Error).message})`;
  }
}

async function waitHealth(port: number, version: string, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if ((await healthVersion(port)) === version) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

/** The reused container world: reset to 1.0.0 (original compose file, `compose up -d`, healthy, no backups). */
class ContainerBench {
  private constructor(readonly bed: Bed, readonly w: ContainerWorld, readonly original: string) {}

  static async open(bed: Bed): Promise<ContainerBench> {
    // containerWorld always names its compose dir `stack`, so every world on the bed would be
    // compose project "stack": a test running at the same time would recreate our container.
    // A project name of our own (inherited by the children and their compose calls) keeps apart.
    process.env.COMPOSE_PROJECT_NAME = `soakkills${process.pid}`;
    bed.env = { ...bed.env, COMPOSE_PROJECT_NAME: process.env.COMPOSE_PROJECT_NAME };
    const w = await containerWorld(bed, { healthTimeoutSeconds: HEALTH_TIMEOUT_SECONDS });
    w.journal.db.close();
    return new ContainerBench(bed, w, readFileSync(w.composeFile, 'utf8'));
  }

  /** Returns what it had to do beyond `compose up -d` (empty when that was enough). */
  async reset(): Promise<string> {
    writeFileSync(this.w.composeFile, this.original);
    const up = await this.w.compose('up', '-d');
    let note = '';
    if (up.code !== 0 || !(await waitHealth(this.w.port, '1.0.0', 20_000))) {
      // Something the killed or recovering process left makes `up -d` not enough: say what, then start clean.
      const ps = await this.w.compose('ps', '-a');
      note = `reset needed compose down: up -d exited ${up.code} (${up.stderr.trim().split('\n').at(-1)}); ps -a: ${ps.stdout.trim().split('\n').slice(2).join(' / ')}`;
      await this.w.compose('down', '--remove-orphans', '-t', '1');
      const again = await this.w.compose('up', '-d');
      if (again.code !== 0 || !(await waitHealth(this.w.port, '1.0.0', 30_000))) throw new Error(`reset: the sample did not come back at 1.0.0 (${note}; up after down exited ${again.code}: ${again.stderr.trim()})`);
    }
    for (const n of readdirSync(this.w.backupDir)) rmSync(join(this.w.backupDir, n), { recursive: true, force: true });
    for (const n of this.stackExtras()) rmSync(join(this.w.composeFile, '..', n), { recursive: true, force: true });
    return note;
  }

  stackExtras(): string[] {
    return readdirSync(join(this.w.composeFile, '..')).filter((n) => n !== 'docker-compose.yml');
  }

  world(dir: string): CrashWorld {
    const w = this.w;
    return { dir, composeFile: w.composeFile, backupDir: w.backupDir, port: w.port, apiUrl: w.gh.apiUrl, rawUrl: w.gh.rawUrl, dockerHost: this.bed.dockerHost, healthTimeoutSeconds: HEALTH_TIMEOUT_SECONDS };
  }

  close(): Promise<void> {
    return this.w.close().catch(() => undefined);
  }
}

async function containerIteration(c: ContainerBench, p: Planned, delay: number | null): Promise<KillResult> {
  const t0 = Date.now();
  const resetNote = await c.reset();
  const dir = join(c.w.dir, `it-${p.i}`);
  mkdirSync(dir, { recursive: true });
  const world = c.world(dir);
  const dbPath = join(dir, 'updater.db');
  const before = readFileSync(c.w.composeFile, 'utf8');
  const oldImage = await c.w.containerImage();

  const first = await childKilledAfter(CHILD.container, world, ['start', p.target], delay);
  const stateAtKill = stateOnDisk(dbPath);
  const second = await runCrashChild(CHILD.container, world, ['recover']);

  const problems: string[] = [];
  if (!first.killed && first.code !== 0) problems.push(`the first process failed on its own (${first.code ?? first.signal}): ${first.stderr.trim().slice(-300)}`);
  if (second.code !== 0) problems.push(`recovery failed (${second.code ?? second.signal}): ${second.stderr.trim().slice(-300)}`);
  const run = readRun(dbPath);
  const outcome = run?.state ?? '(no run)';
  if (run && run.result === null) problems.push(`the run is unfinished after recovery (${run.state})`);
  const after = readFileSync(c.w.composeFile, 'utf8');
  const image = await c.w.containerImage();
  const health = await healthVersion(c.w.port);
  if (outcome === 'succeeded') {
    if (after !== before.replace('sample:1.0.0"', `sample:${p.target}"`)) problems.push('compose file is not the old one with only the tag changed');
    if (image !== (await c.w.imageId(`${c.bed.registry}/sample:${p.target}`))) problems.push(`running image ${image} is not ${p.target}`);
    if (health !== p.target) problems.push(`health says ${health}, not ${p.target}`);
  } else {
    if (after !== before) problems.push('compose file not byte-identical to before');
    if (image !== oldImage) problems.push(`running image ${image} is not the old one ${oldImage}`);
    if (health !== '1.0.0') problems.push(`health says ${health}, not 1.0.0`);
  }
  if (run) {
    const broken = chainBroken(run);
    if (broken) problems.push(broken);
  }
  const stackLeftovers = c.stackExtras();
  rmSync(dir, { recursive: true, force: true });
  return { ...p, killed: first.killed, stateAtKill, outcome, message: run?.message ?? '', resetNote, result: run?.result ?? null, recoveries: run?.recoveries ?? 0, consistent: problems.length === 0, reason: problems.join('; '), stackLeftovers, ms: Date.now() - t0 };
}

async function appIteration(bed: Bed, p: Planned, delay: number | null): Promise<KillResult> {
  const t0 = Date.now();
  const w = await appWorld(bed, APP_RELEASES, { healthTimeoutSeconds: HEALTH_TIMEOUT_SECONDS });
  try {
    const before = treeHash(w.installPath);
    w.journal.db.close();
    const world: AppCrashWorld = { component: w.component, backupDir: w.backupDir, dataDir: w.dataDir, apiUrl: w.gh.apiUrl, rawUrl: w.gh.rawUrl, dockerHost: bed.dockerHost };
    const dbPath = join(w.dataDir, 'updater.db');
    rmSync(dbPath, { force: true });
    rmSync(`${dbPath}-wal`, { force: true });
    rmSync(`${dbPath}-shm`, { force: true });

    const first = await childKilledAfter(CHILD.app, world, ['start', p.target], delay);
    const stateAtKill = stateOnDisk(dbPath);
    const second = await runCrashChild(CHILD.app, world, ['recover']);

    const problems: string[] = [];
    if (!first.killed && first.code !== 0) problems.push(`the first process failed on its own (${first.code ?? first.signal}): ${first.stderr.trim().slice(-300)}`);
    if (second.code !== 0) problems.push(`recovery failed (${second.code ?? second.signal}): ${second.stderr.trim().slice(-300)}`);
    const run = readRun(dbPath);
    const outcome = run?.state ?? '(no run)';
    if (run && run.result === null) problems.push(`the run is unfinished after recovery (${run.state})`);
    const active = (await w.systemctl('is-active', w.unit)).stdout.trim();
    if (active !== 'active') problems.push(`unit is ${active || 'unknown'}`);
    const health = (await w.health()).body as { version?: string } | string;
    const hv = typeof health === 'string' ? health : String(health.version);
    if (outcome === 'succeeded') {
      const v = readFileSync(join(w.installPath, 'VERSION'), 'utf8');
      if (v !== `${p.target}\n`) problems.push(`VERSION is ${JSON.stringify(v)}`);
      if (hv !== p.target) problems.push(`health says ${hv}, not ${p.target}`);
    } else {
      if (treeHash(w.installPath) !== before) problems.push('install tree not byte-identical to before');
      if (hv !== '1.0.0') problems.push(`health says ${hv}, not 1.0.0`);
    }
    const left = leftovers(w);
    if (left.length) problems.push(`leftovers: ${left.join(', ')}`);
    if (run) {
      const broken = chainBroken(run);
      if (broken) problems.push(broken);
    }
    return { ...p, killed: first.killed, stateAtKill, outcome, message: run?.message ?? '', resetNote: '', result: run?.result ?? null, recoveries: run?.recoveries ?? 0, consistent: problems.length === 0, reason: problems.join('; '), stackLeftovers: [], ms: Date.now() - t0 };
  } finally {
    await w.close().catch(() => undefined);
  }
}

async function needBed(): Promise<Bed> {
  const bed = await probeBed();
  if (typeof bed === 'string') throw new Error(bed);
  return bed;
}

/** Unkilled children of each kind and target, `times` each: the spawn-to-exit durations the kill windows come from. */
export async function measureWindows(times = 3): Promise<string> {
  const bed = await needBed();
  const c = await ContainerBench.open(bed);
  const lines: string[] = [];
  try {
    for (const kind of ['container', 'app'] as const) {
      for (const target of ['1.1.0', '1.2.0'] as const) {
        const runs: number[] = [];
        for (let k = 0; k < times; k++) {
          const spawnMs = await (async () => {
            if (kind === 'container') {
              await c.reset();
              const dir = join(c.w.dir, `measure-${k}`);
              mkdirSync(dir, { recursive: true });
              const r = await childKilledAfter(CHILD.container, c.world(dir), ['start', target], null);
              rmSync(dir, { recursive: true, force: true });
              return r.ms;
            }
            const w = await appWorld(bed, APP_RELEASES, { healthTimeoutSeconds: HEALTH_TIMEOUT_SECONDS });
            try {
              w.journal.db.close();
              const r = await childKilledAfter(CHILD.app, { component: w.component, backupDir: w.backupDir, dataDir: w.dataDir, apiUrl: w.gh.apiUrl, rawUrl: w.gh.rawUrl, dockerHost: bed.dockerHost }, ['start', target], null);
              return r.ms;
            } finally {
              await w.close();
            }
          })();
          runs.push(spawnMs);
        }
        runs.sort((a, b) => a - b);
        lines.push(`${kind} ${target}: ${runs.join(', ')} ms (median ${runs[Math.floor(runs.length / 2)]} ms)`);
        console.log(lines.at(-1));
      }
    }
  } finally {
    await c.close();
  }
  return lines.join('\n');
}

export interface KillsReport {
  seed: number;
  n: number;
  ms: number;
  results: KillResult[];
  markdown: string;
}

export async function randomKills(seed: number, n: number): Promise<KillsReport> {
  const bed = await needBed();
  const plan = killSchedule(seed, n);
  console.log(`random kills: seed ${seed} (SOAK_SEED=${seed} reproduces this schedule), ${n} runs`);
  const t0 = Date.now();
  const results: KillResult[] = [];
  let c: ContainerBench | null = null;
  try {
    for (const p of plan) {
      let r: KillResult;
      try {
        if (p.kind === 'container') {
          c ??= await ContainerBench.open(bed);
          r = await containerIteration(c, p, p.delayMs);
        } else {
          r = await appIteration(bed, p, p.delayMs);
        }
      } catch (error) {
        r = { ...p, killed: false, stateAtKill: '?', outcome: 'error', message: '', resetNote: '', result: null, recoveries: 0, consistent: false, reason: `iteration failed: ${(error as Error).message}`, stackLeftovers: [], ms: 0 };
      }
      results.push(r);
      const at = r.killed ? `killed in ${r.stateAtKill}` : `finished first (${r.stateAtKill})`;
      console.log(`#${String(p.i).padStart(3)} ${p.kind.padEnd(9)} → ${p.target} kill@${String(p.delayMs).padStart(4)}ms: ${at.padEnd(30)} → ${r.outcome.padEnd(12)} ${r.consistent ? 'consistent' : `NOT CONSISTENT: ${r.reason}`}${r.stackLeftovers.length ? ` [stack dir: ${r.stackLeftovers.join(', ')}]` : ''} (${(r.ms / 1000).toFixed(1)} s)`);
      if (!r.consistent || !['succeeded', 'rolled_back', '(no run)'].includes(r.outcome)) console.log(`       run message: ${r.message}`);
      if (r.resetNote) console.log(`       ${r.resetNote}`);
    }
  } finally {
    await c?.close();
  }
  const ms = Date.now() - t0;
  return { seed, n, ms, results, markdown: killsMarkdown(seed, n, ms, results) };
}

const count = <T>(xs: T[], f: (x: T) => boolean) => xs.filter(f).length;

export function killsMarkdown(seed: number, n: number, ms: number, results: KillResult[]): string {
  const consistent = count(results, (r) => r.consistent);
  const killed = count(results, (r) => r.killed);
  const outcomes = [...new Set(results.map((r) => r.outcome))].sort();
  const byOutcome: Array<Array<string | number>> = [];
  for (const kind of ['container', 'app'] as const) {
    for (const target of ['1.1.0', '1.2.0'] as const) {
      const rs = results.filter((r) => r.kind === kind && r.target === target);
      byOutcome.push([kind, `${target} (${target === '1.1.0' ? 'good' : 'bad'})`, rs.length, ...outcomes.map((o) => count(rs, (r) => r.outcome === o)), `${count(rs, (r) => r.consistent)}/${rs.length}`]);
    }
  }
  byOutcome.push(['**all**', '', results.length, ...outcomes.map((o) => count(results, (r) => r.outcome === o)), `**${consistent}/${results.length}**`]);

  const order = ['(no run)', 'idle', 'discover', 'validate', 'backup', 'apply', 'verify', 'rollback', 'succeeded', 'rolled_back', 'aborted', 'up_to_date', 'rollback_failed'];
  const TERMINAL = ['succeeded', 'rolled_back', 'aborted', 'up_to_date', 'validated', 'rollback_failed'];
  const when = (r: KillResult) => (!r.killed ? `finished before the kill: ${r.stateAtKill}` : TERMINAL.includes(r.stateAtKill) ? `killed after its end was recorded: ${r.stateAtKill}` : `killed in ${r.stateAtKill}`);
  const rank = (s: string) => (s.startsWith('killed in') ? 0 : s.startsWith('killed after') ? 1 : 2);
  const states = [...new Set(results.map(when))].sort((a, b) => {
    const ka = rank(a);
    const kb = rank(b);
    const sa = order.indexOf(a.split(' ').at(-1)!);
    const sb = order.indexOf(b.split(' ').at(-1)!);
    return ka - kb || sa - sb || a.localeCompare(b);
  });
  const byState = states.map((s) => {
    const rs = results.filter((r) => when(r) === s);
    const ends = [...new Set(rs.map((r) => r.outcome))].sort().map((o) => `${o} ${count(rs, (r) => r.outcome === o)}`).join(', ');
    return [s, count(rs, (r) => r.kind === 'container'), count(rs, (r) => r.kind === 'app'), rs.length, ends, `${count(rs, (r) => r.consistent)}/${rs.length}`];
  });
  const bad = results.filter((r) => !r.consistent);
  const stack = results.filter((r) => r.stackLeftovers.length);
  const lines = [
    '## Random kills (real engine and systemd, SIGKILL at a random moment)',
    '',
    `Generated by \`npm run soak -- kills\` on ${today()}: **seed ${seed}** (\`SOAK_SEED=${seed} KILLS=${n} npm run soak -- kills\` replays the same schedule), ${n} runs in ${minutes(ms)}. ` +
      `Each run is a real crash child (\`test/support/{container,app}-crash-child.ts\`) updating to a good (1.1.0) or bad (1.2.0, unhealthy) release, its process group SIGKILLed after a delay uniform in [0, window] ` +
      `(window = typical unkilled duration: container ${KILL_WINDOWS_MS.container['1.1.0']}/${KILL_WINDOWS_MS.container['1.2.0']} ms, app ${KILL_WINDOWS_MS.app['1.1.0']}/${KILL_WINDOWS_MS.app['1.2.0']} ms for good/bad, including process start-up), ` +
      `then \`recover\` in a fresh process and the checks of the crash matrices: new version fully in place, or the old one byte-identical and running; an unbroken transition chain; no staging/old/failed tree or download left for apps. ` +
      'Each run has its own SQLite file; the container world is reused (reset to 1.0.0 between runs, under a compose project name of its own so that tests sharing the bed cannot touch its container); each app run gets a fresh world.',
    '',
    `**${consistent} of ${n} consistent**; ${killed} killed mid-way, ${n - killed} finished before the kill.`,
    '',
    '### By outcome after recovery',
    '',
    table(['kind', 'target', 'runs', ...outcomes, 'consistent'], byOutcome),
    '',
    '### By the state the process was killed in (the run\'s `state` column right after the kill)',
    '',
    table(['killed', 'container', 'app', 'runs', 'ended', 'consistent'], byState),
    '',
  ];
  if (bad.length) {
    const cell = (x: string) => x.replaceAll('|', '\\|').replaceAll('\n', ' ');
    lines.push('### Not consistent', '', table(['#', 'kind', 'target', 'kill at', 'state at kill', 'ended', 'why', 'run message'], bad.map((r) => [r.i, r.kind, r.target, `${r.delayMs} ms`, r.stateAtKill, r.outcome, cell(r.reason), cell(r.message)])), '');
  }
  const aborted = results.filter((r) => r.outcome === 'aborted');
  if (aborted.length) {
    const why = [...new Set(aborted.map((r) => r.message))];
    lines.push(`Aborted (validate failed, nothing changed) in ${aborted.map((r) => `#${r.i}`).join(', ')}: ${why.map((m) => `"${m.replaceAll('|', '\\|')}"`).join('; ')}. ` +
      'An abort is not caused by a kill: it means the test bed could not serve the update at that moment (the bed is shared with other test runs).', '');
  }
  const resets = results.filter((r) => r.resetNote);
  if (resets.length) {
    lines.push(`Resetting the reused container world before ${resets.map((r) => `#${r.i}`).join(', ')} needed \`compose down\` (a trace of the iteration before): ${resets.map((r) => r.resetNote.replaceAll('|', '\\|')).join('; ')}.`, '');
  }
  if (stack.length) {
    lines.push(`Files left beside the compose file (not part of the container consistency check): ${stack.map((r) => `#${r.i} ${r.stackLeftovers.join(', ')}`).join('; ')}.`, '');
  }
  return lines.join('\n');
}
