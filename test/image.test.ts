/**
 * The container image (deploy/Dockerfile), tried for real in the test bed's engine: built from the
 * repository root with the classic builder, then run with the host network, its configuration
 * mounted read-only and the engine's socket mounted, answering /healthz from the host and turning
 * `healthy` through its own HEALTHCHECK; then run again unprivileged (the image's `node` user in
 * the socket's group).
 *
 * Docker Hub is out of reach here, so the base, `node:24-bookworm-slim`, is, when the engine lacks
 * it, an offline stand-in made by test/env/base-image.sh (Debian bookworm minbase + the Node 24
 * running this test, its headers and the host's npm); the Dockerfile itself is built unchanged. Its stages need the Debian mirror (apt) and the
 * npm registry (npm ci; better-sqlite3 compiles from source): both reachable with --network host.
 * A cold build takes a few minutes; later runs reuse the engine's layer cache.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runtimeClosure } from '../scripts/package.js';
import { freePort, run, testbed, type Bed } from './support/testbed.js';

const { skip, need } = await testbed();
const ROOT = join(import.meta.dirname, '..');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
/** Both stages' FROM (the test checks they agree). */
const BASES = [...readFileSync(join(ROOT, 'deploy', 'Dockerfile'), 'utf8').matchAll(/^FROM (\S+)/gm)].map((m) => m[1]!);
const BASE = BASES[0]!;
/** Named after the base, so a worktree on another base building at the same time does not take the tag. */
const IMAGE = `dune-updater:test-${BASE.replace(/[^\w.-]+/g, '-')}`;

/** Runs a long command; resolves with its exit code and the tail of its output. */
function runLong(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number) {
  return new Promise<{ code: number | null; tail: string; ms: number }>((resolve) => {
    const started = Date.now();
    const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const keep = (b: Buffer) => {
      out = (out + b.toString()).slice(-16_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, tail: out, ms: Date.now() - started });
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, seconds: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`gave up after ${seconds} s waiting for ${what}`);
    await sleep(250);
  }
}

/** The image, built once per file: base-image.sh first, then the real Dockerfile. */
let building: Promise<{ buildMs: number; size: number; standin: boolean }> | null = null;
function buildImage(bed: Bed) {
  building ??= (async () => {
    // The stand-in's node is this test's (Node 24), whatever comes first on PATH.
    const base = await runLong('bash', [join(ROOT, 'test', 'env', 'base-image.sh')], { ...bed.env, NODE: process.execPath }, 10 * 60_000);
    assert.equal(base.code, 0, `test/env/base-image.sh failed:\n${base.tail}`);
    const built = await runLong(
      'docker',
      ['build', '--network', 'host', '-f', 'deploy/Dockerfile', '-t', IMAGE, '.'],
      { ...bed.env, DOCKER_BUILDKIT: '0' },
      20 * 60_000,
    );
    assert.equal(built.code, 0, `docker build failed (${Math.round(built.ms / 1000)} s):\n${built.tail}`);
    const size = Number((await run('docker', ['image', 'inspect', '-f', '{{.Size}}', IMAGE], bed.env)).stdout.trim());
    const label = await run('docker', ['image', 'inspect', '-f', '{{index .Config.Labels "dune-updater.testbed.standin"}}', BASE], bed.env);
    return { buildMs: built.ms, size, standin: label.stdout.trim() === 'true' };
  })();
  return building;
}

/** A config directory for /etc/dune-updater: no components, no scheduled checks, dataDir from the image. */
function configDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'updater-image-'));
  mkdirSync(join(dir, 'etc'));
  writeFileSync(join(dir, 'etc', 'updater.yaml'), 'components: []\ncheckIntervalHours: 0\n');
  return dir;
}

function socketPath(bed: Bed): string {
  return bed.dockerHost.replace(/^unix:\/\//, '');
}

async function healthz(port: number): Promise<{ status: string; version: string } | undefined> {
  const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2000) });
  return res.status === 200 ? ((await res.json()) as { status: string; version: string }) : undefined;
}

