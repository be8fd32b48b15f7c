/**
 * `dircopy`: a third component kind, registered by tests only, through the registry like the
 * built-in ones: `loadConfig(opts, {kinds: [...KINDS, dircopyKind]})`, `createDrivers(config,
 * [...KINDS, dircopyKind], …)`. Its releases are listed by GitHub (or the local stand-in) like any
 * kind's; their trees are folders on this machine (`releasesDir/<version>/`).
 */
import type { ComponentKind } from '../../../../src/kinds/kind.js';
import { readVersionFile } from '../../../../src/core/version-file.js';
import { dircopyComponentSchema, resolveDircopy, type DircopyComponent } from './config.js';
import { DircopyDriver } from './driver.js';

export type { DircopyComponent };

export const dircopyKind: ComponentKind<DircopyComponent> = {
  kind: 'dircopy',
  configSchema: dircopyComponentSchema,
  resolve: resolveDircopy,
  readInstalled: (c) => readVersionFile(c.target),
  createDriver: (c, env) => new DircopyDriver(c, env),
};
