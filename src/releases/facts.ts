/**
 * What a run keeps of its release in context, from discover on (journaled at every transition:
 * kept small). Written by discovery, read back by the kinds through `releaseOf`, which checks it.
 */
import { z } from 'zod';
import type { UpdateContext } from '../../machines/update-machine.js';
import { UpdateError } from '../core/errors.js';
import { readRecord } from '../core/records.js';
import { plainVersion } from '../core/versions.js';

const releaseFactsSchema = z.object({
  tag: z.string().min(1),
  url: z.string(),
  assets: z.array(z.object({ name: z.string(), url: z.string(), size: z.number() })),
});

export type ReleaseFacts = z.output<typeof releaseFactsSchema>;

/** The run's release, as discover recorded it. */
export function releaseOf(run: UpdateContext): ReleaseFacts {
  if (!run.release) throw new UpdateError('internal', 'the run has no resolved release (discover did not record one)');
  return readRecord(releaseFactsSchema, run.release, `the release recorded by run ${run.runId}`);
}

/**
 * The release asset named by `template` (`{version}` replaced by the run's target), and its
 * published `<asset>.sha256` when there is one; `asset_missing` naming what the release offers.
 */
export function releaseAsset(run: UpdateContext, template: string, repo: string) {
  const release = releaseOf(run);
  const name = template.replaceAll('{version}', plainVersion(run.toVersion!));
  const asset = release.assets.find((a) => a.name === name);
  if (!asset) {
    const offered = release.assets.map((a) => a.name).join(', ') || 'none';
    throw new UpdateError('asset_missing', `release ${release.tag} of ${repo} has no asset ${name} (it has: ${offered})`);
  }
  const checksum = release.assets.find((a) => a.name === `${name}.sha256`) ?? null;
  return { asset, checksum, release };
}
