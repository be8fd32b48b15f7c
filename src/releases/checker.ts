/**
 * Update checks: for every component, what is installed, what the latest offered release is,
 * and whether it is an update. Run on boot (after recovery), then every `checkIntervalHours`
 * (0 = off); never two at once (a call during a check waits for it and shares its result);
 * components in parallel with a bound. Results are stored in the `components` table.
 */
import pLimit from 'p-limit';
import type { Logger } from 'pino';
import type { ComponentRow, ComponentsTable } from '../journal/components.js';
import type { Component } from '../core/component.js';
import type { Config } from '../config/schema.js';
import type { Installed } from '../core/installed.js';
import type { ReleaseSource } from './discovery.js';
import { pickLatest } from './select.js';
import { decideUpdate } from '../core/versions.js';

/** What a check found for a component (as the journal's `components` table keeps it). */
export type ComponentStatus = ComponentRow;

/** The `update_check_result` body of the contract. */
export interface CheckResultBody {
  components: Record<
    string,
    {
      current: string | null;
      latest: string | null;
      update_available: boolean;
      release_notes: string | null;
      release_url: string | null;
      reason?: string;
      stale?: boolean;
      last_checked: string | null;
    }
  >;
}

export interface CheckerOptions {
  config: Pick<Config<Component>, 'components' | 'includePrerelease' | 'checkIntervalHours'>;
  /** Where the findings are kept (the journal's `components`). */
  store: ComponentsTable;
  source: ReleaseSource;
  readInstalled: (component: Component) => Installed;
  logger: Logger;
  concurrency?: number;
  /** Told of every check's statuses once it ends, whoever asked (the feed tells every client). */
  onChecked?: (statuses: ComponentStatus[]) => void;
}

export class UpdateChecker {
  private inFlight: Promise<ComponentStatus[]> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly limit;

  constructor(private readonly o: CheckerOptions) {
    this.limit = pLimit(o.concurrency ?? 8);
  }

  /** Checks all components (or one). A call while a check runs waits for it, then checks if it asked for more. */
  async check(only?: string): Promise<ComponentStatus[]> {
    while (this.inFlight) {
      const current = this.inFlight;
      const result = await current.catch(() => null);
      if (result && (only === undefined ? result.length === this.o.config.components.length : result.some((s) => s.name === only))) {
        return only === undefined ? result : result.filter((s) => s.name === only);
      }
    }
    const targets = this.o.config.components.filter((c) => only === undefined || c.name === only);
    // The findings are stored together, once every component has been checked: one write per check.
    this.inFlight = Promise.all(targets.map((c) => this.limit(() => this.checkOne(c)))).then((found) => {
      this.store(found);
      return found.map((f) => f.row);
    });
    try {
      const statuses = await this.inFlight;
      try {
        this.o.onChecked?.(statuses);
      } catch (error) {
        this.o.logger.error({ err: error }, `telling of a check failed: ${(error as Error).message}`);
      }
      return statuses;
    } finally {
      this.inFlight = null;
    }
  }

  /** What the last checks found (from the journal), for every configured component. */
  statuses(): ComponentStatus[] {
    return this.o.config.components.map((c) => this.statusOf(c));
  }

  statusOf(c: Component): ComponentStatus {
    const row = this.o.store.get(c.name);
    if (!row) {
      const installed = this.o.readInstalled(c);
      return {
        name: c.name,
        kind: c.kind,
        current_version: installed.version,
        latest_version: null,
        update_available: false,
        reason: installed.reason ?? 'not checked yet',
        release_notes: null,
        release_url: null,
        last_checked: null,
        stale: false,
      };
    }
    return row;
  }

