/**
 * The updater's install root (CONTRACT.md, "The updater updates itself"):
 *
 *   ROOT/launch                  the supervisor's command (deploy/launch)
 *   ROOT/releases/<version>/     one unpacked release each
 *   ROOT/current  -> releases/<version>
 *   ROOT/previous -> releases/<version>
 *   ROOT/self-update.json        the trial, while one is open
 *   ROOT/self-update.result      what launch did when it gave a trial up (read by the old release)
 *
 * The trial file is written as `JSON.stringify(trial, null, 2)`: one key per line, which is what
 * the POSIX sh of launch reads and rewrites (`starts`). Every write here is atomic (temp file,
 * fsync, rename, fsync the directory); a symlink is switched by renaming a new link over it.
 */
import { existsSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fsyncDir, writeFileAtomic } from '../../util/fs-atomic.js';

export interface Trial {
  from: string;
  to: string;
  /** Starts of the release on trial so far (launch counts them). */
  starts: number;
  /** When the trial began, in seconds since the epoch. */
  since: number;
  /** The journal's file, for launch to put the copy back. */
  db: string;
  /** The copy of the journal the release on trial made before its migrations, or null. */
  dbCopy: string | null;
  /** Set by the release on trial when it gives itself up (its own check failed). */
  abandon: boolean;
  /** The run that opened the trial. */
  run: number;
}

/** What launch wrote when it gave a trial up. */
export interface TrialResult {
  from: string;
  to: string;
  reason: string;
  at: number;
}

export class InstallRoot {
  constructor(readonly root: string) {}

  get releases(): string {
    return join(this.root, 'releases');
  }
  get trialFile(): string {
    return join(this.root, 'self-update.json');
  }
  get resultFile(): string {
    return join(this.root, 'self-update.result');
  }
  releaseDir(version: string): string {
    return join(this.releases, version);
  }
  /** The relative target a link to a release holds (`releases/1.2.0`). */
  static target(version: string): string {
    return `releases/${version}`;
  }

  /** Where `current` or `previous` points (as written, relative), or null when it is missing. */
  link(name: 'current' | 'previous'): string | null {
    try {
      return readlinkSync(join(this.root, name));
    } catch {
      return null;
    }
  }

  /** The version `current` or `previous` points at (the folder's name), or null. */
  linkedVersion(name: 'current' | 'previous'): string | null {
    const target = this.link(name);
    const m = target === null ? null : /^(?:.*\/)?releases\/([^/]+)\/?$/.exec(target);
    return m ? m[1]! : null;
  }

  /** Points `name` at `target` (relative), atomically; null removes it. Does nothing when it already does. */
  setLink(name: 'current' | 'previous', target: string | null): void {
    const path = join(this.root, name);
    if (this.link(name) === target) return;
    if (target === null) {
      rmSync(path, { force: true });
      fsyncDir(this.root);
      return;
    }
    const tmp = join(this.root, `.${name}.${process.pid}.tmp`);
    rmSync(tmp, { force: true });
    symlinkSync(target, tmp);
    renameSync(tmp, path);
    fsyncDir(this.root);
  }

  /** The open trial, or null. A file that cannot be read is an error: a trial is never guessed. */
  readTrial(): Trial | null {
    let text: string;
    try {
      text = readFileSync(this.trialFile, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
    const t = JSON.parse(text) as Partial<Trial>;
    if (typeof t.from !== 'string' || typeof t.to !== 'string' || typeof t.starts !== 'number' || typeof t.since !== 'number' || typeof t.db !== 'string') {
      throw new Error(`${this.trialFile} is not a trial file this updater can read`);
    }
    return { from: t.from, to: t.to, starts: t.starts, since: t.since, db: t.db, dbCopy: typeof t.dbCopy === 'string' ? t.dbCopy : null, abandon: t.abandon === true, run: typeof t.run === 'number' ? t.run : 0 };
  }

  writeTrial(trial: Trial): void {
    // Key order and one key per line: launch reads it with sed.
    const ordered: Trial = { from: trial.from, to: trial.to, starts: trial.starts, since: trial.since, db: trial.db, dbCopy: trial.dbCopy, abandon: trial.abandon, run: trial.run };
    writeFileAtomic(this.trialFile, `${JSON.stringify(ordered, null, 2)}\n`);
  }

  removeTrial(): void {
    if (!existsSync(this.trialFile)) return;
    rmSync(this.trialFile, { force: true });
    fsyncDir(this.root);
  }

  readResult(): TrialResult | null {
    try {
      const r = JSON.parse(readFileSync(this.resultFile, 'utf8')) as Partial<TrialResult>;
      return typeof r.to === 'string' && typeof r.reason === 'string' ? { from: String(r.from ?? ''), to: r.to, reason: r.reason, at: Number(r.at ?? 0) } : null;
    } catch {
      return null;
    }
  }

  removeResult(): void {
    rmSync(this.resultFile, { force: true });
  }
}
