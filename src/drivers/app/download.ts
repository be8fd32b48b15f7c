/**
 * Downloading a release asset: streamed with got to a temp file, sha256 computed as it
 * streams, bounded in size and time (a stalled server fails, it does not hang a run).
 */
import { createHash } from 'node:crypto';
import { createWriteStream, rmSync } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import got from 'got';
import { UpdateError } from '../../engine/driver.js';

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

export interface Downloaded {
  path: string;
  bytes: number;
  sha256: string;
}

const why = (error: unknown) => {
  const e = error as { code?: string; message?: string; response?: { statusCode?: number } };
  if (e.response?.statusCode) return `HTTP ${e.response.statusCode}`;
  return e.code ?? e.message ?? String(error);
};

/** Downloads `url` to `path` (replaced if present). On any failure the partial file is removed. */
export async function downloadTo(url: string, path: string, options: DownloadOptions): Promise<Downloaded> {
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
  try {
    await pipeline(stream, meter, createWriteStream(path, { mode: 0o600 }));
  } catch (error) {
    rmSync(path, { force: true });
    if (error instanceof UpdateError) throw error;
    options.signal?.throwIfAborted();
    throw new UpdateError('download_failed', `downloading ${url} failed (${why(error)}) after ${bytes} bytes`);
  }
  const expected = options.expectedBytes && options.expectedBytes > 0 ? options.expectedBytes : total;
  if (expected !== null && bytes !== expected) {
    rmSync(path, { force: true });
    throw new UpdateError('download_failed', `the download of ${url} is truncated: ${bytes} of ${expected} bytes`);
  }
  return { path, bytes, sha256: hash.digest('hex') };
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
