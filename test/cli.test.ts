/** The `updater` command as a user runs it: a real process, real files. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, tempDir } from './support/harness.js';
import { LAUNCHER } from './support/built.js';
import { prepareDemoDir, startService, type ServiceProcess } from './support/service-process.js';
import { freePort } from './support/testbed.js';
import { openDatabase } from '../src/journal/database.js';
import { Journal } from '../src/journal/journal.js';


function run(args: string[], cwd: string, env: Record<string, string> = {}) {
  return spawnSync(LAUNCHER, args, { cwd, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 30_000 });
}

const invalid: Array<[string, string, RegExp]> = [
  ['missing composeFile', 'components:\n  - {name: a, kind: app, repo: o/a, installPath: /x, service: {manager: systemd, unit: a}}\n  - {name: b, kind: container, repo: o/b, service: b}\n', /components\[1\]\.composeFile: required for kind container/],
  ['wrong type', 'checkIntervalHours: often\n', /checkIntervalHours: expected a number/],
  ['unknown key', 'dataDri: ./d\n', /unknown key "dataDri"/],
  ['bad kind', 'components:\n  - {name: a, kind: vm, repo: o/a}\n', /components\[0\]\.kind: must be one of container, app, self/],
  ['YAML syntax', 'server: {port: 80\n', /line \d+/],
  ['bad port', 'server: {port: 99999}\n', /server\.port/],
];

for (const [what, yaml, expected] of invalid) {
  test(`an invalid config (${what}) exits 2 with a message naming the key, and writes nothing`, () => {
    const dir = tempDir();
    try {
      writeFileSync(join(dir, 'updater.yaml'), `dataDir: ./data\n${yaml}`);
      const r = run(['serve'], dir);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, expected);
      assert.deepEqual(readdirSync(dir), ['updater.yaml'], 'nothing may be written');
    } finally {
      cleanup(dir);
    }
  });
}

test('an invalid environment override exits 2 and names the variable', () => {
  const dir = tempDir();
  try {
    const r = run(['serve'], dir, { UPDATER_CHECK_INTERVAL_HOURS: 'abc' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /UPDATER_CHECK_INTERVAL_HOURS/);
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    cleanup(dir);
  }
});

test('with no config the service starts on the embedded default, answers /healthz, and stops on SIGTERM', async () => {
  const dir = tempDir();
  const child = spawn(LAUNCHER, ['serve'], { cwd: dir, env: { ...process.env, UPDATER_SERVER__PORT: '0' } });
  try {
    let out = '';
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no listening line in: ${out}`)), 20_000);
      child.stdout.on('data', (b) => {
        out += b;
        const m = /"msg":"updater listening on (http:[^"]+)"/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      child.on('exit', () => reject(new Error(`exited early: ${out}`)));
    });
    assert.match(out, /"config":"embedded default \(demo\)"/);
    const res = await fetch(`${url}/healthz`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { status: string; version: string };
    assert.equal(body.status, 'ok');
    assert.match(body.version, /^\d+\.\d+\.\d+/);
    assert.ok(existsSync(join(dir, 'data', 'updater.db')));
    assert.ok(existsSync(join(dir, 'data', 'backups')));
    const exit = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    child.kill('SIGTERM');
    assert.equal(await exit, 0);
  } finally {
    child.kill('SIGKILL');
    cleanup(dir);
  }
});

test('status, runs and run read the journal and print tables', () => {
  const dir = tempDir();
  try {
    writeFileSync(join(dir, 'updater.yaml'), 'components:\n  - {name: web, kind: container, repo: o/web, composeFile: ./c.yml, service: web}\n');
    const dataDir = join(dir, 'data');
    assert.equal(run(['runs'], dir).status, 1, 'no journal yet is an error');
    spawnSync('mkdir', ['-p', dataDir]);
    const db = openDatabase(join(dataDir, 'updater.db'));
    const j = new Journal(db);
    const id = j.createRun({ component: 'web', kind: 'container', mode: 'update', requestedVersion: null, fromVersion: '1.0.0', dryRun: false, machineVersion: 1, snapshot: () => '{}' });
    const t = (to: string, message: string, result: string | null = null) =>
      j.commitTransition({ runId: id, to, event: 'x', message, level: 'info', snapshot: '{}', fromVersion: '1.0.0', toVersion: '1.1.0', recoveries: 0, result });
    t('discover', 'Looking for the latest release of web');
    t('up_to_date', 'web is up to date (1.0.0)', 'up_to_date');
    db.close();

    const runs = run(['runs'], dir);
    assert.equal(runs.status, 0, runs.stderr);
    assert.match(runs.stdout, /^RUN\s+COMPONENT\s+FROM\s+TO\s+STATE/m);
    assert.match(runs.stdout, /^1\s+web\s+1\.0\.0\s+1\.1\.0\s+up_to_date/m);
    const one = run(['run', '1'], dir);
    assert.equal(one.status, 0, one.stderr);
    assert.match(one.stdout, /run 1: web \(container\) 1\.0\.0 → 1\.1\.0/);
    assert.match(one.stdout, /idle\s+discover\s+x\s+Looking for the latest release of web/);
    const json = JSON.parse(run(['run', '1', '--json'], dir).stdout);
    assert.equal(json.transitions.length, 2);
    const status = run(['status'], dir);
    assert.match(status.stdout, /web\s+container\s+up_to_date \(run 1\)/);
    assert.match(status.stdout, /no active run/);
    assert.equal(run(['run', '42'], dir).status, 1);
    assert.equal(run(['run', 'x'], dir).status, 2);
    assert.equal(run(['frobnicate'], dir).status, 2);
  } finally {
    cleanup(dir);
  }
});

test('with no configuration and no service answering, status, check, update and rollback say the demo lives only inside serve', async () => {
  const dir = tempDir();
  let service: ServiceProcess | null = null;
  try {
    const port = String(await freePort()); // not 8080: a developer's own demo may answer there
    for (const args of [['status'], ['check'], ['check', 'sample-app'], ['update', 'sample-app'], ['rollback', 'sample-app']]) {
      const r = run(args, dir, { UPDATER_SERVER__PORT: port });
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.equal(r.stdout, '', `${args.join(' ')} prints no table`);
      assert.match(r.stderr, /the demo lives only inside a running `updater serve` \(`npm start`\)/);
      assert.match(r.stderr, new RegExp(`No updater answers at http://127\\.0\\.0\\.1:${port}\\.`));
    }
    assert.deepEqual(readdirSync(dir), [], 'nothing written');

    // With the demo serving, they go through it: its component is there.
    await prepareDemoDir(dir);
    service = await startService(dir);
    const env = { UPDATER_SERVER__PORT: new URL(service.url).port };
    const check = run(['check'], dir, env);
    assert.equal(check.status, 0, check.stderr);
    assert.match(check.stdout, /^sample-app\s+1\.0\.0\s+1\.2\.0\s+yes/m);
    const status = run(['status'], dir, env);
    assert.equal(status.status, 0, status.stderr);
    assert.match(status.stdout, /^sample-app\s+app\s+-/m);
  } finally {
    if (service) {
      service.child.kill('SIGTERM');
      await service.exited;
    }
    cleanup(dir);
  }
});
