/**
 * Maps a configured component to the driver of its kind. Container and app drivers come with
 * their own issues; until then a run of such a component aborts in discover, saying so.
 */
import type { Logger } from 'pino';
import { UpdateError, type Driver } from '../engine/driver.js';
import type { ComponentConfig, Config } from '../config/index.js';

class NotYetSupported implements Driver {
  constructor(private readonly kind: string) {}
  private fail(): never {
    throw new UpdateError('unsupported', `updating ${this.kind} components is not available in this build yet`);
  }
  async discover(): Promise<never> {
    this.fail();
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

export function createDriverFor(_config: Config, _logger: Logger): (component: { name: string; kind: string }) => Driver {
  const cache = new Map<string, Driver>();
  return (component) => {
    let driver = cache.get(component.name);
    if (!driver) {
      driver = new NotYetSupported((component as ComponentConfig).kind);
      cache.set(component.name, driver);
    }
    return driver;
  };
}
