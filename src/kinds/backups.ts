/**
 * Backups live in `backupDir` as `<component>.<YYYYMMDD_HHMMSS>.<ext>` (the seed's pattern, with
 * the component's name where the seed named a compose backup after the file: docs/migrating.md).
 * A backup is written under a temp name and renamed into place when whole, so a file with the
 * final name is always complete. Retention keeps the newest N of one component, and runs only
 * after a success.
 */
import { accessSync, constants, readdirSync, rmSync, statSync, statfsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { UpdateError } from '../core/errors.js';

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

/** `path`, or its nearest existing parent. */
function existing(path: string): string {
  let p = path;
  for (;;) {
    try {
      statSync(p);
      return p;
    } catch (error) {
      const parent = dirname(p);
      if (parent === p) throw error;
      p = parent;
    }
  }
}

/** Free space (MiB) of the file system holding `path` (or its nearest existing parent). */
export function freeMB(path: string): number {
  const s = statfsSync(existing(path));
  return (Number(s.bavail) * Number(s.bsize)) / (1024 * 1024);
}

/** What one part of a run will write: `mb` MiB under `path`. */
export interface SpaceNeed {
  what: string;
  path: string;
  mb: number;
}

/**
 * Checks the free disk for every part of a run before anything is written: parts on the same file
 * system add up (a backup and a download on one disk need both), and `floorMB` (minFreeMB) is the
 * least the first part's file system must keep. Throws `disk_full` naming the path, what is free
 * and each part, e.g. "not enough free disk for core 1.1.0: 3 MB free at /var/backups, 12 MB
 * needed (the backup 12 MB)".
 */
export function requireFreeSpace(needs: SpaceNeed[], floorMB: number, label: string): void {
  const groups = new Map<number, { path: string; parts: SpaceNeed[] }>();
  for (const need of needs) {
    const dev = statSync(existing(need.path)).dev;
    const group = groups.get(dev) ?? { path: need.path, parts: [] };
    group.parts.push(need);
    groups.set(dev, group);
  }
  let first = true;
  for (const { path, parts } of groups.values()) {
    const sum = Math.ceil(parts.reduce((t, p) => t + p.mb, 0));
    const needed = first ? Math.max(floorMB, sum) : sum;
    first = false;
    if (needed <= 0) continue;
    const free = freeMB(path);
    if (free < needed) {
      // Parts of no size (an image whose size is not known here) are covered by the floor alone.
      const detail = [parts.filter((p) => p.mb > 0).map((p) => `${p.what} ${Math.ceil(p.mb)} MB`).join(', '), needed > sum ? `minFreeMB ${needed}` : ''];
      throw new UpdateError('disk_full', `not enough free disk for ${label}: ${Math.floor(free)} MB free at ${path}, ${needed} MB needed (${detail.filter(Boolean).join('; ')})`);
    }
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
