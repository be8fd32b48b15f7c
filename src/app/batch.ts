/**
 * Update all: every component the check finds an update for, one run after another (the engine
 * allows one run at a time), the `updateFirst` components first, stopping at the first run that
 * does not succeed. And the rule that goes with `updateFirst`: while such a component has an
 * update, another component may not be updated on its own before it.
 *
 * A batch lives in memory. The updater stopping in the middle of one ends it: the run under way
 * is recovered on the next start as every run is, but the components after it are not started
 * (an operator asks again; docs/api.md, "POST /api/updates").
 */
import type { Logger } from 'pino';
import type { Engine } from '../engine/engine.js';
import { Hub } from '../engine/hub.js';
import { BusyError } from '../journal/journal.js';
import type { ComponentStatus, UpdateChecker } from '../releases/checker.js';
import type { ComponentConfig } from '../config/index.js';
import type { BatchRun, UpdateAllStarted, UpdateBatch } from '../contract/index.js';
import { CommandError, refusalOf } from './errors.js';

type Ordered = Pick<ComponentConfig, 'name' | 'updateFirst'>;

/** The order of an update of all: the `updateFirst` components, then the others, each in config order. */
export function updateOrder<C extends Ordered>(components: readonly C[]): C[] {
  return [...components.filter((c) => c.updateFirst === true), ...components.filter((c) => c.updateFirst !== true)];
}

/**
 * The `updateFirst` component with an update available that must be updated before `name`, or null:
 * for a component without the mark, any such one; for one with it, one listed before it (so two
 * of them never refuse each other).
 */
export function mustGoFirst(components: readonly Ordered[], updateAvailable: (name: string) => boolean, name: string): string | null {
  for (const c of updateOrder(components)) {
    if (c.name === name) return null;
    if (c.updateFirst === true && updateAvailable(c.name)) return c.name;
  }
  return null;
}

/** The refusal's sentence, as the DuneBugger frontend shows it. */
export function updateFirstMessage(name: string, first: string): string {
  return `Cannot update ${name} before ${first}. ${first.charAt(0).toUpperCase()}${first.slice(1)} has an available update and must be updated first.`;
}

/** A run's end that lets the batch go on: the component is current. */
const wentWell = (result: string | null) => result === 'succeeded' || result === 'up_to_date';

