/** The `self` kind: the updater itself, in an install root with releases/, current and previous, started by launch. */
import { MAX_RECOVERIES } from '../../../machines/update-machine.js';
import { readVersionFile } from '../../core/version-file.js';
import type { ComponentKind } from '../kind.js';
import { resolveSelf, selfComponentSchema, type SelfComponent } from './config.js';
import { SelfDriver } from './self-driver.js';
import { join } from 'node:path';

export type { SelfComponent };

export const selfKind: ComponentKind<SelfComponent> = {
  kind: 'self',
  configSchema: selfComponentSchema,
  resolve: resolveSelf,
  readInstalled: (c) => readVersionFile(join(c.installRoot, 'current')),
  createDriver: (c, env) => new SelfDriver(c, { dataDir: env.dataDir, githubToken: env.githubToken, host: env.host }),
  // The run restarts the updater on purpose: the hand-over to the new release, and up to three
  // starts of it on trial before launch gives it up, are recoveries on top of the usual budget.
  maxRecoveries: MAX_RECOVERIES + 4,
};
