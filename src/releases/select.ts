/**
 * Which release is "the latest": the highest semver among the offered releases, not the newest
 * by date. Drafts are never offered; prereleases (flagged by GitHub or by a `-pre` part in the
 * tag) only with `includePrerelease`. Tags that are not versions are passed over.
 */
import type { Release } from './types.js';
import { isPrerelease, newestFirst, parseVersion } from '../core/versions.js';

export interface Candidate {
  release: Release;
  /** Normalized semver of the tag. */
  version: string;
}

export function offered(releases: Release[], includePrerelease: boolean): Candidate[] {
  const out: Candidate[] = [];
  for (const release of releases) {
    if (release.draft) continue;
    const version = parseVersion(release.tag);
    if (!version) continue;
    if (!includePrerelease && (release.prerelease || isPrerelease(version))) continue;
    out.push({ release, version });
  }
  return newestFirst(out, (c) => c.version);
}

export function pickLatest(releases: Release[], includePrerelease: boolean): Candidate | null {
  return offered(releases, includePrerelease)[0] ?? null;
}
