/** Builds the driver of each configured component: shared release discovery plus the work of its kind. */
import type { Logger } from 'pino';
import { UpdateError } from '../core/errors.js';
import type { Driver } from '../core/driver.js';
import type { ComponentConfig, Config } from '../config/index.js';
import type { ReleaseDiscovery } from '../releases/discovery.js';
import { readAppVersion, readComposeVersion } from '../releases/installed.js';
import type { Installed } from '../core/installed.js';
import { createServiceManager, type ServiceManager } from '../services/service-manager.js';
import { ComponentDriver } from './component-driver.js';
import type { KindDriver } from '../kinds/kind.js';
import { ContainerDriver } from '../kinds/container/container-driver.js';
import { DockerEngine } from '../kinds/container/engine-api.js';
import { AppDriver } from '../kinds/app/app-driver.js';
import { RunningCache, type RunningCacheOptions } from './running-cache.js';

export function readInstalled(component: ComponentConfig): Installed {
  return component.kind === 'container' ? readComposeVersion(component.composeFile, component.service) : readAppVersion(component.installPath);
}

export interface Drivers {
  driverFor: (component: { name: string }) => Driver;
  /**
   * Whether a component's service runs now (null when it cannot be told), for readers: at most one
   * status probe per component per 2 s, shared by concurrent callers (see running-cache.ts).
   */
  running: (component: ComponentConfig) => Promise<boolean | null>;
}

/** A service manager that says when the updater itself starts or stops the service (before and after). */
function announcing(manager: ServiceManager, changed: () => void): ServiceManager {
  const around = async (work: () => Promise<void>) => {
    changed();
    try {
      await work();
    } finally {
      changed();
    }
  };
  return {
    description: manager.description,
    exists: (signal) => manager.exists(signal),
    status: (signal) => manager.status(signal),
    start: (signal) => around(() => manager.start(signal)),
    stop: (signal) => around(() => manager.stop(signal)),
  };
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
  config: Pick<Config, 'components' | 'backupDir' | 'backupRetention' | 'dataDir' | 'github'>,
  discovery: ReleaseDiscovery,
  _logger: Logger,
  options: { running?: RunningCacheOptions } = {},
): Drivers {
  let docker: DockerEngine | null = null;
  const kinds = new Map<string, KindDriver & { running?: () => Promise<boolean | null> }>();
  const cache = new RunningCache(async (name) => (await kinds.get(name)?.running?.()) ?? null, options.running);
  for (const c of config.components) {
    const forget = () => cache.forget(c.name);
    if (c.kind === 'container') {
      docker ??= new DockerEngine();
      kinds.set(c.name, new ContainerDriver(c, { backupDir: config.backupDir, backupRetention: config.backupRetention }, docker));
    } else {
      const settings = { backupDir: config.backupDir, backupRetention: config.backupRetention, dataDir: config.dataDir, githubToken: config.github.token };
      kinds.set(c.name, new AppDriver(c, settings, announcing(createServiceManager(c.service), forget)));
    }
  }
  const drivers = new Map<string, Driver>(config.components.map((c) => [c.name, announcingSteps(new ComponentDriver(c, kinds.get(c.name)!, discovery), () => cache.forget(c.name))]));
  return {
    driverFor: (component) => {
      const driver = drivers.get(component.name);
      if (!driver) throw new UpdateError('not_found', `no driver for component "${component.name}"`);
      return driver;
    },
    running: (component) => cache.get(component.name),
  };
}
