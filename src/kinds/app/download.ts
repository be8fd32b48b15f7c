/**
 * Downloading a release asset: streamed with got to a temp file, sha256 computed as it
 * streams, bounded in size and time (a stalled server fails, it does not hang a run).
 */
import { createHash } from 'node:crypto';
import { createWriteStream, rmSync } from 'node:fs';
import { PassThrough, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import got from 'got';
import { UpdateError } from '../../core/errors.js';

export interface DownloadOptions {
  /** Refuse bodies larger than this. */
  maxBytes: number;
  /** The size the release says the asset has (0 or undefined when unknown). */
  expectedBytes?: number;
  token?: string | null;
  signal?: AbortSignal;
  /** No byte for this long fails the download (default 30 s). */
  idleTimeoutMs?: number;
  onProgress?: (bytes: number, total: number | null) => void;
}

export interface Downloaded<T = undefined> {
  path: string;
  bytes: number;
  sha256: string;
  /** What `consume` returned. */
  consumed: T;
}

/** Why a download broke, for people: a stall after a 200 is "no data for 30 s", not "HTTP 200". */
const why = (error: unknown, idleTimeoutMs?: number) => {
  const e = error as { name?: string; event?: string; code?: string; message?: string; response?: { statusCode?: number } };
  const status = e.response?.statusCode;
  if (status && (status < 200 || status >= 300)) return `HTTP ${status}`;
  if (e.name === 'TimeoutError' && e.event === 'socket' && idleTimeoutMs) return `no data from the server for ${Math.round(idleTimeoutMs / 1000)} s`;
  // A system error's message says what it means ("ENOSPC: no space left on device, write").
  return e.message || e.code || String(error);
};

/**
 * Downloads `url` to `path` (replaced if present). On any failure the partial file is removed.
 * With `consume`, the bytes are also handed to it as they arrive (e.g. extraction into a staging
 * directory), so the two overlap; its result is returned. Its failure stops the download.
 */
export async function downloadTo<T = undefined>(url: string, path: string, options: DownloadOptions & { consume?: (stream: NodeJS.ReadableStream) => Promise<T> }): Promise<Downloaded<T>> {
  const hash = createHash('sha256');
  let bytes = 0;
  let total: number | null = null;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, callback) {
      bytes += chunk.length;
      if (bytes > options.maxBytes) return callback(new UpdateError('bad_release', `the download is larger than the ${Math.round(options.maxBytes / 1048576)} MiB limit`));
      hash.update(chunk);
      options.onProgress?.(bytes, total);
      callback(null, chunk);
    },
  });
  const stream = got.stream(url, {
    headers: { 'user-agent': 'dune-updater', accept: 'application/octet-stream', ...(options.token ? { authorization: `Bearer ${options.token}` } : {}) },
    timeout: { lookup: 10_000, connect: 10_000, response: 30_000, socket: options.idleTimeoutMs ?? 30_000 },
    retry: { limit: 0 },
    decompress: false,
    signal: options.signal,
  });
  stream.on('response', (response: { headers: Record<string, string | undefined> }) => {
    const length = Number(response.headers['content-length']);
    if (Number.isFinite(length) && length > 0) {
      total = length;
      if (length > options.maxBytes) stream.destroy(new UpdateError('bad_release', `the download is ${Math.round(length / 1048576)} MiB, over the ${Math.round(options.maxBytes / 1048576)} MiB limit`));
    }
  });
  // The side stream feeds `consume`; the tee waits for it (backpressure), and once `consume` is
  // done (a tar can end before its gzip does) the rest is drained so the download can finish.
  const side = options.consume ? new PassThrough({ highWaterMark: 1 << 20 }) : null;
  // The consumer attaches its listeners only after its own awaits (mkdir...): a download that breaks
  // before then must not be an unhandled 'error' event on the side stream (it would crash the process).
  side?.on('error', () => undefined);
  const tee = new Transform({
    transform(chunk: Buffer, _enc, callback) {
      if (side && !side.destroyed && !side.writableEnded && !side.write(chunk)) side.once('drain', () => callback(null, chunk));
      else callback(null, chunk);
    },
    flush(callback) {
      side?.end();
      callback();
    },
  });
  let consumerError: unknown = null;
  let downloadError: unknown = null;
  const consumed = side
    ? options.consume!(side).then(
        (value) => {
          side.resume();
          return value;
        },
        (error) => {
          consumerError = error;
          stream.destroy(error as Error);
          side.resume();
          throw error;
        },
      )
    : Promise.resolve(undefined as T);
  let result: T;
  try {
    const [, value] = await Promise.all([pipeline(stream, meter, tee, createWriteStream(path, { mode: 0o600, highWaterMark: 1 << 20 })).catch((error) => {
      // The download broke first (not because the consumer stopped it): that is the cause to report.
      if (!consumerError) downloadError = error;
      side?.destroy(error as Error);
      throw error;
    }), consumed]);
    result = value;
  } catch (error) {
    rmSync(path, { force: true });
    await consumed.catch(() => undefined);
    // Whichever noticed first, a broken download is reported as one (not as a corrupt archive).
    const streamError = (stream as unknown as { errored?: unknown }).errored;
    if (!downloadError && streamError && streamError !== consumerError) downloadError = streamError;
    const cause = downloadError ?? consumerError ?? error;
    if (cause instanceof UpdateError) throw cause;
    // eslint-disable-next-line @typescript-eslint/only-throw-error -- rethrows what the consumer failed with
    if (!downloadError && consumerError) throw consumerError;
    options.signal?.throwIfAborted();
    throw new UpdateError('download_failed', `downloading ${url} failed (${why(cause, options.idleTimeoutMs ?? 30_000)}) after ${bytes} bytes`);
  }
  const expected = options.expectedBytes && options.expectedBytes > 0 ? options.expectedBytes : total;
  if (expected !== null && bytes !== expected) {
    rmSync(path, { force: true });
    throw new UpdateError(
      'download_failed',
      bytes < expected ? `the download of ${url} is truncated: ${bytes} of ${expected} bytes` : `the download of ${url} is larger than announced (${bytes} bytes, expected ${expected})`,
    );
  }
  return { path, bytes, sha256: hash.digest('hex'), consumed: result };
}

/** Fetches a small text (a `.sha256` file): at most 4 KiB. */
export async function fetchSmallText(url: string, options: { token?: string | null; signal?: AbortSignal } = {}): Promise<string> {
  try {
    const response = await got(url, {
      headers: { 'user-agent': 'dune-updater', ...(options.token ? { authorization: `Bearer ${options.token}` } : {}) },
      timeout: { request: 15_000 },
      retry: { limit: 1 },
      signal: options.signal,
      responseType: 'buffer',
    });
    if (response.body.length > 4096) throw new UpdateError('bad_release', `${url} is larger than a checksum file should be`);
    return response.body.toString('utf8');
  } catch (error) {
    if (error instanceof UpdateError) throw error;
    throw new UpdateError('download_failed', `cannot fetch ${url} (${why(error)})`);
  }
}

/** The sha256 a `.sha256` file declares (`<hex>  <name>` or just `<hex>`). */
export function parseSha256File(text: string, assetName: string): string {
  for (const line of text.split('\n')) {
    const m = /^\s*([0-9a-fA-F]{64})(?:\s+\*?(.+?))?\s*$/.exec(line);
    if (m && (!m[2] || m[2] === assetName || m[2].endsWith(`/${assetName}`))) return m[1]!.toLowerCase();
  }
  throw new UpdateError('bad_release', `the checksum file of ${assetName} has no sha256 for it`);
}
