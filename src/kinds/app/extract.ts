/**
 * Unpacking a release tarball (.tar.gz) into an empty staging directory. Every archive is
 * treated as hostile: nothing is ever written outside `dest`, and whatever could make that
 * happen is refused with `bad_release` and a sentence naming the entry.
 *
 * - Names: no absolute paths, no `..` escaping after normalization, no NUL, no backslashes or
 *   drive letters, no empty names.
 * - Symlinks: relative targets only, and only of the form `../../a/b` (leading `..`s, then
 *   names) that stays inside `dest` from the link's own directory. With no `..` after a name,
 *   the kernel resolves the target exactly as it reads, even when `a` is itself a link: every
 *   link in the tree stays inside, so no chain of links can leave it (`a -> .`, `b -> a/..`
 *   is refused at `b`). Nothing is written through a link: an entry whose path passes through
 *   an extracted symlink is refused, parents are `lstat`ed, files are opened O_EXCL|O_NOFOLLOW.
 * - Hard links: only to a regular file extracted earlier by this archive.
 * - Devices, fifos and any other type are refused; so is a directory replaced by a non-directory
 *   or the reverse. A later file, symlink or hard link replaces an earlier one (unlinked first).
 * - Limits: entries, bytes per entry (checked from the header, before reading), total bytes
 *   (counted as they stream), and the decompressed size of the tar stream itself.
 * - Modes: `mode & 0o777` (setuid, setgid and sticky dropped); directories keep owner rwx so the
 *   tree can always be removed, and their modes are applied last. Ownership and mtimes are not kept.
 *
 * On refusal `dest` is left as it is, for the caller to remove.
 *
 * Layouts: a release may pack its tree in one folder (`dunebugger-1.4.0/VERSION`) or at the root
 * (`app/`, `requirements.txt`, `VERSION`, ... as the real DuneBugger core ships it). One directory
 * and nothing else at the root is the release's folder and is stripped; anything else (several
 * entries, or a single file) is the tree itself. The VERSION check that follows in apply catches a
 * release that fits neither.
 */
import { createReadStream } from 'node:fs';
import { chmod, constants, link, lstat, mkdir, open, readdir, realpath, symlink, unlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join, resolve } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { UpdateError } from '../../core/errors.js';

/** One entry as the extract stream yields it: its header and its data. */
type Entry = tar.Extract extends AsyncIterable<infer T> ? T : never;

export interface ExtractLimits {
  maxEntries: number;
  /** Total uncompressed bytes of the files. */
  maxBytes: number;
  maxEntryBytes: number;
}

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

export const DEFAULT_LIMITS: ExtractLimits = { maxEntries: 100_000, maxBytes: 4 * GiB, maxEntryBytes: 2 * GiB };

export interface ExtractOptions {
  limits?: Partial<ExtractLimits>;
  signal?: AbortSignal;
  onProgress?: (entries: number, bytes: number) => void;
  /** When `dest` ends up holding a single directory and nothing else, return it as `root` (default true). */
  stripSingleTopLevel?: boolean;
  /**
   * Accept symlinks that point anywhere (absolute, or out of `dest`): for restoring our own
   * backups, whose trees may hold e.g. a virtualenv's `bin/python -> /usr/bin/python3`. Nothing
   * is written through them either way. Default false.
   */
  allowExternalSymlinks?: boolean;
  /** How messages name the archive (default "the release archive"). */
  label?: string;
}

export interface ExtractResult {
  /** The directory that holds the tree (after stripping a single top-level folder). */
  root: string;
  entries: number;
  bytes: number;
}

/** Room for tar headers, padding and pax records on top of the file bytes. */
const METADATA_PER_ENTRY = 4096;
const METADATA_SLACK = 16 * MiB;
const PROGRESS_ENTRIES = 100;
const PROGRESS_BYTES = 1 * MiB;

const shown = (name: string) => JSON.stringify(name.length > 200 ? `${name.slice(0, 200)}…` : name);

function human(bytes: number): string {
  if (bytes >= GiB) return `${+(bytes / GiB).toFixed(1)} GiB`;
  if (bytes >= MiB) return `${+(bytes / MiB).toFixed(1)} MiB`;
  return `${bytes} bytes`;
}

function unsafe(label: string, name: string, why: string): UpdateError {
  return new UpdateError('bad_release', `${label} is unsafe: entry ${shown(name)} ${why}`);
}

