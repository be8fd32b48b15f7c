import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openDatabase, readMigrations, JournalError } from '../src/journal/database.js';
import { Journal, BusyError, RolloutRunExistsError } from '../src/journal/journal.js';
import { cleanup, tempDir } from './support/harness.js';

test('every connection runs WAL with synchronous=FULL and a 2 MB page cache, also after re-opening and after a transaction', () => {
  const dir = tempDir();
  try {
    const path = join(dir, 'updater.db');
    for (let i = 0; i < 2; i++) {
      const db = openDatabase(path);
      const journal = new Journal(db);
      journal.createRun({ component: `c${i}`, kind: 'dir', mode: 'update', requestedVersion: null, fromVersion: null, dryRun: false, machineVersion: 1, snapshot: () => '{}' });
      // better-sqlite3 in WAL reads NORMAL from the next transaction unless FULL is set explicitly.
      assert.equal(db.pragma('synchronous', { simple: true }), 2, 'synchronous must read FULL (2)');
      assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
      assert.equal(db.pragma('busy_timeout', { simple: true }), 5000);
      // better-sqlite3's build defaults to 16 MB; the start-up quick_check would fill it with the journal.
      assert.equal(db.pragma('cache_size', { simple: true }), -2048, 'a 2 MB page cache');
      db.prepare(`UPDATE runs SET result = 'aborted'`).run();
      db.close();
    }
    const reader = openDatabase(path, { readonly: true });
    assert.equal(reader.pragma('cache_size', { simple: true }), -2048, 'the CLI\'s read-only connection too');
    reader.close();
  } finally {
    cleanup(dir);
  }
});

test('migrations are applied in order, tracked in user_version, and idempotent across restarts', () => {
  const dir = tempDir();
  try {
    const path = join(dir, 'updater.db');
    const latest = readMigrations().length;
    for (let i = 0; i < 3; i++) {
      const db = openDatabase(path);
      assert.equal(db.pragma('user_version', { simple: true }), latest);
      const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`).all().map((r: any) => r.name);
      assert.deepEqual(tables, ['components', 'http_cache', 'journal_probe', 'rollout_runs', 'run_steps', 'runs', 'transitions']);
      db.close();
    }
  } finally {
    cleanup(dir);
  }
});

test('a failing migration rolls back whole and says which file', () => {
  const dir = tempDir();
  try {
    const migs = join(dir, 'migs');
    mkdirSync(migs);
    writeFileSync(join(migs, '001_a.sql'), 'CREATE TABLE a (x);');
    writeFileSync(join(migs, '002_b.sql'), 'CREATE TABLE b (x); CREATE TABLE a (y);');
    const path = join(dir, 'x.db');
    assert.throws(() => openDatabase(path, { migrations: readMigrations(migs) }), /migration 2_b\.sql failed: table a already exists/);
    const db = new Database(path);
    assert.equal(db.pragma('user_version', { simple: true }), 1);
    assert.equal((db.prepare(`SELECT count(*) AS n FROM sqlite_master WHERE name = 'b'`).get() as { n: number }).n, 0, 'b must not exist: migration 2 rolled back whole');
    db.close();
  } finally {
    cleanup(dir);
  }
});

test('a database from a newer updater is refused, not downgraded', () => {
  const dir = tempDir();
  try {
    const path = join(dir, 'updater.db');
    const db = new Database(path);
    db.pragma('user_version = 99');
    db.close();
    assert.throws(() => openDatabase(path), (e: unknown) => e instanceof JournalError && e.code === 'db_too_new' && /schema version 99, newer than this updater knows/.test(e.message));
    const again = new Database(path);
    assert.equal(again.pragma('user_version', { simple: true }), 99);
    again.close();
  } finally {
    cleanup(dir);
  }
});

test('a corrupt database is refused with a clear message and left as it was', () => {
  const dir = tempDir();
  try {
    const path = join(dir, 'updater.db');
    writeFileSync(path, 'this is not a database, it is a text file that got here by mistake'.repeat(100));
    const before = readFileSync(path);
    assert.throws(() => openDatabase(path), (e: unknown) => e instanceof JournalError && e.code === 'db_corrupt' && /not a readable SQLite database/.test(e.message));
    assert.deepEqual(readFileSync(path), before);
  } finally {
    cleanup(dir);
  }
});

test('a rollout starts at most one run per component: its key is written with the run, a repeat is refused with that run', () => {
  const dir = tempDir();
  try {
    const db = openDatabase(join(dir, 'updater.db'));
    const j = new Journal(db);
    const mk = (c: string, rollout: string | null, snapshot: () => string = () => '{}') =>
      j.createRun({ component: c, kind: 'dir', mode: 'update', requestedVersion: null, fromVersion: null, dryRun: false, machineVersion: 1, snapshot, rollout });
    const end = (runId: number) => j.commitTransition({ runId, to: 'up_to_date', event: 'x', message: 'x', level: 'info', snapshot: '{}', fromVersion: null, toVersion: null, recoveries: 0, result: 'up_to_date' });
    const a = mk('a', 'r-1');
    assert.equal(j.runOfRollout('r-1', 'a'), a);
    // The repeat is answered with the run even while it is unfinished (not busy).
    assert.throws(() => mk('a', 'r-1'), (e: unknown) => e instanceof RolloutRunExistsError && e.runId === a);
    end(a);
    assert.throws(() => mk('a', 'r-1'), (e: unknown) => e instanceof RolloutRunExistsError && e.runId === a);
    // Another component, another rollout: runs of their own.
    const b = mk('b', 'r-1');
    end(b);
    const c = mk('a', 'r-2');
    end(c);
    assert.deepEqual([j.runOfRollout('r-1', 'b'), j.runOfRollout('r-2', 'a'), j.runOfRollout('r-3', 'a')], [b, c, undefined]);
    // A run whose creation fails leaves no key behind (one transaction).
    assert.throws(() => mk('a', 'r-4', () => {
      throw new Error('snapshot failed');
    }), /snapshot failed/);
    assert.equal(j.runOfRollout('r-4', 'a'), undefined);
    assert.equal(j.listRuns().length, 3);
    db.close();
  } finally {
    cleanup(dir);
  }
});

test('a second unfinished run is refused atomically; seq is global and gap-free', () => {
  const dir = tempDir();
  try {
    const db = openDatabase(join(dir, 'updater.db'));
    const j = new Journal(db);
    const mk = (c: string) => j.createRun({ component: c, kind: 'dir', mode: 'update', requestedVersion: null, fromVersion: null, dryRun: false, machineVersion: 1, snapshot: () => '{}' });
    const a = mk('a');
    assert.throws(() => mk('b'), (e: unknown) => e instanceof BusyError && /run 1 of a is in idle/.test(e.message));
    const commit = (runId: number, to: string, result: string | null = null) =>
      j.commitTransition({ runId, to, event: 'x', message: to, level: 'info', snapshot: '{}', fromVersion: null, toVersion: null, recoveries: 0, result });
    commit(a, 'discover');
    commit(a, 'up_to_date', 'up_to_date');
    assert.throws(() => commit(a, 'discover'), /already ended up_to_date/);
    const b = mk('b');
    commit(b, 'discover');
    assert.deepEqual(j.transitionsAfter(0).map((t) => [t.seq, t.runId, t.from, t.to]), [
      [1, a, 'idle', 'discover'],
      [2, a, 'discover', 'up_to_date'],
      [3, b, 'idle', 'discover'],
    ]);
    assert.deepEqual(j.transitionsAfter(2).map((t) => t.seq), [3]);
    db.close();
  } finally {
    cleanup(dir);
  }
});
