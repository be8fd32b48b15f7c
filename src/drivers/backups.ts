/**
 * Backups live in `backupDir` as `<component>.<YYYYMMDD_HHMMSS>.<ext>` (the seed's names).
 * A backup is written under a temp name and renamed into place when whole, so a file with the
 * final name is always complete. Retention keeps the newest N of one component, and runs only
 * after a success.
 */
import { accessSync, constants, readdirSync, rmSync, statfsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { UpdateError } from '../engine/driver.js';

const pad = (n: number) => String(n).padStart(2, '0');

export function stamp(date = new Date()): string {
  return `${date.getFullYear()}${pad(date.getMonth() + 1)}${pad(date.getDate())}_${pad(date.getHours())}${pad(date.getMinutes())}${pad(date.getSeconds())}`;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function pattern(component: string, ext: string): RegExp {
  return new RegExp(`^${escape(component)}\\.(\\d{8}_\\d{6})(?:_(\\d+))?\\.${escape(ext)}$`);
}

/** The backups of a component, oldest first. */
export function listBackups(dir: string, component: string, ext: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const re = pattern(component, ext);
  return names
    .map((n) => ({ n, m: re.exec(n) }))
    .filter((x): x is { n: string; m: RegExpExecArray } => x.m !== null)
    .sort((a, b) => a.m[1]!.localeCompare(b.m[1]!) || Number(a.m[2] ?? 0) - Number(b.m[2] ?? 0))
    .map((x) => join(dir, x.n));
}

/** A new, unused backup path for now (a suffix `_2`, `_3`... when the second is taken). */
export function newBackupPath(dir: string, component: string, ext: string, date = new Date()): string {
  const taken = new Set(listBackups(dir, component, ext));
  const base = `${component}.${stamp(date)}`;
  let path = join(dir, `${base}.${ext}`);
  for (let i = 2; taken.has(path); i++) path = join(dir, `${base}_${i}.${ext}`);
  return path;
}

/** Keeps the newest `keep` backups of a component; returns what was removed. */
export function pruneBackups(dir: string, component: string, ext: string, keep: number): string[] {
  const all = listBackups(dir, component, ext);
  const remove = all.slice(0, Math.max(0, all.length - keep));
  for (const path of remove) rmSync(path, { recursive: true, force: true });
  return remove;
}

/** Free space (MiB) of the file system holding `path` (or its nearest existing parent). */
export function freeMB(path: string): number {
  let p = path;
  for (;;) {
    try {
      const s = statfsSync(p);
      return (Number(s.bavail) * Number(s.bsize)) / (1024 * 1024);
    } catch (error) {
      const parent = dirname(p);
      if (parent === p) throw error;
      p = parent;
    }
  }
}

export function requireFreeMB(path: string, neededMB: number, what: string): void {
  if (neededMB <= 0) return;
  const free = freeMB(path);
  if (free < neededMB) {
    throw new UpdateError('disk_full', `not enough free disk for ${what}: ${Math.floor(free)} MB free at ${path}, ${neededMB} MB needed`);
  }
}

/** Throws `not_writable` naming the path when the updater cannot write it. */
export function requireWritable(path: string, what: string): void {
  try {
    accessSync(path, constants.W_OK);
  } catch (error) {
    throw new UpdateError('not_writable', `cannot write ${what} ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
}
