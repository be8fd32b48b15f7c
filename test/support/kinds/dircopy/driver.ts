/**
 * The work of a dircopy component: the release's folder is copied beside the target (staged),
 * then swapped in by two renames, each recorded before it is done; rollback puts the old tree
 * back by rename, or from the backup copy when it is gone. A release folder holding `BROKEN`
 * fails verify (so the rollback path runs), like a service that does not come up.
 */
import { cpSync, existsSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import type { BackupRef, UpdateContext } from '../../../../machines/update-machine.js';
import type { Outcome, RestorePlan, StepContext } from '../../../../src/core/driver.js';
import { UpdateError, withoutEffects } from '../../../../src/core/errors.js';
import type { Installed } from '../../../../src/core/installed.js';
import { parseVersion, plainVersion } from '../../../../src/core/versions.js';
import { listBackups, newBackupPath, pruneBackups, requireWritable } from '../../../../src/kinds/backups.js';
import type { KindDriver, KindEnv } from '../../../../src/kinds/kind.js';
import type { Manifest } from '../../../../src/releases/manifest.js';
import { readVersionFile } from '../../../../src/core/version-file.js';
import type { DircopyComponent } from './config.js';
import { backupOf, recordStep, stepsTaken, type DircopyBackup } from './records.js';

export class DircopyDriver implements KindDriver {
  constructor(
    private readonly c: DircopyComponent,
    private readonly env: KindEnv,
  ) {}

  installed(): Installed {
    return readVersionFile(this.c.target);
  }

  async running(): Promise<boolean | null> {
    return existsSync(this.c.target);
  }

  private paths(runId: number) {
    return { staging: `${this.c.target}.staging-${runId}`, old: `${this.c.target}.old-${runId}`, failed: `${this.c.target}.failed-${runId}` };
  }

  private releaseDir(run: UpdateContext): string {
    return join(this.c.releasesDir, plainVersion(run.toVersion!));
  }

  async validate(run: UpdateContext, _ctx: StepContext, _manifest: Manifest): Promise<void> {
    if (!existsSync(this.releaseDir(run))) throw new UpdateError('bad_release', `${this.c.releasesDir} has no folder for ${run.toVersion}`);
    requireWritable(dirname(this.c.target), 'the directory holding the target');
    requireWritable(this.env.backupDir, 'the backup directory');
  }

  async backup(run: UpdateContext, ctx: StepContext): Promise<BackupRef> {
    if (ctx.resumed) for (const s of stepsTaken(ctx, 'backup')) if (s.step === 'backup-dir') rmSync(s.path, { recursive: true, force: true });
    const path = newBackupPath(this.env.backupDir, this.c.name, 'd');
    await recordStep(ctx, { step: 'backup-dir', path });
    cpSync(this.c.target, path, { recursive: true });
    const details: DircopyBackup = { target: this.c.target, files: readdirSync(path).length };
    return { path, details };
  }

  async apply(run: UpdateContext, ctx: StepContext): Promise<void> {
    const p = this.paths(run.runId);
    await withoutEffects(async () => {
      await recordStep(ctx, { step: 'stage', from: this.releaseDir(run) });
      rmSync(p.staging, { recursive: true, force: true });
      cpSync(this.releaseDir(run), p.staging, { recursive: true });
    });
    await recordStep(ctx, { step: 'old-aside', to: p.old });
    renameSync(this.c.target, p.old);
    await recordStep(ctx, { step: 'new-in', from: p.staging });
    renameSync(p.staging, this.c.target);
    this.env.serviceChanged();
  }

  async verify(run: UpdateContext): Promise<void> {
    if (existsSync(join(this.c.target, 'BROKEN'))) throw new UpdateError('health_failed', `${this.c.name} ${run.toVersion} does not come up (its release is marked BROKEN)`);
    const installed = this.installed();
    if (installed.version !== parseVersion(run.toVersion)) throw new UpdateError('verify_failed', `${this.c.target}/VERSION says ${installed.raw ?? installed.reason}, not ${run.toVersion}`);
  }

  async rollback(run: UpdateContext, ctx: StepContext): Promise<void> {
    const p = this.paths(run.runId);
    const applied = stepsTaken(ctx, 'apply');
    if (run.mode === 'update' && !applied.some((s) => s.step === 'old-aside')) return;
    if (run.mode === 'update' && existsSync(p.old)) {
      if (existsSync(this.c.target)) {
        rmSync(p.failed, { recursive: true, force: true });
        renameSync(this.c.target, p.failed);
      }
      await recordStep(ctx, { step: 'restore', from: p.old });
      renameSync(p.old, this.c.target);
    } else {
      const backup = backupOf(run);
      await recordStep(ctx, { step: 'restore', from: backup.path });
      rmSync(p.failed, { recursive: true, force: true });
      if (existsSync(this.c.target)) renameSync(this.c.target, p.failed);
      cpSync(backup.path, this.c.target, { recursive: true });
    }
    this.env.serviceChanged();
  }

  async finalize(run: UpdateContext, outcome: Outcome, log: Logger): Promise<void> {
    if (outcome === 'rollback_failed') return;
    const p = this.paths(run.runId);
    for (const path of [p.staging, p.failed, p.old]) rmSync(path, { recursive: true, force: true });
    if (outcome === 'succeeded') {
      const removed = pruneBackups(this.env.backupDir, this.c.name, 'd', this.env.backupRetention);
      if (removed.length) log.info({ removed }, `removed ${removed.length} old backup(s) of ${this.c.name}`);
    }
  }

  async planRestore(): Promise<RestorePlan | null> {
    const newest = listBackups(this.env.backupDir, this.c.name, 'd').at(-1);
    if (!newest) return null;
    const details: DircopyBackup = { target: this.c.target, files: readdirSync(newest).length };
    return { backup: { path: newest, details }, version: readVersionFile(newest).version, currentVersion: this.installed().version };
  }
}
