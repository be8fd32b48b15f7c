/**
 * Reading releases and raw files from GitHub's REST API, over a network we do not trust:
 * every answer is size-capped and shape-checked before it is used or cached; API answers
 * are cached by URL in `http_cache` and revalidated with `If-None-Match`; a rate limit
 * stops all API requests of this client until it ends; 5xx, network errors and timeouts
 * are retried a bounded number of times; and when GitHub cannot be asked, the last good
 * answer is returned marked stale, or the failure is explained in a sentence.
 */
import got, { RequestError, TimeoutError } from 'got';
import { setTimeout as sleep } from 'node:timers/promises';
import type { IncomingHttpHeaders } from 'node:http';
import { pino, type Logger } from 'pino';
import { validEtag, type CachedAnswer, type HttpCacheTable } from '../journal/http-cache.js';
import { REPO_PATTERN } from '../config/schema.js';
import { ReleaseError, type Fetched, type Release, type ReleaseAsset } from './types.js';

export interface GitHubClientOptions {
  apiUrl: string;
  rawUrl: string;
  token: string | null;
  /** Where answers are kept for conditional requests (the journal's `httpCache`). */
  cache: HttpCacheTable;
  logger?: Logger;
  /** Bound on one attempt, from connecting to the last byte. Default 10 000. */
  timeoutMs?: number;
  /** Extra attempts after a 5xx, a network error or a timeout. Default 2. */
  retries?: number;
  /** First backoff between attempts; doubled each time, jittered. Default 200. */
  backoffMs?: number;
  now?: () => number;
}

const MAX_PAGES = 3;
const API_BODY_CAP = 10 * 1024 * 1024;
const RAW_BODY_CAP = 1024 * 1024;
/** Without a usable reset time, and as a floor: GitHub asks to wait at least a minute. */
const DEFAULT_BLOCK_MS = 60_000;
/** GitHub's windows are an hour at most; a later reset is a broken header or a wrong clock. */
const MAX_BLOCK_MS = 60 * 60_000;

// ---------------------------------------------------------------------------------------
// Mapping GitHub's JSON to Release. Fields that decide anything are checked; a release
// without a usable tag makes the whole answer bad, an unusable asset is left out.

type JsonObject = Record<string, unknown>;

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);
// eslint-disable-next-line no-control-regex -- control characters are what it looks for
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

function isHttpUrl(v: unknown): v is string {
  if (typeof v !== 'string') return false;
  try {
    const { protocol } = new URL(v);
    return protocol === 'https:' || protocol === 'http:';
  } catch {
    return false;
  }
}

function isTag(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= 255 && !CONTROL_CHARS.test(v);
}

/** An asset name is used as a file name: no separators, no `.`/`..`, no control characters. */
function isFileName(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= 255 && v !== '.' && v !== '..' && !/[/\\]/.test(v) && !CONTROL_CHARS.test(v);
}

function mapAsset(raw: unknown): ReleaseAsset | null {
  if (!isObject(raw)) return null;
  const { name, browser_download_url: url, url: apiUrl, size, content_type: contentType } = raw;
  if (!isFileName(name) || !isHttpUrl(url) || !isHttpUrl(apiUrl)) return null;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) return null;
  return { name, url, apiUrl, size, contentType: typeof contentType === 'string' ? contentType : null };
}

/** One release object; `warn` hears about assets left out. Throws bad_response without a usable tag. */
export function mapRelease(raw: unknown, warn: (message: string) => void = () => {}): Release {
  if (!isObject(raw) || !isTag(raw.tag_name)) {
    throw new ReleaseError('bad_response', 'GitHub sent a release without a usable tag_name');
  }
  const rawAssets = Array.isArray(raw.assets) ? raw.assets : [];
  const assets = rawAssets.map(mapAsset).filter((a): a is ReleaseAsset => a !== null);
  if (assets.length < rawAssets.length) {
    warn(`release ${raw.tag_name}: left out ${rawAssets.length - assets.length} asset(s) without a usable name, url or size`);
  }
  const published = raw.published_at;
  return {
    tag: raw.tag_name,
    name: typeof raw.name === 'string' ? raw.name : null,
    notes: typeof raw.body === 'string' ? raw.body : '',
    url: isHttpUrl(raw.html_url) ? raw.html_url : '',
    draft: raw.draft === true,
    prerelease: raw.prerelease === true,
    publishedAt: typeof published === 'string' && !Number.isNaN(Date.parse(published)) ? published : null,
    assets,
  };
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new ReleaseError('bad_response', `GitHub sent ${what} that is not JSON`);
  }
}

