/**
 * The `components` table: what the last check found for each component (installed and latest
 * version, notes, whether it is stale and why). Derived data: a check's findings are written
 * together, in one transaction that does not wait for the disk (relaxed.ts), and when the disk is
 * full not at all (the check's answer is still given; the caller is told, to log it).
 */
import { isStorageError, type Db } from './database.js';
import { relaxed } from './relaxed.js';

export interface ComponentRow {
  name: string;
  kind: string;
  current_version: string | null;
  latest_version: string | null;
  update_available: boolean;
  reason: string | null;
  release_notes: string | null;
  release_url: string | null;
  last_checked: string | null;
  stale: boolean;
}

interface StoredRow extends Omit<ComponentRow, 'update_available' | 'stale'> {
  update_available: number;
  stale: number;
}

/** For /metrics: when the last check finished and how many components it found an update for. */
export interface CheckSummary {
  lastChecked: string | null;
  updatesAvailable: number;
}

export class ComponentsTable {
  private readonly s;
  private readonly putAll;

  constructor(private readonly db: Db) {
    this.s = {
      upsert: db.prepare(
        `INSERT INTO components (name, kind, current_version, latest_version, update_available, reason, release_notes, release_url, stale, last_checked, last_error)
         VALUES (@name, @kind, @current_version, @latest_version, @update_available, @reason, @release_notes, @release_url, @stale, @last_checked, @last_error)
         ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, current_version = excluded.current_version,
           latest_version = excluded.latest_version, update_available = excluded.update_available, reason = excluded.reason,
           release_notes = excluded.release_notes, release_url = excluded.release_url, stale = excluded.stale,
           last_checked = excluded.last_checked, last_error = excluded.last_error`,
      ),
      get: db.prepare<[string], StoredRow>(
        'SELECT name, kind, current_version, latest_version, update_available, reason, release_notes, release_url, stale, last_checked FROM components WHERE name = ?',
      ),
      summary: db.prepare<[], { last: string | null; available: number }>(
        'SELECT MAX(last_checked) AS last, COALESCE(SUM(update_available), 0) AS available FROM components',
      ),
    };
    const upsert = this.s.upsert;
    this.putAll = db.transaction((found: Array<{ row: ComponentRow; error: string | null }>) => {
      for (const { row, error } of found) upsert.run({ ...row, update_available: row.update_available ? 1 : 0, stale: row.stale ? 1 : 0, last_error: error });
    });
  }

  get(name: string): ComponentRow | undefined {
    const row = this.s.get.get(name);
    if (!row) return undefined;
    return {
      name: row.name,
      kind: row.kind,
      current_version: row.current_version,
      latest_version: row.latest_version,
      update_available: row.update_available === 1,
      reason: row.reason,
      release_notes: row.release_notes,
      release_url: row.release_url,
      last_checked: row.last_checked,
      stale: row.stale === 1,
    };
  }

  /**
   * Stores what a check found, each row with `error` (why GitHub could not be asked, or null), in
   * one transaction. Returns null, or the storage failure when the disk refused the write: the
   * rows are then left as they were.
   */
  put(...found: Array<{ row: ComponentRow; error: string | null }>): Error | null {
    try {
      relaxed(this.db, () => this.putAll(found));
      return null;
    } catch (e) {
      if (!isStorageError(e)) throw e;
      return e as Error;
    }
  }



  summary(): CheckSummary {
    const row = this.s.summary.get();
    return { lastChecked: row?.last ?? null, updatesAvailable: row?.available ?? 0 };
  }
}
