/** The `journal_probe` table: one row, rewritten to learn whether the journal can be written again. */
import type { Db } from './database.js';

export class ProbeTable {
  private readonly stmt;

  constructor(db: Db) {
    this.stmt = db.prepare<[string]>('INSERT INTO journal_probe (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at');
  }

  write(at: string): void {
    this.stmt.run(at);
  }
}
