/**
 * Device files that survive an app update: `preserve:` globs relative to `installPath`
 * (`app/config/*.conf`), matched with node's `path.matchesGlob` (`*` and `?` do not cross `/`,
 * `**` does, a leading-dot name is matched only by a pattern that spells the dot).
 *
 * Apply works on the staged new tree only, so the installed tree is never written and a rollback
 * by rename (or a restore from the backup) gives it back byte for byte:
 * - each file of the installed tree that a glob matches (regular files and symlinks; a folder is
 *   kept through `folder/**`) is copied into the new tree unchanged: bytes, mode, times, and the
 *   owner when the updater runs as root; also when the release does not ship it (missing folders
 *   are made with the installed tree's modes);
 * - when the release ships something else at that path, the release's entry is renamed beside it
 *   as `<file>.new`; when it ships the same bytes (or the same link), there is no `.new`;
 * - the top-level `VERSION` is never kept: it is what says which release is installed.
 *
 * `planPreserve` only reads and throws `bad_release` for what cannot be done (the release has a
 * folder at a kept file's path, or a file or link where a kept file needs a folder), so apply can
 * refuse before it stops the service; apply plans again once the service is stopped (the files may
 * have changed meanwhile), records the plan, and `carryPreserved` does it.
 */
import { chmodSync, closeSync, constants, copyFileSync, fchmodSync, fchownSync, fsyncSync, lchownSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync, utimesSync, type Stats } from 'node:fs';
import { dirname, join, matchesGlob } from 'node:path';
import { UpdateError } from '../../core/errors.js';
import { fsyncDir } from '../../util/fs-atomic.js';

/** What happens to one kept file. */
export interface PreservedFile {
  /** Path relative to the install path, with `/`. */
  path: string;
  /** What the release has at that path: nothing, the same, or something else (then written as `<path>.new`). */
  release: 'absent' | 'same' | 'different';
}

const lstatOrNull = (path: string): Stats | null => {
  try {
    return lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
};

/** Whether `rel` (a file of the installed tree) is one `preserve` keeps. */
export function isPreserved(rel: string, patterns: readonly string[]): boolean {
  if (rel === 'VERSION') return false;
  return patterns.some((pattern) => matchesGlob(rel, pattern));
}

/** The files and symlinks of `tree` that the patterns match, sorted; symlinked folders are not entered. */
export function matchingFiles(tree: string, patterns: readonly string[]): string[] {
  if (patterns.length === 0) return [];
  const found: string[] = [];
  const walk = (rel: string) => {
    for (const entry of readdirSync(rel ? join(tree, rel) : tree, { withFileTypes: true })) {
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(path);
      else if ((entry.isFile() || entry.isSymbolicLink()) && isPreserved(path, patterns)) found.push(path);
    }
  };
  walk('');
  return found.sort();
}

function sameEntry(a: string, aStat: Stats, b: string, bStat: Stats): boolean {
  if (aStat.isSymbolicLink() || bStat.isSymbolicLink()) return aStat.isSymbolicLink() && bStat.isSymbolicLink() && readlinkSync(a) === readlinkSync(b);
  return aStat.isFile() && bStat.isFile() && aStat.size === bStat.size && readFileSync(a).equals(readFileSync(b));
}

/** What preserving would do, from the installed tree `from` into the new tree `to`; throws when it cannot be done. */
export function planPreserve(from: string, to: string, patterns: readonly string[]): PreservedFile[] {
  const refuse = (why: string) => new UpdateError('bad_release', `cannot keep the device's files (preserve): ${why}`);
  return matchingFiles(from, patterns).map((path) => {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const folder = parts.slice(0, i).join('/');
      const st = lstatOrNull(join(to, folder));
      if (st && !st.isDirectory()) throw refuse(`the release has a ${st.isSymbolicLink() ? 'symlink' : 'file'} at ${folder}, where the installed ${path} needs a folder`);
    }
    const release = lstatOrNull(join(to, path));
    if (release?.isDirectory()) throw refuse(`the release has a folder at ${path}, which is a file on the device`);
    if (!release) return { path, release: 'absent' as const };
    if (sameEntry(join(from, path), lstatSync(join(from, path)), join(to, path), release)) return { path, release: 'same' as const };
    const beside = lstatOrNull(join(to, `${path}.new`));
    if (beside?.isDirectory()) throw refuse(`the release has a folder at ${path}.new, where its own ${path} would be put`);
    return { path, release: 'different' as const };
  });
}

/** Makes the missing folders of `rel` in `to` with the modes they have in `from`. */
function makeParents(from: string, to: string, rel: string): void {
  const parts = rel.split('/').slice(0, -1);
  for (let i = 1; i <= parts.length; i++) {
    const folder = parts.slice(0, i).join('/');
    if (lstatOrNull(join(to, folder))) continue;
    const st = lstatSync(join(from, folder));
    mkdirSync(join(to, folder));
    if (process.getuid?.() === 0) lchownSync(join(to, folder), st.uid, st.gid);
    chmodSync(join(to, folder), st.mode & 0o7777); // mkdir's mode goes through the umask: set it as on the device
    fsyncDir(dirname(join(to, folder)));
  }
}

/** Copies the installed `rel` into `to` as it is: bytes or link, mode, times, and owner when root. */
function copyEntry(from: string, to: string, rel: string): void {
  const src = join(from, rel);
  const dst = join(to, rel);
  const st = lstatSync(src);
  const root = process.getuid?.() === 0;
  if (st.isSymbolicLink()) {
    symlinkSync(readlinkSync(src), dst);
    if (root) lchownSync(dst, st.uid, st.gid);
  } else {
    // O_EXCL: dst was freed just before; nothing is written through a link.
    copyFileSync(src, dst, constants.COPYFILE_EXCL);
    const fd = openSync(dst, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      // Owner first: a chown clears setuid and setgid bits, the chmod after sets them as they were.
      if (root) fchownSync(fd, st.uid, st.gid);
      fchmodSync(fd, st.mode & 0o7777);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    utimesSync(dst, st.atime, st.mtime);
  }
  fsyncDir(dirname(dst));
}

/**
 * Carries the preserved files of the installed tree `from` into the new tree `to` as `plan`
 * (from `planPreserve`, just before) says (see the header).
 */
export function carryPreserved(from: string, to: string, plan: readonly PreservedFile[]): void {
  for (const file of plan) {
    const dst = join(to, file.path);
    if (file.release === 'different') {
      rmSync(`${dst}.new`, { force: true });
      renameSync(dst, `${dst}.new`);
    } else if (file.release === 'same') {
      rmSync(dst, { force: true });
    } else {
      makeParents(from, to, file.path);
    }
    copyEntry(from, to, file.path);
  }
}

/** The sentence for the run's final message: "kept a (the release's is a.new), b"; null when nothing was kept. */
export function keptSentence(files: readonly PreservedFile[], most = 10): string | null {
  if (files.length === 0) return null;
  const named = files.slice(0, most).map((f) => (f.release === 'different' ? `${f.path} (the release's is ${f.path}.new)` : f.path));
  const more = files.length > most ? ` and ${files.length - most} more` : '';
  return `kept ${named.join(', ')}${more}`;
}
