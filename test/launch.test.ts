/**
 * The three ways the updater is started on a device (bin/updater.mjs's own line, the systemd
 * unit, the container image) give node the same flags and environment, so the memory measured in
 * docs/performance.md is what every device gets; and the launcher without a build says so.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../src/paths.js';
import { cleanup, tempDir } from './support/harness.js';

const read = (...p: string[]) => readFileSync(join(PACKAGE_ROOT, ...p), 'utf8');

function fromLauncher(): { env: string[]; flags: string[] } {
  const line = read('bin', 'updater.mjs').split('\n')[0]!;
  const m = /^#!\/usr\/bin\/env -S ((?:\w+=\S+ )*)node((?: --\S+)*)$/.exec(line);
  assert.ok(m, `bin/updater.mjs's first line is "#!/usr/bin/env -S [VAR=value …] node [--flag …]": ${line}`);
  return { env: m[1]!.trim().split(' ').filter(Boolean), flags: m[2]!.trim().split(' ').filter(Boolean) };
}

test('bin/updater.mjs, deploy/updater.service and deploy/Dockerfile start node with the same flags and environment', () => {
  const { env, flags } = fromLauncher();
  assert.ok(flags.includes('--max-semi-space-size=1') && env.includes('MALLOC_ARENA_MAX=2'), 'the launcher has the measured settings');

  const unit = read('deploy', 'updater.service');
  const exec = /^ExecStart=\/usr\/bin\/node ((?:--\S+ )*)\/opt\/dune-updater\/bin\/updater\.mjs serve/m.exec(unit);
  assert.ok(exec, 'the unit runs /usr/bin/node [flags] /opt/dune-updater/bin/updater.mjs serve');
  assert.deepEqual(exec[1]!.trim().split(' '), flags, 'the unit: same node flags');
  const unitEnv = [...unit.matchAll(/^Environment=(.*)$/gm)].flatMap((l) => l[1]!.split(' '));
  for (const e of env) assert.ok(unitEnv.includes(e), `the unit: Environment= has ${e}`);

  const docker = read('deploy', 'Dockerfile');
  const entry = /^ENTRYPOINT (\[.*\])$/m.exec(docker);
  assert.ok(entry, 'the Dockerfile has an exec-form ENTRYPOINT');
  assert.deepEqual(JSON.parse(entry[1]!), ['node', ...flags, '/app/bin/updater.mjs'], 'the image: same node flags');
  const dockerEnv = [...docker.matchAll(/^ENV (.*)$/gm)].flatMap((l) => l[1]!.split(' '));
  for (const e of env) assert.ok(dockerEnv.includes(e), `the image: ENV has ${e}`);

  const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
  assert.match(pkg.scripts.start!, /^npm run build --silent && bin\/updater\.mjs serve$/, 'npm start builds, then runs the launcher');
});

test('the launcher without a build exits 3 and says how to build', () => {
  const dir = tempDir();
  try {
    mkdirSync(join(dir, 'bin'));
    copyFileSync(join(PACKAGE_ROOT, 'bin', 'updater.mjs'), join(dir, 'bin', 'updater.mjs'));
    const r = spawnSync(process.execPath, [join(dir, 'bin', 'updater.mjs'), 'serve'], { encoding: 'utf8' });
    assert.equal(r.status, 3);
    assert.match(r.stderr, /dune-updater is not built \(no .*\/dist\/updater\.js\): run `npm run build` in /);
  } finally {
    cleanup(dir);
  }
});