function corrupt(label: string, error: unknown): UpdateError {
  const reason = (error as Error | undefined)?.message ?? String(error);
  return new UpdateError('bad_release', `${label} is truncated or corrupt (${reason})`, { cause: error });
}

/**
 * A path inside the archive, normalized to `a/b/c` ('' is the archive root), or why it is
 * refused.
 */
function archivePath(raw: string | null | undefined): { rel: string } | { why: string } {
  if (!raw) return { why: 'has an empty name' };
  if (raw.includes('\0')) return { why: 'has a NUL byte in its name' };
  if (raw.includes('\\')) return { why: 'has a backslash in its name (a Windows path)' };
  if (/^[A-Za-z]:/.test(raw)) return { why: 'has a Windows drive letter in its name' };
  if (raw.startsWith('/')) return { why: 'has an absolute name' };
  const parts: string[] = [];
  for (const part of raw.split('/')) {
    if (part === '' || part === '.') continue;
    if (part !== '..') parts.push(part);
    else if (parts.pop() === undefined) return { why: 'leaves the install directory' };
  }
  return { rel: parts.join('/') };
}

/**
 * Checks a relative symlink target seen from the link `rel`: only leading `..` segments are
 * accepted (see the header). Returns the folder the `..`s climb to (the target lies below it),
 * or why the target is refused.
 */
function symlinkTarget(rel: string, target: string): { climbsTo: string } | { why: string } {
  const to = shown(target);
  if (target.includes('\\') || /^[A-Za-z]:/.test(target)) return { why: `is a symlink to a Windows path (${to})` };
  if (target.startsWith('/')) return { why: `is a symlink to an absolute path (${to}), outside the install directory` };
  const at = rel.split('/').slice(0, -1);
  const names: string[] = [];
  for (const part of target.split('/')) {
    if (part === '' || part === '.') continue;
    if (part !== '..') names.push(part);
    else if (names.length > 0) return { why: `is a symlink to ${to}, which goes back up after a folder name ("x/.."); that could leave the install directory through another link` };
    else if (at.pop() === undefined) return { why: `is a symlink to ${to}, which leaves the install directory` };
  }
  return { climbsTo: at.join('/') };
}

