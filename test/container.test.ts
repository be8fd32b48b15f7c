/**
 * Container components against the real test bed: a private Docker engine, a local registry
 * with the sample images (1.1.0 good with a HEALTHCHECK, 1.2.0 whose /health is 404, 1.3.0 that
 * exits at once), compose, and the fake GitHub offering the releases.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { testbed, run } from './support/testbed.js';
import { containerWorld } from './support/container-world.js';

const { skip, need } = await testbed();

test('1.0.0 → 1.1.0 succeeds: new image running, only the tag changed, backup kept, pull progress streamed', { skip }, async () => {
  const bed = need();
  const w = await containerWorld(bed);
  try {
    // Force a real pull so layer progress is seen.
    await run('docker', ['rmi', '-f', `${bed.registry}/sample:1.1.0`], bed.env);
    const before = readFileSync(w.composeFile, 'utf8');
    const progress: string[] = [];
    const results: string[] = [];
    w.engine.progress.subscribe((p) => progress.push(p.message));
    w.engine.results.subscribe((r) => results.push(r.message));
    const run1 = await w.engine.waitForRun((await w.engine.startRun('sample', { version: '1.1.0' })).runId);
    assert.equal(run1.state, 'succeeded', run1.message!);
    assert.equal(run1.message, 'Updated sample to 1.1.0');
    assert.deepEqual(results, ['Updated sample to 1.1.0']);
    assert.equal(await w.containerImage(), await w.imageId(`${bed.registry}/sample:1.1.0`));
    const health = await (await fetch(`http://127.0.0.1:${w.port}/health`)).json();
    assert.deepEqual(health, { status: 'ok', version: '1.1.0' });
    const after = readFileSync(w.composeFile, 'utf8');
    assert.equal(after, before.replace('sample:1.0.0"', 'sample:1.1.0"'), 'only the tag differs, byte for byte');
    const backups = readdirSync(w.backupDir);
    assert.equal(backups.length, 1);
    assert.match(backups[0]!, /^sample\.\d{8}_\d{6}\.yml$/);
    assert.equal(readFileSync(join(w.backupDir, backups[0]!), 'utf8'), before);
    assert.ok(progress.some((m) => /^Pulling .*sample:1\.1\.0: \d+\/\d+ layers$/.test(m)), `no pull progress in ${JSON.stringify(progress)}`);
  } finally {
    await w.close();
  }
});

test('→ 1.2.0 (health fails) rolls back to the same image; compose file byte-identical; the message names the check', { skip }, async () => {
  const bed = need();
  const w = await containerWorld(bed, { healthTimeoutSeconds: 4 });
  try {
    const before = readFileSync(w.composeFile, 'utf8');
    const image = await w.containerImage();
    const r = await w.engine.waitForRun((await w.engine.startRun('sample', { version: '1.2.0' })).runId);
    assert.equal(r.state, 'rolled_back', r.message!);
    assert.match(r.message!, /^Post-update checks failed, rolled back to v1\.0\.0: health URL http:\/\/127\.0\.0\.1:\d+\/health answered 404/);
    assert.equal(readFileSync(w.composeFile, 'utf8'), before);
    assert.equal(await w.containerImage(), image);
    const health = await (await fetch(`http://127.0.0.1:${w.port}/health`)).json();
    assert.deepEqual(health, { status: 'ok', version: '1.0.0' });
  } finally {
    await w.close();
  }
});

test('→ 1.3.0 (exits at once) rolls back quickly, saying the container exited', { skip }, async () => {
  const bed = need();
  const w = await containerWorld(bed, { healthTimeoutSeconds: 30 });
  try {
    const before = readFileSync(w.composeFile, 'utf8');
    const image = await w.containerImage();
    const r = await w.engine.waitForRun((await w.engine.startRun('sample', { version: '1.3.0' })).runId);
    assert.equal(r.state, 'rolled_back', r.message!);
    assert.match(r.message!, /container .* exited with code 3/);
    assert.equal(readFileSync(w.composeFile, 'utf8'), before);
    assert.equal(await w.containerImage(), image);
  } finally {
    await w.close();
  }
});

test('→ 9.9.9 (no such tag in the registry) aborts with nothing changed; a dry run ends validated', { skip }, async () => {
  const bed = need();
  const w = await containerWorld(bed);
  try {
    const before = readFileSync(w.composeFile, 'utf8');
    const image = await w.containerImage();
    const r = await w.engine.waitForRun((await w.engine.startRun('sample', { version: '9.9.9' })).runId);
    assert.equal(r.state, 'aborted');
    assert.match(r.message!, /the registry has no image 127\.0\.0\.1:5001\/sample:9\.9\.9/);
    const dry = await w.engine.waitForRun((await w.engine.startRun('sample', { version: '1.1.0', dryRun: true })).runId);
    assert.equal(dry.state, 'validated', dry.message!);
    assert.equal(readFileSync(w.composeFile, 'utf8'), before);
    assert.equal(await w.containerImage(), image);
    assert.deepEqual(readdirSync(w.backupDir), []);
  } finally {
    await w.close();
  }
});

test('retention keeps the newest backups of the component after a success only', { skip }, async () => {
  const bed = need();
  const w = await containerWorld(bed, { retention: 1 });
  try {
    for (const v of ['1.1.0', '1.0.0']) {
      const r = await w.engine.waitForRun((await w.engine.startRun('sample', { version: v })).runId);
      assert.equal(r.state, 'succeeded', r.message!);
      await new Promise((res) => setTimeout(res, 1100)); // distinct timestamps in names
    }
    const backups = readdirSync(w.backupDir);
    assert.equal(backups.length, 1, backups.join(', '));
    assert.match(readFileSync(join(w.backupDir, backups[0]!), 'utf8'), /sample:1\.1\.0"/, 'the newest backup (taken before the 2nd run) is kept');
    // A failed run does not prune.
    const bad = await w.engine.waitForRun((await w.engine.startRun('sample', { version: '1.3.0' })).runId);
    assert.equal(bad.state, 'rolled_back');
    assert.equal(readdirSync(w.backupDir).length, 2);
  } finally {
    await w.close();
  }
});
