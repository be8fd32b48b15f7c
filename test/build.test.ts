/**
 * The build (`npm run build`, scripts/build.ts) is what a device runs: its shape, what it needs
 * from node_modules (only package.json's dependencies), and the built service driving the real
 * Docker engine through the bundled dockerode (whose ssh2 and gRPC modules the build replaces with
 * stubs), updating a container and rolling a bad one back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { PACKAGE_ROOT } from '../src/paths.js';
import { buildDist } from '../scripts/build.js';
import { cleanup, tempDir } from './support/harness.js';
import { LAUNCHER } from './support/built.js';
import { startService, waitFor } from './support/service-process.js';
import { containerWorld } from './support/container-world.js';
import { testbed } from './support/testbed.js';

const { skip, need } = await testbed();
const DIST = join(PACKAGE_ROOT, 'dist');
const code = () => [join(DIST, 'updater.js'), ...readdirSync(join(DIST, 'chunks')).filter((f) => f.endsWith('.js')).map((f) => join(DIST, 'chunks', f))].map((f) => readFileSync(f, 'utf8')).join('\n');

test('the build: one entry, ASCII, the dashboard prebuilt, the stubs and the lazy ListFormat in place, the version from package.json', () => {
  const all = code();
  // Boolean checks: a failing assert.match would print the whole bundle.
  const has = (re: RegExp, what: string) => assert.ok(re.test(all), what);
  const hasNot = (re: RegExp, what: string) => assert.ok(!re.test(all), what);
  assert.match(readFileSync(join(DIST, 'updater.js'), 'utf8'), /^#!\/usr\/bin\/env node/, 'the entry keeps its hashbang');
  for (const f of ['app.js', 'index.html', 'style.css']) assert.ok(readFileSync(join(DIST, 'dashboard', f), 'utf8').length > 100, `dist/dashboard/${f}`);
  has(/DOCKER_HOST=ssh:\/\/\\u2026 is not supported by the updater/, 'ssh2 is the stub');
  // ASCII only (other characters escaped), so V8 holds each module's source one byte a character, not two.
  assert.ok(!/[\u0080-\uffff]/.test(all), 'the bundle is ASCII');
  has(/BuildKit sessions \(gRPC\) are not part of the updater's build/, 'the gRPC modules are the stub');
  // ssh2's Emscripten module (createPoly1305); nats' nkeys brings tweetnacl, whose own poly1305 is plain JavaScript.
  hasNot(/createPoly1305/, "ssh2's WebAssembly is not in the build");
  has(/Formatter=__lazyListFormat\("en"/, 'the ListFormats of @sindresorhus/is are made lazily');
  hasNot(/new Intl\.ListFormat\("en"/, 'no ListFormat is made when the module loads');
  const version = (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  assert.equal(execFileSync(LAUNCHER, ['--show-version'], { encoding: 'utf8' }).trim(), version);
});

interface Manifest {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  scripts: Record<string, string>;
}

test('what runs needs only the production install: the bundle loads nothing from node_modules but better-sqlite3, the one dependency', async () => {
  const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as Manifest;
  assert.deepEqual(Object.keys(pkg.dependencies), ['better-sqlite3'], 'every JavaScript library is bundled, so it is a devDependency');
  for (const tool of ['esbuild', 'tsx', 'typescript', 'playwright-core']) assert.ok(tool in pkg.devDependencies, `${tool} is a devDependency`);
  for (const [name, version] of Object.entries({ ...pkg.dependencies, ...pkg.devDependencies })) assert.match(version, /^\d+\.\d+\.\d+$/, `${name} is pinned exactly`);

  const dir = tempDir('updater-build-');
  try {
    // A build of its own (dist/ may be in use by other tests): the packages it imports at run time.
    const { external } = await buildDist(join(dir, 'dist'));
    assert.deepEqual(external.filter((n) => !['bufferutil', 'utf-8-validate', 'supports-color'].includes(n)), ['better-sqlite3']);
    const chunks = readdirSync(join(dir, 'dist', 'chunks')).map((f) => readFileSync(join(dir, 'dist', 'chunks', f), 'utf8'));
    assert.ok(!chunks.some((c) => /from\s*"esbuild"/.test(c)), 'no chunk imports esbuild (the dashboard is prebuilt)');
  } finally {
    cleanup(dir);
  }

  // The production install: better-sqlite3 and what it needs to load (and to install itself), nothing else.
  const tree = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: PACKAGE_ROOT, encoding: 'utf8' })
    .trim().split('\n').slice(1).map((p) => relative(PACKAGE_ROOT, p));
  assert.ok(tree.includes('node_modules/better-sqlite3') && tree.includes('node_modules/bindings'), tree.join(' '));
  for (const lib of ['fastify', 'xstate', 'pino', 'dockerode', 'got', 'zod', 'esbuild', 'tsx', 'typescript']) {
    assert.ok(!tree.includes(`node_modules/${lib}`), `${lib} is not in the production install`);
  }
});

test('no unused dependencies: each is imported by the code, the tests, the benches or the scripts, or run by a package.json script', () => {
  const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as Manifest;
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(ts|mjs|cjs|js)$/.test(e.name) && statSync(p).size < 1_000_000) files.push(readFileSync(p, 'utf8'));
    }
  };
  for (const d of ['src', 'machines', 'test', 'bench', 'soak', 'scripts', 'bin']) walk(join(PACKAGE_ROOT, d));
  for (const f of readdirSync(PACKAGE_ROOT).filter((f) => /\.config\.(m?js|ts)$/.test(f))) files.push(readFileSync(join(PACKAGE_ROOT, f), 'utf8'));
  const code = files.join('\n');
  const scripts = Object.values(pkg.scripts).join(' ');
  const bins: Record<string, string> = { typescript: 'tsc' };
  const unused = Object.keys({ ...pkg.dependencies, ...pkg.devDependencies }).filter((name) => {
    if (name.startsWith('@types/')) {
      const base = name.slice('@types/'.length);
      return base !== 'node' && !(base in pkg.dependencies) && !(base in pkg.devDependencies);
    }
    const imported = new RegExp(`(from|import\\(|require\\()\\s*['"]${name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}(/[^'"]*)?['"]`).test(code);
    return !imported && !new RegExp(`(^|[ &;])${bins[name] ?? name}( |$)`).test(scripts);
  });
  assert.deepEqual(unused, []);
});

test('the built service updates a container on the real engine (1.0.0 → 1.1.0) and rolls back 1.2.0', { skip, timeout: 240_000 }, async () => {
  const bed = need();
  const w = await containerWorld(bed);
  const cfg = join(w.dir, 'updater.yaml');
  writeFileSync(
    cfg,
    [
      'dataDir: ./data',
      'backupDir: ./backups',
      'checkIntervalHours: 0',
      `github: {apiUrl: "${w.gh.apiUrl}", rawUrl: "${w.gh.rawUrl}"}`,
      'components:',
      `  - {name: sample, kind: container, repo: o/sample, composeFile: "${w.composeFile}", service: sample, minFreeMB: 1,`,
      `     health: {url: "http://127.0.0.1:${w.port}/health", timeoutSeconds: 6}}`,
      '',
    ].join('\n'),
  );
  const service = await startService(w.dir, { DOCKER_HOST: bed.dockerHost }, ['--config', cfg]);
  try {
    const components = (await (await fetch(`${service.url}/api/components`)).json()) as Array<{ name: string; running: boolean | null; current_version: string }>;
    assert.deepEqual(components.map((c) => [c.name, c.current_version, c.running]), [['sample', '1.0.0', true]], 'the bundled dockerode sees the running container');

    const update = async (version: string) => {
      const r = await fetch(`${service.url}/api/components/sample/updates`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ version }) });
      assert.equal(r.status, 202, await r.clone().text());
      const { run_id } = (await r.json()) as { run_id: number };
      return waitFor(`run ${run_id}`, async () => {
        const run = (await (await fetch(`${service.url}/api/runs/${run_id}`)).json()) as { state: string; message: string };
        return ['succeeded', 'rolled_back', 'rollback_failed', 'aborted'].includes(run.state) ? run : null;
      }, 180_000);
    };
    const good = await update('1.1.0');
    assert.equal(good.state, 'succeeded', good.message);
    assert.equal(good.message, 'Updated sample to 1.1.0');
    assert.deepEqual(await (await fetch(`http://127.0.0.1:${w.port}/health`)).json(), { status: 'ok', version: '1.1.0' });
    assert.match(readFileSync(w.composeFile, 'utf8'), /sample:1\.1\.0"/);

    const bad = await update('1.2.0');
    assert.equal(bad.state, 'rolled_back', bad.message);
    assert.match(bad.message, /^Post-update checks failed, rolled back to v1\.1\.0: health URL http:\/\/127\.0\.0\.1:\d+\/health answered 404/);
    assert.deepEqual(await (await fetch(`http://127.0.0.1:${w.port}/health`)).json(), { status: 'ok', version: '1.1.0' });
  } finally {
    service.child.kill('SIGTERM');
    await service.exited;
    await w.close();
  }
});
