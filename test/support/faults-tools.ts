/**
 * Tools of the fault and fuzz tests: a seeded PRNG, bounded waits, the test bed's registry
 * stopped and started again, a TCP server that accepts and never answers, small tmpfs mounts
 * filled to the last byte, and the `faults` section of docs/reliability.md.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { bedVars, run } from './testbed.js';
import { mulberry32 } from '../../soak/rng.js';

// ------------------------------------------------------------------------------------ PRNG

export { mulberry32 } from '../../soak/rng.js';

export interface Rng {
  seed: number;
  next(): number;
  int(min: number, max: number): number;
  pick<T>(items: readonly T[]): T;
  chance(p: number): boolean;
}

export function rng(seed: number): Rng {
  const next = mulberry32(seed);
  return {
    seed,
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    pick: (items) => items[Math.floor(next() * items.length)]!,
    chance: (p) => next() < p,
  };
}

/** FUZZ_SEED from the environment, else a fresh one (printed by the caller). */
export function seedFromEnv(): number {
  const fromEnv = process.env.FUZZ_SEED;
  if (fromEnv !== undefined && /^\d+$/.test(fromEnv)) return Number(fromEnv) >>> 0;
  return (Date.now() ^ (process.pid << 16)) >>> 0;
}

// ------------------------------------------------------------------------------- waiting

/** `promise`, or a rejection naming `what` after `ms` (the timer does not hold the process). */
export async function bounded<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no end within ${Math.round(ms / 1000)} s`)), ms);
        timer.unref();
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` every 200 ms until it is true or `ms` have passed; returns whether it became true. */
export async function eventually(check: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await sleep(200);
  }
}

// ------------------------------------------------------------------------------ registry

const testbedDir = () => bedVars().TESTBED_DIR ?? process.env.TESTBED_DIR ?? '/tmp/updater-testbed';

/** A live docker-registry process (a zombie waiting to be reaped counts as dead). */
const isRegistry = (pid: number) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'docker-registry' && state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
};

/** The test bed's registry (test/env/up.sh step 2): its pid file, and how up.sh starts it. */
export const registry = {
  dir: () => join(testbedDir(), 'registry'),
  url: () => `http://${bedVars().TESTBED_REGISTRY ?? '127.0.0.1:5001'}/v2/`,

  pid(): number | null {
    try {
      const pid = Number(readFileSync(join(registry.dir(), 'pid'), 'utf8').trim());
      return pid > 0 && isRegistry(pid) ? pid : null;
    } catch {
      return null;
    }
  },

  /**
   * SIGKILLs the registry and returns once it is dead (at most 5 s), synchronously: safe inside a
   * transition listener, and nothing after it can still reach the registry. Returns its pid.
   */
  kill(): number {
    const pid = registry.pid();
    if (pid === null) throw new Error('the test bed registry is not running');
    process.kill(pid, 'SIGKILL');
    const nap = new Int32Array(new SharedArrayBuffer(4));
    for (const deadline = Date.now() + 5000; isRegistry(pid) && Date.now() < deadline; ) Atomics.wait(nap, 0, 0, 10);
    return pid;
  },

  async answers(): Promise<boolean> {
    try {
      const r = await fetch(registry.url(), { signal: AbortSignal.timeout(2000) });
      return r.status === 200;
    } catch {
      return false;
    }
  },

  /**
   * Starts the registry again exactly as up.sh does (`setsid docker-registry serve config.yml`,
   * output appended to registry.log, pid in the pid file) unless it runs; waits until it answers.
   * Falls back to running up.sh itself.
   */
  async ensureUp(): Promise<void> {
    // One that runs but does not answer yet is starting, or dying: give it a moment either way.
    if (registry.pid() !== null && !(await eventually(async () => registry.pid() === null || (await registry.answers()), 10_000))) {
      throw new Error(`the registry (pid ${registry.pid()}) runs but does not answer`);
    }
    if (registry.pid() === null) {
      const log = openSync(join(registry.dir(), 'registry.log'), 'a');
      try {
        const child = spawn('docker-registry', ['serve', join(registry.dir(), 'config.yml')], { detached: true, stdio: ['ignore', log, log] });
        child.on('error', () => undefined);
        if (child.pid) writeFileSync(join(registry.dir(), 'pid'), `${child.pid}\n`);
        child.unref();
      } finally {
        closeSync(log);
      }
    }
    if (await eventually(() => registry.answers(), 20_000)) return;
    const up = await run('bash', [join(import.meta.dirname, '..', 'env', 'up.sh')], process.env, 300_000);
    if (up.code !== 0 || !(await registry.answers())) throw new Error(`the registry did not come back: ${up.stderr.slice(-500)}`);
  },
};

