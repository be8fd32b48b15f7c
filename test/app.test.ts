/**
 * App components on the real systemd of the test bed: release tarballs from the fake GitHub,
 * checksums, the two-rename switch, Python requirements in a venv, rollback by rename.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';
import { testbed } from './support/testbed.js';
import { appWorld, leftovers, tarball, treeHash, type ReleaseSpec } from './support/app-world.js';

const { skip, need } = await testbed();

const RELEASES: ReleaseSpec[] = [
  { version: '1.1.0', sha256: true },
  { version: '1.2.0', behaviour: 'unhealthy' },
  { version: '1.3.0', behaviour: 'exit' },
];

test('1.0.0 → 1.1.0 succeeds: unit active on 1.1.0, VERSION 1.1.0, backup present, temp files gone', { skip }, async () => {
  const bed = need();
  const w = await appWorld(bed, RELEASES);
  try {
    const progress: string[] = [];
    w.engine.progress.subscribe((p) => progress.push(p.message));
    const r = await w.engine.waitForRun((await w.engine.startRun('sample-app', { version: '1.1.0' })).runId);
    assert.equal(r.state, 'succeeded', r.message!);
    assert.equal(r.message, 'Updated sample-app to 1.1.0');
    assert.equal((await w.systemctl('is-active', w.unit)).stdout.trim(), 'active');
    assert.equal(readFileSync(join(w.installPath, 'VERSION'), 'utf8'), '1.1.0\n');
    assert.deepEqual(await w.health(), { status: 200, body: { status: 'ok', version: '1.1.0' } });
    assert.equal((readdirSync(join(w.installPath)).includes('app.py')), true);
    const backups = readdirSync(w.backupDir);
    assert.equal(backups.length, 1);
    assert.match(backups[0]!, /^sample-app\.\d{8}_\d{6}\.tar\.gz$/);
    assert.deepEqual(leftovers(w), [], 'no staging, old tree or download left');
    assert.ok(progress.some((m) => /^Downloading sample-app-1\.1\.0\.tar\.gz/.test(m)), JSON.stringify(progress));
  } finally {
    await w.close();
  }
});

for (const [version, why] of [
  ['1.3.0', /sample-app-.*\.service failed|failed \(|is failed|exit/],
  ['1.2.0', /health URL http:\/\/127\.0\.0\.1:\d+\/health answered 500/],
] as const) {
  test(`→ ${version} rolls back: the install tree byte-identical, the unit active on 1.0.0`, { skip }, async () => {
    const bed = need();
    const w = await appWorld(bed, RELEASES, { healthTimeoutSeconds: 4 });
    try {
      const before = treeHash(w.installPath);
      const r = await w.engine.waitForRun((await w.engine.startRun('sample-app', { version })).runId);
      assert.equal(r.state, 'rolled_back', r.message!);
      assert.match(r.message!, /^Post-update checks failed, rolled back to v1\.0\.0: /);
      assert.match(r.message!, why);
      assert.equal(treeHash(w.installPath), before);
      assert.equal((await w.systemctl('is-active', w.unit)).stdout.trim(), 'active');
      assert.deepEqual(await w.health(), { status: 200, body: { status: 'ok', version: '1.0.0' } });
      assert.deepEqual(leftovers(w), []);
    } finally {
      await w.close();
    }
  });
}

test('requirements: an empty requirements.txt installs into the venv; one pip cannot install rolls back', { skip }, async () => {
  const bed = need();
  const w = await appWorld(bed, [
    { version: '1.1.0', requirements: '# nothing needed\n' },
    { version: '1.4.0', requirements: 'definitely-not-a-real-package==9.9.9\n' },
  ], { venv: true });
  try {
    const ok = await w.engine.waitForRun((await w.engine.startRun('sample-app', { version: '1.1.0' })).runId);
    assert.equal(ok.state, 'succeeded', ok.message!);
    const before = treeHash(w.installPath);
    const bad = await w.engine.waitForRun((await w.engine.startRun('sample-app', { version: '1.4.0' })).runId);
    assert.equal(bad.state, 'rolled_back', bad.message!);
    assert.match(bad.message!, /^Update failed during apply, rolled back to v1\.1\.0: pip could not install requirements\.txt/);
    assert.match(bad.message!, /No matching distribution|definitely-not-a-real-package/);
    assert.equal(treeHash(w.installPath), before);
    assert.equal((await w.systemctl('is-active', w.unit)).stdout.trim(), 'active');
  } finally {
    await w.close();
  }
});

/** A hostile or broken release must abort with nothing touched outside staging. */
async function abortsUntouched(specs: ReleaseSpec[], version: string, expected: RegExp, phase: 'validate' | 'apply' = 'apply') {
  const bed = need();
  const w = await appWorld(bed, specs);
  try {
    const before = treeHash(w.installPath);
    const outside = readdirSync(w.base).sort();
    const r = await w.engine.waitForRun((await w.engine.startRun('sample-app', { version })).runId);
    assert.equal(r.state, 'aborted', r.message!);
    assert.match(r.message!, new RegExp(`aborted during ${phase}, nothing was changed`));
    assert.match(r.message!, expected);
    assert.equal(treeHash(w.installPath), before);
    assert.equal((await w.systemctl('is-active', w.unit)).stdout.trim(), 'active', 'the service was never stopped');
    assert.deepEqual(leftovers(w), [], 'staging and download cleaned');
    assert.deepEqual(readdirSync(w.base).sort(), outside, 'nothing new beside the install path');
    assert.ok(!existsSync('/tmp/evil-updater-test'), 'nothing written at the attack target');
  } finally {
    await w.close();
  }
}

