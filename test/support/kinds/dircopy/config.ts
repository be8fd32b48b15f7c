/** The configuration of a `dircopy` component: a directory kept equal to a release's tree in a local folder. */
import { z } from 'zod';
import { healthSchema, nonEmpty } from '../../../../src/config/schema.js';
import { componentSchema, type PathResolver } from '../../../../src/kinds/kind.js';

export const dircopyComponentSchema = componentSchema('dircopy', {
  releasesDir: nonEmpty('a path').meta({ description: 'Holds one folder per release, named by its version (`1.2.0/`).' }),
  target: nonEmpty('a path').meta({ description: 'The directory kept equal to the installed release; holds `VERSION`.' }),
  health: healthSchema.optional(),
}).meta({ description: 'A directory copied from a release folder on this machine (a kind registered by a test).' });

export type DircopyComponent = z.output<typeof dircopyComponentSchema>;

export function resolveDircopy(parsed: DircopyComponent, path: PathResolver): DircopyComponent {
  return { ...parsed, releasesDir: path('releasesDir', parsed.releasesDir), target: path('target', parsed.target) };
}