test('deploy/Dockerfile builds in the test bed: multi-stage, only the runtime ships', { skip, timeout: 30 * 60_000 }, async (t) => {
  const bed = need();
  const { buildMs, size, standin } = await buildImage(bed);
  t.diagnostic(`built ${IMAGE} in ${Math.round(buildMs / 1000)} s, ${Math.round(size / 1e6)} MB, FROM ${BASE}${standin ? ' (offline stand-in, test/env/base-image.sh)' : ''}`);
  // Where the size goes, layer by layer (the base's own layers first).
  const history = await run('docker', ['history', '--no-trunc', '--format', '{{.Size}}\t{{.CreatedBy}}', IMAGE], bed.env);
  for (const line of history.stdout.trim().split('\n').reverse()) {
    const [layer, by] = line.split('\t');
    if (layer !== '0B') t.diagnostic(`layer ${layer}: ${by ? by.replace(/\s+/g, ' ').slice(0, 140) : `${BASE} (imported)`}`);
  }
  assert.deepEqual(BASES, ['node:24-bookworm-slim', 'node:24-bookworm-slim'], 'both stages on Node 24');

  const cfg = await run('docker', ['image', 'inspect', '-f', '{{json .Config}}', IMAGE], bed.env);
  const config = JSON.parse(cfg.stdout) as { Entrypoint: string[]; Healthcheck?: { Test: string[] }; Env: string[]; Volumes: Record<string, unknown> };
  assert.deepEqual(config.Entrypoint, ['/opt/dune-updater/launch'], 'launch, which runs current/bin/updater.mjs with its node flags');
  assert.ok(config.Healthcheck?.Test.join(' ').includes('/healthz'), 'the image has a HEALTHCHECK on /healthz');
  assert.ok(config.Env.includes('UPDATER_DATA_DIR=/var/lib/dune-updater'));
  assert.ok(config.Env.includes('MALLOC_ARENA_MAX=2'));
  assert.ok('/var/lib/dune-updater' in config.Volumes);

  // What ships: the install root (launch, current -> releases/<version>) holding the package of
  // `npm run package` installed by its install.sh (the build, no sources, tests, docs or the host's
  // node_modules), the docker CLI and docker-compose; not the compiler toolchain of the build stage.
  const R = '/opt/dune-updater/current';
  const inside = await run('docker', ['run', '--rm', '--network', 'host', '--entrypoint', 'sh', IMAGE, '-c',
    `ls ${R}/; echo ---; for c in docker docker-compose; do command -v $c; done; echo ---; for c in g++ make cc; do command -v $c; done; echo ---; ls ${R}/node_modules/better-sqlite3/build/Release; echo ---; ls ${R}/dist ${R}/dist/dashboard; echo ---; node -p process.versions.node; echo ---; cd ${R}/node_modules && for p in */package.json @*/*/package.json; do [ -e "$p" ] && echo "\${p%/package.json}"; done; echo ---; ls /opt/dune-updater; readlink /opt/dune-updater/current; cat ${R}/VERSION; true`], bed.env);
  assert.equal(inside.code, 0, inside.stderr);
  const [app, tools, toolchain, addon, dist, node, modules, root] = inside.stdout.split('---\n').map((s) => s.trim().split('\n').filter(Boolean));
  assert.deepEqual(app, ['VERSION', 'bin', 'dist', 'install.sh', 'launch', 'migrations', 'node_modules', 'package.json']);
  // The install root of install.sh: launch, releases/, current -> releases/<version> (no previous, no trial),
  // and the release's VERSION is the packaged version (package.json's, which the Dockerfile packages).
  const [readlinkCurrent, packaged] = root!.slice(-2);
  assert.deepEqual(root!.slice(0, -2), ['current', 'launch', 'releases'], 'the install root of install.sh');
  assert.equal(readlinkCurrent, `releases/${VERSION}`, '/opt/dune-updater/current -> releases/<version>');
  assert.equal(packaged, VERSION, 'current/VERSION is the packaged version');
  assert.ok(dist!.includes('updater.js') && dist!.includes('app.js') && dist!.includes('index.html'), `the build and the prebuilt dashboard: ${dist!.join(' ')}`);
  assert.deepEqual(tools, ['/usr/bin/docker', '/usr/bin/docker-compose']);
  assert.deepEqual(toolchain, [], 'no compiler in the runtime image');
  assert.deepEqual(addon, ['better_sqlite3.node']);
  assert.match(node![0]!, /^24\./, 'the runtime is Node 24');
  // node_modules is the package's production closure (its packages, top level): better-sqlite3 and what it
  // loads at run time, as scripts/package.ts finds it here.
  const production = runtimeClosure(ROOT).map((p) => /^node_modules\/((?:@[^/]+\/)?[^/@][^/]*)$/.exec(p)?.[1]).filter((n): n is string => !!n);
  assert.ok(production.includes('better-sqlite3') && !production.includes('fastify'), production.join(' '));
  assert.deepEqual(modules, production.sort(), 'the image holds the production closure, not the bundled libraries or the build tools');
});

