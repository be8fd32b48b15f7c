/**
 * A real updater process for the app crash matrix: `app-crash-child.ts start VERSION | recover`,
 * with CRASH_WORLD (JSON: the component, dirs, fake GitHub URLs, DOCKER_HOST).
 */
import type { AppComponent } from '../../src/kinds/app/index.js';
import { FaultPoints } from '../../src/engine/faults.js';
import { createCore } from '../../src/main.js';
import { testConfig, testLogger } from './harness.js';

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
const core = createCore({
  config: testConfig({ dataDir: world.dataDir, backupDir: world.backupDir, github: { apiUrl: world.apiUrl, rawUrl: world.rawUrl, token: null }, components: [world.component] }),
  faults: new FaultPoints(process.env.UPDATER_FAULT),
  logger: testLogger(),
});
if (action === 'start') {
  const { runId } = await core.app.commands.startRun(world.component.name, { version: version ?? null });
  await core.app.queries.runEnded(runId);
} else {
  await core.recover();
}
await core.close();
