/**
 * Journal commit latency: one transition commit (transition row + run update, one transaction,
 * synchronous=FULL) on a real file, against the bare baseline of the same statements on a
 * connection with synchronous=NORMAL, in the same run.
 */
import { join } from 'node:path';
import { openDatabase } from '../src/journal/database.js';
import { Journal } from '../src/journal/journal.js';
import { cleanup, tempDir } from '../test/support/harness.js';
import { fmt, percentile, verdict, type Section } from './util.js';

const COMMITS = 2000;

function measure(sync: 'FULL' | 'NORMAL'): number[] {
  const dir = tempDir('updater-bench-');
  const db = openDatabase(join(dir, 'updater.db'));
  try {
    db.pragma(`synchronous = ${sync}`);
    const j = new Journal(db);
    const runId = j.createRun({ component: 'bench', kind: 'dir', mode: 'update', requestedVersion: null, fromVersion: '1.0.0', dryRun: false, machineVersion: 1, snapshot: () => '{}' });
    const snapshot = JSON.stringify({ machineVersion: 1, state: 'apply', context: { pad: 'x'.repeat(600) } });
    const samples: number[] = [];
    for (let i = 0; i < COMMITS; i++) {
      const t0 = process.hrtime.bigint();
      j.commitTransition({ runId, to: i % 2 ? 'verify' : 'apply', event: 'bench', message: 'Installing bench 1.1.0', level: 'info', snapshot, fromVersion: '1.0.0', toVersion: '1.1.0', recoveries: 0 });
      samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    return samples;
  } finally {
    db.close();
    cleanup(dir);
  }
}

export async function benchJournal(): Promise<Section> {
  const full = measure('FULL');
  const normal = measure('NORMAL');
  const p = (s: number[], q: number) => percentile(s, q);
  return {
    title: `Journal commit latency (${COMMITS} commits, WAL, real file)`,
    rows: [
      ['commit p50, synchronous=FULL', `${fmt(p(full, 50), 3)} ms`, `${fmt(p(normal, 50), 3)} ms (NORMAL)`, fmt(p(full, 50) / p(normal, 50), 1), '-', '-'],
      ['commit p99, synchronous=FULL', `${fmt(p(full, 99), 3)} ms`, `${fmt(p(normal, 99), 3)} ms (NORMAL)`, fmt(p(full, 99) / p(normal, 99), 1), '≤ 5 ms', verdict(p(full, 99) <= 5)],
    ],
    notes: ['FULL is what the updater runs with (power-loss safety); NORMAL is the bare baseline, not safe on power loss.'],
  };
}
