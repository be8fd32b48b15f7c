/**
 * The composition root: the only place that wires the journal, the engine, the component kinds,
 * the checker, the application layer (commands, queries, feed) and the transports. Entry points
 * (src/cli.ts, tests, benches) call `createCore` or `startService`; nothing else imports this file.
 *
 * `serve` = lock → demo (with no configuration) → core → transports (HTTP: REST, /ws, dashboard)
 * → listen → recovery → boot check and schedule. SIGTERM and SIGINT stop it whatever clients do:
 * at once, stop accepting, tell WebSockets 1001 and close the connections clients hold (within
 * about 2 s), while the current run finishes its step (the engine's grace, up to 10 s, or it is
 * left to recovery); then close the database.
 */
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { EMBEDDED_SOURCE, ensureDirs, type Config } from './config/index.js';
import { openDatabase, type Db } from './journal/database.js';
import { acquireInstanceLock } from './journal/instance-lock.js';
import { Journal, type RunView } from './journal/journal.js';
import { Engine, type EngineOptions } from './engine/engine.js';
import { FaultPoints } from './engine/faults.js';
import { createDrivers, type Drivers } from './drivers/index.js';
import { KINDS, installedReader, kindNames, readInstalled, type Kinds } from './kinds/index.js';
import { standaloneHost, type UpdaterHost } from './core/host.js';
import { GitHubClient } from './releases/github.js';
import { ReleaseDiscovery, type ReleaseSource } from './releases/discovery.js';
import { UpdateChecker } from './releases/checker.js';
import type { Demo } from './demo/demo.js';
import { createApplication, type Application } from './app/index.js';
import { History } from './app/history.js';
import { UpdateLog } from './app/update-log.js';
import { UPDATER_VERSION } from './version.js';
import { copyJournalForTrial, serveHost, type ServeHost } from './process-host.js';

export interface CoreOptions {
  config: Config;
  /** The kind registry (src/kinds/index.ts); default the kinds built into the updater. A test may add its own. */
  kinds?: Kinds;
  /**
   * The engine's drivers instead of the kinds' (tests that drive the engine with a `Driver` of
   * their own, below the kinds' release work). The kinds still name the kinds and read versions.
   */
  drivers?: (config: Config, discovery: ReleaseDiscovery) => Drivers;
  /** Test fault points (src/engine/faults.ts); default none. */
  faults?: FaultPoints;
  logger: Logger;
  /** Where releases come from instead of GitHub (`config.github`): tests and benches. */
  releases?: ReleaseSource;
  /** The journal's file instead of `<dataDir>/updater.db`: tests that put it on a disk of its own. */
  databasePath?: string;
  /** The engine's time limits and storage retry pause: tests shorten them. */
  engine?: Pick<EngineOptions, 'phaseTimeoutsMs' | 'storageRetryMs'>;
  /** The process as the `self` kind sees it (`updater serve` makes one); default: no server, no restart. */
  host?: UpdaterHost;
}

/** Everything but the transports, wired. */
export interface Core {
  readonly config: Config;
  /** What transports see: commands, queries, feed. */
  readonly app: Application;
  // The parts, for entry points and tests (a transport never uses them).
  readonly db: Db;
  readonly journal: Journal;
  readonly engine: Engine;
  readonly checker: UpdateChecker;
  /** Drives the runs a previous process left unfinished to an end (new runs are busy until then). */
  recover(): Promise<RunView[]>;
  /** The boot check, in the background, then a check every `checkIntervalHours`. */
  startChecks(): void;
  /**
   * Idempotent. No more checks; the current run gets the engine's grace to finish its step while
   * `alongside` (the transports closing their connections) goes on; then the feed and the database
   * are closed.
   */
  close(alongside?: Array<Promise<unknown>>, options?: { graceMs?: number }): Promise<void>;
}