// ----------------------------------------------------------------------- hanging server

export interface HangingServer {
  port: number;
  url(path?: string): string;
  /** From now on, connections are passed through to 127.0.0.1:`port` (null: hang again). */
  passTo(port: number | null): void;
  /** Connections accepted so far. */
  accepted(): number;
  close(): Promise<void>;
}

/** A TCP server on 127.0.0.1 that accepts every connection and never answers (until `passTo`). */
export async function hangingServer(): Promise<HangingServer> {
  const sockets = new Set<Socket>();
  let target: number | null = null;
  let count = 0;
  const server: Server = createServer((socket) => {
    count++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    if (target === null) return; // hold it open, read nothing back
    const upstream = createConnection({ host: '127.0.0.1', port: target });
    upstream.on('error', () => socket.destroy());
    socket.on('close', () => upstream.destroy());
    upstream.on('close', () => socket.destroy());
    socket.pipe(upstream).pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    url: (path = '/health') => `http://127.0.0.1:${port}${path}`,
    passTo(p) {
      target = p;
    },
    accepted: () => count,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------- tmpfs

/** Mounts a tmpfs of `size` (e.g. `2m`) on `dir` (created when missing). Needs root. */
export async function mountTmpfs(dir: string, size: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const r = await run('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  if (r.code !== 0) throw new Error(`mount tmpfs on ${dir}: ${r.stderr.trim()}`);
}

export async function unmount(dir: string): Promise<void> {
  if (!isMountPoint(dir)) return;
  let r = await run('umount', [dir]);
  if (r.code !== 0) r = await run('umount', ['-l', dir]);
  if (r.code !== 0) throw new Error(`umount ${dir}: ${r.stderr.trim()}`);
}

export function isMountPoint(dir: string): boolean {
  try {
    return readFileSync('/proc/self/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === dir);
  } catch {
    return false;
  }
}

/** Fills the file system of `dir` to the last byte with `dir/FILLER`; returns the bytes written. */
export function fillUp(dir: string): number {
  const fd = openSync(join(dir, 'FILLER'), 'w');
  let written = 0;
  try {
    for (const size of [1 << 16, 1]) {
      const chunk = Buffer.alloc(size, 0x5a);
      try {
        for (;;) written += writeSync(fd, chunk);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
      }
    }
  } finally {
    closeSync(fd);
  }
  return written;
}

/** Names in `dir` that look like temp files (`.x.tmp`, `*.partial`, hidden files), recursively. */
export function tempFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (/^\.|\.tmp$|\.partial$/.test(e.name)) out.push(join(dir, e.name));
    else if (e.isDirectory()) out.push(...tempFiles(join(dir, e.name)));
  }
  return out;
}

// -------------------------------------------------------------------------------- the doc

const DOC = join(import.meta.dirname, '..', '..', 'docs', 'reliability.md');
const OUTER_START = '<!-- faults:start -->';
const OUTER_END = '<!-- faults:end -->';

/**
 * Replaces one part (`run`: faults during a run, `fuzz`: hostile input) inside the
 * `faults` markers of docs/reliability.md, keeping the other part; adds the markers at the end
 * when missing. Nothing outside the markers is touched.
 */
export function writeFaultsDoc(part: 'run' | 'fuzz', markdown: string): void {
  let doc = existsSync(DOC) ? readFileSync(DOC, 'utf8') : '# Reliability\n';
  if (!doc.includes(OUTER_START) || !doc.includes(OUTER_END)) doc = `${doc.trimEnd()}\n\n${OUTER_START}\n${OUTER_END}\n`;
  const start = doc.indexOf(OUTER_START) + OUTER_START.length;
  const end = doc.indexOf(OUTER_END);
  let inner = doc.slice(start, end);
  const parts: Record<'run' | 'fuzz', string> = { run: '', fuzz: '' };
  for (const p of ['run', 'fuzz'] as const) {
    const m = new RegExp(`<!-- faults-${p}:start -->[\\s\\S]*?<!-- faults-${p}:end -->`).exec(inner);
    if (m) parts[p] = m[0];
  }
  parts[part] = `<!-- faults-${part}:start -->\n${markdown.trim()}\n<!-- faults-${part}:end -->`;
  inner = `\n${[parts.run, parts.fuzz].filter(Boolean).join('\n\n')}\n`;
  writeFileSync(DOC, doc.slice(0, start) + inner + doc.slice(end));
}

/** A markdown table cell: one line, pipes escaped, long text shortened. */
export function cell(text: string, max = 220): string {
  const one = text.replace(/\s+/g, ' ').replace(/\|/g, '\\|').trim();
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}
