/**
 * The long-running service: config → journal → engine → recovery → HTTP. Handles SIGTERM and
 * SIGINT: stop accepting, let the current run finish its step (or leave it to recovery),
 * close sockets and the database.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { ensureDirs, type Config } from '../config/index.js';
import { openDatabase } from '../journal/database.js';
import { Journal } from '../journal/journal.js';
import { Engine } from '../engine/engine.js';
import { FaultPoints } from '../engine/faults.js';
import { createDriverFor } from '../drivers/index.js';
import { buildApp } from './app.js';

export interface Service {
  url: string;
  engine: Engine;
  journal: Journal;
  stop(): Promise<void>;
}

export async function startService(config: Config, source: string, logger: Logger): Promise<Service> {
  ensureDirs(config);
  const db = openDatabase(join(config.dataDir, 'updater.db'));
  const journal = new Journal(db);
  const faults = new FaultPoints(process.env.UPDATER_FAULT);
  if (faults.armed) logger.warn({ fault: process.env.UPDATER_FAULT }, 'a test fault point is armed: this process will SIGKILL itself when it is reached');
  const engine = new Engine({ journal, components: config.components, driverFor: createDriverFor(config, logger), logger, faults });
  const app = await buildApp({ engine, journal, logger });

  if (!config.server.token && !isLoopback(config.server.host)) {
    logger.warn({ host: config.server.host }, 'no server.token is set and the server listens beyond loopback: anyone who can reach it can start updates');
  }
  const url = await app.listen({ host: config.server.host, port: config.server.port });
  logger.info({ url, config: source, components: config.components.map((c) => c.name) }, `updater listening on ${url}`);

  const recovered = await engine.recover();
  for (const run of recovered) logger.warn({ run_id: run.run_id, state: run.state }, `recovered run ${run.run_id}: ${run.message}`);

  let stopping: Promise<void> | null = null;
  const stop = () =>
    (stopping ??= (async () => {
      await engine.close();
      await app.close();
      db.close();
    })());
  return { url, engine, journal, stop };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}
