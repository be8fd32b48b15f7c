/**
 * A component kind as a plug-in: what a kind's folder (`src/kinds/<kind>/`) supplies, so that the
 * registry (index.ts) can build the configuration's union, the API's kind enum, the installed
 * version readers and the drivers from it, and a new kind is one folder and one registry line.
 */
import type { Logger } from 'pino';
import type { BackupRef, UpdateContext } from '../../machines/update-machine.js';
import type { Outcome, RestorePlan, StepContext } from '../core/driver.js';
import type { Installed } from '../core/installed.js';
import type { Manifest } from '../releases/manifest.js';

/** The work of one component of a kind; the shared release work (discover, manifest) is done around it. */
export interface KindDriver {
  /** What is installed now (never throws: an unknown version comes with a reason). */
  installed(): Installed;
  validate(run: UpdateContext, ctx: StepContext, manifest: Manifest): Promise<void>;
  backup(run: UpdateContext, ctx: StepContext): Promise<BackupRef>;
  apply(run: UpdateContext, ctx: StepContext): Promise<void>;
  verify(run: UpdateContext, ctx: StepContext): Promise<void>;
  rollback(run: UpdateContext, ctx: StepContext): Promise<void>;
  finalize?(run: UpdateContext, outcome: Outcome, log: Logger): Promise<void>;
  planRestore?(log: Logger): Promise<RestorePlan | null>;
  sweep?(settled: (runId: number) => boolean, log: Logger): Promise<void>;
}
