/** Builds a real engine on a real SQLite file in a temp dir, with the DirDriver. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { openDatabase } from '../../src/journal/database.js';
import { Journal } from '../../src/journal/journal.js';
import { Engine, type EngineOptions } from '../../src/engine/engine.js';
import { FaultPoints } from '../../src/engine/faults.js';
import { DirDriver, makeTree } from './dir-driver.js';

export function tempDir(prefix = 'updater-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface Harness {
  root: string;
  dbPath: string;
  journal: Journal;
  driver: DirDriver;
  engine: Engine;
  close(): void;
}

/** A root with live/ at 1.0.0 and releases 1.1.0 (good) and 1.2.0 (broken). */
export function seedRoot(root: string): void {
  makeTree(join(root, 'live'), '1.0.0');
  makeTree(join(root, 'releases', '1.0.0'), '1.0.0');
  makeTree(join(root, 'releases', '1.1.0'), '1.1.0', { 'd.txt': 'new file in 1.1.0\n' });
  makeTree(join(root, 'releases', '1.2.0'), '1.2.0', { BROKEN: 'yes' });
}

export function openHarness(root: string, options: Partial<EngineOptions> & { stepDelayMs?: number } = {}): Harness {
  const dbPath = join(root, 'updater.db');
  const db = openDatabase(dbPath);
  const journal = new Journal(db);
  const driver = new DirDriver(root, { stepDelayMs: options.stepDelayMs ?? 0 });
  const engine = new Engine({
    journal,
    components: [{ name: 'dir', kind: 'dir' }],
    driverFor: () => driver,
    logger: pino({ level: process.env.TEST_LOG ?? 'silent' }),
    faults: new FaultPoints(process.env.UPDATER_FAULT),
    ...options,
  });
  return {
    root,
    dbPath,
    journal,
    driver,
    engine,
    close: () => db.close(),
  };
}

export function cleanup(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** `node --import <this>` runs TypeScript from any working directory. */
export const TSX_IMPORT = import.meta.resolve('tsx');