export function parseReleaseList(text: string, warn?: (message: string) => void): Release[] {
  const json = parseJson(text, 'a release list');
  if (!Array.isArray(json)) throw new ReleaseError('bad_response', 'GitHub sent a release list that is not a list');
  return json.map((r) => mapRelease(r, warn));
}

/** The `rel="next"` target of a `Link` header, or null. */
export function nextLink(header: string | null): string | null {
  if (!header) return null;
  for (const part of header.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>(.*)$/s.exec(part);
    if (m && /;\s*rel\s*=\s*"?[^";,]*\bnext\b/i.test(m[2]!)) return m[1]!;
  }
  return null;
}

// ---------------------------------------------------------------------------------------
// Answers already parsed. A 304 says the cached answer still holds; parsing its text again (and
// reading it from the database) was a good part of a warm check's CPU. So the last parsed value of
// each URL is kept with its ETag, up to a bound on the size of the texts they came from, and a 304
// for that ETag returns it as is. The database's cache stays the reference: the stale answers and
// a restart read it.

/** How much answer text (UTF-16 code units) the parsed answers kept may stand for, all URLs together. */
const PARSED_MAX_CHARS = 2 * 1024 * 1024;

interface ParsedAnswer {
  etag: string;
  value: unknown;
  link: string | null;
  chars: number;
}

class ParsedAnswers {
  private readonly byUrl = new Map<string, ParsedAnswer>();
  private chars = 0;

  constructor(private readonly maxChars = PARSED_MAX_CHARS) {}

  get(url: string): ParsedAnswer | undefined {
    const found = this.byUrl.get(url);
    if (found) {
      // Most recently used last: eviction takes the oldest first.
      this.byUrl.delete(url);
      this.byUrl.set(url, found);
    }
    return found;
  }

  set(url: string, answer: ParsedAnswer): void {
    this.delete(url);
    if (answer.chars > this.maxChars) return;
    for (const [oldest, old] of this.byUrl) {
      if (this.chars + answer.chars <= this.maxChars) break;
      this.byUrl.delete(oldest);
      this.chars -= old.chars;
    }
    this.byUrl.set(url, answer);
    this.chars += answer.chars;
  }

  delete(url: string): void {
    const old = this.byUrl.get(url);
    if (!old) return;
    this.byUrl.delete(url);
    this.chars -= old.chars;
  }
}

// ---------------------------------------------------------------------------------------
// The client.

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A checked API answer: the value, its Link header, and, when stale, why GitHub was not asked. */
interface Page<T> {
  value: T;
  link: string | null;
  failure: ReleaseError | null;
}

function header(headers: IncomingHttpHeaders, name: string): string | null {
  const v = headers[name];
  return typeof v === 'string' ? v : Array.isArray(v) ? (v[0] ?? null) : null;
}

function checkRepo(repo: string): void {
  if (!REPO_PATTERN.test(repo)) throw new ReleaseError('not_found', `"${repo}" is not a GitHub repository (expected owner/name)`);
}

/** A ref or path as URL path segments; refuses empty, `.` and `..` segments. */
function encodePath(value: string, what: string): string {
  const segments = value.split('/');
  if (segments.some((s) => s === '' || s === '.' || s === '..' || CONTROL_CHARS.test(s))) {
    throw new ReleaseError('not_found', `"${value}" is not a usable ${what}`);
  }
  return segments.map(encodeURIComponent).join('/');
}

export class GitHubClient {
  private readonly apiUrl: URL;
  private readonly rawUrl: string;
  private readonly token: string | null;
  private readonly cache: HttpCacheTable;
  private readonly log: Logger;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly backoffMs: number;
  private readonly now: () => number;
  /** Epoch ms until which GitHub's API is not asked at all (its limits are per token or IP). */
  private blockedUntil = 0;
  private readonly parsed = new ParsedAnswers();

  constructor(options: GitHubClientOptions) {
    this.apiUrl = new URL(options.apiUrl.replace(/\/+$/, '') + '/');
    this.rawUrl = options.rawUrl.replace(/\/+$/, '');
    const token = options.token?.trim() || null;
    if (token !== null && !/^[\u0021-\u007e]+$/.test(token)) {
      throw new ReleaseError('unauthorized', 'the GitHub token contains characters that cannot be sent in a header');
    }
    this.token = token;
    this.cache = options.cache;
    this.log = options.logger ?? pino({ level: 'silent' });
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.retries = Math.max(0, Math.floor(options.retries ?? 2));
    this.backoffMs = options.backoffMs ?? 200;
    this.now = options.now ?? Date.now;
  }

