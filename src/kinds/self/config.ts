/** The configuration of the `self` component: the updater itself, installed in an install root by its release tarball. */
import { z } from 'zod';
import { nonEmpty } from '../../config/schema.js';
import { componentSchema, type PathResolver } from '../kind.js';

export const selfComponentSchema = componentSchema('self', {
  installRoot: nonEmpty('a path').meta({
    description: 'The install root the updater runs from: `launch`, `releases/<version>/`, `current` and `previous` (docs/self-update.md). The installed version is `<installRoot>/current/VERSION`.',
  }),
  asset: nonEmpty('a file name')
    .default('dune-updater-{version}.tar.gz')
    .meta({ description: 'Release asset name; `{version}` is replaced. Its `<asset>.sha256` must be published beside it: the updater installs itself only from a checked release.' }),
  minFreeMB: z
    .number()
    .min(0, { error: 'expected a number >= 0' })
    .default(200)
    .meta({ description: 'Free disk (MB) validate requires under installRoot, at least, besides room for the new release.' }),
  maxDownloadMB: z
    .number()
    .positive({ error: 'expected a number > 0' })
    .default(256)
    .meta({ description: 'Largest release asset of the updater it will download.' }),
}).meta({ description: 'The updater itself (one per configuration): a new release is installed beside the running one and started by `launch`, on trial until it has verified itself.' });

/** The `self` component; `installRoot` is absolute. */
export type SelfComponent = z.output<typeof selfComponentSchema>;

export function resolveSelf(parsed: SelfComponent, path: PathResolver): SelfComponent {
  return { ...parsed, installRoot: path('installRoot', parsed.installRoot) };
}
