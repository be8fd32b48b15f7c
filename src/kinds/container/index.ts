/** The `container` kind: a service of a docker compose file, versioned by its image tag. */
import type { ComponentKind } from '../kind.js';
import { containerComponentSchema, resolveContainer, type ContainerComponent } from './config.js';
import { ContainerDriver } from './container-driver.js';
import { DockerEngine } from './engine-api.js';
import { readComposeVersion } from './installed.js';

export type { ContainerComponent };

export const containerKind: ComponentKind<ContainerComponent> = {
  kind: 'container',
  configSchema: containerComponentSchema,
  resolve: resolveContainer,
  readInstalled: (c) => readComposeVersion(c.composeFile, c.service),
  // One connection to the Docker engine for every container component.
  createDriver: (c, env) => new ContainerDriver(c, { backupDir: env.backupDir, backupRetention: env.backupRetention }, env.shared('docker', () => new DockerEngine())),
};