async function lstatOrNull(path: string): Promise<Stats | null> {
  try {
    return await lstat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

const kindOf = (st: Stats) => (st.isDirectory() ? 'directory' : st.isSymbolicLink() ? 'symlink' : 'file');

/** Entry types other than these are refused, with these words. */
const REFUSED_TYPES: Record<string, string> = {
  'character-device': 'a character device',
  'block-device': 'a block device',
  fifo: 'a fifo (named pipe)',
  'contiguous-file': 'a contiguous file',
};

/** The work of one extraction: what was created so far, and how each entry is written. */
class Extraction {
  entries = 0;
  bytes = 0;
  /** The name of the entry being written. */
  current = '';
  private reported = { entries: 0, bytes: 0 };
  /** Symlinks created (archive path → the folder their target climbs to, when checked). */
  private readonly symlinks = new Map<string, string | null>();
  /** Regular files created (the only valid hard link targets). */
  private readonly files = new Set<string>();
  /** Modes of explicit directories, applied at the end. */
  private readonly dirModes = new Map<string, number>();

  constructor(
    private readonly base: string,
    private readonly limits: ExtractLimits,
    private readonly options: ExtractOptions,
    private readonly label: string,
  ) {}

  private unsafe(name: string, why: string): UpdateError {
    return unsafe(this.label, name, why);
  }

  private abs(rel: string): string {
    return join(this.base, rel);
  }

  async entry(entry: Entry): Promise<void> {
    this.options.signal?.throwIfAborted();
    const h = entry.header;
    const name = h.name;
    this.current = name;
    this.entries++;
    if (this.entries > this.limits.maxEntries) {
      throw new UpdateError('bad_release', `${this.label} has more than ${this.limits.maxEntries} entries (entry ${shown(name)} is number ${this.entries})`);
    }
    const path = archivePath(name);
    if ('why' in path) throw this.unsafe(name, path.why);
    const rel = path.rel;
    const type = h.type ?? 'unknown';
    if (rel === '' && type !== 'directory') throw this.unsafe(name, 'has an empty name');
    switch (type) {
      case 'directory':
        if (rel !== '') await this.directory(rel, name, h.mode ?? 0o755);
        break;
      case 'file':
        await this.file(rel, name, h.size ?? 0, h.mode ?? 0o644, entry);
        break;
      case 'symlink':
        await this.symlink(rel, name, h.linkname ?? '');
        break;
      case 'link':
        await this.hardlink(rel, name, h.linkname ?? '');
        break;
      default:
        throw this.unsafe(name, `is ${REFUSED_TYPES[type] ?? `an entry of type ${type}`}, which is not allowed`);
    }
    entry.resume(); // a non-file entry may still carry data; drain it so the next one comes
    this.progress();
  }

  /** Reports every PROGRESS_ENTRIES entries or PROGRESS_BYTES bytes (and once at the end). */
  private progress(): void {
    if (!this.options.onProgress) return;
    if (this.entries - this.reported.entries < PROGRESS_ENTRIES && this.bytes - this.reported.bytes < PROGRESS_BYTES) return;
    this.reported = { entries: this.entries, bytes: this.bytes };
    this.options.onProgress(this.entries, this.bytes);
  }

  /** Creates the missing parents of `rel` (0o755), refusing a path through a symlink or a file. */
  private async parents(rel: string, name: string): Promise<void> {
    const parts = rel.split('/');
    let cur = '';
    for (const part of parts.slice(0, -1)) {
      cur = cur ? `${cur}/${part}` : part;
      if (this.symlinks.has(cur)) throw this.unsafe(name, `passes through the symlink ${shown(cur)}`);
      const st = await lstatOrNull(this.abs(cur));
      if (st === null) await mkdir(this.abs(cur), { mode: 0o755 });
      else if (st.isSymbolicLink()) throw this.unsafe(name, `passes through the symlink ${shown(cur)}`);
      else if (!st.isDirectory()) throw this.unsafe(name, `needs ${shown(cur)} to be a folder, but the archive made it a file`);
    }
  }

  /** Frees `rel` for a new non-directory: an earlier file or link is removed, a directory is kept. */
  private async clear(rel: string, name: string, kind: string): Promise<void> {
    const st = await lstatOrNull(this.abs(rel));
    if (st === null) return;
    if (st.isDirectory()) throw this.unsafe(name, `would replace a directory with a ${kind}`);
    await unlink(this.abs(rel));
    this.symlinks.delete(rel);
    this.files.delete(rel);
  }

  private async directory(rel: string, name: string, mode: number): Promise<void> {
    await this.parents(rel, name);
    const st = await lstatOrNull(this.abs(rel));
    if (st === null) await mkdir(this.abs(rel), { mode: 0o755 });
    else if (!st.isDirectory()) throw this.unsafe(name, `would replace a ${kindOf(st)} with a directory`);
    this.dirModes.set(rel, (mode & 0o777) | 0o700);
  }

  private async file(rel: string, name: string, size: number, mode: number, data: Entry): Promise<void> {
    if (size > this.limits.maxEntryBytes) throw this.unsafe(name, `is ${human(size)}, over the limit of ${human(this.limits.maxEntryBytes)} for one file`);
    await this.parents(rel, name);
    await this.clear(rel, name, 'file');
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
    const fh = await open(this.abs(rel), flags, 0o600);
    // Chunks are gathered and written with one writev per MiB: far fewer awaits than one per chunk.
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const flush = async () => {
      let todo = pending;
      pending = [];
      pendingBytes = 0;
      while (todo.length > 0) {
        let { bytesWritten } = await fh.writev(todo);
        const rest: Buffer[] = [];
        for (const b of todo) {
          if (bytesWritten >= b.length) bytesWritten -= b.length;
          else {
            rest.push(b.subarray(bytesWritten));
            bytesWritten = 0;
          }
        }
        todo = rest;
      }
    };
    try {
      for await (const chunk of data as AsyncIterable<Buffer>) {
        this.options.signal?.throwIfAborted();
        this.bytes += chunk.length;
        if (this.bytes > this.limits.maxBytes) throw this.unsafe(name, `takes the unpacked size over the limit of ${human(this.limits.maxBytes)}`);
        pending.push(chunk);
        pendingBytes += chunk.length;
        if (pendingBytes >= 1 << 20) await flush();
        this.progress();
      }
      await flush();
      await fh.chmod(mode & 0o777);
    } finally {
      await fh.close();
    }
    this.files.add(rel);
  }

  private async symlink(rel: string, name: string, target: string): Promise<void> {
    if (!target) throw this.unsafe(name, 'is a symlink with an empty target');
    if (target.includes('\0')) throw this.unsafe(name, 'is a symlink whose target has a NUL byte');
    let climbsTo: string | null = null;
    if (!this.options.allowExternalSymlinks) {
      const to = symlinkTarget(rel, target);
      if ('why' in to) throw this.unsafe(name, to.why);
      climbsTo = to.climbsTo;
    }
    await this.parents(rel, name);
    await this.clear(rel, name, 'symlink');
    await symlink(target, this.abs(rel));
    this.symlinks.set(rel, climbsTo);
  }

  private async hardlink(rel: string, name: string, linkname: string): Promise<void> {
    const to = archivePath(linkname);
    if ('why' in to) throw this.unsafe(name, `is a hard link to ${shown(linkname)}, which ${to.why}`);
    const target = to.rel;
    const st = this.files.has(target) ? await lstatOrNull(this.abs(target)) : null;
    if (st === null || !st.isFile()) throw this.unsafe(name, `is a hard link to ${shown(linkname)}, which is not a file extracted before it`);
    if (target === rel) throw this.unsafe(name, 'is a hard link to itself');
    await this.parents(rel, name);
    await this.clear(rel, name, 'hard link');
    await link(this.abs(target), this.abs(rel));
    this.files.add(rel);
  }

  /**
   * Applies directory modes (deepest first) and, when the top folder is stripped, checks that
   * no symlink climbs out of it (`app/x -> ../app/y` would leave the install directory once
   * `app` is installed under another name).
   */
  async finish(top: string | null): Promise<void> {
    if (top !== null) {
      for (const [rel, climbsTo] of this.symlinks) {
        if (climbsTo !== null && climbsTo !== top && !climbsTo.startsWith(`${top}/`)) {
          throw this.unsafe(rel, `is a symlink that points outside the release folder ${shown(top)}`);
        }
      }
    }
    const dirs = [...this.dirModes].sort((a, b) => b[0].split('/').length - a[0].split('/').length);
    for (const [rel, mode] of dirs) await chmod(this.abs(rel), mode);
  }
}

/** Counts the decompressed tar stream, so endless padding or metadata cannot run forever. */
function meter(label: string, max: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, callback) {
      seen += chunk.length;
      if (seen > max) return callback(new UpdateError('bad_release', `${label} unpacks to more than ${human(max)} of tar data`));
      callback(null, chunk);
    },
  });
}

