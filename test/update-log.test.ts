/**
 * `<dataDir>/logs/updates.log`: one line per finished run, whatever its end, written beside the
 * journal from the engine's results (src/main.ts), rotated at 1 MiB with 3 files kept.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { cleanup, openHarness, seedRoot, tempDir } from './support/harness.js';
import { makeTree } from './support/dir-driver.js';
import { UPDATE_LOG_MAX_BYTES, UpdateLog, updateLogLine } from '../src/app/update-log.js';

const silent = pino({ level: 'silent' });

/** A logger whose lines are kept, parsed. */
function capturingLogger() {
  const lines: Array<{ level: number; msg: string }> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as { level: number; msg: string });
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

test('a line: UTC to the second, versions without v, - when unknown, the message as a JSON string', () => {
  assert.equal(
    updateLogLine({ at: '2026-12-02T10:11:12.987Z', component: 'core', fromVersion: '1.0.0', toVersion: '1.1.0', state: 'succeeded', message: 'Updated core to 1.1.0' }),
    '2026-12-02T10:11:12Z core 1.0.0 -> 1.1.0 succeeded "Updated core to 1.1.0"\n',
  );
  assert.equal(
    updateLogLine({ at: new Date('2026-12-02T23:59:59+02:00'), component: 'scheduler', fromVersion: 'v1.0.0', toVersion: null, state: 'aborted', message: 'said "no"\nand left\\' }),
    '2026-12-02T21:59:59Z scheduler 1.0.0 -> - aborted "said \\"no\\"\\nand left\\\\"\n',
  );
  assert.equal(updateLogLine({ at: '2026-01-01T00:00:00Z', component: 'x', fromVersion: null, toVersion: 'V2.0.0-rc.1', state: 'validated', message: '' }), '2026-01-01T00:00:00Z x - -> 2.0.0-rc.1 validated ""\n');
});

