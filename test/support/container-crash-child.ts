/**
 * A real updater process for the container crash matrix: `container-crash-child.ts start
 * VERSION | recover`, with the world in CRASH_WORLD (JSON: dir, composeFile, backupDir, port,
 * apiUrl, rawUrl, dockerHost). UPDATER_FAULT makes it SIGKILL itself at that point.
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
import { ContainerDriver } from '../../src/kinds/container/container-driver.js';
import { DockerEngine } from '../../src/kinds/container/engine-api.js';
import type { ContainerComponent } from '../../src/kinds/container/index.js';

export interface CrashWorld {
  dir: string;
  composeFile: string;
  backupDir: string;
  port: number;
  apiUrl: string;
  rawUrl: string;
  dockerHost: string;
  healthTimeoutSeconds: number;
}

const world = JSON.parse(process.env.CRASH_WORLD ?? '{}') as CrashWorld;
const [action, version] = process.argv.slice(2);
process.env.DOCKER_HOST = world.dockerHost;
const db = openDatabase(join(world.dir, 'updater.db'));
const journal = new Journal(db);
const logger = pino({ level: process.env.TEST_LOG ?? 'silent' });
const client = new GitHubClient({ apiUrl: world.apiUrl, rawUrl: world.rawUrl, token: null, cache: journal.httpCache, logger });
const discovery = new ReleaseDiscovery(client, { includePrerelease: false, updaterVersion: '0.1.0' });
const component = {
  name: 'sample',
  kind: 'container',
  repo: 'o/sample',
  composeFile: world.composeFile,
  service: 'sample',
  health: { url: `http://127.0.0.1:${world.port}/health`, timeoutSeconds: world.healthTimeoutSeconds },
  minFreeMB: 1,
} as ContainerComponent;
const kind = new ContainerDriver(component, { backupDir: world.backupDir, backupRetention: 3 }, new DockerEngine());
const driver = new ComponentDriver(component, kind, discovery);
const engine = new Engine({ journal, components: [component], driverFor: () => driver, logger, faults: new FaultPoints(process.env.UPDATER_FAULT) });
if (action === 'start') {
  const run = await engine.waitForRun((await engine.startRun('sample', { version: version ?? null })).runId);
  console.log(JSON.stringify(run));
} else {
  console.log(JSON.stringify(await engine.recover()));
}
db.close();
