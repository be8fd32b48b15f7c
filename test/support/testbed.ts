/**
 * The real-parts test bed (test/env/up.sh) as tests see it. When the bed is down a test that
 * needs it skips, except under CI=true, where it fails with the reason.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

export const NOT_RUNNING = 'test bed not running: run test/env/up.sh';

export interface Bed {
  dockerHost: string;
  registry: string;
  systemd: string;
  appsDir: string;
  env: NodeJS.ProcessEnv;
}

/** The bed's variables: from the environment when env.sh was sourced, else from $TESTBED_DIR/env.sh. */
export function bedVars(): Record<string, string> {
  const vars: Record<string, string> = {};
  const file = join(process.env.TESTBED_DIR ?? '/tmp/updater-testbed', 'env.sh');
  if (existsSync(file)) {
    for (const m of readFileSync(file, 'utf8').matchAll(/^export (\w+)=(.*)$/gm)) vars[m[1]!] = m[2]!;
  }
  for (const k of ['DOCKER_HOST', 'TESTBED_REGISTRY', 'TESTBED_SYSTEMD_CONTAINER', 'TESTBED_APPS_DIR']) {
    if (process.env.TESTBED_REGISTRY && process.env[k]) vars[k] = process.env[k]!;
  }
  return vars;
}

export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, timeout = 60_000, cwd?: string) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(cmd, args, { env, timeout, cwd }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

export async function probeBed(): Promise<Bed | string> {
  const v = bedVars();
  if (!v.DOCKER_HOST || !v.TESTBED_REGISTRY || !v.TESTBED_SYSTEMD_CONTAINER) return `${NOT_RUNNING} (no env.sh)`;
  const env = { ...process.env, DOCKER_HOST: v.DOCKER_HOST };
  const info = await run('docker', ['info', '--format', '{{.ServerVersion}}'], env, 10_000);
  if (info.code !== 0) return `${NOT_RUNNING} (docker info at ${v.DOCKER_HOST}: ${info.stderr.trim()})`;
  return { dockerHost: v.DOCKER_HOST, registry: v.TESTBED_REGISTRY, systemd: v.TESTBED_SYSTEMD_CONTAINER, appsDir: v.TESTBED_APPS_DIR ?? '/tmp/updater-testbed/apps', env };
}

/** For `test(name, { skip: bedSkip }, …)` and `need()` inside: skip outside CI, fail in CI. */
export async function testbed(): Promise<{ bed: Bed | undefined; skip: string | false; need: () => Bed }> {
  const found = await probeBed();
  const bed = typeof found === 'string' ? undefined : found;
  const skip = bed || process.env.CI === 'true' ? false : (found as string);
  return {
    bed,
    skip,
    need: () => {
      if (!bed) assert.fail(found as string);
      return bed;
    },
  };
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}