export function createCore(o: CoreOptions): Core {
  const { config, logger } = o;
  const kinds = o.kinds ?? KINDS;
  ensureDirs(config);
  const databasePath = o.databasePath ?? join(config.dataDir, 'updater.db');
  const db = openDatabase(databasePath);
  try {
    const host = o.host ?? standaloneHost(UPDATER_VERSION, databasePath);
    const journal = new Journal(db);
    const releases = o.releases ?? new GitHubClient({ apiUrl: config.github.apiUrl, rawUrl: config.github.rawUrl, token: config.github.token, cache: journal.httpCache, logger });
    // A manifest's min_remote_version is compared with this component's installed version (or, without it, the updater's own).
    const remoteComponent = config.components.find((c) => c.name === config.manifest.remoteComponent);
    const remote = remoteComponent ? () => ({ component: remoteComponent.name, installed: readInstalled(remoteComponent, kinds) }) : null;
    const discovery = new ReleaseDiscovery(releases, { includePrerelease: config.includePrerelease, updaterVersion: UPDATER_VERSION, remote });
    // Every check's result goes to the feed, whoever asked: every client hears it.
    const checker = new UpdateChecker({ config, store: journal.components, source: releases, readInstalled: installedReader(kinds), logger, onChecked: (statuses) => app.feed.checked(statuses) });
    const drivers = o.drivers ? o.drivers(config, discovery) : createDrivers(config, kinds, discovery, logger, { host });
    // Each component as the engine sees it, with its kind's recovery budget when it has its own.
    const engineComponents = config.components.map((c) => {
      const kind = kinds.find((k) => k.kind === c.kind);
      return kind?.maxRecoveries !== undefined ? { ...c, maxRecoveries: kind.maxRecoveries } : c;
    });
    const engine = new Engine({ journal, components: engineComponents, driverFor: drivers.driverFor, logger, faults: o.faults, ...o.engine });
    // Before the feed subscribes: when clients hear a run's result, the installed version is already read again.
    const unrefresh = engine.results.subscribe((r) => checker.refreshInstalled(r.component));
    // Every finished run, one line in <dataDir>/logs/updates.log, written in the background (never holds up a run).
    const updateLog = new UpdateLog(join(config.dataDir, 'logs'), logger.child({ module: 'update-log' }));
    const unlog = engine.results.subscribe((r) => {
      const run = journal.getRun(r.runId);
      updateLog.append({ at: run?.finished_at ?? new Date(), component: r.component, fromVersion: run?.from_version ?? null, toVersion: run?.to_version ?? null, state: r.state, message: r.message });
    });
    // The checker calls onChecked only from check(), never before createCore returns.
    const app = createApplication({ engine, journal, checker, components: config.components, running: drivers.running, kinds: kindNames(kinds), deviceId: config.webpubsub?.group ?? config.nats?.device ?? hostname(), logger });

    let closing: Promise<void> | null = null;
    return {
      config,
      app,
      db,
      journal,
      engine,
      checker,
      async recover() {
        const recovered = await engine.recover();
        for (const run of recovered) logger.warn({ run_id: run.run_id, state: run.state }, `recovered run ${run.run_id}: ${run.message}`);
        return recovered;
      },
      startChecks() {
        if (config.components.length > 0) {
          app.commands.check().then(
            (result) => logger.info({ updates: Object.entries(result.components).filter(([, c]) => c.update_available).map(([name]) => name) }, 'boot check done'),
            (error: unknown) => logger.error({ err: error }, `boot check failed: ${(error as Error).message}`),
          );
        }
        checker.startSchedule();
      },
      close: (alongside = [], options = {}) =>
        (closing ??= (async () => {
          checker.stop();
          await Promise.all([engine.close(options.graceMs), ...alongside]);
          app.feed.close();
          unrefresh();
          unlog();
          // The last run's line, unless the disk holds it up: a stop is not held up for it.
          await updateLog.flush();
          db.close();
        })()),
    };
  } catch (error) {
    db.close();
    throw error;
  }
}

/**
 * The history for the CLI's reading commands, from the journal opened read-only; null when the
 * journal does not exist yet. `fn`'s answer is returned and the journal closed after it.
 */
export function readHistory<T>(config: Pick<Config, 'dataDir'>, fn: (history: History) => T): T | null {
  const path = join(config.dataDir, 'updater.db');
  if (!existsSync(path)) return null;
  const db = openDatabase(path, { readonly: true });
  try {
    return fn(new History(new Journal(db)));
  } finally {
    db.close();
  }
}

