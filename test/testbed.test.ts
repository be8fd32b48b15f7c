/**
 * Smoke test of the real-parts test bed (test/env/up.sh): the private dockerd, the local
 * registry with the sample images, docker compose, and systemd in a container.
 * When the bed is down it skips, except in CI (CI=true), where it fails.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, run, testbed } from './support/testbed.js';

const { skip, need } = await testbed();

/** `docker compose` when the plugin exists, else the v1 `docker-compose`. */
async function composeCommand(env: NodeJS.ProcessEnv): Promise<string[]> {
  if ((await run('docker', ['compose', 'version'], env)).code === 0) return ['docker', 'compose'];
  if ((await run('docker-compose', ['version'], env)).code === 0) return ['docker-compose'];
  assert.fail('neither `docker compose` nor `docker-compose` is available: run test/env/install.sh');
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
