/**
 * The version rules (CONTRACT.md "Versions"): a leading `v` is ignored, a missing minor or
 * patch is zero (`1.2` = `1.2.0`), build metadata does not order, a prerelease is older than
 * its release, anything else is not a version. Comparison is semver's.
 */
import semver from 'semver';

const VERSION = /^[vV]?(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?(?:\.(0|[1-9]\d*))?(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$/;

/** The normalized semver string of a tag or version text, or null when it is not a version. */
export function parseVersion(text: string | null | undefined): string | null {
  if (typeof text !== 'string') return null;
  const m = VERSION.exec(text.trim());
  if (!m) return null;
  const [, major, minor = '0', patch = '0', pre, build] = m;
  const v = `${major}.${minor}.${patch}${pre ? `-${pre}` : ''}${build ? `+${build}` : ''}`;
  return semver.valid(v);
}

/** -1, 0 or 1; build metadata is ignored. Both must be valid (see parseVersion). */
export function compareVersions(a: string, b: string): number {
  return semver.compare(a, b);
}

/** `items` sorted by their versions (valid, see parseVersion), highest first; each version is parsed once. */
export function newestFirst<T>(items: readonly T[], versionOf: (item: T) => string): T[] {
  const keyed = items.map((item) => ({ item, v: new semver.SemVer(versionOf(item)) }));
  return keyed.sort((a, b) => b.v.compare(a.v)).map((k) => k.item);
}

export function isPrerelease(version: string): boolean {
  return semver.prerelease(version) !== null;
}

export interface UpdateDecision {
  updateAvailable: boolean;
  /** Why no update is offered when it cannot be decided (unknown installed version...). */
  reason: string | null;
}

/** Whether `latest` is an update over `installed`. Unknown on either side never offers one. */
export function decideUpdate(installed: string | null, latest: string | null, installedReason: string | null = null): UpdateDecision {
  if (!installed) return { updateAvailable: false, reason: installedReason ?? 'the installed version is unknown' };
  if (!latest) return { updateAvailable: false, reason: 'no release offers a version' };
  return { updateAvailable: compareVersions(latest, installed) > 0, reason: null };
}

/** Strips a leading v for display and for the `version` fields of the API. */
export function plainVersion(text: string): string {
  return text.trim().replace(/^[vV](?=\d)/, '');
}