  /** All releases, drafts included (marked), newest first; at most 3 pages of 100. */
  async listReleases(repo: string): Promise<Fetched<Release[]>> {
    checkRepo(repo);
    const warn = (message: string) => this.log.warn({ repo }, message);
    const pages: Fetched<Page<Release[]>>[] = [];
    let url: string | null = this.api(`repos/${repo}/releases?per_page=100`);
    while (url !== null && pages.length < MAX_PAGES) {
      // Once GitHub could not be asked, the following pages come from the cache too.
      const offline = pages.at(-1)?.value.failure ?? null;
      const page: Fetched<Page<Release[]>> | null = await this.getApi(url, (text) => parseReleaseList(text, warn), offline);
      if (page === null) throw new ReleaseError('not_found', `repository ${repo} not found on GitHub (or no access)`, { status: 404 });
      pages.push(page);
      url = this.nextPage(url, page.value.link);
    }
    if (url !== null) this.log.warn({ repo }, `more than ${MAX_PAGES} pages of releases; older releases are not considered`);
    return mergePages(pages);
  }

  /** The published release with exactly this tag, or null. */
  async releaseByTag(repo: string, tag: string): Promise<Fetched<Release> | null> {
    checkRepo(repo);
    if (!isTag(tag)) return null;
    const url = this.api(`repos/${repo}/releases/tags/${encodeURIComponent(tag)}`);
    const page = await this.getApi(url, (text) => {
      const release = mapRelease(parseJson(text, 'a release'), (message) => this.log.warn({ repo }, message));
      if (release.tag !== tag) throw new ReleaseError('bad_response', `GitHub answered release ${release.tag} when asked for ${tag}`);
      return release;
    });
    return page && { value: page.value.value, stale: page.stale, reason: page.reason, fetchedAt: page.fetchedAt };
  }

  /** The release of a version (given without the leading v): tag `v{version}`, else `{version}`. */
  async releaseByVersion(repo: string, version: string): Promise<Fetched<Release> | null> {
    const bare = version.replace(/^[vV]/, '');
    for (const tag of [`v${bare}`, bare]) {
      const found = await this.releaseByTag(repo, tag);
      if (found) return found;
    }
    return null;
  }

  /** A file of the repository at `ref`, as text; null when missing. Not cached. */
  async fetchRaw(repo: string, ref: string, path: string): Promise<string | null> {
    checkRepo(repo);
    const url = `${this.rawUrl}/${repo}/${encodePath(ref, 'git ref')}/${encodePath(path, 'file path')}`;
    const answer = await this.send(url, { api: false, etag: null, cap: RAW_BODY_CAP });
    if (answer.status === 200) return answer.body;
    if (answer.status === 404) return null;
    throw this.statusError(answer, url);
  }

  // -------------------------------------------------------------------------------------

  private api(path: string): string {
    return new URL(path, this.apiUrl).toString();
  }

  /** Follows a next-page link only within the configured API: the token must not travel elsewhere. */
  private nextPage(current: string, link: string | null): string | null {
    const target = nextLink(link);
    if (target === null) return null;
    let next: URL;
    try {
      next = new URL(target, current);
    } catch {
      throw new ReleaseError('bad_response', 'GitHub sent a next-page link that is not a URL');
    }
    if (next.origin !== this.apiUrl.origin || !next.pathname.startsWith(this.apiUrl.pathname)) {
      throw new ReleaseError('bad_response', `GitHub's next-page link points outside ${this.apiUrl.href}; not following it`);
    }
    return next.toString() === current ? null : next.toString();
  }

