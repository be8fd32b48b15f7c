/**
 * Soak: the real `updater serve` with no configuration (the embedded demo) in a temp dir, driven
 * over REST through many consecutive updates that alternate a good and a bad release of the
 * demo's sample-app:
 *
 *   update → 1.1.0 (good: succeeded) · restore (POST …/rollback: back to 1.0.0) · update → 1.2.0 (bad: rolled_back) · …
 *
 * The restore after each good update brings the app back to 1.0.0 so the next good update has
 * something to do; it is a run of its own but not counted as an update. The service's resources
 * are sampled at the start, every 20 updates and at the end.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, tempDir } from '../test/support/harness.js';
import { demoAppPort, prepareDemoDir, startService, waitFor, type ServiceProcess } from '../test/support/service-process.js';
import { minutes, table, today } from './docs.js';

const COMPONENT = 'sample-app';
const RETENTION = 3;
const SAMPLE_EVERY = 20;

export type Step = 'good' | 'bad' | 'restore';

export interface RunRecord {
  n: number;
  step: Step;
  runId: number;
  state: string;
  expected: string;
  installed: string;
  health: string;
  ms: number;
  ok: boolean;
  why: string;
}

export interface Sample {
  updates: number;
  runs: number;
  fds: number;
  children: number;
  threads: number;
  rssMB: number;
  /** V8 heap in use, from the service's own /metrics (updater_nodejs_heap_size_used_bytes). */
  heapMB: number;
  appProcesses: number;
  tempFiles: string[];
  backups: number;
  dbMB: number;
  walMB: number;
  containers: number;
}

interface RunView {
  run_id: number;
  state: string;
  result: string | null;
  message: string | null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function procStatus(pid: number, key: string): number {
  const m = new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

function childrenOf(pid: number): number {
  try {
    return execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' }).split('\n').filter((l) => l.trim()).length;
  } catch {
    return 0; // ps exits 1 when there are none
  }
}

/** Processes whose working directory is the demo app's install dir (its start command cds there). */
function processesIn(dir: string): number {
  let n = 0;
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readlinkSync(`/proc/${e}/cwd`) === dir) n++;
    } catch {
      // gone, or not ours
    }
  }
  return n;
}

const ls = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);
const sizeMB = (path: string) => (existsSync(path) ? statSync(path).size / 1048576 : 0);

async function heapUsedMB(base: string): Promise<number> {
  try {
    const text = await (await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
    const m = /^updater_nodejs_heap_size_used_bytes(?:\{[^}]*\})? ([\d.e+]+)/m.exec(text);
    return m ? Number(m[1]) / 1048576 : NaN;
  } catch {
    return NaN;
  }
}

function sample(pid: number, data: string, updates: number, runs: number, heapMB = NaN): Sample {
  const backupDir = join(data, 'backups');
  const backupName = new RegExp(`^${COMPONENT}\\.\\d{8}_\\d{6}(?:_\\d+)?\\.tar\\.gz$`);
  const tempFiles = [
    ...ls(join(data, 'downloads')).map((n) => `downloads/${n}`),
    ...ls(join(data, 'demo')).filter((n) => /\.(staging|old|failed|restoring)-/.test(n)).map((n) => `demo/${n}`),
    ...ls(backupDir).filter((n) => !backupName.test(n)).map((n) => `backups/${n}`),
    ...ls(data).filter((n) => !['updater.db', 'updater.db-wal', 'updater.db-shm', 'updater.lock', 'backups', 'demo', 'downloads', 'logs'].includes(n)),
  ];
  return {
    updates,
    runs,
    fds: readdirSync(`/proc/${pid}/fd`).length,
    children: childrenOf(pid),
    threads: procStatus(pid, 'Threads'),
    rssMB: procStatus(pid, 'VmRSS') / 1024,
    heapMB,
    appProcesses: processesIn(join(data, 'demo', 'app')),
    tempFiles,
    backups: ls(backupDir).filter((n) => backupName.test(n)).length,
    dbMB: sizeMB(join(data, 'updater.db')),
    walMB: sizeMB(join(data, 'updater.db-wal')),
    containers: 0, // the demo has no containers
  };
}

