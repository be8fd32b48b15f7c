/**
 * Builds the driver of each configured component: shared release discovery plus the work of
 * its kind. App work comes with its own issue; until then an app's run stops in validate,
 * saying so, with nothing changed.
 */
import type { Logger } from 'pino';
import { UpdateError, type Driver } from '../engine/driver.js';
import type { ComponentConfig, Config } from '../config/index.js';
import type { ReleaseDiscovery } from '../releases/discovery.js';
import { readAppVersion, readComposeVersion, type Installed } from '../releases/installed.js';
import { ComponentDriver, type KindDriver } from './component-driver.js';
import { ContainerDriver } from './container/container-driver.js';
import { DockerEngine } from './container/engine-api.js';

export function readInstalled(component: ComponentConfig): Installed {
  return component.kind === 'container' ? readComposeVersion(component.composeFile, component.service) : readAppVersion(component.installPath);
}

class NotYetSupported implements KindDriver {
  constructor(private readonly component: ComponentConfig) {}
  installed(): Installed {
    return readInstalled(this.component);
  }
  private fail(): never {
    throw new UpdateError('unsupported', `updating ${this.component.kind} components is not available in this build yet`);
  }
  async validate(): Promise<never> {
    this.fail();
  }
  async backup(): Promise<never> {
    this.fail();
  }
  async apply(): Promise<never> {
    this.fail();
  }
  async verify(): Promise<never> {
    this.fail();
  }
  async rollback(): Promise<never> {
    this.fail();
  }
}

export interface Drivers {
  driverFor: (component: { name: string }) => Driver;
  /** Whether a component's service runs now (null when it cannot be told). */
  running: (component: ComponentConfig) => Promise<boolean | null>;
}

export function createDrivers(config: Pick<Config, 'components' | 'backupDir' | 'backupRetention'>, discovery: ReleaseDiscovery, _logger: Logger): Drivers {
  let docker: DockerEngine | null = null;
  const kinds = new Map<string, KindDriver & { running?: () => Promise<boolean | null> }>();
  for (const c of config.components) {
    if (c.kind === 'container') {
      docker ??= new DockerEngine();
      kinds.set(c.name, new ContainerDriver(c, { backupDir: config.backupDir, backupRetention: config.backupRetention }, docker));
    } else {
      kinds.set(c.name, new NotYetSupported(c));
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
