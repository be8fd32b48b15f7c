/**
 * The long-running service: config → journal → engine → listen → recovery → checks. Handles
 * SIGTERM and SIGINT whatever clients do: at once, stop accepting, tell WebSockets 1001 and close
 * the connections clients hold (app.ts, within about 2 s), while the current run finishes its
 * step (the engine's grace, up to 10 s, or it is left to recovery); then close the database.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { EMBEDDED_SOURCE, ensureDirs, type Config } from '../config/index.js';
import { startDemo } from '../demo/demo.js';
import { openDatabase } from '../journal/database.js';
import { acquireInstanceLock } from '../journal/instance-lock.js';
import { Journal } from '../journal/journal.js';
import { Engine } from '../engine/engine.js';
import { FaultPoints } from '../engine/faults.js';
import { createDrivers } from '../drivers/index.js';
import { KINDS, readInstalled } from '../kinds/index.js';
import { GitHubClient } from '../releases/github.js';
import { ReleaseDiscovery } from '../releases/discovery.js';
import { UpdateChecker } from '../releases/checker.js';
import { UPDATER_VERSION } from '../version.js';
import { buildApp } from './app.js';

export interface Service {
  url: string;
  engine: Engine;
  journal: Journal;
  checker: UpdateChecker;
  stop(): Promise<void>;
}

/** The parts of the service that do not listen: shared by `serve` and the CLI's one-shot commands. */
export function openCore(config: Config, logger: Logger) {
  ensureDirs(config);
  const db = openDatabase(join(config.dataDir, 'updater.db'));
  const journal = new Journal(db);
  const github = new GitHubClient({ apiUrl: config.github.apiUrl, rawUrl: config.github.rawUrl, token: config.github.token, cache: journal.httpCache, logger });
  const discovery = new ReleaseDiscovery(github, { includePrerelease: config.includePrerelease, updaterVersion: UPDATER_VERSION });
  const checker = new UpdateChecker({ config, store: journal.components, source: github, readInstalled, logger });
  return { db, journal, github, discovery, checker };
}

export async function startService(given: Config, source: string, logger: Logger): Promise<Service> {
  // No configuration at all: run the embedded demo (a sample app and its releases, all local).
  ensureDirs(given);
  const lock = acquireInstanceLock(given.dataDir);
  let demo: Awaited<ReturnType<typeof startDemo>> | null = null;
  try {
    demo = source === EMBEDDED_SOURCE && given.components.length === 0 ? await startDemo(given, logger) : null;
  } catch (error) {
    lock.release();
    throw error;
  }
  const config = demo?.config ?? given;
  let core: ReturnType<typeof openCore>;
  try {
    core = openCore(config, logger);
  } catch (error) {
    await demo?.stop();
    lock.release();
    throw error;
  }
  const { db, journal, discovery, checker } = core;
  const faults = new FaultPoints(process.env.UPDATER_FAULT);
  if (faults.armed) logger.warn({ fault: process.env.UPDATER_FAULT }, 'a test fault point is armed: this process will SIGKILL itself when it is reached');
  const drivers = createDrivers(config, KINDS, discovery, logger);
  const engine = new Engine({ journal, components: config.components, driverFor: drivers.driverFor, logger, faults });
  engine.results.subscribe((r) => checker.refreshInstalled(r.component));
  const app = await buildApp({
    engine,
    journal,
    checker,
    components: config.components,
    token: config.server.token,
    allowedHosts: [...config.server.allowedHosts, ...listenName(config.server.host)],
    allowedOrigins: config.server.allowedOrigins,
    requestTimeoutMs: requestTimeoutOverride(logger),
    logger,
    running: drivers.running,
  });

  if (!config.server.token) {
    if (isLoopback(config.server.host)) logger.info({ host: config.server.host }, 'no server.token is set: the API is open, so it listens on loopback only (set server.token to listen beyond it safely)');
    else logger.warn({ host: config.server.host }, 'no server.token is set and server.host is not loopback: anyone who can reach this address can start updates');
  }
  const url = await app.listen({ host: config.server.host, port: config.server.port });
  logger.info({ url, config: demo ? `${source} (demo)` : source, components: config.components.map((c) => c.name) }, `updater listening on ${url}`);
  logger.info({ dashboard: `${url}/` }, `dashboard: ${url}/`);

  // Recovery first: new runs are refused (busy) until it is done. Then the boot check.
  const recovered = await engine.recover();
  for (const run of recovered) logger.warn({ run_id: run.run_id, state: run.state }, `recovered run ${run.run_id}: ${run.message}`);
  if (config.components.length > 0) {
    checker.check().then(
      (statuses) => logger.info({ updates: statuses.filter((s) => s.update_available).map((s) => s.name) }, 'boot check done'),
      (error) => logger.error({ err: error }, `boot check failed: ${(error as Error).message}`),
    );
  }
  checker.startSchedule();

  let stopping: Promise<void> | null = null;
  const stop = () =>
    (stopping ??= (async () => {
      checker.stop();
      // Both at once: the clients' connections are closed while the current step finishes.
      await Promise.all([engine.close(), app.close()]);
      db.close();
      await demo?.stop();
      lock.release();
    })());
  return { url, engine, journal, checker, stop };
}

/** How long a stop waits for a stopped run to wrap up before it closes the database. */

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/**
 * The address `server.host` names, as a Host header would (`[fe80::1]` for IPv6), when it is one
 * address: the operator chose it, so requests addressed to it are not misdirected. A wildcard
 * (`0.0.0.0`, `::`) names no host.
 */
function listenName(host: string): string[] {
  if (['0.0.0.0', '::', ''].includes(host)) return [];
  return [host.includes(':') ? `[${host}]` : host];
}

/** `UPDATER_REQUEST_TIMEOUT_MS`, for tests only: shortens the 30 s a request has to arrive whole. */
function requestTimeoutOverride(logger: Logger): number | undefined {
  const raw = process.env.UPDATER_REQUEST_TIMEOUT_MS;
  if (raw === undefined || raw === '') return undefined;
  const ms = Number(raw);
  if (!Number.isSafeInteger(ms) || ms < 100) {
    logger.warn({ UPDATER_REQUEST_TIMEOUT_MS: raw }, 'UPDATER_REQUEST_TIMEOUT_MS is not an integer >= 100: ignored');
    return undefined;
  }
  logger.warn({ requestTimeoutMs: ms }, `UPDATER_REQUEST_TIMEOUT_MS: requests must arrive whole within ${ms} ms (a setting for tests)`);
  return ms;
}