  /** Re-reads the installed version (after a run) and recomputes the offer from the stored latest. */
  refreshInstalled(name: string): ComponentStatus | null {
    const c = this.o.config.components.find((x) => x.name === name);
    const row = c ? this.o.store.get(name) : undefined;
    if (!c || !row) return null;
    const installed = this.o.readInstalled(c);
    const decision = decideUpdate(installed.version, row.latest_version, installed.reason);
    const status: ComponentStatus = { ...row, current_version: installed.version, update_available: decision.updateAvailable, reason: decision.reason ?? (row.stale ? row.reason : null) };
    this.store([{ row: status, error: null }]);
    return status;
  }

  startSchedule(): void {
    const hours = this.o.config.checkIntervalHours;
    if (!hours || hours <= 0) {
      this.o.logger.info('scheduled checks are off (checkIntervalHours: 0)');
      return;
    }
    const ms = Math.min(hours * 3_600_000, 2 ** 31 - 1);
    this.timer = setInterval(() => {
      this.check().catch((error) => this.o.logger.error({ err: error }, `scheduled check failed: ${(error as Error).message}`));
    }, ms);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** What a check of one component found, and why GitHub could not be asked (null when it could). */
  private async checkOne(c: Component): Promise<{ row: ComponentStatus; error: string | null }> {
    const installed = this.o.readInstalled(c);
    const at = new Date().toISOString();
    try {
      const fetched = await this.o.source.listReleases(c.repo);
      const latest = pickLatest(fetched.value, this.o.config.includePrerelease);
      const decision = decideUpdate(installed.version, latest?.version ?? null, installed.reason);
      const reasons = [decision.reason, fetched.stale ? fetched.reason : null].filter(Boolean);
      const status: ComponentStatus = {
        name: c.name,
        kind: c.kind,
        current_version: installed.version,
        latest_version: latest?.version ?? null,
        update_available: decision.updateAvailable,
        reason: reasons.length ? reasons.join('; ') : null,
        release_notes: latest?.release.notes ?? null,
        release_url: latest?.release.url ?? null,
        last_checked: at,
        stale: fetched.stale,
      };
      return { row: status, error: null };
    } catch (error) {
      // No fresh answer and nothing cached: keep what was known, say it is stale and why.
      const previous = this.o.store.get(c.name);
      const why = (error as Error).message;
      this.o.logger.warn({ component: c.name, err: error }, `check of ${c.name} failed: ${why}`);
      const latestVersion = previous?.latest_version ?? null;
      const decision = decideUpdate(installed.version, latestVersion, installed.reason);
      const status: ComponentStatus = {
        name: c.name,
        kind: c.kind,
        current_version: installed.version,
        latest_version: latestVersion,
        update_available: decision.updateAvailable,
        reason: [decision.reason, `${why}${previous?.last_checked ? `; showing the result from ${previous.last_checked}` : ''}`].filter(Boolean).join('; '),
        release_notes: previous?.release_notes ?? null,
        release_url: previous?.release_url ?? null,
        last_checked: previous?.last_checked ?? null,
        stale: true,
      };
      return { row: status, error: why };
    }
  }

  private store(found: Array<{ row: ComponentStatus; error: string | null }>): void {
    if (found.length === 0) return;
    // A full disk: the check's answer is still given; it is just not kept for the next read.
    const refused = this.o.store.put(...found);
    const names = found.map((f) => f.row.name).join(', ');
    if (refused) this.o.logger.warn({ components: found.map((f) => f.row.name) }, `the result of checking ${names} could not be stored: ${refused.message}`);
  }
}

/** The contract's `update_check_result` body from statuses. */
export function toCheckResult(statuses: ComponentStatus[]): CheckResultBody {
  const components: CheckResultBody['components'] = {};
  for (const s of statuses) {
    components[s.name] = {
      current: s.current_version,
      latest: s.latest_version,
      update_available: s.update_available,
      release_notes: s.release_notes,
      release_url: s.release_url,
      last_checked: s.last_checked,
      ...(s.reason ? { reason: s.reason } : {}),
      ...(s.stale ? { stale: true } : {}),
    };
  }
  return { components };
}
