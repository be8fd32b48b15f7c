/** What the updater knows about a GitHub release, and how fetching one can fail. */

export interface ReleaseAsset {
  name: string;
  /** `browser_download_url`: where the file itself is downloaded. */
  url: string;
  /** The asset's API url (`Accept: application/octet-stream` downloads it, also for private repos). */
  apiUrl: string;
  size: number;
  contentType: string | null;
}

export interface Release {
  tag: string;
  name: string | null;
  notes: string;
  /** `html_url`: the release page, for people. */
  url: string;
  draft: boolean;
  prerelease: boolean;
  publishedAt: string | null;
  assets: ReleaseAsset[];
}

export type ReleaseErrorCode = 'rate_limited' | 'unreachable' | 'not_found' | 'bad_response' | 'unauthorized';

export class ReleaseError extends Error {
  constructor(
    readonly code: ReleaseErrorCode,
    message: string,
    /** `until`: ISO time a rate limit ends; `status`: the HTTP status that decided it. */
    readonly details: { until?: string; status?: number } = {},
  ) {
    super(message);
    this.name = 'ReleaseError';
  }
}

/**
 * A result and how fresh it is. `stale` is true when GitHub could not be asked and the
 * value is the last answer kept in the cache; `reason` then says why, for the user.
 */
export interface Fetched<T> {
  value: T;
  stale: boolean;
  reason: string | null;
  /** ISO time GitHub last confirmed this value (a 200 or a 304). */
  fetchedAt: string;
}