const list = (names: string[]) => (names.length <= 1 ? names.join('') : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`);

interface Planned {
  name: string;
  from: string | null;
  to: string | null;
}

interface Batch {
  id: number;
  state: UpdateBatch['state'];
  plan: Planned[];
  runs: BatchRun[];
  message: string;
  startedAt: string;
  finishedAt: string | null;
}

export interface BatchesOptions {
  engine: Engine;
  checker: UpdateChecker;
  components: readonly ComponentConfig[];
  logger: Logger;
}

export class Batches {
  /** Every change of a batch: a run started, the batch ended (the feed sends each as `update_batch`). */
  readonly changes: Hub<UpdateBatch>;
  private readonly log: Logger;
  private nextId = 1;
  /** A batch being planned (its check under way): a second one is refused. */
  private starting = false;
  private current: Batch | null = null;
  private last: Batch | null = null;

  constructor(private readonly o: BatchesOptions) {
    this.log = o.logger.child({ module: 'update-all' });
    this.changes = new Hub((error) => this.log.error({ err: error }, `a listener of update_batch failed: ${(error as Error).message}`));
  }

  /** Why a new run may not start now because of a batch, or null: one is being planned or goes on. */
  busyReason(): string | null {
    if (this.starting) return 'an update of all components is starting';
    const b = this.current;
    if (!b) return null;
    const run = b.runs.at(-1);
    return `an update of all components is under way${run ? `: run ${run.run_id} of ${run.component} (${b.runs.length} of ${b.plan.length})` : ''}`;
  }

  /** The component `name` must wait for (see `mustGoFirst`), from the latest stored check results. */
  mustGoFirst(name: string): string | null {
    const statuses = new Map(this.o.checker.statuses().map((s) => [s.name, s]));
    return mustGoFirst(this.o.components, (n) => statuses.get(n)?.update_available === true, name);
  }

  /** The batch going on, else the last one since the updater started; null if none. */
  view(): UpdateBatch | null {
    const b = this.current ?? this.last;
    return b ? viewOf(b) : null;
  }

  /**
   * Checks now, plans, and starts the first run; resolves once it exists (or at once when there is
   * nothing to update) while the rest goes on in the background. Refused (`busy`) while a run or
   * another batch is active; the first run's refusal (507, busy) is the caller's.
   */
  async start(): Promise<UpdateAllStarted> {
    // As for a single run: 507 wins over 409.
    this.o.engine.ensureWritable();
    const busy = this.busyReason() ?? this.runActive();
    if (busy) throw new CommandError('busy', busy);
    this.starting = true;
    try {
      await this.o.checker.check();
      const statuses = new Map<string, ComponentStatus>(this.o.checker.statuses().map((s) => [s.name, s]));
      const plan = updateOrder(this.o.components)
        .filter((c) => statuses.get(c.name)?.update_available === true)
        .map((c): Planned => ({ name: c.name, from: statuses.get(c.name)!.current_version, to: statuses.get(c.name)!.latest_version }));
      const startedAt = new Date().toISOString();
      const batch = (): Batch => ({ id: this.nextId++, state: 'running', plan, runs: [], message: '', startedAt, finishedAt: null });
      if (plan.length === 0) {
        const nothing = batch();
        this.end(nothing, 'succeeded', 'Nothing to update: no component has an update available');
        return { batch_id: nothing.id, components: [], run_id: null, message: nothing.message };
      }
      const made: { batch?: Batch } = {};
      let runId: number;
      try {
        // The batch exists with its first run: announced before that run's first transition.
        ({ runId } = await this.o.engine.startRun(plan[0]!.name, {
          version: null,
          created: (id) => {
            const b = (made.batch = this.current = batch());
            this.log.info({ batch_id: b.id, components: plan.map((p) => p.name) }, `update of all: ${plan.map((p) => `${p.name} ${p.from ?? '?'} → ${p.to ?? '?'}`).join(', then ')}`);
            this.started(b, id);
          },
        }));
      } catch (error) {
        // Nothing was started: no batch.
        throw refusalOf(error) ?? error;
      }
      const b = made.batch;
      if (!b) throw new Error('the engine started a run without telling its id');
      this.follow(b, runId).catch((error: unknown) => {
        this.log.error({ err: error, batch_id: b.id }, `the update of all stopped on an error: ${(error as Error).message}`);
        this.end(b, 'stopped', `Stopped: ${(error as Error).message}`);
      });
      return { batch_id: b.id, components: plan.map((p) => p.name), run_id: runId, message: b.message };
    } finally {
      this.starting = false;
    }
  }

  /** The engine's own refusal, asked before the check (which may take a while) rather than after. */
  private runActive(): string | null {
    if (this.o.engine.isRecovering) return 'an interrupted run is being recovered; try again when it has finished';
    const active = this.o.engine.activeRun();
    return active ? new BusyError(active).message : null;
  }

  private started(batch: Batch, runId: number): void {
    const p = batch.plan[batch.runs.length]!;
    batch.runs.push({ component: p.name, run_id: runId, from_version: p.from, to_version: p.to, result: null });
    batch.message = `Updating ${p.name} from ${p.from ?? 'an unknown version'} to ${p.to ?? 'the latest'}`;
    this.log.info({ batch_id: batch.id, run_id: runId, component: p.name }, batch.message);
    this.changes.publish(viewOf(batch));
  }

  /** Waits for each run's end and starts the next, until one does not succeed or none is left. */
  private async follow(batch: Batch, firstRunId: number): Promise<void> {
    let runId = firstRunId;
    for (;;) {
      const run = await this.o.engine.waitForRun(runId);
      const entry = batch.runs.at(-1)!;
      entry.result = run.result;
      entry.from_version = run.from_version ?? entry.from_version;
      entry.to_version = run.to_version ?? entry.to_version;
      const done = batch.runs.slice(0, -1).map((r) => `${r.component} to ${r.to_version ?? '?'}`);
      const left = batch.plan.slice(batch.runs.length).map((p) => p.name);
      if (!wentWell(run.result)) {
        const why = run.result === null ? 'the updater stopped before it ended' : run.result.replaceAll('_', ' ');
        return this.end(batch, 'stopped', [`Stopped at ${entry.component} (${why})`, done.length > 0 ? `updated before it: ${done.join(', ')}` : '', left.length > 0 ? `not updated: ${list(left)}` : ''].filter(Boolean).join('; '));
      }
      if (left.length === 0) {
        const all = batch.runs.map((r) => `${r.component} to ${r.to_version ?? '?'}`);
        return this.end(batch, 'succeeded', `Updated ${all.length} component${all.length === 1 ? '' : 's'}: ${all.join(', ')}`);
      }
      const next = left[0]!;
      try {
        ({ runId } = await this.o.engine.startRun(next, { version: null, created: (id) => this.started(batch, id) }));
      } catch (error) {
        const refusal = refusalOf(error);
        if (!refusal) throw error;
        return this.end(batch, 'stopped', `Stopped before ${next}: ${refusal.message}${left.length > 1 ? `; not updated: ${list(left)}` : ''}`);
      }
    }
  }

  private end(batch: Batch, state: 'succeeded' | 'stopped', message: string): void {
    if (batch.state !== 'running') return;
    batch.state = state;
    batch.message = message;
    batch.finishedAt = new Date().toISOString();
    if (this.current === batch) this.current = null;
    this.last = batch;
    this.log[state === 'succeeded' ? 'info' : 'warn']({ batch_id: batch.id, state }, message);
    this.changes.publish(viewOf(batch));
  }
}

function viewOf(b: Batch): UpdateBatch {
  return {
    batch_id: b.id,
    state: b.state,
    components: b.plan.map((p) => p.name),
    runs: b.runs.map((r) => ({ ...r })),
    message: b.message,
    started_at: b.startedAt,
    finished_at: b.finishedAt,
  };
}
