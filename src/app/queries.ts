/**
 * The read model: everything a transport or /metrics shows, computed in one place from the
 * journal's queries, the checker's stored results and the engine's state. Transports read through
 * this, never the journal's tables or the engine.
 */
import type { Engine } from '../engine/engine.js';
import type { Journal, RunView, Transition } from '../journal/journal.js';
import { toCheckResult, type ComponentStatus, type UpdateChecker } from '../releases/checker.js';
import type { ComponentConfig } from '../config/index.js';
import type { CheckResult, ComponentView, FleetView, Health, Run, RunsQuery, SystemInfoBody, UpdateBatch } from '../contract/index.js';
import type { Batches } from './batch.js';
import { UPDATER_VERSION } from '../version.js';

/** Tells whether a component's service runs (the drivers' cached probe); null when it cannot be told. */
export type RunningProbe = (component: ComponentConfig) => Promise<boolean | null>;

/** What the stored check results add up to (for /metrics). */
export interface CheckSummary {
  /** Configured components whose last check found an update. */
  updatesAvailable: number;
  /** When the newest stored check result was taken (ISO), or null if never. */
  lastChecked: string | null;
}

export interface QueriesOptions {
  journal: Journal;
  engine: Engine;
  checker: UpdateChecker;
  components: readonly ComponentConfig[];
  running?: RunningProbe | undefined;
  /** The component kinds this updater knows (the API's kind enum). */
  kinds: readonly string[];
  /** `system_info`'s device_id: the Web PubSub group, else the NATS device name, else the host name. */
  deviceId: string;
  /** Updates of all components (held in memory). */
  batches?: Pick<Batches, 'view'> | undefined;
}

// The journal's run and the contract's are one shape: a change to either fails to compile here.
type Assert<T extends true> = T;
export type _JournalRunIsContractRun = Assert<RunView extends Run ? true : false>;

/** The prefix the seed's `updater.update` body may carry (`dunebugger-core`). */
const SEED_PREFIX = 'dunebugger-';

/** The transports with a connection of their own, as /healthz names them. */
export type LinkName = 'webpubsub' | 'nats';

export class Queries {
  private readonly links = new Map<LinkName, () => 'connected' | 'disconnected'>();
  private fleetReader: (() => Promise<FleetView>) | null = null;

  constructor(private readonly o: QueriesOptions) {}

  get kinds(): readonly string[] {
    return this.o.kinds;
  }

  hasComponent(name: string): boolean {
    return this.o.components.some((c) => c.name === name);
  }

  /** The component a client means: `dunebugger-core` is `core` when `core` is configured. */
  componentNamed(name: string): string {
    const bare = name.startsWith(SEED_PREFIX) ? name.slice(SEED_PREFIX.length) : name;
    return bare !== name && this.hasComponent(bare) ? bare : name;
  }

  /** `GET /api/components`: installed and latest versions, whether each runs, and its active run. */
  async components(): Promise<ComponentView[]> {
    const active = this.o.engine.activeRun();
    return Promise.all(
      this.o.components.map(async (c) => {
        const s = this.o.checker.statusOf(c);
        let running: boolean | null = null;
        try {
          running = this.o.running ? await this.o.running(c) : null;
        } catch {
          running = null;
        }
        return {
          name: c.name,
          kind: c.kind,
          current_version: s.current_version,
          latest_version: s.latest_version,
          update_available: s.update_available,
          last_checked: s.last_checked,
          release_notes: s.release_notes,
          release_url: s.release_url,
          running,
          active_run: active && active.component === c.name ? active.id : null,
          reason: s.reason,
          stale: s.stale,
        };
      }),
    );
  }

  /** The `system_info` body: the components as the seed's frontend reads them. */
  async systemInfo(): Promise<SystemInfoBody> {
    const views = await this.components();
    return {
      system_info: {
        device_id: this.o.deviceId,
        timestamp: new Date().toISOString().slice(0, 19),
        dunebugger_components: views.map((v) => ({
          state: v.running === null ? 'unknown' : v.running ? 'running' : 'stopped',
          version: v.current_version,
          last_available_version: v.latest_version === null ? null : v.update_available ? v.latest_version : v.current_version,
          name: v.name,
          running: v.running,
          current_version: v.current_version,
          latest_version: v.latest_version,
          update_available: v.update_available,
          last_checked: v.last_checked,
          release_notes: v.release_notes,
          release_url: v.release_url,
        })),
      },
    };
  }

  /** The `update_check_result` body of a check's statuses. */
  checkResult(statuses: ComponentStatus[]): CheckResult {
    return toCheckResult(statuses);
  }

  runs(query: Partial<RunsQuery> = {}): Run[] {
    return this.o.journal.listRuns({ component: query.component, limit: query.limit });
  }

  run(id: number): Run | undefined {
    return this.o.journal.getRun(id);
  }

  /** The run as stored once it has ended (at once if it already has). */
  runEnded(id: number): Promise<Run> {
    return this.o.engine.waitForRun(id);
  }

  /** The update of all components going on, else the last one since the updater started (`GET /api/updates`). */
  batch(): UpdateBatch | null {
    return this.o.batches?.view() ?? null;
  }

  activeRun(): { id: number; component: string; state: string } | null {
    return this.o.engine.activeRun();
  }

  /** A transport that keeps a connection of its own (Web PubSub, NATS) tells /healthz how it is. */
  reportLink(name: LinkName, status: () => 'connected' | 'disconnected'): void {
    this.links.set(name, status);
  }

  /** The NATS transport tells how to read the fleet (the devices' and rollouts' KV buckets). */
  reportFleet(read: () => Promise<FleetView>): void {
    this.fleetReader = read;
  }

  /** `GET /api/fleet`: null when no transport can read the fleet (`nats` is not configured). */
  fleet(): Promise<FleetView> | null {
    return this.fleetReader ? this.fleetReader() : null;
  }

  /** `GET /healthz`: alive, whether the journal can be written (it probes while it cannot), and each link's state. */
  health(): Health {
    const journal = this.o.engine.journalHealth();
    const links: Partial<Record<LinkName, 'connected' | 'disconnected'>> = {};
    for (const [name, status] of this.links) links[name] = status();
    return {
      status: 'ok',
      version: UPDATER_VERSION,
      recovering: this.o.engine.isRecovering,
      journal: journal.writable ? 'ok' : 'unwritable',
      ...(journal.error ? { journal_error: journal.error } : {}),
      ...links,
    };
  }

  /** Ended runs, by component and result (from the journal, so they survive restarts). */
  runCounts(): Array<{ component: string; result: string; n: number }> {
    return this.o.journal.runs.countsByResult();
  }

  checkSummary(): CheckSummary {
    const statuses = this.o.checker.statuses();
    const checked = statuses.map((s) => s.last_checked).filter((t): t is string => t !== null);
    return {
      updatesAvailable: statuses.filter((s) => s.update_available).length,
      lastChecked: checked.length > 0 ? checked.reduce((a, b) => (a > b ? a : b)) : null,
    };
  }

  // For the feed: the journal's transitions in seq order.

  lastSeq(): number {
    return this.o.journal.lastSeq();
  }

  transitionsAfter(seq: number, limit: number): Transition[] {
    return this.o.journal.transitionsAfter(seq, limit);
  }

  /** The newest committed transition of a run (where transient progress is placed). */
  latestOf(runId: number): { seq: number; state: string } | null {
    const last = this.o.journal.transitionsOf(runId).at(-1);
    return last ? { seq: last.seq, state: last.to_state } : null;
  }
}
