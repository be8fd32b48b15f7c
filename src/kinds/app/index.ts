/** The `app` kind: a directory installed from a release tarball and run by systemd or user commands. */
import { announcing, createServiceManager } from '../../services/service-manager.js';
import type { ComponentKind } from '../kind.js';
import { AppDriver } from './app-driver.js';
import { appComponentSchema, resolveApp, type AppComponent, type AppComponentInput } from './config.js';
import { readVersionFile } from '../../core/version-file.js';

export type { AppComponent };

export const appKind: ComponentKind<AppComponent, AppComponentInput> = {
  kind: 'app',
  configSchema: appComponentSchema,
  resolve: resolveApp,
  readInstalled: (c) => readVersionFile(c.installPath),
  createDriver: (c, env) =>
    new AppDriver(
      c,
      { backupDir: env.backupDir, backupRetention: env.backupRetention, dataDir: env.dataDir, githubToken: env.githubToken },
      // The service changes under the driver's own start and stop: readers ask again.
      announcing(createServiceManager(c.service), env.serviceChanged),
    ),
};
