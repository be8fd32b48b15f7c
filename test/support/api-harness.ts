/** A real app (fastify) over a real engine and SQLite file, with the DirDriver component `dir`. */
import { join } from 'node:path';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/server/app.js';
import { UpdateChecker } from '../../src/releases/checker.js';
import type { ReleaseSource } from '../../src/releases/discovery.js';
import type { ComponentConfig } from '../../src/config/index.js';
import { readVersionFile } from '../../src/core/version-file.js';
import { cleanup, openHarness, seedRoot, tempDir, type Harness } from './harness.js';

export interface ApiWorld {
  root: string;
  h: Harness;
  app: FastifyInstance;
  component: ComponentConfig;
  close(): Promise<void>;
}

/** Offers 1.1.0 and 1.2.0 for `o/dir` without any network. */
export const stubSource: ReleaseSource = {
  async listReleases() {
    const rel = (tag: string) => ({ tag, name: tag, notes: `notes ${tag}`, url: `https://example.invalid/o/dir/releases/tag/${tag}`, draft: false, prerelease: false, publishedAt: null, assets: [] });
    return { value: [rel('v1.2.0'), rel('v1.1.0')], stale: false, reason: null, fetchedAt: new Date().toISOString() };
  },
  async releaseByVersion() {
    return null;
  },
  async fetchRaw() {
    return null;
  },
};

export async function apiWorld(options: { token?: string | null; stepDelayMs?: number; ws?: { pingIntervalMs?: number; maxBufferedBytes?: number } } = {}): Promise<ApiWorld> {
  const root = tempDir('updater-api-');
  seedRoot(root);
  const h = openHarness(root, { stepDelayMs: options.stepDelayMs ?? 0 });
  const component = {
    name: 'dir',
    kind: 'app',
    repo: 'o/dir',
    installPath: join(root, 'live'),
    asset: 'dir-{version}.tar.gz',
    service: { manager: 'command', start: 'true', stop: 'true', status: 'true' },
    minFreeMB: 0,
  } as unknown as ComponentConfig;
  const logger = pino({ level: process.env.TEST_LOG ?? 'silent' });
  const checker = new UpdateChecker({
    config: { components: [component], includePrerelease: false, checkIntervalHours: 0 },
    store: h.journal.components,
    source: stubSource,
    readInstalled: (c) => readVersionFile((c as unknown as { installPath: string }).installPath),
    logger,
  });
  const app = await buildApp({ engine: h.engine, journal: h.journal, checker, components: [component], token: options.token ?? null, logger, ws: options.ws });
  return {
    root,
    h,
    app,
    component,
    async close() {
      await app.close();
      h.close();
      cleanup(root);
    },
  };
}
