/** What is installed now, as every kind reports it: a version, or why there is none (never a guess). */

export interface Installed {
  /** Normalized semver, or null when it cannot be read or parsed. */
  version: string | null;
  /** The text as found (tag, file content), when there was one. */
  raw: string | null;
  reason: string | null;
}

/** An installed version that cannot be told, and why. */
export function unknownVersion(reason: string, raw: string | null = null): Installed {
  return { version: null, raw, reason };
}
