/**
 * A real updater process for the app crash matrix: `app-crash-child.ts start VERSION | recover`,
 * with CRASH_WORLD (JSON: the component, dirs, fake GitHub URLs, DOCKER_HOST).
 */
import { join } from 'node:path';
import { pino } from 'pino';
import { openDatabase } from '../../src/journal/database.js';
import { Journal } from '../../src/journal/journal.js';
import { Engine } from '../../src/engine/engine.js';
import { FaultPoints } from '../../src/engine/faults.js';
import { GitHubClient } from '../../src/releases/github.js';
import { ReleaseDiscovery } from '../../src/releases/discovery.js';
import { ComponentDriver } from '../../src/drivers/component-driver.js';
import { AppDriver } from '../../src/kinds/app/app-driver.js';
import type { AppComponent } from '../../src/kinds/app/index.js';

export interface AppCrashWorld {
  component: AppComponent;
  backupDir: string;
  dataDir: string;
  apiUrl: string;
  rawUrl: string;
  dockerHost: string;
}

const world = JSON.parse(process.env.CRASH_WORLD ?? '{}') as AppCrashWorld;
const [action, version] = process.argv.slice(2);
process.env.DOCKER_HOST = world.dockerHost;
const db = openDatabase(join(world.dataDir, 'updater.db'));
const logger = pino({ level: process.env.TEST_LOG ?? 'silent' });
const journal = new Journal(db);
const client = new GitHubClient({ apiUrl: world.apiUrl, rawUrl: world.rawUrl, token: null, cache: journal.httpCache, logger });
const discovery = new ReleaseDiscovery(client, { includePrerelease: false, updaterVersion: '0.1.0' });
const kind = new AppDriver(world.component, { backupDir: world.backupDir, backupRetention: 3, dataDir: world.dataDir, githubToken: null });
const driver = new ComponentDriver(world.component, kind, discovery);
const engine = new Engine({ journal, components: [world.component], driverFor: () => driver, logger, faults: new FaultPoints(process.env.UPDATER_FAULT) });
if (action === 'start') {
  await engine.waitForRun((await engine.startRun(world.component.name, { version: version ?? null })).runId);
} else {
  await engine.recover();
}
db.close();