async function json<T>(url: string, init?: RequestInit): Promise<{ status: number; body: T }> {
  const r = await fetch(url, { ...init, signal: AbortSignal.timeout(15_000) });
  return { status: r.status, body: (await r.json()) as T };
}

async function startRun(base: string, step: Step): Promise<number> {
  const path = step === 'restore' ? `/api/components/${COMPONENT}/rollback` : `/api/components/${COMPONENT}/updates`;
  const body = step === 'restore' ? undefined : JSON.stringify({ version: step === 'good' ? '1.1.0' : '1.2.0' });
  for (let attempt = 0; ; attempt++) {
    const r = await json<{ run_id?: number; error?: { code: string; message: string } }>(`${base}${path}`, { method: 'POST', headers: body ? { 'content-type': 'application/json' } : {}, body });
    if (r.status === 202 && r.body.run_id) return r.body.run_id;
    if (r.status === 409 && attempt < 50) {
      await sleep(200);
      continue;
    }
    throw new Error(`POST ${path} → ${r.status} ${JSON.stringify(r.body)}`);
  }
}

async function finished(base: string, runId: number): Promise<RunView> {
  return waitFor(`run ${runId} to end`, async () => {
    const r = await json<RunView>(`${base}/api/runs/${runId}`);
    return r.body.result !== null ? r.body : null;
  }, 180_000);
}

async function demoHealth(port: number): Promise<string> {
  try {
    return String(((await json<{ version?: string }>(`http://127.0.0.1:${port}/health`)).body).version);
  } catch (error) {
    return `(no answer: ${(error as Error).message})`;
  }
}

export interface SoakReport {
  updates: number;
  ms: number;
  runs: RunRecord[];
  samples: Sample[];
  afterStop: { appProcesses: number; exit: string } | null;
  /** The most backups seen right after a successful update (pruning runs only after a success). */
  maxBackupsAfterSuccess: number;
  problems: string[];
  markdown: string;
}

