/**
 * Smoke test of the real-parts test bed (test/env/up.sh): the private dockerd, the local
 * registry with the sample images, docker compose, and systemd in a container.
 * When the bed is down it skips, except in CI (CI=true), where it fails.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const NOT_RUNNING = 'test bed not running: run test/env/up.sh';

interface Bed { dockerHost: string; registry: string; systemd: string; env: NodeJS.ProcessEnv }

/** The bed's variables: from the environment when env.sh was sourced, else from $TESTBED_DIR/env.sh. */
function bedVars(): Record<string, string> {
  const vars: Record<string, string> = {};
  const file = join(process.env.TESTBED_DIR ?? '/tmp/updater-testbed', 'env.sh');
  if (existsSync(file)) {
    for (const m of readFileSync(file, 'utf8').matchAll(/^export (\w+)=(.*)$/gm)) vars[m[1]!] = m[2]!;
  }
  for (const k of ['DOCKER_HOST', 'TESTBED_REGISTRY', 'TESTBED_SYSTEMD_CONTAINER']) {
    if (process.env.TESTBED_REGISTRY && process.env[k]) vars[k] = process.env[k]!;
  }
  return vars;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeout = 60_000) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(cmd, args, { env, timeout }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

async function probe(): Promise<Bed | string> {
  const v = bedVars();
  if (!v.DOCKER_HOST || !v.TESTBED_REGISTRY || !v.TESTBED_SYSTEMD_CONTAINER) return `${NOT_RUNNING} (no env.sh)`;
  const env = { ...process.env, DOCKER_HOST: v.DOCKER_HOST };
  const info = await run('docker', ['info', '--format', '{{.ServerVersion}}'], env, 10_000);
  if (info.code !== 0) return `${NOT_RUNNING} (docker info at ${v.DOCKER_HOST}: ${info.stderr.trim()})`;
  return { dockerHost: v.DOCKER_HOST, registry: v.TESTBED_REGISTRY, systemd: v.TESTBED_SYSTEMD_CONTAINER, env };
}

const found = await probe();
const bed = typeof found === 'string' ? undefined : found;
const skip = bed || process.env.CI === 'true' ? false : (found as string);
function need(): Bed {
  if (!bed) assert.fail(found as string);
  return bed;
}

/** `docker compose` when the plugin exists, else the v1 `docker-compose`. */
async function composeCommand(env: NodeJS.ProcessEnv): Promise<string[]> {
  if ((await run('docker', ['compose', 'version'], env)).code === 0) return ['docker', 'compose'];
  if ((await run('docker-compose', ['version'], env)).code === 0) return ['docker-compose'];
  assert.fail('neither `docker compose` nor `docker-compose` is available: run test/env/install.sh');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    }).on('error', reject);
  });
}

test('the private docker engine answers through DOCKER_HOST', { skip }, async () => {
  const { env } = need();
  const r = await run('docker', ['info', '--format', '{{.ServerVersion}}'], env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout.trim(), /^\d+\.\d+/);
});

test('the registry lists the sample tags 1.0.0 to 1.3.0', { skip }, async () => {
  const { registry } = need();
  const res = await fetch(`http://${registry}/v2/sample/tags/list`);
  assert.equal(res.status, 200);
  const { tags } = (await res.json()) as { tags: string[] };
  for (const tag of ['1.0.0', '1.1.0', '1.2.0', '1.3.0']) assert.ok(tags.includes(tag), `missing sample:${tag} in ${tags}`);
});

test('a compose project of sample:1.0.0 comes up, answers /health, and is torn down', { skip }, async () => {
  const { env, registry } = need();
  const compose = await composeCommand(env);
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'testbed-smoke-'));
  const project = `tbsmoke${process.pid}`;
  const file = join(dir, 'docker-compose.yml');
  writeFileSync(file, [
    'version: "2.4"',
    'services:',
    '  sample:',
    `    image: ${registry}/sample:1.0.0`,
    '    network_mode: host',
    '    init: true',
    '    environment:',
    `      PORT: "${port}"`,
    '',
  ].join('\n'));
  const dc = (...args: string[]) => run(compose[0]!, [...compose.slice(1), '-p', project, '-f', file, ...args], env);
  try {
    const up = await dc('up', '-d');
    assert.equal(up.code, 0, up.stderr);
    let body: unknown;
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/health`);
        if (res.ok) { body = await res.json(); break; }
      } catch { /* not listening yet */ }
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.deepEqual(body, { status: 'ok', version: '1.0.0' });
  } finally {
    const down = await dc('down', '--remove-orphans');
    rmSync(dir, { recursive: true, force: true });
    assert.equal(down.code, 0, down.stderr);
  }
  const left = await run('docker', ['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`], env);
  assert.equal(left.stdout.trim(), '', 'containers left after down');
});

test('systemd in the test bed container answers systemctl', { skip }, async () => {
  const { env, systemd } = need();
  const r = await run('docker', ['exec', systemd, 'systemctl', 'is-active', 'testbed-no-such-unit.service'], env);
  assert.equal(r.stdout.trim(), 'inactive', r.stderr);
  assert.equal(r.code, 3);
});
