/**
 * Release assets kept on the device between runs, in `<dataDir>/downloads/<component>/<asset>`.
 *
 * validate downloads the asset (a dry run too) and checks it against the release's `.sha256`, so
 * "validated" means the release is there and whole; apply installs from the kept file, and a real
 * run after a dry run reuses it. A kept file is reused only when its sha256 is the one expected
 * (the published checksum; in apply, the one validate recorded): otherwise it is downloaded again.
 *
 * - A download goes to `<asset>.partial` and is renamed to its name only once whole and checked:
 *   a file under an asset's name is always a complete download that matched its checksum, or had
 *   none to match.
 * - At most one asset is kept per component: a new download removes the others (and any
 *   `.partial` left by a crash). A run's end removes it unless the run was a dry run (the
 *   driver's `finalize`; docs/releases.md).
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readdirSync, renameSync, rmSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { UpdateError } from '../../core/errors.js';
import { fsyncDir } from '../../util/fs-atomic.js';
import { downloadTo } from './download.js';
import type { StepContext } from '../../core/driver.js';
import { formatProgress } from '../../util/sizes.js';

export interface AssetRef {
  name: string;
  url: string;
  /** The size the release announces (0 when unknown). */
  size: number;
}

export interface KeptAsset {
  path: string;
  sha256: string;
  bytes: number;
  /** True when the file was already there and matched: nothing was downloaded. */
  reused: boolean;
}

export interface ObtainOptions {
  /** The sha256 the asset must have; null when the release publishes none (then it is always downloaded). */
  expected: string | null;
  maxBytes: number;
  token: string | null;
  signal: AbortSignal;
  onProgress?: (bytes: number, total: number | null) => void;
}

/** A run's progress while an asset downloads: "Downloading NAME: 1.2 of 3.4 MiB", at most every 250 ms. */
export function downloadProgress(ctx: Pick<StepContext, 'progress'>, asset: AssetRef): (bytes: number, total: number | null) => void {
  let lastReport = 0;
  return (bytes, total) => {
    const now = Date.now();
    if (now - lastReport < 250) return;
    lastReport = now;
    const of = total ?? asset.size;
    ctx.progress(`Downloading ${asset.name}: ${formatProgress(bytes, of)}`, { bytes, total: of, percent: of ? Math.round((bytes / of) * 100) : undefined });
  };
}

/** The sha256 and size of a file, streaming. */
export async function hashFile(path: string, signal?: AbortSignal): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  await pipeline(
    createReadStream(path, { highWaterMark: 1 << 20 }),
    async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) {
        hash.update(chunk);
        bytes += chunk.length;
      }
    },
    { signal },
  );
  return { sha256: hash.digest('hex'), bytes };
}

export class KeptDownloads {
  /** `<dataDir>/downloads/<component>` */
  readonly dir: string;

  constructor(dataDir: string, component: string) {
    this.dir = join(dataDir, 'downloads', component);
  }

  pathOf(assetName: string): string {
    return join(this.dir, assetName);
  }

  /** Whether a kept file of this asset is there with the announced size (then a run needs no room for a download). */
  has(asset: AssetRef): boolean {
    try {
      const st = statSync(this.pathOf(asset.name));
      return st.isFile() && (asset.size <= 0 || st.size === asset.size);
    } catch {
      return false;
    }
  }

  /**
   * The asset as a kept file whose sha256 is `expected`: the one already kept when it matches,
   * else downloaded again (a mismatch of the new download is `bad_release`, and nothing is kept).
   */
  async obtain(asset: AssetRef, options: ObtainOptions): Promise<KeptAsset> {
    const path = this.pathOf(asset.name);
    if (options.expected && this.has(asset)) {
      const kept = await hashFile(path, options.signal);
      if (kept.sha256 === options.expected) {
        this.keepOnly(asset.name);
        return { path, ...kept, reused: true };
      }
    }
    mkdirSync(this.dir, { recursive: true });
    const partial = `${path}.partial`;
    rmSync(path, { force: true });
    let got;
    try {
      got = await downloadTo(asset.url, partial, {
        maxBytes: options.maxBytes,
        expectedBytes: asset.size,
        token: options.token,
        signal: options.signal,
        onProgress: options.onProgress,
      });
      if (options.expected && got.sha256 !== options.expected) {
        throw new UpdateError('bad_release', `checksum mismatch for ${asset.name}: the release says ${options.expected}, the download is ${got.sha256}`);
      }
    } catch (error) {
      rmSync(partial, { force: true });
      this.dropFolderIfEmpty();
      throw error;
    }
    renameSync(partial, path);
    fsyncDir(this.dir);
    this.keepOnly(asset.name);
    return { path, sha256: got.sha256, bytes: got.bytes, reused: false };
  }

  /** Removes every other file of the component's downloads (older assets, partial files). */
  keepOnly(assetName: string | null): string[] {
    if (!existsSync(this.dir)) return [];
    const removed: string[] = [];
    for (const name of readdirSync(this.dir)) {
      if (name === assetName) continue;
      rmSync(join(this.dir, name), { recursive: true, force: true });
      removed.push(join(this.dir, name));
    }
    return removed;
  }

  /** Removes the kept file of this asset, and the component's folder once it is empty. */
  remove(assetName: string): void {
    rmSync(this.pathOf(assetName), { force: true });
    this.dropFolderIfEmpty();
  }

  private dropFolderIfEmpty(): void {
    try {
      rmdirSync(this.dir);
    } catch {
      // Not empty (another file is kept) or already gone.
    }
  }
}