export async function soak(updates: number): Promise<SoakReport> {
  const cwd = tempDir('updater-soak-');
  const data = join(cwd, 'data');
  await prepareDemoDir(cwd);
  const appPort = demoAppPort(cwd);
  const t0 = Date.now();
  let svc: ServiceProcess | null = null;
  const runs: RunRecord[] = [];
  const samples: Sample[] = [];
  const problems: string[] = [];
  let afterStop: SoakReport['afterStop'] = null;
  let maxBackupsAfterSuccess = 0;
  console.log(`soak: ${updates} updates (alternating 1.1.0 good / 1.2.0 bad, a restore after each good one) on the demo in ${cwd}`);
  try {
    svc = await startService(cwd);
    const pid = svc.child.pid!;
    const base = svc.url;
    // Let the boot (recovery, the first check) settle before the first sample.
    await waitFor('the demo app to answer 1.0.0', async () => (await demoHealth(appPort)) === '1.0.0', 30_000);
    await waitFor('no active run', async () => {
      const c = await json<Array<{ name: string; active_run: unknown }>>(`${base}/api/components`);
      return c.body.every((x) => !x.active_run);
    });
    await sleep(1000);
    samples.push(sample(pid, data, 0, 0, await heapUsedMB(base)));
    console.log(`sample @0: ${JSON.stringify(samples.at(-1))}`);

    let n = 0;
    const go = async (step: Step): Promise<RunRecord> => {
      const t = Date.now();
      const runId = await startRun(base, step);
      const run = await finished(base, runId);
      const installed = readFileSync(join(data, 'demo', 'app', 'VERSION'), 'utf8').trim();
      const health = await demoHealth(appPort);
      const expected = step === 'good' ? 'succeeded' : 'rolled_back';
      const version = step === 'good' ? '1.1.0' : '1.0.0';
      const why: string[] = [];
      if (run.state !== expected) why.push(`ended ${run.state}: ${run.message}`);
      if (installed !== version) why.push(`VERSION ${installed}, expected ${version}`);
      if (health !== version) why.push(`health ${health}, expected ${version}`);
      const rec: RunRecord = { n: ++n, step, runId, state: run.state, expected, installed, health, ms: Date.now() - t, ok: why.length === 0, why: why.join('; ') };
      runs.push(rec);
      if (!rec.ok) problems.push(`run ${runId} (${step}): ${rec.why}`);
      return rec;
    };

    for (let u = 1; u <= updates; u++) {
      const good = u % 2 === 1;
      const r = await go(good ? 'good' : 'bad');
      let line = `update ${String(u).padStart(3)}/${updates} ${good ? '→1.1.0' : '→1.2.0'}: run ${r.runId} ${r.state} in ${(r.ms / 1000).toFixed(1)} s${r.ok ? '' : ` WRONG: ${r.why}`}`;
      if (good) {
        const backups = sample(pid, data, u, n).backups;
        if (r.state === 'succeeded') maxBackupsAfterSuccess = Math.max(maxBackupsAfterSuccess, backups);
        if (backups > RETENTION) problems.push(`after run ${r.runId} succeeded there are ${backups} backups (retention ${RETENTION})`);
        if (r.installed !== '1.0.0') {
          const back = await go('restore');
          line += `; restore: run ${back.runId} ${back.state} in ${(back.ms / 1000).toFixed(1)} s${back.ok ? '' : ` WRONG: ${back.why}`}`;
        }
      }
      console.log(line);
      if (u % SAMPLE_EVERY === 0 || u === updates) {
        samples.push(sample(pid, data, u, n, await heapUsedMB(base)));
        console.log(`sample @${u}: ${JSON.stringify(samples.at(-1))}`);
      }
    }
  } finally {
    if (svc) {
      if (svc.child.exitCode === null && svc.child.signalCode === null) svc.child.kill('SIGTERM');
      const exit = await Promise.race([svc.exited, sleep(30_000).then(() => null)]);
      if (!exit) {
        svc.child.kill('SIGKILL');
        problems.push('the service did not exit within 30 s of SIGTERM');
      }
      await sleep(500);
      afterStop = { appProcesses: processesIn(join(data, 'demo', 'app')), exit: exit ? String(exit.code ?? exit.signal) : 'killed' };
      if (afterStop.appProcesses) problems.push(`${afterStop.appProcesses} sample-app process(es) still running after the service stopped`);
    }
    cleanup(cwd);
  }
  const ms = Date.now() - t0;
  return { updates, ms, runs, samples, afterStop, maxBackupsAfterSuccess, problems, markdown: soakMarkdown(updates, ms, runs, samples, afterStop, maxBackupsAfterSuccess, problems) };
}

function stats(xs: number[]): string {
  if (!xs.length) return '–';
  const s = [...xs].sort((a, b) => a - b);
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return `${(mean / 1000).toFixed(1)} / ${(s[Math.floor(0.95 * (s.length - 1))]! / 1000).toFixed(1)} / ${(s.at(-1)! / 1000).toFixed(1)} s`;
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);

