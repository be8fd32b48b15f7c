/**
 * The `self` kind: the updater installs its own next release (CONTRACT.md, "The updater updates
 * itself"; docs/self-update.md). Same machine, journal and recovery as every kind; what differs
 * is that apply ends with the process handing over to its supervisor:
 *
 * - validate: the release's asset and its `.sha256` (required), downloaded and checked; room and
 *   write permission under the install root; this process runs from the root's `current`, started
 *   by `ROOT/launch` (else nothing would start the new release); no trial is open.
 * - backup: nothing to copy: the running release stays in `releases/<from>`. The backup records
 *   where `current` and `previous` point, for rollback.
 * - apply: extract into `releases/.<to>.staging-<run>` and rename it to `releases/<to>`; write the
 *   trial file; `previous` → the running release, `current` → the new one. Each step is journaled
 *   first and can be repeated.
 * - verify runs twice, in two processes. In the old release (right after apply): it exits 0 so
 *   that the supervisor starts `launch`, which runs the new release on trial; the run stays in
 *   `verify` in the journal. In the new release (recovery on boot): it checks itself (journal open
 *   and migrated, server answering with its own version) and the run ends `succeeded`; `finalize`
 *   then removes the trial file, which is what "verified" means to launch. If launch gave the
 *   trial up, the old release is the one that recovers the run: verify fails with "updater X did
 *   not start; back on Y" and the rollback puts the links and the trial back as they were.
 * - A rollback in the new release (its own check failed) marks the trial abandoned and exits:
 *   launch then gives it up and the old release ends the run.
 */
