/**
 * Builds the engine's driver of each configured component from the kinds it is given (the
 * registry, src/kinds/index.ts, unless a caller passes its own list): the shared release work
 * (discover, manifest) around the work of the component's kind, and a cached `running` probe for
 * readers. A component of a kind not in the list is an error naming the known kinds.
 */
import type { Logger } from 'pino';
import type { Component } from '../core/component.js';
import { UpdateError } from '../core/errors.js';
import type { Driver } from '../core/driver.js';
import type { Config } from '../config/schema.js';
import { standaloneHost, type UpdaterHost } from '../core/host.js';
import { UPDATER_VERSION } from '../version.js';
import { join } from 'node:path';
import { kindOf, type Kinds } from '../kinds/index.js';
import type { KindDriver, KindEnv } from '../kinds/kind.js';
import type { ReleaseDiscovery } from '../releases/discovery.js';
import { ComponentDriver } from './component-driver.js';
import { RunningCache, type RunningCacheOptions } from './running-cache.js';

export interface Drivers {
  driverFor: (component: { name: string }) => Driver;
  /**
   * Whether a component's service runs now (null when it cannot be told), for readers: at most one
   * status probe per component per 2 s, shared by concurrent callers (see running-cache.ts).
   */
  running: (component: Pick<Component, 'name'>) => Promise<boolean | null>;
}

/**
 * The engine's driver of a component, calling `changed` as each step that can change the service
 * (apply, verify, rollback) begins and ends, and when the run has ended (finalize): a container is
 * recreated by compose, not through a service manager, and a run's end is when readers look again.
 */
function announcingSteps(driver: ComponentDriver, changed: () => void): Driver {
  const around = async <T>(work: () => Promise<T>): Promise<T> => {
    changed();
    try {
      return await work();
    } finally {
      changed();
    }
  };
  return {
    discover: (run, ctx) => driver.discover(run, ctx),
    validate: (run, ctx) => driver.validate(run, ctx),
    backup: (run, ctx) => driver.backup(run, ctx),
    apply: (run, ctx) => around(() => driver.apply(run, ctx)),
    verify: (run, ctx) => around(() => driver.verify(run, ctx)),
    rollback: (run, ctx) => around(() => driver.rollback(run, ctx)),
    finalize: (run, outcome, log) => around(() => driver.finalize(run, outcome, log)),
    planRestore: (component, log) => driver.planRestore(component, log),
    sweep: (settled, log) => driver.sweep(settled, log),
  };
}

export function createDrivers(
  config: Pick<Config<Component>, 'components' | 'backupDir' | 'backupRetention' | 'dataDir' | 'github'>,
  kinds: Kinds,
  discovery: ReleaseDiscovery,
  logger: Logger,
  options: { running?: RunningCacheOptions; host?: UpdaterHost } = {},
): Drivers {
  // The process as the `self` kind sees it; without one (tests, tools), a host with no server and no restart.
  const host = options.host ?? standaloneHost(UPDATER_VERSION, join(config.dataDir, 'updater.db'));
  const shared = new Map<string, unknown>();
  const work = new Map<string, KindDriver>();
  const cache = new RunningCache(async (name) => (await work.get(name)?.running?.()) ?? null, options.running);
  const drivers = new Map<string, Driver>();
  for (const c of config.components) {
    const kind = kindOf(c, kinds);
    const env: KindEnv = {
      backupDir: config.backupDir,
      backupRetention: config.backupRetention,
      dataDir: config.dataDir,
      githubToken: config.github.token,
      logger: logger.child({ component: c.name }),
      shared: <T>(key: string, create: () => T): T => {
        if (!shared.has(key)) shared.set(key, create());
        return shared.get(key) as T;
      },
      serviceChanged: () => cache.forget(c.name),
      host,
    };
    const driver = kind.createDriver(c, env);
    work.set(c.name, driver);
    drivers.set(c.name, announcingSteps(new ComponentDriver(c, driver, discovery), () => cache.forget(c.name)));
  }
  return {
    driverFor: (component) => {
      const driver = drivers.get(component.name);
      if (!driver) throw new UpdateError('not_found', `no driver for component "${component.name}"`);
      return driver;
    },
    running: (component) => cache.get(component.name),
  };
}
