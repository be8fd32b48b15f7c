/**
 * Writes that need not wait for the disk. The journal's own rows (runs, transitions, steps) are
 * committed with `synchronous=FULL`: on disk before the work they describe. The check results
 * (`components`) and the HTTP cache (`http_cache`) are derived data that the next check
 * recomputes: waiting for the disk there cost an fsync per component on every check (one for the
 * result, one for the 304's confirmation), which on a device's SD card is most of a check's time,
 * and measurably its CPU (docs/performance.md, "Check CPU"). So those writes (a check's findings
 * together, and the confirmations of a second together) commit with `synchronous=NORMAL`, which in
 * WAL mode skips the fsync of the commit and never corrupts the database: a power cut may lose the
 * last of them, and the next FULL commit (any run's transition) makes them durable too.
 */
import type { Db } from './database.js';

/** Runs `write` (one statement or a transaction) committed without an fsync, then restores the connection's level. */
export function relaxed<T>(db: Db, write: () => T): T {
  // SQLite refuses to change the level inside a transaction; the enclosing one decides.
  if (db.inTransaction) return write();
  // A pragma takes effect when prepared, so these are prepared on each call (a few µs each).
  const level = db.pragma('synchronous', { simple: true }) as number;
  if (level <= 1) return write();
  db.pragma('synchronous = NORMAL');
  try {
    return write();
  } finally {
    db.pragma(`synchronous = ${level >= 3 ? 'EXTRA' : 'FULL'}`);
  }
}