function soakMarkdown(updates: number, ms: number, runs: RunRecord[], samples: Sample[], afterStop: SoakReport['afterStop'], maxBackupsAfterSuccess: number, problems: string[]): string {
  const first = samples[0];
  const last = samples.at(-1);
  const steps: Step[] = ['good', 'bad', 'restore'];
  const runRows = steps.map((s) => {
    const rs = runs.filter((r) => r.step === s);
    const states = [...new Set(rs.map((r) => r.state))].map((st) => `${st} ${rs.filter((r) => r.state === st).length}`).join(', ');
    const k = Math.min(20, Math.floor(rs.length / 2));
    const trend = k ? `${(mean(rs.slice(0, k).map((r) => r.ms)) / 1000).toFixed(1)} → ${(mean(rs.slice(-k).map((r) => r.ms)) / 1000).toFixed(1)} s` : '–';
    const label = s === 'good' ? 'update → 1.1.0 (good)' : s === 'bad' ? 'update → 1.2.0 (bad)' : 'restore (POST …/rollback)';
    return [label, rs.length, states || '–', `${rs.filter((r) => r.ok).length}/${rs.length}`, stats(rs.map((r) => r.ms)), trend];
  });
  const figures: Array<[string, (s: Sample) => number, number]> = [
    ['open fds (`/proc/PID/fd`)', (s) => s.fds, 0],
    ['child processes (`ps --ppid PID`)', (s) => s.children, 0],
    ['threads', (s) => s.threads, 0],
    ['RSS (MB, VmRSS)', (s) => s.rssMB, 1],
    ['V8 heap used (MB, its /metrics)', (s) => s.heapMB, 1],
    ['sample-app processes running', (s) => s.appProcesses, 0],
    ['temp files (downloads, staging/old/failed/restoring trees, partial backups)', (s) => s.tempFiles.length, 0],
    [`backups of sample-app (retention ${RETENTION})`, (s) => s.backups, 0],
    ['journal: updater.db (MB)', (s) => s.dbMB, 2],
    ['journal: updater.db-wal (MB)', (s) => s.walMB, 2],
    ['containers', (s) => s.containers, 0],
  ];
  const resourceRows = figures.map(([name, f, d]) => {
    const vs = samples.map(f);
    const a = first ? f(first) : NaN;
    const b = last ? f(last) : NaN;
    const grew = b > a ? (d ? `+${(b - a).toFixed(d)}` : `**+${b - a}**`) : 'no';
    return [name, a.toFixed(d), b.toFixed(d), Math.max(...vs).toFixed(d), grew];
  });
  const sampleRows = samples.map((s) => [s.updates, s.runs, s.fds, s.children, s.threads, s.rssMB.toFixed(1), s.heapMB.toFixed(1), s.appProcesses, s.tempFiles.length ? s.tempFiles.join(', ') : 0, s.backups, s.dbMB.toFixed(2), s.walMB.toFixed(2)]);
  const total = runs.length;
  const lines = [
    '## Soak (the real `updater serve`, embedded demo)',
    '',
    `Generated by \`npm run soak -- soak\` on ${today()}: ${updates} consecutive updates of the demo's sample-app through the REST API of one \`updater serve\` process (no config, temp dir), ` +
      `alternating 1.1.0 (good) and 1.2.0 (fails its health check: rolled back), with a restore (\`POST /api/components/sample-app/rollback\`, back to 1.0.0) after each good one: ${total} runs in ${minutes(ms)}. ` +
      'The demo is as shipped (settleSeconds 3, health timeout 6 s). After every run the installed VERSION and the app\'s /health are checked against what the run claims.',
    '',
    `**${runs.filter((r) => r.ok).length} of ${total} runs as expected.**${problems.length ? ` Problems: ${problems.length} (below).` : ' No problems.'}`,
    '',
    table(['runs', 'count', 'ended', 'as expected', 'duration mean / p95 / max', 'mean, first 20 → last 20'], runRows),
    '',
    '### Resources of the service process',
    '',
    table(['figure', 'start', 'end', 'max', 'grew'], resourceRows),
    '',
    `Samples (at the start, every ${SAMPLE_EVERY} updates and at the end, each taken right after a run ended):`,
    '',
    table(['updates', 'runs', 'fds', 'children', 'threads', 'RSS MB', 'heap MB', 'app procs', 'temp files', 'backups', 'db MB', 'WAL MB'], sampleRows),
    '',
    `Backups right after each successful update: at most ${maxBackupsAfterSuccess} (retention ${RETENTION}${maxBackupsAfterSuccess <= RETENTION ? ': kept' : ': **exceeded**'}). ` +
      'A rolled-back update adds one that stays until the next success prunes (the contract prunes only after a success), so a sample taken after a bad update shows one more.',
    '',
    afterStop ? `After SIGTERM the service exited with ${afterStop.exit}; sample-app processes still running: ${afterStop.appProcesses}.` : 'The service was not started.',
    '',
  ];
  if (problems.length) lines.push('### Problems', '', ...problems.slice(0, 30).map((p) => `- ${p.replaceAll('\n', ' ')}`), problems.length > 30 ? `- … and ${problems.length - 30} more` : '', '');
  return lines.join('\n');
}
