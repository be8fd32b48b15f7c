/**
 * A component kind as a plug-in. A kind's folder (`src/kinds/<kind>/`) exports one object that
 * says everything the rest of the updater needs of it: the schema of its configuration, how to
 * read what is installed, and how to make the driver that does a run's work. The registry
 * (index.ts) builds from those objects the configuration's `components[]` union, the API's kind
 * enum, the installed-version readers and the drivers, so a new kind is one folder and one line
 * in the registry.
 */
import type { Logger } from 'pino';
import { z } from 'zod';
import type { ApplyOutput, BackupRef, UpdateContext } from '../../machines/update-machine.js';
import type { Component } from '../core/component.js';
import type { Outcome, RestorePlan, StepContext } from '../core/driver.js';
import type { Installed } from '../core/installed.js';
import type { UpdaterHost } from '../core/host.js';
import type { Manifest } from '../releases/manifest.js';
import { componentFields, type KindSchema } from '../config/schema.js';

export type { KindSchema };

/** The work of one component of a kind; the shared release work (discover, manifest) is done around it. */
export interface KindDriver {
  /** What is installed now (never throws: an unknown version comes with a reason). */
  installed(): Installed;
  validate(run: UpdateContext, ctx: StepContext, manifest: Manifest): Promise<void>;
  backup(run: UpdateContext, ctx: StepContext): Promise<BackupRef>;
  /** May report sentences for the run's final message (`notes`): what it kept, for instance. */
  apply(run: UpdateContext, ctx: StepContext): Promise<ApplyOutput | void>;
  verify(run: UpdateContext, ctx: StepContext): Promise<void>;
  rollback(run: UpdateContext, ctx: StepContext): Promise<void>;
  finalize?(run: UpdateContext, outcome: Outcome, log: Logger): Promise<void>;
  planRestore?(log: Logger): Promise<RestorePlan | null>;
  sweep?(settled: (runId: number) => boolean, log: Logger): Promise<void>;
  /**
   * Whether the component's service runs now (null when it cannot be told), for readers: asked
   * through a cache (src/drivers/running-cache.ts), never by runs. A kind without one shows null.
   */
  running?(): Promise<boolean | null>;
}

/** What a kind's driver gets from the updater besides its component's configuration. */
export interface KindEnv {
  backupDir: string;
  /** Newest N backups kept per component. */
  backupRetention: number;
  dataDir: string;
  githubToken: string | null;
  /** The component's logger. */
  logger: Logger;
  /**
   * One instance per key across every component the drivers are built for: an expensive client
   * (one Docker engine connection for all containers) is made once, on first use of the key.
   */
  shared<T>(key: string, create: () => T): T;
  /**
   * Call before and after the driver itself starts or stops the service: readers then ask again
   * instead of showing an answer from before (docs/architecture.md, "Reads are cheap").
   */
  readonly serviceChanged: () => void;
  /** The updater process itself: its version, install root, server and supervisor (the `self` kind). */
  readonly host: UpdaterHost;
}

/** Makes a path of the configuration absolute, relative to where the key was written (`key` names it for messages). */
export type PathResolver = (key: string, value: string) => string;

/**
 * A kind. `C` is its component as its driver gets it (defaults filled, paths absolute), `P` what
 * its `configSchema` gives (the same unless `resolve` derives something).
 */
export interface ComponentKind<C extends Component = Component, P = C> {
  /** The `kind:` a user writes; equal to the literal of `configSchema.shape.kind`. */
  readonly kind: C['kind'];
  /** A strict zod object whose `kind` is a literal: what a user may write (see `componentSchema`). */
  readonly configSchema: KindSchema;
  /** Derived defaults and absolute paths, after validation. Without it the parsed component is used as is. */
  resolve?(parsed: P, path: PathResolver): C;
  /** What is installed now; never throws (an unknown version comes with a reason). */
  readInstalled(component: C): Installed;
  createDriver(component: C, env: KindEnv): KindDriver;
  /** Recoveries a run of this kind may go through, when it needs more than the default (MAX_RECOVERIES). */
  readonly maxRecoveries?: number;
}

/** The component type of a kind. */
export type ComponentOf<K> = K extends ComponentKind<infer C, infer _P> ? C : never;

/** A kind's configuration schema: the keys every component has (`name`, `kind`, `repo`, `updateFirst`), then the kind's own. */
export function componentSchema<K extends string, S extends z.core.$ZodLooseShape>(kind: K, shape: S) {
  return z.strictObject({ name: componentFields.name, kind: z.literal(kind), repo: componentFields.repo, updateFirst: componentFields.updateFirst, ...shape });
}
