/**
 * The CPU cost of a warm check: 20 container components (one compose file of 20 services, as on a
 * device), every release list answered 304 from the ETag cache by the local stand-in for GitHub,
 * which runs in a process of its own so that only the updater's CPU is counted
 * (`process.cpuUsage`, user + system, of the whole check, through the checker, the GitHub client
 * and the journal as the service has them). Baseline, in the same run: the same 20 conditional
 * GETs sent bare with got, at the same concurrency, with nothing else done.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpus, loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import got from 'got';
import pLimit from 'p-limit';
import { pino } from 'pino';
import { openDatabase } from '../src/journal/database.js';
import { Journal } from '../src/journal/journal.js';
import { GitHubClient } from '../src/releases/github.js';
import { UpdateChecker } from '../src/releases/checker.js';
import { readInstalled } from '../src/kinds/index.js';
import { composeImages } from '../src/kinds/container/installed.js';
import { cleanup, tempDir, TSX_IMPORT } from '../test/support/harness.js';
import { fmt, percentile, verdict, type Section } from './util.js';

const N = 20;
const RELEASES = 10;
const CONCURRENCY = 8;
const ROUNDS = 60;
const WARMUP = 10;
const GOAL_MS = 30;

/** A device's compose file: `N` services, each with what real ones carry besides the image. */
function composeText(): string {
  const lines = ['services:'];
  for (let i = 0; i < N; i++) {
    lines.push(
      `  s${i}:`,
      `    image: 127.0.0.1:5001/bench/s${i}:1.0.0`,
      '    restart: unless-stopped',
      '    network_mode: host',
      '    environment:',
      `      - SERVICE_NAME=s${i}`,
      '      - LOG_LEVEL=info',
      '    volumes:',
      `      - /opt/dunebugger/s${i}/config:/app/config`,
      '    logging: { driver: json-file, options: { max-size: 10m, max-file: "3" } }',
    );
  }
  return `${lines.join('\n')}\n`;
}

async function startStandIn(repos: Record<string, Array<{ tag: string; body: string }>>): Promise<{ apiUrl: string; stop: () => void }> {
  const child = spawn(process.execPath, ['--import', TSX_IMPORT, join(import.meta.dirname, 'fake-github-child.ts'), JSON.stringify({ repos })], { stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`the GitHub stand-in exited (${code})`)));
  });
  return { apiUrl: (JSON.parse(line) as { apiUrl: string }).apiUrl, stop: () => child.stdin.end() };
}

interface Samples {
  cpu: number[];
  wall: number[];
}

/**
 * CPU (ms, user + system) and wall time of each of `fns`, per round after warm-up rounds. The
 * figures are taken in turns, round by round (the order alternating), so that both meet the same
 * load of the machine.
 */
async function measure(...fns: Array<() => Promise<unknown>>): Promise<Samples[]> {
  const samples = fns.map((): Samples => ({ cpu: [], wall: [] }));
  for (let i = 0; i < WARMUP + ROUNDS; i++) {
    const order = i % 2 === 0 ? fns.map((_, k) => k) : fns.map((_, k) => fns.length - 1 - k);
    for (const k of order) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await fns[k]!();
      const d = process.cpuUsage(c0);
      if (i >= WARMUP) {
        samples[k]!.cpu.push((d.user + d.system) / 1000);
        samples[k]!.wall.push(performance.now() - t0);
      }
    }
  }
  return samples;
}

