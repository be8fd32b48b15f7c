/** The real `updater serve` as a child process in a temp directory (no config: the demo). */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LAUNCHER } from './built.js';
import { freePort } from './testbed.js';

export { LAUNCHER };

export interface ServiceProcess {
  child: ChildProcess;
  url: string;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Gives the demo of `cwd` free ports, so it cannot clash with a developer's running demo. */
export async function prepareDemoDir(cwd: string): Promise<void> {
  const demo = join(cwd, 'data', 'demo');
  mkdirSync(demo, { recursive: true });
  if (!existsSync(join(demo, 'app.port'))) writeFileSync(join(demo, 'app.port'), `${await freePort()}\n`);
  if (!existsSync(join(demo, 'releases.port'))) writeFileSync(join(demo, 'releases.port'), `${await freePort()}\n`);
}

export function demoAppPort(cwd: string): number {
  return Number(readFileSync(join(cwd, 'data', 'demo', 'app.port'), 'utf8').trim());
}

/** Starts `updater serve` and resolves once it listens (or rejects with its output if it exits). */
export function startService(cwd: string, env: Record<string, string> = {}, args: string[] = []): Promise<ServiceProcess> {
  const child = spawn(LAUNCHER, ['serve', ...args], { cwd, env: { ...process.env, UPDATER_SERVER__PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (b) => (out += b));
  child.stderr.on('data', (b) => (out += b));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line within 30 s:\n${out}`)), 30_000);
    const onData = () => {
      const m = /"msg":"updater listening on (http:[^"]+)"/.exec(out);
      if (m) {
        clearTimeout(timer);
        child.stdout.off('data', onData);
        resolve({ child, url: m[1]!, output: () => out, exited });
      }
    };
    child.stdout.on('data', onData);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(Object.assign(new Error(`exited (${code ?? signal}) before listening:\n${out}`), { code, output: out }));
    });
  });
}

/** Runs `updater serve` expecting it to exit; resolves with its code and output. */
export function serveUntilExit(cwd: string, env: Record<string, string> = {}): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(LAUNCHER, ['serve'], { cwd, env: { ...process.env, UPDATER_SERVER__PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b) => (out += b));
    child.stderr.on('data', (b) => (out += b));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output: out });
    });
  });
}

export async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => null);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
