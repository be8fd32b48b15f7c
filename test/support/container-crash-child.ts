/**
 * A real updater process for the container crash matrix: `container-crash-child.ts start
 * VERSION | recover`, with the world in CRASH_WORLD (JSON: dir, composeFile, backupDir, port,
 * apiUrl, rawUrl, dockerHost). UPDATER_FAULT makes it SIGKILL itself at that point.
 */
import type { ContainerComponent } from '../../src/kinds/container/index.js';
import { FaultPoints } from '../../src/engine/faults.js';
import { createCore } from '../../src/main.js';
import { testConfig, testLogger } from './harness.js';

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
const component = {
  name: 'sample',
  kind: 'container',
  repo: 'o/sample',
  composeFile: world.composeFile,
  service: 'sample',
  health: { url: `http://127.0.0.1:${world.port}/health`, timeoutSeconds: world.healthTimeoutSeconds },
  minFreeMB: 1,
} as ContainerComponent;
const core = createCore({
  config: testConfig({ dataDir: world.dir, backupDir: world.backupDir, github: { apiUrl: world.apiUrl, rawUrl: world.rawUrl, token: null }, components: [component] }),
  faults: new FaultPoints(process.env.UPDATER_FAULT),
  logger: testLogger(),
});
if (action === 'start') {
  const { runId } = await core.app.commands.startRun('sample', { version: version ?? null });
  console.log(JSON.stringify(await core.app.queries.runEnded(runId)));
} else {
  console.log(JSON.stringify(await core.recover()));
}
await core.close();