  /**
   * One API GET through the cache. 200: checked by `parse`, then cached. 304: the cached
   * answer. 404: null. Unreachable or rate limited: the cached answer marked stale, else
   * the error. `offline` skips the network and falls back as if that error had happened.
   */
  private async getApi<T>(url: string, parse: (body: string) => T, offline: ReleaseError | null = null): Promise<Fetched<Page<T>> | null> {
    // A URL has one meaning (a list, a release), so what was parsed for it is of the type asked for.
    const known = this.parsed.get(url) as (ParsedAnswer & { value: T }) | undefined;
    const cached = known ? null : this.cache.get(url);
    let answer: Answer;
    try {
      if (offline) throw offline;
      answer = await this.send(url, { api: true, etag: known?.etag ?? cached?.etag ?? null, cap: API_BODY_CAP });
    } catch (error) {
      if (error instanceof ReleaseError && (error.code === 'unreachable' || error.code === 'rate_limited')) {
        return this.stale(url, cached ?? this.cache.get(url), parse, error);
      }
      throw error;
    }
    const at = new Date(this.now()).toISOString();
    if (answer.status === 200) {
      const value = parse(answer.body);
      const link = header(answer.headers, 'link');
      const etag = validEtag(answer.headers.etag);
      this.cache.put(url, etag, answer.body, link, at);
      if (etag) this.parsed.set(url, { etag, value, link, chars: answer.body.length });
      else this.parsed.delete(url);
      return { value: { value, link, failure: null }, stale: false, reason: null, fetchedAt: at };
    }
    if (answer.status === 304 && (known || cached)) {
      let value: T;
      let link: string | null;
      if (known) ({ value, link } = known);
      else {
        value = parse(cached!.body);
        link = cached!.link;
        if (cached!.etag) this.parsed.set(url, { etag: cached!.etag, value, link, chars: cached!.body.length });
      }
      this.cache.confirm(url, at);
      return { value: { value, link, failure: null }, stale: false, reason: null, fetchedAt: at };
    }
    if (answer.status === 404) {
      this.cache.delete(url);
      this.parsed.delete(url);
      return null;
    }
    throw this.statusError(answer, url);
  }

  private stale<T>(url: string, cached: CachedAnswer | null, parse: (body: string) => T, error: ReleaseError): Fetched<Page<T>> {
    if (!cached) throw error;
    let value: T;
    try {
      value = parse(cached.body);
    } catch {
      this.cache.delete(url);
      throw error;
    }
    const why = error.code === 'rate_limited' ? `rate limited until ${error.details.until}` : error.message;
    const reason = `${why}, showing the result from ${cached.fetchedAt}`;
    this.log.warn({ url }, reason);
    return { value: { value, link: cached.link, failure: error }, stale: true, reason, fetchedAt: cached.fetchedAt };
  }