// The asset is downloaded and checked in validate (a dry run too): a broken one never reaches apply.
test('checksum mismatch → aborted in validate, nothing changed', { skip }, () =>
  abortsUntouched([{ version: '1.1.0', sha256: 'wrong' }], '1.1.0', /checksum mismatch for sample-app-1\.1\.0\.tar\.gz/, 'validate'));

test('truncated download → aborted in validate, nothing changed', { skip }, () =>
  abortsUntouched([{ version: '1.1.0', asset: { truncateAt: 100 } }], '1.1.0', /download/, 'validate'));

test('a release whose VERSION is not its tag → aborted in validate (read without unpacking), nothing changed', { skip }, async () => {
  const work = mkdtempSync(join(tmpdir(), 'app-test-'));
  try {
    // The tree of 1.0.9 published as 1.1.0.
    const content = tarball({ version: '1.0.9' }, work);
    await abortsUntouched([{ version: '1.1.0', tarball: content }], '1.1.0', /sample-app-1\.1\.0\.tar\.gz holds version 1\.0\.9, not 1\.1\.0/, 'validate');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

async function hostile(entries: Array<{ name: string; type?: 'file' | 'symlink' | 'link' | 'character-device' | 'fifo'; linkname?: string; body?: string }>): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) {
    if (!e.type || e.type === 'file') pack.entry({ name: e.name, mode: 0o644 }, e.body ?? 'x');
    else pack.entry({ name: e.name, type: e.type, linkname: e.linkname, mode: 0o644, devmajor: 1, devminor: 3 });
  }
  pack.finalize();
  const gz = pack.pipe(createGzip());
  const chunks: Buffer[] = [];
  for await (const c of gz) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const GOOD_TOP = [{ name: 'sample-app-1.1.0/VERSION', body: '1.1.0\n' }];
const HOSTILE: Array<[string, Parameters<typeof hostile>[0]]> = [
  ['path traversal', [...GOOD_TOP, { name: 'sample-app-1.1.0/../../../../../../tmp/evil-updater-test' }]],
  ['absolute path', [...GOOD_TOP, { name: '/tmp/evil-updater-test' }]],
  ['symlink escape', [...GOOD_TOP, { name: 'sample-app-1.1.0/l', type: 'symlink', linkname: '/tmp' }, { name: 'sample-app-1.1.0/l/evil-updater-test' }]],
  ['hardlink escape', [...GOOD_TOP, { name: 'sample-app-1.1.0/h', type: 'link', linkname: '../../../../etc/passwd' }]],
  ['device node', [...GOOD_TOP, { name: 'sample-app-1.1.0/null', type: 'character-device' }]],
];

for (const [what, entries] of HOSTILE) {
  test(`hostile tarball (${what}) → aborted, nothing outside staging touched`, { skip }, async () => {
    await abortsUntouched([{ version: '1.1.0', tarball: await hostile(entries) }], '1.1.0', /unsafe|not allowed|refus|leaves|outside/i);
  });
}
