/**
 * Builds the driver of each configured component: shared release discovery plus the work of its
 * kind. Container and app work come with their own issues; until then their runs stop in
 * validate, saying so, with nothing changed.
 */
import type { Logger } from 'pino';
import { UpdateError, type Driver } from '../engine/driver.js';
import type { ComponentConfig } from '../config/index.js';
import type { ReleaseDiscovery } from '../releases/discovery.js';
import { readAppVersion, readComposeVersion, type Installed } from '../releases/installed.js';
import { ComponentDriver, type KindDriver } from './component-driver.js';

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

export function createDriverFor(components: ComponentConfig[], discovery: ReleaseDiscovery, _logger: Logger): (component: { name: string }) => Driver {
  const drivers = new Map<string, Driver>(components.map((c) => [c.name, new ComponentDriver(c, new NotYetSupported(c), discovery)]));
  return (component) => {
    const driver = drivers.get(component.name);
    if (!driver) throw new UpdateError('not_found', `no driver for component "${component.name}"`);
    return driver;
  };
}
