/**
 * A test driver that makes real, observable file changes: it "installs" a version into a
 * directory file by file, so a crash in the middle leaves a visibly half-applied tree.
 *
 * Layout under `root`:
 *   live/                 the installed tree (VERSION, a.txt, b.txt, c.txt)
 *   releases/<version>/   trees that can be installed; a file `BROKEN` in one makes verify fail,
 *                         `INVALID` makes validate fail, `APPLY_FAILS` makes apply fail midway
 *   backups/              full copies of live/, one per run
 *   effects.log           one line per effect applied: "<runId> <phase> <what>"
 */
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { join } from 'node:path';
import { UpdateError } from '../../src/core/errors.js';
import type { Driver } from '../../src/core/driver.js';
import type { UpdateContext } from '../../machines/update-machine.js';
import { writeFileAtomic } from '../../src/util/fs-atomic.js';

export const FILES = ['a.txt', 'b.txt', 'c.txt', 'VERSION'];

export function makeTree(dir: string, version: string, extra: Record<string, string> = {}): void {
  mkdirSync(dir, { recursive: true });
  for (const f of FILES) writeFileSync(join(dir, f), f === 'VERSION' ? `${version}\n` : `${f} of ${version}\n`);
  for (const [name, body] of Object.entries(extra)) writeFileSync(join(dir, name), body);
}

export function readTree(dir: string): Record<string, string> {
  if (!existsSync(dir)) return {};
  const out: Record<string, string> = {};
  for (const f of readdirSync(dir).sort()) out[f] = readFileSync(join(dir, f), 'utf8');
  return out;
}

const compare = (a: string, b: string) => {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
};

export class DirDriver implements Driver {
  readonly live: string;
  readonly releases: string;
  readonly backups: string;
  readonly effects: string;

  constructor(readonly root: string, private readonly opts: { stepDelayMs?: number } = {}) {
    this.live = join(root, 'live');
    this.releases = join(root, 'releases');
    this.backups = join(root, 'backups');
    this.effects = join(root, 'effects.log');
    mkdirSync(this.backups, { recursive: true });
  }

  private effect(run: UpdateContext, phase: string, what: string) {
    appendFileSync(this.effects, `${run.runId} ${phase} ${what}\n`);
  }

  private async pause(signal: AbortSignal) {
    if (this.opts.stepDelayMs) await new Promise((r) => setTimeout(r, this.opts.stepDelayMs));
    signal.throwIfAborted();
  }

  private installed(): string | null {
    const f = join(this.live, 'VERSION');
    return existsSync(f) ? readFileSync(f, 'utf8').trim() : null;
  }

  async discover(run: UpdateContext) {
    const current = this.installed();
    const versions = readdirSync(this.releases).sort(compare);
    const target = run.requestedVersion ?? versions.at(-1) ?? null;
    if (!target || !versions.includes(target)) throw new UpdateError('not_found', `no release ${target ?? '(none)'}`);
    return { fromVersion: current, toVersion: target, upToDate: current === target };
  }

  async validate(run: UpdateContext) {
    if (existsSync(join(this.releases, run.toVersion!, 'INVALID'))) throw new UpdateError('bad_release', `release ${run.toVersion} is marked invalid`);
  }

  async backup(run: UpdateContext, ctx: Parameters<Driver['backup']>[1]) {
    const final = join(this.backups, `dir.run${String(run.runId).padStart(6, "0")}.d`);
    const partial = join(this.backups, `.partial-run${run.runId}`);
    // Idempotent: a partial copy from an interrupted attempt is discarded, a finished one redone.
    rmSync(partial, { recursive: true, force: true });
    rmSync(final, { recursive: true, force: true });
    mkdirSync(partial);
    for (const f of readdirSync(this.live).sort()) {
      await ctx.step({ step: 'copy', file: f });
      cpSync(join(this.live, f), join(partial, f));
      await this.pause(ctx.signal);
    }
    renameSync(partial, final);
    return { path: final };
  }

  async apply(run: UpdateContext, ctx: Parameters<Driver['apply']>[1]) {
    const src = join(this.releases, run.toVersion!);
    const files = readdirSync(src).filter((f) => !['BROKEN', 'INVALID', 'APPLY_FAILS'].includes(f)).sort((a, b) => (a === 'VERSION' ? 1 : b === 'VERSION' ? -1 : a.localeCompare(b)));
    for (const [i, f] of files.entries()) {
      if (i === 1 && existsSync(join(src, 'APPLY_FAILS'))) throw new UpdateError('apply_failed', `could not write ${f}`);
      await ctx.step({ step: 'write', file: f });
      writeFileAtomic(join(this.live, f), readFileSync(join(src, f)));
      this.effect(run, 'apply', `write ${f}`);
      await this.pause(ctx.signal);
    }
  }

  async verify(run: UpdateContext) {
    const want = readTree(join(this.releases, run.toVersion!));
    if ('BROKEN' in want) throw new UpdateError('health_failed', `health check of ${run.toVersion} failed: release is broken`);
    const have = readTree(this.live);
    for (const [f, body] of Object.entries(want)) {
      if (have[f] !== body) throw new UpdateError('verify_failed', `${f} does not hold ${run.toVersion}`);
    }
  }

  async rollback(run: UpdateContext, ctx: Parameters<Driver['rollback']>[1]) {
    if (!run.backup) throw new UpdateError('no_backup', 'no backup was recorded');
    const from = run.backup.path;
    if (!existsSync(from)) throw new UpdateError('no_backup', `the backup ${from} is missing`);
    const want = readTree(from);
    // Idempotent: write every file of the backup, remove files the backup does not have.
    for (const f of readdirSync(this.live).sort()) {
      if (!(f in want)) {
        await ctx.step({ step: 'remove', file: f });
        rmSync(join(this.live, f));
        this.effect(run, 'rollback', `remove ${f}`);
      }
    }
    for (const [f, body] of Object.entries(want)) {
      await ctx.step({ step: 'restore', file: f });
      writeFileAtomic(join(this.live, f), body);
      this.effect(run, 'rollback', `restore ${f}`);
      await this.pause(ctx.signal);
    }
    if (existsSync(join(this.root, 'ROLLBACK_FAILS'))) throw new UpdateError('rollback_failed', 'rollback could not restart the service');
  }

  async planRestore() {
    const all = readdirSync(this.backups).filter((f) => f.endsWith('.d')).sort();
    const newest = all.at(-1);
    if (!newest) return null;
    const path = join(this.backups, newest);
    return { backup: { path }, version: readFileSync(join(path, 'VERSION'), 'utf8').trim(), currentVersion: this.installed() };
  }
}