test('every finished run appends its line: succeeded, up_to_date, validated (dry run), rolled_back, aborted, rollback_failed', async () => {
  const root = tempDir();
  seedRoot(root);
  makeTree(join(root, 'releases', '1.3.0'), '1.3.0', { INVALID: 'yes' });
  const h = openHarness(root);
  try {
    const run = async (version: string, dryRun = false) => (await h.engine.waitForRun((await h.engine.startRun('dir', { version, dryRun })).runId)).run_id;
    const ids = [await run('1.1.0'), await run('1.1.0'), await run('1.2.0', true), await run('1.2.0'), await run('1.3.0'), await run('9.9.9')];
    writeFileSync(join(root, 'ROLLBACK_FAILS'), 'yes');
    ids.push(await run('1.2.0'));
    const runs = ids.map((id) => h.journal.getRun(id)!);
    await h.core.close(); // writes what is queued

    assert.deepEqual(
      runs.map((r) => r.state),
      ['succeeded', 'up_to_date', 'validated', 'rolled_back', 'aborted', 'aborted', 'rollback_failed'],
    );
    const lines = readFileSync(join(root, 'logs', 'updates.log'), 'utf8').split('\n');
    assert.equal(lines.pop(), '', 'every line ends with a newline');
    const stamp = (id: number) => `${runs[ids.indexOf(id)]!.finished_at!.slice(0, 19)}Z`;
    const message = (id: number) => JSON.stringify(runs[ids.indexOf(id)]!.message);
    assert.deepEqual(lines, [
      `${stamp(ids[0]!)} dir 1.0.0 -> 1.1.0 succeeded "Updated dir to 1.1.0"`,
      `${stamp(ids[1]!)} dir 1.1.0 -> 1.1.0 up_to_date "dir is up to date (1.1.0)"`,
      `${stamp(ids[2]!)} dir 1.1.0 -> 1.2.0 validated "Dry run: dir can be updated from 1.1.0 to 1.2.0; nothing was changed"`,
      `${stamp(ids[3]!)} dir 1.1.0 -> 1.2.0 rolled_back ${message(ids[3]!)}`,
      `${stamp(ids[4]!)} dir 1.1.0 -> 1.3.0 aborted ${message(ids[4]!)}`,
      // Ended in discover: neither version was learnt.
      `${stamp(ids[5]!)} dir - -> - aborted ${message(ids[5]!)}`,
      `${stamp(ids[6]!)} dir 1.1.0 -> 1.2.0 rollback_failed ${message(ids[6]!)}`,
    ]);
    for (const l of lines) assert.match(l, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ dir \S+ -> \S+ [a-z_]+ ".*"$/);
    assert.match(lines[3]!, /rolled_back "Post-update checks failed, rolled back to v1\.1\.0: /);
    assert.match(lines[4]!, /aborted "Update of dir aborted during validate, nothing was changed: release 1\.3\.0 is marked invalid"$/);
    assert.match(lines[6]!, /rollback_failed "Rollback of dir failed, manual intervention required: /);
  } finally {
    cleanup(root);
  }
});

test('a line that cannot be written (full disk, a directory in the way) is logged; the run ends as it would have', async () => {
  const root = tempDir();
  seedRoot(root);
  mkdirSync(join(root, 'logs', 'updates.log'), { recursive: true }); // open(…, 'a') fails: EISDIR
  const { logger, lines } = capturingLogger();
  const h = openHarness(root, { logger });
  try {
    const run = await h.engine.waitForRun((await h.engine.startRun('dir', { version: '1.1.0' })).runId);
    assert.equal(run.state, 'succeeded');
    await h.core.close();
    const error = lines.find((l) => l.level === 50 && l.msg.startsWith('cannot write the update log'));
    assert.ok(error, `no error logged: ${JSON.stringify(lines.map((l) => l.msg))}`);
    assert.match(error.msg, /updates\.log \(EISDIR\); this line is lost: \S+Z dir 1\.0\.0 -> 1\.1\.0 succeeded "Updated dir to 1\.1\.0"$/);
    assert.deepEqual(readdirSync(join(root, 'logs')), ['updates.log'], 'nothing written in its place');
  } finally {
    cleanup(root);
  }
});

test('rotation at 1 MiB: updates.log → .1 → .2, the oldest dropped, never over the limit, 3 files at most', async () => {
  const dir = tempDir();
  try {
    const log = new UpdateLog(dir, silent);
    const path = join(dir, 'updates.log');
    const entry = { at: '2026-12-02T10:11:12Z', component: 'core', fromVersion: '1.0.0', toVersion: '1.1.0', state: 'succeeded', message: 'Updated core to 1.1.0' };
    const line = updateLogLine(entry);
    const filler = (n: number, c: string) => `${c.repeat(n - 1)}\n`;

    // Up to the limit exactly: appended, no rotation.
    writeFileSync(path, filler(UPDATE_LOG_MAX_BYTES - line.length, 'a'));
    log.append(entry);
    await log.flush();
    assert.equal(readFileSync(path).length, UPDATE_LOG_MAX_BYTES);
    assert.deepEqual(readdirSync(dir).sort(), ['updates.log']);

    // One byte over: the full file becomes .1, the line starts a new updates.log.
    log.append(entry);
    await log.flush();
    assert.deepEqual(readdirSync(dir).sort(), ['updates.log', 'updates.log.1']);
    assert.equal(readFileSync(path, 'utf8'), line);
    assert.equal(readFileSync(`${path}.1`).length, UPDATE_LOG_MAX_BYTES);
    assert.ok(readFileSync(`${path}.1`, 'utf8').endsWith(line));

    // Two more rotations: .1 → .2, then the oldest (.2) is dropped.
    writeFileSync(path, filler(UPDATE_LOG_MAX_BYTES - 10, 'b'));
    log.append(entry);
    await log.flush();
    assert.deepEqual(readdirSync(dir).sort(), ['updates.log', 'updates.log.1', 'updates.log.2']);
    assert.ok(readFileSync(`${path}.1`, 'utf8').startsWith('bbb'));
    assert.ok(readFileSync(`${path}.2`, 'utf8').startsWith('aaa'));
    writeFileSync(path, filler(UPDATE_LOG_MAX_BYTES - 10, 'c'));
    log.append(entry);
    await log.flush();
    assert.deepEqual(readdirSync(dir).sort(), ['updates.log', 'updates.log.1', 'updates.log.2']);
    assert.equal(readFileSync(path, 'utf8'), line);
    assert.ok(readFileSync(`${path}.1`, 'utf8').startsWith('ccc'));
    assert.ok(readFileSync(`${path}.2`, 'utf8').startsWith('bbb'), 'the oldest (aaa) was dropped');
    for (const f of readdirSync(dir)) assert.ok(readFileSync(join(dir, f)).length <= UPDATE_LOG_MAX_BYTES, `${f} is over the limit`);
  } finally {
    cleanup(dir);
  }
});

test('append does not wait for the disk; lines are written in order; a line cut short before is ended first', async () => {
  const dir = tempDir();
  try {
    const log = new UpdateLog(dir, silent);
    const path = join(dir, 'updates.log');
    writeFileSync(path, '2026-12-01T00:00:00Z core 1.0.0 -> 1.1.0 succ'); // the disk filled mid-line
    for (let i = 0; i < 20; i++) log.append({ at: '2026-12-02T10:11:12Z', component: `c${i}`, fromVersion: null, toVersion: null, state: 'aborted', message: `run ${i}` });
    assert.equal(readFileSync(path, 'utf8').length, 45, 'append returns before anything is written: a run never waits for the file');
    await log.flush();
    const lines = readFileSync(path, 'utf8').split('\n');
    assert.equal(lines[0], '2026-12-01T00:00:00Z core 1.0.0 -> 1.1.0 succ');
    assert.deepEqual(lines.slice(1, -1), Array.from({ length: 20 }, (_, i) => `2026-12-02T10:11:12Z c${i} - -> - aborted "run ${i}"`));
    assert.equal(lines.at(-1), '');
  } finally {
    cleanup(dir);
  }
});
