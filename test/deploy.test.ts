/**
 * The shipped systemd unit (deploy/updater.service), tried for real: the updater installed under
 * the test bed's apps directory as docs/install.md leaves it (the build, and node_modules pruned to
 * the production install: better-sqlite3 alone), run with this node (Node 24) by the unit (with
 * its hardening) under the real systemd of the test bed, answering /healthz; then stopped cleanly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { execFileSync } from 'node:child_process';
import { freePort, run, testbed } from './support/testbed.js';
import { waitFor } from './support/service-process.js';

const { skip, need } = await testbed();
const ROOT = join(import.meta.dirname, '..');

test('deploy/updater.service runs the updater under the test bed systemd; /healthz answers; it stops cleanly', { skip }, async () => {
  const bed = need();
  const dir = join(bed.appsDir, `deploy-${process.pid}`);
  const unit = `dune-updater-test-${process.pid}`;
  const dexec = (...args: string[]) => run('docker', ['exec', bed.systemd, ...args], bed.env);
  try {
    mkdirSync(join(dir, 'app'), { recursive: true });
    cpSync(process.execPath, join(dir, 'node'));
    for (const part of ['bin', 'dist', 'migrations', 'package.json']) cpSync(join(ROOT, part), join(dir, 'app', part), { recursive: true });
    // node_modules as `npm prune --omit=dev` leaves it: the production tree (top-level packages;
    // nested node_modules come with their package). Hard links where possible (same file system).
    const production = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: ROOT, encoding: 'utf8' })
      .trim().split('\n').map((p) => relative(ROOT, p)).filter((p) => /^node_modules\/(@[^/]+\/)?[^/]+$/.test(p));
    assert.ok(production.includes('node_modules/better-sqlite3') && !production.includes('node_modules/fastify'), production.join(' '));
    for (const p of production) {
      mkdirSync(dirname(join(dir, 'app', p)), { recursive: true });
      try {
        execFileSync('cp', ['-al', join(ROOT, p), join(dir, 'app', p)]);
      } catch {
        cpSync(join(ROOT, p), join(dir, 'app', p), { recursive: true });
      }
    }
    const port = await freePort();
    mkdirSync(join(dir, 'etc'));
    writeFileSync(join(dir, 'etc', 'updater.yaml'), `server: {host: 127.0.0.1, port: ${port}}\ndataDir: ${dir}/data\ncheckIntervalHours: 0\ncomponents: []\n`);
    const shipped = readFileSync(join(ROOT, 'deploy', 'updater.service'), 'utf8');
    const unitText = shipped
      .replace(/^WorkingDirectory=.*$/m, `WorkingDirectory=${dir}/app`)
      // The shipped command line, flags and all, with this test's paths.
      .replace(/^ExecStart=\/usr\/bin\/node (.*) \/opt\/dune-updater\/bin\/updater\.mjs serve --config \S+$/m, `ExecStart=${dir}/node $1 ${dir}/app/bin/updater.mjs serve --config ${dir}/etc/updater.yaml`)
      .replace(/^ReadWritePaths=.*$/m, `ReadWritePaths=${dir}`)
      // The test bed keeps its files under /tmp, which PrivateTmp would hide; every other setting is as shipped.
      .replace(/^PrivateTmp=yes$/m, 'PrivateTmp=no');
    assert.notEqual(unitText, shipped);
    assert.match(unitText, new RegExp(`^ExecStart=${dir}/node --max-semi-space-size=1 ${dir}/app/bin/updater\\.mjs serve`, 'm'), 'the shipped ExecStart, with its flags');
    writeFileSync(join(dir, `${unit}.service`), unitText);
    await dexec('cp', join(dir, `${unit}.service`), `/etc/systemd/system/${unit}.service`);
    assert.equal((await dexec('systemctl', 'daemon-reload')).code, 0);
    const start = await dexec('systemctl', 'start', unit);
    assert.equal(start.code, 0, start.stderr);

    const health = await waitFor('/healthz under systemd', async () => {
      const r = await fetch(`http://127.0.0.1:${port}/healthz`);
      return r.ok ? ((await r.json()) as { status: string; version: string }) : null;
    }, 60_000).catch(async (error) => {
      const status = await dexec('systemctl', 'status', '--no-pager', '-l', unit);
      throw new Error(`${(error as Error).message}\n${status.stdout}`);
    });
    assert.equal(health.status, 'ok');
    assert.equal((await dexec('systemctl', 'is-active', unit)).stdout.trim(), 'active');
    assert.ok(existsSync(join(dir, 'data', 'updater.db')), 'it wrote its journal where ReadWritePaths allows');

    const stop = await dexec('systemctl', 'stop', unit);
    assert.equal(stop.code, 0);
    const state = (await dexec('systemctl', 'show', '-p', 'ActiveState', '-p', 'Result', unit)).stdout.trim().split('\n').sort();
    assert.deepEqual(state, ['ActiveState=inactive', 'Result=success'], 'a clean stop on SIGTERM, not a kill');
    assert.ok(!existsSync(join(dir, 'data', 'updater.lock')), 'the lock is released');
  } finally {
    await dexec('systemctl', 'stop', unit);
    await dexec('rm', '-f', `/etc/systemd/system/${unit}.service`);
    await dexec('systemctl', 'daemon-reload');
    await dexec('systemctl', 'reset-failed');
    await run('rm', ['-rf', dir]);
  }
});
