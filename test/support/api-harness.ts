/** The HTTP app (fastify: REST, /ws, /metrics) over a real core with the test kind `dir` (harness.ts). */
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/server/app.js';
import type { ComponentConfig } from '../../src/config/index.js';
import type { AppDeps } from '../../src/server/deps.js';
import { cleanup, openHarness, seedRoot, stubSource, tempDir, testLogger, type Harness } from './harness.js';

export { stubSource };

export interface ApiWorld {
  root: string;
  h: Harness;
  app: FastifyInstance;
  component: ComponentConfig;
  close(): Promise<void>;
}

export async function apiWorld(options: { token?: string | null; stepDelayMs?: number; ws?: AppDeps['ws'] } = {}): Promise<ApiWorld> {
  const root = tempDir('updater-api-');
  seedRoot(root);
  const h = openHarness(root, { stepDelayMs: options.stepDelayMs ?? 0 });
  const app = await buildApp({ application: h.core.app, token: options.token ?? null, logger: testLogger(), ws: options.ws });
  return {
    root,
    h,
    app,
    component: h.core.config.components[0]!,
    async close() {
      await h.core.close([app.close()]);
      cleanup(root);
    },
  };
}