import { existsSync, readFileSync, realpathSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { ApplyOutput, BackupRef, UpdateContext } from '../../../machines/update-machine.js';
import { UpdateError, withoutEffects } from '../../core/errors.js';
import type { Outcome, StepContext } from '../../core/driver.js';
import type { UpdaterHost } from '../../core/host.js';
import type { Installed } from '../../core/installed.js';
import { readRecord } from '../../core/records.js';
import { readVersionFile, versionFromFile } from '../../core/version-file.js';
import { parseVersion, plainVersion } from '../../core/versions.js';
import type { Manifest } from '../../releases/manifest.js';
import { releaseAsset } from '../../releases/facts.js';
import { fsyncDir } from '../../util/fs-atomic.js';
import { requireFreeSpace, requireWritable } from '../backups.js';
import { fetchSmallText, parseSha256File } from '../app/download.js';
import { extractTarGz, versionTextInArchive } from '../app/extract.js';
import { downloadProgress, KeptDownloads } from '../app/kept-download.js';
import type { KindDriver } from '../kind.js';
import { readSteps } from '../steps.js';
import type { SelfComponent } from './config.js';
import { InstallRoot } from './install-root.js';

const MiB = 1024 * 1024;

const selfStepSchema = z.discriminatedUnion('step', [
  /** validate: the release asset is kept at `path`, with this sha256 (the published one). */
  z.object({ step: z.literal('asset'), path: z.string(), sha256: z.string() }),
  /** apply: the staged release is renamed to `releases/<version>`. */
  z.object({ step: z.literal('release-in'), dir: z.string() }),
  /** apply: the trial file is written. */
  z.object({ step: z.literal('trial') }),
  /** apply: `previous` → the running release, `current` → the new one. */
  z.object({ step: z.literal('switch'), current: z.string(), previous: z.string() }),
  /** verify, in the old release: it exits for the supervisor to start the new one. */
  z.object({ step: z.literal('hand-over') }),
  /** rollback, in the new release: it gives its trial up and exits. */
  z.object({ step: z.literal('abandon') }),
  /** rollback: `current` and `previous` point where they did before the run. */
  z.object({ step: z.literal('links-back'), current: z.string(), previous: z.string().nullable() }),
]);
type SelfStep = z.output<typeof selfStepSchema>;

/** What the backup records: where the links pointed before the run (rollback puts them back). */
const selfBackupSchema = z.object({ current: z.string(), previous: z.string().nullable() });
type SelfBackup = z.output<typeof selfBackupSchema>;

export interface SelfSettings {
  dataDir: string;
  githubToken: string | null;
  host: UpdaterHost;
}

/** A rejected promise for when the phase is stopped (the process is exiting). */
const untilStopped = (signal: AbortSignal): Promise<never> =>
  new Promise((_, reject) => {
    const stop = () => reject(signal.reason instanceof Error ? signal.reason : new Error('stopped'));
    if (signal.aborted) stop();
    else signal.addEventListener('abort', stop, { once: true });
  });

export class SelfDriver implements KindDriver {
  private readonly root: InstallRoot;
  private readonly downloads: KeptDownloads;
  private readonly host: UpdaterHost;

  constructor(
    private readonly c: SelfComponent,
    private readonly settings: SelfSettings,
  ) {
    this.root = new InstallRoot(c.installRoot);
    this.downloads = new KeptDownloads(settings.dataDir, c.name);
    this.host = settings.host;
  }

  installed(): Installed {
    return readVersionFile(join(this.c.installRoot, 'current'));
  }

  /** The updater answering this question runs. */
  running(): Promise<boolean | null> {
    return Promise.resolve(true);
  }

  private step(ctx: StepContext, record: SelfStep): Promise<void> {
    return ctx.step(record);
  }

  private steps(ctx: StepContext, phase: 'validate' | 'backup' | 'apply' | 'verify' | 'rollback'): SelfStep[] {
    return readSteps(ctx.stepsTaken(phase), selfStepSchema, (old) => old, `run ${ctx.runId}`);
  }

  private asset(run: UpdateContext) {
    const { asset, checksum, release } = releaseAsset(run, this.c.asset, this.c.repo);
    if (!checksum) throw new UpdateError('bad_release', `release ${release.tag} of ${this.c.repo} has no ${asset.name}.sha256: the updater installs itself only from a release whose checksum is published`);
    return { asset, checksum };
  }

  /** Where the running process was started from, resolved (null when it cannot be told). */
  private runningFrom(): string | null {
    try {
      return realpathSync(join(this.c.installRoot, 'current'));
    } catch {
      return null;
    }
  }

  async validate(run: UpdateContext, ctx: StepContext, _manifest: Manifest): Promise<void> {
    const to = plainVersion(run.toVersion!);
    const { asset, checksum } = this.asset(run);
    if (asset.size > this.c.maxDownloadMB * MiB) throw new UpdateError('bad_release', `${asset.name} is ${Math.ceil(asset.size / MiB)} MiB, over maxDownloadMB (${this.c.maxDownloadMB})`);
    if (!existsSync(this.root.releases)) {
      throw new UpdateError('not_installed', `${this.root.releases} does not exist: install the updater into ${this.c.installRoot} with its release's install.sh first (docs/self-update.md)`);
    }
    if (this.host.installRoot === null) {
      throw new UpdateError('not_supervised', `this updater was not started by ${join(this.c.installRoot, 'launch')}, so nothing would start ${to} after it exits: run it as the supervisor's command (docs/self-update.md)`);
    }
    const here = this.runningFrom();
    if (realpathSync(this.host.installRoot) !== realpathSync(this.c.installRoot) || here === null || this.host.version !== this.installed().version) {
      throw new UpdateError('not_supervised', `this updater (${this.host.version}, started from ${this.host.installRoot}) is not the release ${join(this.c.installRoot, 'current')} points at: it can update only the install root it runs from`);
    }
    if (this.root.readTrial()) throw new UpdateError('trial_open', `a self-update is still on trial (${this.root.trialFile}): wait for it to end, or see docs/self-update.md`);
    requireWritable(this.c.installRoot, 'the install root');
    requireWritable(this.root.releases, 'the releases directory');
    requireWritable(this.settings.dataDir, 'the data directory');
    requireFreeSpace(
      [
        { what: 'the new release', path: this.root.releases, mb: (asset.size * 4) / MiB },
        { what: 'the download', path: join(this.settings.dataDir, 'downloads'), mb: this.downloads.has(asset) ? 0 : asset.size / MiB },
        // The journal's copy the new release makes before its migrations.
        { what: 'the journal copy', path: this.settings.dataDir, mb: fileMB(this.host.databasePath) },
      ],
      this.c.minFreeMB,
      `updater ${to}`,
    );
    const expected = parseSha256File(await fetchSmallText(checksum.url, { token: this.settings.githubToken, signal: ctx.signal }), asset.name);
    const kept = await this.downloads.obtain(asset, {
      expected,
      maxBytes: this.c.maxDownloadMB * MiB,
      token: this.settings.githubToken,
      signal: ctx.signal,
      onProgress: downloadProgress(ctx, asset),
    });
    try {
      const text = await versionTextInArchive(kept.path, { signal: ctx.signal });
      this.requireVersion(text ?? null, asset.name, to);
    } catch (error) {
      if (error instanceof UpdateError && error.code === 'bad_release') this.downloads.remove(asset.name);
      throw error;
    }
    await this.step(ctx, { step: 'asset', path: kept.path, sha256: kept.sha256 });
  }

  private requireVersion(text: string | null, what: string, to: string): void {
    const version = text === null ? null : versionFromFile(text);
    if (!version?.version) throw new UpdateError('bad_release', `${what} has no readable VERSION file${version?.reason ? ` (${version.reason})` : ''}`);
    if (version.version !== parseVersion(to)) throw new UpdateError('bad_release', `${what} holds version ${version.version}, not ${to}`);
  }

  backup(_run: UpdateContext, _ctx: StepContext): Promise<BackupRef> {
    const current = this.root.link('current');
    if (current === null) throw new UpdateError('not_installed', `${join(this.c.installRoot, 'current')} is not a link to a release`);
    const details: SelfBackup = { current, previous: this.root.link('previous') };
    // The running release itself is the backup: it stays in releases/<from> until a later update prunes it.
    return Promise.resolve({ path: realpathSync(join(this.c.installRoot, 'current')), details });
  }

  private backupOf(run: UpdateContext): SelfBackup {
    if (!run.backup) throw new UpdateError('no_backup', `run ${run.runId} recorded no backup of the install root's links`);
    return readRecord(selfBackupSchema, run.backup.details, `the backup recorded by run ${run.runId}`);
  }

  async apply(run: UpdateContext, ctx: StepContext): Promise<ApplyOutput> {
    const to = plainVersion(run.toVersion!);
    const from = plainVersion(run.fromVersion!);
    // Resumed in the new release (the old one died after the switch, before verify was journaled): all done.
    if (this.host.version === to) return {};
    const dir = this.root.releaseDir(to);
    const staging = join(this.root.releases, `.${to}.staging-${run.runId}`);
    if (!this.steps(ctx, 'apply').some((s) => s.step === 'release-in') || !existsSync(join(dir, 'bin', 'updater.mjs'))) {
      await withoutEffects(async () => {
        const validated = this.steps(ctx, 'validate').findLast((s) => s.step === 'asset');
        const { asset } = this.asset(run);
        const expected = validated?.step === 'asset' ? validated.sha256 : null;
        if (!expected) throw new UpdateError('internal', `run ${run.runId} recorded no checked asset in validate`);
        const kept = await this.downloads.obtain(asset, { expected, maxBytes: this.c.maxDownloadMB * MiB, token: this.settings.githubToken, signal: ctx.signal });
        rmSync(staging, { recursive: true, force: true });
        const extracted = await extractTarGz(kept.path, staging, { signal: ctx.signal });
        const versionFile = join(extracted.root, 'VERSION');
        this.requireVersion(existsSync(versionFile) ? readFileSync(versionFile, 'utf8') : null, asset.name, to);
        if (!existsSync(join(extracted.root, 'bin', 'updater.mjs'))) throw new UpdateError('bad_release', `${asset.name} has no bin/updater.mjs: it is not a release of the updater`);
        // A folder of this version left by an earlier attempt is replaced (it is neither current nor previous: validate saw no trial).
        if (existsSync(dir) && this.root.linkedVersion('current') !== to) rmSync(dir, { recursive: true, force: true });
        await this.step(ctx, { step: 'release-in', dir });
        renameSync(extracted.root, dir);
        fsyncDir(this.root.releases);
        rmSync(staging, { recursive: true, force: true });
      });
    }
    const trial = this.root.readTrial();
    if (!trial || trial.to !== to) {
      await this.step(ctx, { step: 'trial' });
      this.root.writeTrial({ from, to, starts: 0, since: Math.floor(Date.now() / 1000), db: this.host.databasePath, dbCopy: null, abandon: false, run: run.runId });
    }
    const backup = this.backupOf(run);
    await this.step(ctx, { step: 'switch', current: InstallRoot.target(to), previous: backup.current });
    this.root.setLink('previous', backup.current);
    this.root.setLink('current', InstallRoot.target(to));
    ctx.log.info({ from, to }, `updater ${to} is installed in ${dir}; it starts on trial when this process exits`);
    return {};
  }

  async verify(run: UpdateContext, ctx: StepContext): Promise<void> {
    const to = plainVersion(run.toVersion!);
    const from = plainVersion(run.fromVersion!);
    if (this.host.version === to) {
      // The new release, recovering its own run on boot: it checks itself.
      try {
        await this.host.selfCheck(ctx.signal);
      } catch (error) {
        throw new UpdateError('self_check_failed', `updater ${to} started but did not pass its own check: ${(error as Error).message}`);
      }
      return;
    }
    const trial = this.root.readTrial();
    if (trial && trial.to === to && this.root.linkedVersion('current') === to && !trial.abandon) {
      // The old release, right after apply: hand over to the supervisor, which starts launch.
      await this.step(ctx, { step: 'hand-over' });
      ctx.log.info({ from, to }, `exiting so that the supervisor starts updater ${to} on trial`);
      this.host.restart(0, `updater ${to} is installed; starting it on trial`);
      return untilStopped(ctx.signal);
    }
    const result = this.root.readResult();
    const why = result && result.to === to ? ` (${result.reason})` : '';
    throw new UpdateError('self_not_started', `updater ${to} did not start; back on ${this.host.version}${why}`);
  }

  async rollback(run: UpdateContext, ctx: StepContext): Promise<void> {
    const to = plainVersion(run.toVersion ?? '');
    if (run.toVersion && this.host.version === to && this.host.version !== plainVersion(run.fromVersion ?? '')) {
      // The new release failed its own check: give the trial up; launch starts the old release, which ends the run.
      const trial = this.root.readTrial();
      if (trial && trial.to === to) {
        await this.step(ctx, { step: 'abandon' });
        this.root.writeTrial({ ...trial, abandon: true });
      }
      ctx.log.error({ to }, `updater ${to} gives its trial up; launch starts the previous release`);
      this.host.restart(1, `updater ${to} gave its trial up`);
      return untilStopped(ctx.signal);
    }
    // The old release: put the links back as they were before the run, close the trial.
    const backup = run.backup ? this.backupOf(run) : null;
    if (backup) {
      await this.step(ctx, { step: 'links-back', current: backup.current, previous: backup.previous });
      this.root.setLink('current', backup.current);
      this.root.setLink('previous', backup.previous);
    }
    const trial = this.root.readTrial();
    if (trial && (!run.toVersion || trial.to === to)) {
      if (trial.dbCopy) rmSync(trial.dbCopy, { force: true });
      this.root.removeTrial();
    }
    // The failed release's folder, unless a link still points at it.
    if (run.toVersion && this.root.linkedVersion('current') !== to && this.root.linkedVersion('previous') !== to && this.host.version !== to) {
      rmSync(this.root.releaseDir(to), { recursive: true, force: true });
    }
  }

  async finalize(run: UpdateContext, outcome: Outcome, log: Logger): Promise<void> {
    const to = run.toVersion ? plainVersion(run.toVersion) : null;
    if (outcome === 'succeeded' && to === this.host.version) {
      // Committed `succeeded`; now the trial ends: launch sees it verified.
      const trial = this.root.readTrial();
      if (trial && trial.to === to) {
        if (trial.dbCopy) rmSync(trial.dbCopy, { force: true });
        this.root.removeTrial();
      }
      this.prune(log);
    }
    if (outcome === 'rolled_back') this.root.removeResult();
    // Staged folders of this run; the kept download unless this was a dry run (it is kept for the real run).
    for (const name of readdirSafe(this.root.releases)) if (name.endsWith(`.staging-${run.runId}`)) rmSync(join(this.root.releases, name), { recursive: true, force: true });
    if (!(outcome === 'validated' && run.dryRun)) this.downloads.keepOnly(null);
  }

  /** Releases that neither `current` nor `previous` point at (and staging left by a crash) are removed. */
  private prune(log: Logger): void {
    const keep = new Set([this.root.linkedVersion('current'), this.root.linkedVersion('previous')]);
    for (const name of readdirSafe(this.root.releases)) {
      if (keep.has(name)) continue;
      const path = join(this.root.releases, name);
      if (!statSync(path).isDirectory()) continue;
      rmSync(path, { recursive: true, force: true });
      log.info({ path }, `removed ${path}: neither current nor previous`);
    }
  }

  /**
   * On boot: a trial this release passed whose end was committed but not yet acted on (the process
   * died between `succeeded` and removing the trial file) is closed now.
   */
  sweep(settled: (runId: number) => boolean, log: Logger): Promise<void> {
    const trial = this.root.readTrial();
    if (trial && trial.to === this.host.version && trial.run > 0 && settled(trial.run)) {
      if (trial.dbCopy) rmSync(trial.dbCopy, { force: true });
      this.root.removeTrial();
      log.info({ run_id: trial.run }, `closed the trial of updater ${trial.to}: its run had ended`);
    }
    return Promise.resolve();
  }
}

function fileMB(path: string): number {
  try {
    return statSync(path).size / MiB;
  } catch {
    return 0;
  }
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