export interface Service {
  url: string;
  core: Core;
  /** Stops everything of ours; `graceMs` is how long a run in progress may take to finish its step (default the engine's). */
  stop(options?: { graceMs?: number }): Promise<void>;
}

/** `updater serve`: the core and its transports, listening. */
/**
 * `exit`: how the process ends when a run asks it to exit for its supervisor (the `self` kind's
 * hand-over), once everything is stopped; the CLI passes process.exit.
 */
export async function startService(given: Config, source: string, logger: Logger, exit: (code: number) => void = (code) => process.exit(code)): Promise<Service> {
  ensureDirs(given);
  const lock = acquireInstanceLock(given.dataDir);
  let demo: Demo | null = null;
  let core: Core;
  let host: ServeHost;
  try {
    // No configuration at all: run the embedded demo (a sample app and its releases, all local).
    if (source === EMBEDDED_SOURCE && given.components.length === 0) demo = await (await import('./demo/demo.js')).startDemo(given, logger);
    const faultVersion = process.env.UPDATER_FAULT_VERSION;
    const faults = new FaultPoints(faultVersion && faultVersion !== UPDATER_VERSION ? undefined : process.env.UPDATER_FAULT);
    if (faults.armed) logger.warn({ fault: process.env.UPDATER_FAULT }, 'a test fault point is armed: this process will SIGKILL itself when it is reached');
    const config = demo?.config ?? given;
    // The process for the `self` kind; a release on trial copies the journal before migrating it.
    host = serveHost({ version: UPDATER_VERSION, databasePath: join(config.dataDir, 'updater.db') });
    await copyJournalForTrial(host, logger);
    core = createCore({ config, faults, logger, host });
  } catch (error) {
    await demo?.stop();
    lock.release();
    throw error;
  }
  const config = core.config;

  // The transports. HTTP: REST, /ws, /metrics, the dashboard; then Web PubSub and NATS.
  let http: { url: string; close(): Promise<void> };
  try {
    const { startHttp } = await import('./server/server.js');
    http = await startHttp(core.app, config.server, logger);
  } catch (error) {
    await core.close();
    await demo?.stop();
    lock.release();
    throw error;
  }
  // Web PubSub: outbound to the hub, in the device's group; it connects (and reconnects) on its own.
  const webpubsub = config.webpubsub ? (await import('./webpubsub/adapter.js')).startWebPubSub(core.app, config.webpubsub, logger) : null;
  // NATS: outbound to the bus, as this device; it connects (and reconnects) on its own, and the
  // service runs whether the bus is there or not.
  const nats = config.nats ? (await import('./nats/adapter.js')).startNats(core.app, config.nats, logger) : null;
  host.listening(http.url);
  logger.info({ url: http.url, version: UPDATER_VERSION, config: demo ? `${source} (demo)` : source, components: config.components.map((c) => c.name) }, `updater listening on ${http.url}`);
  logger.info({ dashboard: `${http.url}/` }, `dashboard: ${http.url}/`);

  let stopping: Promise<void> | null = null;
  const stop = (options: { graceMs?: number } = {}) =>
    (stopping ??= (async () => {
      // Both at once: the clients' connections are closed while the current step finishes.
      await core.close([http.close(), ...(webpubsub ? [webpubsub.close()] : []), ...(nats ? [nats.close()] : [])], options);
      await demo?.stop();
      lock.release();
    })());
  // A run that hands over to the supervisor (a self-update) asks during recovery too: the
  // process stops at once (the run stays journaled in its state for the next release) and
  // exits with the code the run asked for.
  void host.restartRequested.then(({ code, why }) => {
    logger.info({ code }, `exiting for the supervisor: ${why}`);
    stop({ graceMs: 0 }).then(
      () => exit(code),
      () => exit(code),
    );
  });

  // Recovery first: new runs are refused (busy) until it is done. Then the boot check.
  await core.recover();
  // Not when a recovered run has already stopped the service for its hand-over.
  if (!stopping) core.startChecks();
  return { url: http.url, core, stop };
}
