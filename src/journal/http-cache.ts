/**
 * The `http_cache` table: GitHub's API answers by URL, for conditional requests (ETag /
 * If-None-Match). `body` holds `{"body": <response text>, "link": <Link header or null>}`: a 304
 * need not repeat the Link header, and pagination needs it. Only answers that passed the caller's
 * check are stored. The cache only saves requests, so every write is best effort (a full disk
 * skips it) and none waits for the disk (relaxed.ts).
 *
 * A cache hit (a 304) only confirms when the answer was last known good (`fetched_at`, which a
 * stale answer cites: "showing the result from …"). That is kept in memory at once, so every read
 * sees it, and written a second later, all the confirmations of that second in one transaction:
 * a warm check of 20 components writes once, not 20 times. What a crash loses is at most the last
 * second's confirmations: a stale answer after the restart would cite an older time.
 */
import { isStorageError, type Db } from './database.js';
import { relaxed } from './relaxed.js';

export interface CachedAnswer {
  etag: string | null;
  body: string;
  link: string | null;
  /** ISO time GitHub last gave or confirmed this answer. */
  fetchedAt: string;
}

/** An ETag as a header may carry it back: a quoted string of printable characters, not too long. */
export function validEtag(v: unknown): string | null {
  return typeof v === 'string' && v.length <= 512 && /^(W\/)?"[\u0021\u0023-\u007e]*"$/.test(v) ? v : null;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** How long confirmations wait in memory before they are written together. */
export const CONFIRM_FLUSH_MS = 1000;

export class HttpCacheTable {
  private readonly s;
  private readonly writeConfirmed;
  /** url → when a 304 confirmed it, not yet written. */
  private readonly confirmed = new Map<string, string>();
  private flushTimer: NodeJS.Timeout | null = null;

  constructor(private readonly db: Db) {
    this.s = {
      select: db.prepare<[string], { etag: string | null; body: string; fetched_at: string }>('SELECT etag, body, fetched_at FROM http_cache WHERE url = ?'),
      upsert: db.prepare<[string, string | null, number, string, string]>(
        `INSERT INTO http_cache (url, etag, status, body, fetched_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (url) DO UPDATE SET etag = excluded.etag, status = excluded.status, body = excluded.body, fetched_at = excluded.fetched_at`,
      ),
      confirm: db.prepare<[string, string]>('UPDATE http_cache SET fetched_at = ? WHERE url = ?'),
      remove: db.prepare<[string]>('DELETE FROM http_cache WHERE url = ?'),
    };
    const confirm = this.s.confirm;
    this.writeConfirmed = db.transaction((pending: Array<[string, string]>) => {
      for (const [url, at] of pending) confirm.run(at, url);
    });
  }

  /** The cached answer for `url`, or null. A row that cannot be read is removed and counts as none. */
  get(url: string): CachedAnswer | null {
    const row = this.s.select.get(url);
    if (!row) return null;
    try {
      const stored: unknown = JSON.parse(row.body);
      if (isObject(stored) && typeof stored.body === 'string' && (typeof stored.link === 'string' || stored.link === null)) {
        return { etag: validEtag(row.etag), body: stored.body, link: stored.link, fetchedAt: this.confirmed.get(url) ?? row.fetched_at };
      }
    } catch {
      // fall through: a row we cannot read is no cache
    }
    this.delete(url);
    return null;
  }

  /** Stores a 200 answer. */
  put(url: string, etag: string | null, body: string, link: string | null, at: string): void {
    this.confirmed.delete(url);
    this.bestEffort(() => this.s.upsert.run(url, etag, 200, JSON.stringify({ body, link }), at));
  }

  /** A 304 confirmed the cached answer at `at`: known at once, written with the others of the next second. */
  confirm(url: string, at: string): void {
    this.confirmed.set(url, at);
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => this.flush(), CONFIRM_FLUSH_MS);
    // A confirmation is not worth keeping the process alive for.
    this.flushTimer.unref();
  }

  delete(url: string): void {
    this.confirmed.delete(url);
    this.bestEffort(() => this.s.remove.run(url));
  }

  /** Writes the confirmations kept in memory, in one transaction (also called by the timer). */
  flush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    const pending = [...this.confirmed];
    this.confirmed.clear();
    // The database may have been closed meanwhile (the service stopped): they are lost, as on a crash.
    if (pending.length === 0 || !this.db.open) return;
    this.bestEffort(() => this.writeConfirmed(pending));
  }

  /** A write that fails for want of storage (a full disk) is skipped: the cache only saves requests. */
  private bestEffort(write: () => unknown): void {
    try {
      relaxed(this.db, write);
    } catch (error) {
      if (!isStorageError(error)) throw error;
    }
  }
}