/** How a failure while reading is reported: refusals as they are, disk errors as such, the rest as corruption. */
function classify(label: string, current: string, error: unknown): unknown {
  if (error instanceof UpdateError) return error;
  const e = error as NodeJS.ErrnoException;
  if (e?.code === 'ENAMETOOLONG') return unsafe(label, current, 'has a name too long for this file system');
  if (e?.code === 'ENOSPC' || e?.code === 'EDQUOT') return new UpdateError('disk_full', `no space left while unpacking ${label} (${e.message})`, { cause: error });
  if (typeof e?.syscall === 'string') return error; // a file system error, not the archive's
  return corrupt(label, error);
}

/**
 * Extracts a .tar.gz (a stream or a file path) into `dest` (empty or missing), streaming.
 * Refusals throw `UpdateError('bad_release')`; `dest` is then left for the caller to remove.
 */
export async function extractTarGz(source: NodeJS.ReadableStream | string, dest: string, options: ExtractOptions = {}): Promise<ExtractResult> {
  const { signal } = options;
  signal?.throwIfAborted();
  const limits: ExtractLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const destPath = resolve(dest);
  await mkdir(destPath, { recursive: true });
  if ((await readdir(destPath)).length > 0) throw new UpdateError('internal', `the staging directory ${destPath} is not empty`);
  const base = await realpath(destPath);
  const label = options.label ?? 'the release archive';
  const work = new Extraction(base, limits, options, label);

  const input = typeof source === 'string' ? createReadStream(source) : source;
  const extract = tar.extract();
  const tarBudget = limits.maxBytes + limits.maxEntries * METADATA_PER_ENTRY + METADATA_SLACK;
  const feeding = pipeline(input, createGunzip({ chunkSize: 64 * 1024 }), meter(label, tarBudget), extract, { signal }).then(
    () => null,
    (error: Error) => error,
  );
  try {
    for await (const entry of extract) await work.entry(entry);
    const failed = await feeding;
    if (failed) throw failed;
  } catch (error) {
    extract.destroy();
    await feeding;
    signal?.throwIfAborted();
    throw classify(label, work.current, error);
  }
  signal?.throwIfAborted();

  let root = destPath;
  let top: string | null = null;
  if (options.stripSingleTopLevel ?? true) {
    top = releaseFolder((await readdir(base, { withFileTypes: true })).map((d) => ({ name: d.name, folder: d.isDirectory() })));
  }
  await work.finish(top);
  if (top !== null) root = join(destPath, top);
  options.onProgress?.(work.entries, work.bytes);
  return { root, entries: work.entries, bytes: work.bytes };
}

