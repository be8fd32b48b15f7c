/**
 * The shipped systemd unit (deploy/updater.service), tried for real: the updater packaged
 * (`npm run package`) and installed by the package's install.sh into an install root under the
 * test bed's apps directory, as docs/install.md does, run through its launch with this node (Node
 * 24, as UPDATER_NODE) by the unit (with its hardening) under the real systemd of the test bed,
 * answering /healthz; then stopped cleanly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, readFileSync, readlinkSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
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
    mkdirSync(dir, { recursive: true });
    cpSync(process.execPath, join(dir, 'node'));
    // The package of this build (test/run.mjs builds dist/ first), installed as docs/install.md says.
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    execFileSync('npm', ['run', 'package', '--silent', '--', '--version', version, '--out', join(dir, 'pkg'), '--no-build'], { cwd: ROOT });
    execFileSync('tar', ['xzf', join(dir, 'pkg', `dune-updater-${version}.tar.gz`), '-C', join(dir, 'pkg')]);
    execFileSync('sh', [join(dir, 'pkg', `dune-updater-${version}`, 'install.sh'), join(dir, 'root')]);
    const port = await freePort();
    mkdirSync(join(dir, 'etc'));
    writeFileSync(join(dir, 'etc', 'updater.yaml'), `server: {host: 127.0.0.1, port: ${port}}\ndataDir: ${dir}/data\ncheckIntervalHours: 0\ncomponents: []\n`);
    const shipped = readFileSync(join(ROOT, 'deploy', 'updater.service'), 'utf8');
    const unitText = shipped
      .replace(/^WorkingDirectory=.*$/m, `WorkingDirectory=${dir}/root`)
      // The shipped command line with this test's paths; this node, which the bed's PATH does not have.
      .replace(/^ExecStart=\/opt\/dune-updater\/launch serve --config \S+$/m, `ExecStart=${dir}/root/launch serve --config ${dir}/etc/updater.yaml\nEnvironment=UPDATER_NODE=${dir}/node`)
      .replace(/^ReadWritePaths=.*$/m, `ReadWritePaths=${dir}`)
      // The test bed keeps its files under /tmp, which PrivateTmp would hide; every other setting is as shipped.
      .replace(/^PrivateTmp=yes$/m, 'PrivateTmp=no');
    assert.notEqual(unitText, shipped);
    assert.match(unitText, new RegExp(`^ExecStart=${dir}/root/launch serve --config `, 'm'), 'the shipped ExecStart: launch');
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
    assert.equal(health.version, version, "the release's VERSION");
    assert.equal((await dexec('systemctl', 'is-active', unit)).stdout.trim(), 'active');
    // The unit started launch, which became the release current points at (exec, no trial) with this node.
    const mainPid = (await dexec('systemctl', 'show', '-p', 'MainPID', '--value', unit)).stdout.trim();
    const cmdline = (await dexec('cat', `/proc/${mainPid}/cmdline`)).stdout.split('\0').filter(Boolean);
    assert.deepEqual(cmdline, [`${dir}/node`, '--max-semi-space-size=1', `${dir}/root/current/bin/updater.mjs`, 'serve', '--config', `${dir}/etc/updater.yaml`], `the unit's main process (${mainPid})`);
    assert.equal(readlinkSync(join(dir, 'root', 'current')), `releases/${version}`);
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