export async function benchCheckCpu(): Promise<Section> {
  const dir = tempDir('updater-bench-cpu-');
  const repos: Record<string, Array<{ tag: string; body: string }>> = {};
  for (let i = 0; i < N; i++) repos[`bench/c${i}`] = Array.from({ length: RELEASES }, (_, v) => ({ tag: `v1.${v}.0`, body: `Release notes for 1.${v}.0\n`.repeat(10) }));
  const loadBefore = loadavg()[0]!;
  const standIn = await startStandIn(repos);
  try {
    mkdirSync(join(dir, 'compose'));
    const composeFile = join(dir, 'compose', 'docker-compose.yml');
    writeFileSync(composeFile, composeText());
    const components = Array.from({ length: N }, (_, i) => ({ name: `c${i}`, kind: 'container', repo: `bench/c${i}`, composeFile, service: `s${i}`, minFreeMB: 0 }));
    const db = openDatabase(join(dir, 'updater.db'));
    const journal = new Journal(db);
    const logger = pino({ level: 'silent' });
    const client = new GitHubClient({ apiUrl: standIn.apiUrl, rawUrl: standIn.apiUrl, token: null, cache: journal.httpCache, logger });
    const checker = new UpdateChecker({ config: { components, includePrerelease: false, checkIntervalHours: 0 }, store: journal.components, source: client, readInstalled, logger, concurrency: CONCURRENCY });

    const cold = await checker.check();
    if (!cold.every((s) => s.update_available && s.latest_version === `1.${RELEASES - 1}.0`)) throw new Error('the cold check did not find the updates');
    const urls = components.map((c) => `${standIn.apiUrl}/repos/${c.repo}/releases?per_page=100`);
    const etags = new Map<string, string>();
    for (const u of urls) etags.set(u, String((await got(u, { retry: { limit: 0 } })).headers.etag));

    const limit = pLimit(CONCURRENCY);
    const parsesBefore = composeImages.parses;
    const [bare, warm] = await measure(
      () =>
        Promise.all(
          urls.map((u) =>
            limit(async () => {
              const r = await got(u, { retry: { limit: 0 }, throwHttpErrors: false, headers: { 'if-none-match': etags.get(u)! } });
              if (r.statusCode !== 304) throw new Error(`expected 304, got ${r.statusCode}`);
            }),
          ),
        ),
      async () => {
        const statuses = await checker.check();
        if (statuses.some((s) => s.stale)) throw new Error('a warm check was stale');
      },
    );
    if (!bare || !warm) throw new Error('no samples');
    const parses = (composeImages.parses - parsesBefore) / (WARMUP + ROUNDS);
    db.close();

    const med = (xs: number[]) => percentile(xs, 50);
    const cpu = med(warm.cpu);
    return {
      title: `Check CPU: a warm check of ${N} container components (all 304)`,
      rows: [
        ['CPU of a warm check, median', `${fmt(cpu)} ms`, `${fmt(med(bare.cpu))} ms (${N} bare conditional GETs)`, fmt(cpu / med(bare.cpu), 2), `≤ ${GOAL_MS} ms`, verdict(cpu <= GOAL_MS)],
        ['CPU of a warm check, p90', `${fmt(percentile(warm.cpu, 90))} ms`, `${fmt(percentile(bare.cpu, 90))} ms`, fmt(percentile(warm.cpu, 90) / percentile(bare.cpu, 90), 2), '-', '-'],
        ['wall time of a warm check, median', `${fmt(med(warm.wall))} ms`, `${fmt(med(bare.wall))} ms`, fmt(med(warm.wall) / med(bare.wall), 2), '-', '-'],
      ],
      notes: [
        `${ROUNDS} warm checks after ${WARMUP} unmeasured ones, each beside a round of the baseline (in turns, the order alternating); ${RELEASES} releases per repository; the stand-in for GitHub runs in another process; ${CONCURRENCY} requests at a time.`,
        'Before (commit 3bd1679, this bench run on that code on 2026-12-02, same machine): 172 to 248 ms median beside 17 to 34 ms for the bare GETs, ratio 6 to 11; the compose file parsed once per component was most of it, then two FULL-sync commits per component.',
        `Compose file parses per warm check: ${fmt(parses, 0)} (the file is unchanged; it used to be parsed once per component).`,
        'Journal writes per warm check: one transaction for the check\'s findings, and one for the 304s\' confirmations a second later, both without an fsync (derived data); they used to be two FULL-sync commits per component. A 304 returns the answer parsed before for that ETag.',
        'What is left beside the baseline is mostly the per-request work of got in the GitHub client, and the garbage collector.',
        `The CPU figures include the kernel's side of the loopback HTTP traffic; on a machine busy with other work both columns grow (load average ${fmt(loadBefore, 2)} before, ${fmt(loadavg()[0]!, 2)} after, on ${cpus().length} cores).`,
      ],
    };
  } finally {
    standIn.stop();
    cleanup(dir);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const s = await benchCheckCpu();
  console.log(s.title);
  for (const r of s.rows) console.log(r.join(' | '));
  for (const n of s.notes ?? []) console.log(`- ${n}`);
}