/** The layout rule (see the header): the release's folder to strip, when the root holds one folder and nothing else. */
export function releaseFolder(rootEntries: ReadonlyArray<{ name: string; folder: boolean }>): string | null {
  return rootEntries.length === 1 && rootEntries[0]!.folder ? rootEntries[0]!.name : null;
}

/**
 * The text of the `VERSION` file an archive installs, read without extracting anything: at the
 * root, or in the release's folder when the layout rule strips one (`stripSingleTopLevel`, default
 * true; false for our backups). Null when there is none; undefined when it cannot be told without
 * unpacking (a link, or over 4 KiB). A corrupt archive is `bad_release`, as extraction would say.
 */
export async function versionTextInArchive(archive: string, options: { stripSingleTopLevel?: boolean; signal?: AbortSignal; label?: string } = {}): Promise<string | null | undefined> {
  const label = options.label ?? 'the release archive';
  const root = new Map<string, boolean>();
  const versions = new Map<string, string | undefined>();
  const extract = tar.extract();
  const feeding = pipeline(createReadStream(archive), createGunzip({ chunkSize: 64 * 1024 }), extract, { signal: options.signal }).then(
    () => null,
    (error: Error) => error,
  );
  try {
    for await (const entry of extract) {
      const path = archivePath(entry.header.name);
      const rel = 'rel' in path ? path.rel : '';
      if (rel !== '') {
        const [first, ...rest] = rel.split('/');
        root.set(first!, (root.get(first!) ?? false) || rest.length > 0 || entry.header.type === 'directory');
        if (rel === 'VERSION' || /^[^/]+\/VERSION$/.test(rel)) {
          if (entry.header.type === 'file' && (entry.header.size ?? 0) <= 4096) {
            const chunks: Buffer[] = [];
            for await (const chunk of entry as AsyncIterable<Buffer>) chunks.push(chunk);
            versions.set(rel, Buffer.concat(chunks).toString('utf8'));
            continue;
          }
          versions.set(rel, undefined);
        }
      }
      entry.resume();
    }
    const failed = await feeding;
    if (failed) throw failed;
  } catch (error) {
    extract.destroy();
    await feeding;
    options.signal?.throwIfAborted();
    throw corrupt(label, error);
  }
  const folder = options.stripSingleTopLevel === false ? null : releaseFolder([...root].map(([name, isFolder]) => ({ name, folder: isFolder })));
  const path = folder === null ? 'VERSION' : `${folder}/VERSION`;
  return versions.has(path) ? versions.get(path) : null;
}

/** Limits for restoring our own backups: generous, but still finite. */
export const RESTORE_LIMITS: ExtractLimits = { maxEntries: 1_000_000, maxBytes: 64 * GiB, maxEntryBytes: 16 * GiB };

/**
 * Restores a tree archived by `archiveTree` into `dest` (empty or missing) as it was: no
 * top-level folder is stripped, and symlinks may point anywhere (a backed-up tree may hold a
 * virtualenv's absolute links), though nothing is written through them. Every other rule holds.
 */
export async function restoreTree(
  archive: string,
  dest: string,
  options: { signal?: AbortSignal; onProgress?: (entries: number, bytes: number) => void; limits?: Partial<ExtractLimits> } = {},
): Promise<ExtractResult> {
  return extractTarGz(archive, dest, {
    ...options,
    limits: { ...RESTORE_LIMITS, ...options.limits },
    stripSingleTopLevel: false,
    allowExternalSymlinks: true,
    label: 'the backup archive',
  });
}