test('the image runs with the host network and the socket mounted: /healthz answers, it turns healthy, its docker tools reach the engine, it stops on SIGTERM', { skip, timeout: 30 * 60_000 }, async (t) => {
  const bed = need();
  await buildImage(bed);
  const dir = configDir();
  const port = await freePort();
  const name = `dune-updater-image-test-${process.pid}`;
  const docker = (...args: string[]) => run('docker', args, bed.env, 60_000);
  try {
    const started = await docker('run', '-d', '--name', name, '--init', '--network', 'host',
      '-e', `UPDATER_SERVER__PORT=${port}`, '-e', 'UPDATER_SERVER__HOST=127.0.0.1',
      '-v', `${join(dir, 'etc')}:/etc/dune-updater:ro`,
      '-v', `${socketPath(bed)}:/var/run/docker.sock`,
      IMAGE);
    assert.equal(started.code, 0, started.stderr);

    const body = await until('/healthz from the host', 60, () => healthz(port));
    assert.equal(body.status, 'ok');
    assert.equal(body.version, VERSION);
    // The version it reports is its release's VERSION, the release current points at.
    const release = await docker('exec', name, 'sh', '-c', 'readlink /opt/dune-updater/current; cat /opt/dune-updater/current/VERSION');
    assert.equal(release.code, 0, release.stderr);
    assert.deepEqual(release.stdout.trim().split('\n'), [`releases/${body.version}`, body.version], 'the running updater reports the VERSION of the release current points at');
    // The ENTRYPOINT launch became the release (exec, no trial): node runs current/bin/updater.mjs with
    // the CMD, and no launch shell is left behind.
    const ps = await docker('exec', name, 'sh', '-c', 'for p in /proc/[0-9]*; do [ "$p" = /proc/$$ ] || { tr "\\0" " " <$p/cmdline; echo; }; done 2>/dev/null');
    const commands = ps.stdout.split('\n').map((l) => l.trim()).filter(Boolean);
    assert.ok(commands.some((c) => /^\S*node .*\/opt\/dune-updater\/current\/bin\/updater\.mjs serve --config \/etc\/dune-updater\/updater\.yaml$/.test(c)), `the updater runs from current: ${commands.join(' | ')}`);
    // (--init's docker-init keeps the ENTRYPOINT in its own command line; a launch shell would be `/bin/sh /opt/dune-updater/launch …`.)
    assert.ok(!commands.some((c) => /^\S*sh \/opt\/dune-updater\/launch /.test(c)), `launch exec'd the release: ${commands.join(' | ')}`);

    const t0 = Date.now();
    const health = await until('.State.Health.Status healthy', 90, async () => {
      const s = (await docker('inspect', '-f', '{{.State.Health.Status}}', name)).stdout.trim();
      return s === 'healthy' || s === 'unhealthy' ? s : undefined;
    });
    assert.equal(health, 'healthy', `the HEALTHCHECK failed: ${(await docker('inspect', '-f', '{{json .State.Health}}', name)).stdout}`);
    t.diagnostic(`healthy ${Math.round((Date.now() - t0) / 1000)} s after /healthz first answered`);

    // Through the mounted socket, as root (the default user).
    const engine = (await docker('version', '-f', '{{.Server.Version}}')).stdout.trim();
    const cli = await docker('exec', name, 'docker', 'version', '-f', '{{.Server.Version}}');
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal(cli.stdout.trim(), engine);
    const compose = await docker('exec', name, 'docker-compose', 'version', '--short');
    assert.equal(compose.code, 0, compose.stderr);
    assert.equal((await docker('exec', name, 'id', '-u')).stdout.trim(), '0');

    const stopStart = Date.now();
    const stopped = await docker('stop', '-t', '10', name);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.ok(Date.now() - stopStart < 8000, `stop took ${Date.now() - stopStart} ms (SIGTERM not handled?)`);
    assert.equal((await docker('inspect', '-f', '{{.State.ExitCode}}', name)).stdout.trim(), '0');
  } finally {
    const logs = await docker('logs', '--tail', '20', name);
    if (logs.code === 0) for (const line of `${logs.stdout}${logs.stderr}`.trim().split('\n')) t.diagnostic(`container: ${line}`);
    await docker('rm', '-f', '-v', name);
    rmSync(dir, { recursive: true, force: true });
  }
  assert.notEqual((await docker('inspect', name)).code, 0, 'the container is gone');
});

test('the image also runs unprivileged: the node user in the socket\'s group writes its data volume and reaches the engine', { skip, timeout: 30 * 60_000 }, async () => {
  const bed = need();
  await buildImage(bed);
  const dir = configDir();
  const port = await freePort();
  const name = `dune-updater-image-test-user-${process.pid}`;
  const docker = (...args: string[]) => run('docker', args, bed.env, 60_000);
  const socketGid = String(statSync(socketPath(bed)).gid);
  try {
    const started = await docker('run', '-d', '--name', name, '--init', '--network', 'host',
      '--user', 'node', '--group-add', socketGid,
      '-e', `UPDATER_SERVER__PORT=${port}`, '-e', 'UPDATER_SERVER__HOST=127.0.0.1',
      '-v', `${join(dir, 'etc')}:/etc/dune-updater:ro`,
      '-v', `${socketPath(bed)}:/var/run/docker.sock`,
      IMAGE);
    assert.equal(started.code, 0, started.stderr);
    const body = await until('/healthz from the host', 60, () => healthz(port));
    assert.equal(body.status, 'ok');
    assert.equal((await docker('exec', name, 'id', '-u')).stdout.trim(), '1000');
    const data = await docker('exec', name, 'stat', '-c', '%U %n', '/var/lib/dune-updater/updater.db');
    assert.equal(data.stdout.trim(), 'node /var/lib/dune-updater/updater.db');
    const cli = await docker('exec', name, 'docker', 'version', '-f', '{{.Server.Version}}');
    assert.equal(cli.code, 0, `the node user cannot use the socket (gid ${socketGid}): ${cli.stderr}`);
  } finally {
    await docker('rm', '-f', '-v', name);
    rmSync(dir, { recursive: true, force: true });
  }
});
