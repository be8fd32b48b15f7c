/** Builds the driver of each configured component: shared release discovery plus the work of its kind. */
import type { Logger } from 'pino';
import { UpdateError, type Driver } from '../engine/driver.js';
import type { ComponentConfig, Config } from '../config/index.js';
import type { ReleaseDiscovery } from '../releases/discovery.js';
import { readAppVersion, readComposeVersion, type Installed } from '../releases/installed.js';
import { ComponentDriver, type KindDriver } from './component-driver.js';
import { ContainerDriver } from './container/container-driver.js';
import { DockerEngine } from './container/engine-api.js';
import { AppDriver } from './app/app-driver.js';

export function readInstalled(component: ComponentConfig): Installed {
  return component.kind === 'container' ? readComposeVersion(component.composeFile, component.service) : readAppVersion(component.installPath);
}

export interface Drivers {
  driverFor: (component: { name: string }) => Driver;
  /** Whether a component's service runs now (null when it cannot be told). */
  running: (component: ComponentConfig) => Promise<boolean | null>;
}

export function createDrivers(config: Pick<Config, 'components' | 'backupDir' | 'backupRetention' | 'dataDir' | 'github'>, discovery: ReleaseDiscovery, _logger: Logger): Drivers {
  let docker: DockerEngine | null = null;
  const kinds = new Map<string, KindDriver & { running?: () => Promise<boolean | null> }>();
  for (const c of config.components) {
    if (c.kind === 'container') {
      docker ??= new DockerEngine();
      kinds.set(c.name, new ContainerDriver(c, { backupDir: config.backupDir, backupRetention: config.backupRetention }, docker));
    } else {
      kinds.set(c.name, new AppDriver(c, { backupDir: config.backupDir, backupRetention: config.backupRetention, dataDir: config.dataDir, githubToken: config.github.token }));
    }
  }
  const drivers = new Map<string, Driver>(config.components.map((c) => [c.name, new ComponentDriver(c, kinds.get(c.name)!, discovery)]));
  return {
    driverFor: (component) => {
      const driver = drivers.get(component.name);
      if (!driver) throw new UpdateError('not_found', `no driver for component "${component.name}"`);
      return driver;
    },
    running: async (component) => (await kinds.get(component.name)?.running?.()) ?? null,
  };
}
