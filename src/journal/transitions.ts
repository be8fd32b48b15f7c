/**
 * The `transitions` table (the story of every run, with a global gap-free `seq` clients replay
 * by) and the `run_steps` table (an intent row written before each sub-step of a phase, so that
 * recovery and rollback know what may have taken effect).
 */
import type { Db } from './database.js';

export type Level = 'info' | 'warn' | 'error';

export interface TransitionRow {
  seq: number;
  run_id: number;
  from_state: string | null;
  to_state: string;
  event: string;
  message: string;
  level: Level;
  at: string;
}

/** A committed transition, as published to listeners. */
export interface Transition {
  seq: number;
  runId: number;
  component: string;
  from: string | null;
  to: string;
  event: string;
  message: string;
  level: Level;
  at: string;
}

export interface StepRow {
  run_id: number;
  n: number;
  phase: string;
  step: string;
  /** JSON, or null. */
  detail: string | null;
  at: string;
}

/** A step row as the record its kind wrote: the JSON of `detail`, or for rows written before records, `{step, ...detail}`. */
export function stepRecord(row: Pick<StepRow, 'step' | 'detail'>): { step: string } & Record<string, unknown> {
  let detail: unknown = null;
  try {
    detail = row.detail === null ? null : JSON.parse(row.detail);
  } catch {
    detail = null;
  }
  const isObject = typeof detail === 'object' && detail !== null && !Array.isArray(detail);
  if (isObject && (detail as { step?: unknown }).step === row.step) return detail as { step: string } & Record<string, unknown>;
  return { ...(isObject ? (detail as Record<string, unknown>) : {}), step: row.step };
}

export class TransitionsTable {
  private readonly s;

  constructor(db: Db) {
    this.s = {
      insert: db.prepare<[number, string | null, string, string, string, Level, string]>(
        'INSERT INTO transitions (run_id, from_state, to_state, event, message, level, at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      ofRun: db.prepare<[number], TransitionRow>('SELECT * FROM transitions WHERE run_id = ? ORDER BY seq'),
      after: db.prepare<[number, number], TransitionRow & { component: string }>(
        'SELECT t.*, r.component FROM transitions t JOIN runs r ON r.id = t.run_id WHERE t.seq > ? ORDER BY t.seq LIMIT ?',
      ),
      lastSeq: db.prepare<[], { seq: number | null }>('SELECT MAX(seq) AS seq FROM transitions'),
      nextStep: db.prepare<[number], { n: number }>('SELECT COALESCE(MAX(n), 0) + 1 AS n FROM run_steps WHERE run_id = ?'),
      insertStep: db.prepare<[number, number, string, string, string | null, string]>('INSERT INTO run_steps (run_id, n, phase, step, detail, at) VALUES (?, ?, ?, ?, ?, ?)'),
      steps: db.prepare<[number], StepRow>('SELECT * FROM run_steps WHERE run_id = ? ORDER BY n'),
    };
  }

  /** Inserts a transition row; returns its seq. Call inside the journal's transaction. */
  insert(t: { runId: number; from: string | null; to: string; event: string; message: string; level: Level; at: string }): number {
    return Number(this.s.insert.run(t.runId, t.from, t.to, t.event, t.message, t.level, t.at).lastInsertRowid);
  }

  ofRun(runId: number): TransitionRow[] {
    return this.s.ofRun.all(runId);
  }

  /** Transitions with seq greater than `afterSeq`, oldest first (for replay). */
  after(afterSeq: number, limit: number): Transition[] {
    return this.s.after.all(afterSeq, limit).map((t) => ({
      seq: t.seq,
      runId: t.run_id,
      component: t.component,
      from: t.from_state,
      to: t.to_state,
      event: t.event,
      message: t.message,
      level: t.level,
      at: t.at,
    }));
  }

  lastSeq(): number {
    return this.s.lastSeq.get()?.seq ?? 0;
  }

  /** Inserts the next step row of a run; returns its number within the run. Call inside a transaction. */
  insertStep(runId: number, phase: string, step: string, detail: string | null, at: string): number {
    const n = this.s.nextStep.get(runId)!.n;
    this.s.insertStep.run(runId, n, phase, step, detail, at);
    return n;
  }

  steps(runId: number): StepRow[] {
    return this.s.steps.all(runId);
  }
}