  /**
   * GET with bounded retries: 5xx, network errors and timeouts are tried again after a
   * jittered, doubling pause; any other answer is returned. A rate limit throws
   * rate_limited and, for the API, blocks this client until it ends.
   */
  private async send(url: string, options: { api: boolean; etag: string | null; cap: number }): Promise<Answer> {
    const attempts = this.retries + 1;
    let why = '';
    let status: number | undefined;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (attempt > 1) {
        const base = this.backoffMs * 2 ** (attempt - 2);
        await sleep(Math.round(base * (0.75 + Math.random() * 0.5)));
      }
      if (options.api) this.assertNotBlocked();
      let answer: Answer;
      try {
        answer = await this.once(url, options);
      } catch (error) {
        if (!(error instanceof RequestError)) throw error;
        why = error instanceof TimeoutError ? `no answer within ${this.timeoutMs} ms` : error.message;
        status = undefined;
        this.log.warn({ url, attempt, attempts }, `GitHub request failed: ${why}`);
        continue;
      }
      this.log.debug({ url, attempt, status: answer.status }, 'GitHub answered');
      if (answer.status >= 500) {
        status = answer.status;
        why = `HTTP ${answer.status}`;
        this.log.warn({ url, attempt, attempts }, `GitHub answered HTTP ${answer.status}`);
        continue;
      }
      if (answer.status === 403 || answer.status === 429) {
        const until = this.rateLimitEnd(answer);
        if (until !== null) {
          const iso = new Date(until).toISOString();
          if (options.api) this.blockedUntil = Math.max(this.blockedUntil, until);
          this.log.warn({ url, until: iso }, 'GitHub rate limit reached');
          throw new ReleaseError('rate_limited', `GitHub rate limit reached; not asking again until ${iso}`, { until: iso, status: answer.status });
        }
      }
      return answer;
    }
    const times = attempts === 1 ? '1 attempt' : `${attempts} attempts`;
    throw new ReleaseError('unreachable', `GitHub is unreachable (${why}) after ${times}`, status === undefined ? {} : { status });
  }

  /** One attempt, bounded in time and size. Only got's RequestError means a network failure. */
  private async once(url: string, options: { api: boolean; etag: string | null; cap: number }): Promise<Answer> {
    const headers: Record<string, string> = { 'user-agent': 'dune-updater' };
    if (options.api) {
      headers.accept = 'application/vnd.github+json';
      headers['x-github-api-version'] = '2022-11-28';
    }
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (options.etag) headers['if-none-match'] = options.etag;
    const request = got(url, {
      headers,
      throwHttpErrors: false,
      retry: { limit: 0 },
      timeout: { request: this.timeoutMs },
      // Uncompressed, so the size cap counts the bytes that arrive (no gzip bombs).
      decompress: false,
      maxRedirects: 3,
      responseType: 'text',
    });
    let tooLarge = false;
    void request.on('downloadProgress', (progress) => {
      if (progress.transferred > options.cap || (progress.total ?? 0) > options.cap) {
        tooLarge = true;
        request.cancel();
      }
    });
    try {
      const response = await request;
      if (Buffer.byteLength(response.body) > options.cap) tooLarge = true;
      if (!tooLarge) return { status: response.statusCode, headers: response.headers, body: response.body };
    } catch (error) {
      if (!tooLarge) throw error;
    }
    throw new ReleaseError('bad_response', `GitHub's answer for ${url} is larger than ${options.cap} bytes`);
  }

  private assertNotBlocked(): void {
    if (this.now() < this.blockedUntil) {
      const iso = new Date(this.blockedUntil).toISOString();
      throw new ReleaseError('rate_limited', `GitHub rate limit reached; not asking again until ${iso}`, { until: iso });
    }
  }

  /**
   * When a 403/429 is a rate limit, the epoch ms it ends: `X-RateLimit-Remaining: 0` with
   * `X-RateLimit-Reset`, or `Retry-After`, or (as GitHub documents for secondary limits)
   * a 429 or a 403 whose message speaks of a rate limit. Otherwise null.
   */
  private rateLimitEnd(answer: Answer): number | null {
    const now = this.now();
    const ends: number[] = [];
    const retryAfter = header(answer.headers, 'retry-after');
    if (retryAfter !== null) {
      const at = /^\s*\d+\s*$/.test(retryAfter) ? now + Number(retryAfter) * 1000 : Date.parse(retryAfter);
      ends.push(Number.isFinite(at) ? at : now + DEFAULT_BLOCK_MS);
    }
    if (header(answer.headers, 'x-ratelimit-remaining')?.trim() === '0') {
      const reset = Number(header(answer.headers, 'x-ratelimit-reset'));
      ends.push(Number.isFinite(reset) && reset * 1000 > now ? reset * 1000 : now + DEFAULT_BLOCK_MS);
    }
    if (ends.length === 0) {
      if (answer.status === 429 || /rate limit/i.test(answer.body.slice(0, 2000))) ends.push(now + DEFAULT_BLOCK_MS);
      else return null;
    }
    return Math.min(Math.max(...ends, now + 1000), now + MAX_BLOCK_MS);
  }

  private statusError(answer: Answer, url: string): ReleaseError {
    const { status } = answer;
    if (status === 401) {
      const message = this.token
        ? 'GitHub refused the configured token (HTTP 401); check github.token'
        : 'GitHub asks for a token (HTTP 401); set github.token';
      return new ReleaseError('unauthorized', message, { status });
    }
    if (status === 403) {
      return new ReleaseError('unauthorized', `GitHub refused access (HTTP 403) to ${url}; the token may lack permission for it`, { status });
    }
    if (status === 304) return new ReleaseError('bad_response', `GitHub answered 304 Not Modified for ${url}, which was not asked conditionally`, { status });
    return new ReleaseError('bad_response', `GitHub answered HTTP ${status} for ${url}`, { status });
  }
}

/** Pages into one list: stale if any page is; as old as its oldest page; a tag listed twice counts once. */
function mergePages(pages: Fetched<Page<Release[]>>[]): Fetched<Release[]> {
  const byTag = new Map<string, Release>();
  for (const release of pages.flatMap((p) => p.value.value)) if (!byTag.has(release.tag)) byTag.set(release.tag, release);
  const releases = [...byTag.values()];
  const stalePage = pages.find((p) => p.stale);
  const oldest = pages.reduce((a, b) => (Date.parse(b.fetchedAt) < Date.parse(a.fetchedAt) ? b : a));
  return { value: releases, stale: stalePage !== undefined, reason: stalePage?.reason ?? null, fetchedAt: oldest.fetchedAt };
}
