/** The configuration of a `container` component: a service of a docker compose file. */
import { z } from 'zod';
import { healthSchema, nonEmpty } from '../../config/schema.js';
import { componentSchema, type PathResolver } from '../kind.js';

export const containerComponentSchema = componentSchema('container', {
  composeFile: nonEmpty('a path').meta({ description: 'The docker compose file that pins the image tag.' }),
  service: nonEmpty('a compose service name').meta({ description: 'The service in the compose file.' }),
  health: healthSchema.optional(),
  minFreeMB: z
    .number()
    .min(0, { error: 'expected a number >= 0' })
    .default(500)
    .meta({ description: 'Free disk (MB) validate requires where the engine keeps images; backupDir is checked for the compose file copy too.' }),
}).meta({ description: 'A service of a docker compose file; its version is the image tag.' });

/** A container component; `composeFile` is absolute. */
export type ContainerComponent = z.output<typeof containerComponentSchema>;

export function resolveContainer(parsed: ContainerComponent, path: PathResolver): ContainerComponent {
  return { ...parsed, composeFile: path('composeFile', parsed.composeFile) };
}
