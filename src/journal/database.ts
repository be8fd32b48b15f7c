/**
 * Opening the journal database: pragmas that make a commit durable, and the numbered
 * SQL migrations in `migrations/`, each applied in one transaction and tracked in
 * `PRAGMA user_version`.
 */
import Database from 'better-sqlite3';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../paths.js';

export type Db = Database.Database;

export const MIGRATIONS_DIR = join(PACKAGE_ROOT, 'migrations');

export class JournalError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'JournalError';
    this.code = code;
  }
}

/**
 * SQLite's answers that mean "this write could not reach the disk" (full, I/O error, a file
 * system remounted read-only), as opposed to a bug or a broken invariant. The engine retries
 * such a journal write until it goes through; nothing acts without it.
 */
const STORAGE_CODES = /^SQLITE_(FULL|IOERR|CANTOPEN|READONLY)/;

export function isStorageError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && STORAGE_CODES.test(code);
}

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** `NNN_name.sql` files, in order; numbers must be 1, 2, 3... without gaps or repeats. */
export function readMigrations(dir = MIGRATIONS_DIR): Migration[] {
  const files = readdirSync(dir).filter((f) => f.endsWith('.sql')).sort();
  const migrations = files.map((file) => {
    const m = /^(\d+)_([\w-]+)\.sql$/.exec(file);
    if (!m) throw new JournalError('bad_migration', `migration file name "${file}" is not NNN_name.sql`);
    return { version: Number(m[1]), name: m[2]!, sql: readFileSync(join(dir, file), 'utf8') };
  });
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new JournalError('bad_migration', `migrations must be numbered 1, 2, 3... without gaps; found ${m.version} at position ${i + 1}`);
    }
  });
  return migrations;
}

/**
 * SQLite's page cache per connection, in KiB (a negative cache_size). better-sqlite3 builds SQLite
 * with 16 MB, which the start-up quick_check fills with the whole journal (12 MB at 10 000 runs)
 * and malloc keeps; 2 MB (SQLite's own default) holds what runs touch, and the rest comes from the
 * OS page cache (docs/performance.md, "Boot and idle").
 */
export const CACHE_KIB = 2048;

/** Pragmas every connection needs. WAL defaults to synchronous=NORMAL, which can lose the last commits on power loss. */
export function applyPragmas(db: Db): void {
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  db.pragma(`cache_size = -${CACHE_KIB}`);
}

export function migrate(db: Db, migrations = readMigrations()): { from: number; to: number } {
  const from = db.pragma('user_version', { simple: true }) as number;
  const latest = migrations.length;
  if (from > latest) {
    throw new JournalError(
      'db_too_new',
      `the database is at schema version ${from}, newer than this updater knows (${latest}); refusing to start rather than downgrade it. Run the newer updater, or restore an older database.`,
    );
  }
  for (const m of migrations.slice(from)) {
    const step = db.transaction(() => {
      db.exec(m.sql);
      // user_version is written inside the same transaction, so a crash leaves either both or neither.
      db.pragma(`user_version = ${m.version}`);
    });
    try {
      step.immediate();
    } catch (error) {
      throw new JournalError('migration_failed', `migration ${m.version}_${m.name}.sql failed: ${(error as Error).message}`, { cause: error });
    }
  }
  return { from, to: Math.max(from, latest) };
}

export interface OpenOptions {
  readonly?: boolean;
  migrations?: Migration[];
}

/** Opens (creating when missing) and migrates the journal. Refuses a corrupt or newer database. */
export function openDatabase(path: string, options: OpenOptions = {}): Db {
  let db: Db;
  try {
    db = new Database(path, { readonly: options.readonly ?? false, fileMustExist: options.readonly ?? false });
  } catch (error) {
    throw new JournalError('db_unreadable', `cannot open the journal at ${path}: ${(error as Error).message}`, { cause: error });
  }
  try {
    if (options.readonly) {
      db.pragma('busy_timeout = 5000');
      db.pragma(`cache_size = -${CACHE_KIB}`);
      const version = db.pragma('user_version', { simple: true }) as number;
      const latest = (options.migrations ?? readMigrations()).length;
      if (version > latest) throw new JournalError('db_too_new', `the database at ${path} is at schema version ${version}, newer than this updater knows (${latest})`);
      return db;
    }
    applyPragmas(db);
    const check = db.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw new JournalError('db_corrupt', `the journal at ${path} is damaged (${String(check)}); refusing to start. Move it aside to start with an empty history; backups are untouched.`);
    migrate(db, options.migrations);
    return db;
  } catch (error) {
    db.close();
    if (error instanceof JournalError) throw error;
    const message = (error as Error).message;
    if (/not a database|malformed|corrupt/i.test(message)) {
      throw new JournalError('db_corrupt', `the journal at ${path} is not a readable SQLite database (${message}); refusing to start. Move it aside to start with an empty history; backups are untouched.`, { cause: error });
    }
    throw new JournalError('db_unreadable', `cannot use the journal at ${path}: ${message}`, { cause: error });
  }
}
