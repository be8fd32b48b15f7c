/**
 * App components: a directory installed from a release tarball and run by a service manager
 * (systemd or user commands). The seed's PHASE 4B, 5 and 7, made crash-safe:
 * - validate downloads the asset and checks its sha256 (kept-download.ts: a dry run keeps it for
 *   the real run); apply extracts the kept file into a staging directory beside the install path
 *   before anything is touched, so these failures abort with nothing changed;
 * - after the stop, the device's files that `preserve` names are copied from the installed tree
 *   into the staged one (preserve.ts): the installed tree itself is never written;
 * - the switch is two renames on one file system (old tree aside, new tree in), each recorded
 *   before it is done, so rollback knows exactly what to undo and can repeat itself;
 * - the backup tarball is the last resort when the old tree is gone.
 */
import { existsSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import type { ApplyOutput, BackupRef, UpdateContext } from '../../../machines/update-machine.js';
import type { AppComponent } from './config.js';
import { UpdateError, withoutEffects } from '../../core/errors.js';
import type { Outcome, RestorePlan, StepContext } from '../../core/driver.js';
import { readVersionFile, versionFromFile } from '../../core/version-file.js';
import type { Installed } from '../../core/installed.js';
import type { Manifest } from '../../releases/manifest.js';
import { parseVersion, plainVersion } from '../../core/versions.js';
import { probeHealthUrl, waitUntilHealthy } from '../../services/health.js';
import { serviceWatch } from '../../services/service-watch.js';
import { runCommand, tail } from '../../services/run-command.js';
import { createServiceManager, type ServiceManager } from '../../services/service-manager.js';
import { fsyncDir } from '../../util/fs-atomic.js';
import { listBackups, newBackupPath, pruneBackups, requireFreeSpace, requireWritable } from '../backups.js';
import type { KindDriver } from '../kind.js';
import { releaseAsset } from '../../releases/facts.js';
import { fetchSmallText, parseSha256File } from './download.js';
import { extractTarGz, restoreTree, versionTextInArchive } from './extract.js';
import { archiveTree } from './tree-archive.js';
import { recordStep, stepsTaken, type AppBackup } from './records.js';
import { downloadProgress, KeptDownloads, type KeptAsset } from './kept-download.js';
import { carryPreserved, keptSentence, planPreserve } from './preserve.js';

export interface AppSettings {
  backupDir: string;
  backupRetention: number;
  dataDir: string;
  githubToken: string | null;
  /** Poll interval of verify (ms). */
  pollMs?: number;
}

const MiB = 1024 * 1024;

function treeBytes(dir: string): number {
  let total = 0;
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) total += statSync(p).size;
    }
  };
  if (existsSync(dir)) walk(dir);
  return total;
}

const renameDurably = (from: string, to: string) => {
  renameSync(from, to);
  fsyncDir(dirname(to));
};

export class AppDriver implements KindDriver {
  readonly manager: ServiceManager;
  private readonly downloads: KeptDownloads;

  constructor(
    private readonly c: AppComponent,
    private readonly settings: AppSettings,
    manager?: ServiceManager,
  ) {
    this.manager = manager ?? createServiceManager(c.service);
    this.downloads = new KeptDownloads(settings.dataDir, c.name);
  }

  installed(): Installed {
    return readVersionFile(this.c.installPath);
  }

  async running(): Promise<boolean | null> {
    try {
      return (await this.manager.status()).active;
    } catch {
      return null;
    }
  }

  // Paths of one run, all beside the install path (same file system, so renames are atomic).
  private paths(runId: number) {
    const base = this.c.installPath.replace(/\/+$/, '');
    return {
      staging: `${base}.staging-${runId}`,
      restoring: `${base}.restoring-${runId}`,
      old: `${base}.old-${runId}`,
      failed: `${base}.failed-${runId}`,
      /** Where an updater before kept downloads named each run's (swept, never written now). */
      legacyDownload: join(this.settings.dataDir, 'downloads', `${this.c.name}-${runId}.tar.gz`),
    };
  }

  private asset(run: UpdateContext) {
    return releaseAsset(run, this.c.asset, this.c.repo);
  }

  private pip(): string[] {
    if (this.c.pipInstall) return this.c.pipInstall;
    return this.c.venv ? [join(this.c.venv, 'bin', 'pip'), 'install'] : ['pip3', 'install'];
  }

  async validate(run: UpdateContext, ctx: StepContext, manifest: Manifest): Promise<void> {
    const { asset } = this.asset(run);
    if (asset.size > this.c.maxDownloadMB * MiB) {
      throw new UpdateError('bad_release', `${asset.name} is ${Math.ceil(asset.size / MiB)} MiB, over maxDownloadMB (${this.c.maxDownloadMB})`);
    }
    if (!existsSync(this.c.installPath)) throw new UpdateError('not_installed', `${this.c.installPath} does not exist: install ${this.c.name} once by hand before updating it`);
    requireWritable(this.c.installPath, 'the install directory');
    requireWritable(dirname(this.c.installPath), 'the directory holding the install directory');
    requireWritable(this.settings.backupDir, 'the backup directory');
    requireWritable(this.settings.dataDir, 'the data directory');
    // The new tree beside the install directory (estimated at 3× the compressed asset), the
    // download in the data directory, the backup (at most the tree's size: gzip of a tree); each
    // on its own disk or added up where they share one; minFreeMB is the install disk's floor.
    requireFreeSpace(
      [
        { what: 'the new tree', path: dirname(this.c.installPath), mb: (asset.size * 3) / MiB },
        // A kept download of this asset is checked and reused: no room needed for another.
        { what: 'the download', path: join(this.settings.dataDir, 'downloads'), mb: this.downloads.has(asset) ? 0 : asset.size / MiB },
        { what: 'the backup', path: this.settings.backupDir, mb: treeBytes(this.c.installPath) / MiB },
      ],
      Math.max(this.c.minFreeMB, manifest.minFreeMB ?? 0),
      `${this.c.name} ${run.toVersion}`,
    );
    if (!(await this.manager.exists(ctx.signal))) throw new UpdateError('service_unknown', `${this.manager.description} is not known to its service manager`);
    if (manifest.requiresRunning && !(await this.manager.status(ctx.signal)).active) {
      throw new UpdateError('service_not_running', `the release requires ${this.manager.description} to be running before the update, and it is not`);
    }
    // Last, once the cheap checks passed: the asset itself, downloaded (or a kept download that
    // still matches) and checked against the release's .sha256. A dry run keeps it for the real run.
    const expected = await this.publishedSha256(run, ctx);
    const kept = await this.obtain(run, ctx, expected);
    try {
      // And it is the release asked for: its VERSION, read without unpacking (apply checks a linked one).
      const text = await versionTextInArchive(kept.path, { signal: ctx.signal });
      if (text !== undefined) this.requireVersion(text, asset.name, run);
    } catch (error) {
      if (error instanceof UpdateError && error.code === 'bad_release') this.downloads.remove(asset.name);
      throw error;
    }
    await recordStep(ctx, { step: 'asset', path: kept.path, sha256: kept.sha256, reused: kept.reused });
  }

  /** Throws `bad_release` unless the VERSION text (null: no file) is the run's target. */
  private requireVersion(text: string | null, assetName: string, run: UpdateContext): void {
    const version = text === null ? null : versionFromFile(text);
    if (!version?.version) throw new UpdateError('bad_release', `${assetName} has no readable VERSION file${version?.reason ? ` (${version.reason})` : ''}`);
    if (version.version !== parseVersion(run.toVersion)) throw new UpdateError('bad_release', `${assetName} holds version ${version.version}, not ${run.toVersion}`);
  }

  /** The sha256 the release publishes for its asset (`<asset>.sha256`, sha256sum format), or null when it has none. */
  private async publishedSha256(run: UpdateContext, ctx: StepContext): Promise<string | null> {
    const { asset, checksum } = this.asset(run);
    if (!checksum) return null;
    return parseSha256File(await fetchSmallText(checksum.url, { token: this.settings.githubToken, signal: ctx.signal }), asset.name);
  }

  /** The release asset as a kept file with the `expected` sha256: reused when it matches, else downloaded. */
  private async obtain(run: UpdateContext, ctx: StepContext, expected: string | null): Promise<KeptAsset> {
    const { asset } = this.asset(run);
    const kept = await this.downloads.obtain(asset, {
      expected,
      maxBytes: this.c.maxDownloadMB * MiB,
      token: this.settings.githubToken,
      signal: ctx.signal,
      onProgress: downloadProgress(ctx, asset),
    });
    if (kept.reused) ctx.log.info({ path: kept.path, sha256: kept.sha256 }, `${asset.name} is already downloaded and its sha256 matches: not downloaded again`);
    else if (!expected) ctx.log.info({ sha256: kept.sha256 }, `${asset.name} has no published .sha256; downloaded ${kept.bytes} bytes`);
    return kept;
  }

  async backup(run: UpdateContext, ctx: StepContext): Promise<BackupRef> {
    if (ctx.resumed) {
      for (const step of stepsTaken(ctx, 'backup')) {
        if (step.step === 'backup-file') rmSync(step.path, { force: true });
      }
    }
    const path = newBackupPath(this.settings.backupDir, this.c.name, 'tar.gz');
    await recordStep(ctx, { step: 'backup-file', path });
    const { entries, bytes } = await archiveTree(this.c.installPath, path, { signal: ctx.signal });
    ctx.log.info({ backup: path, entries, bytes }, `backed up ${this.c.installPath} to ${path}`);
    const details: AppBackup = { installPath: this.c.installPath, oldTree: this.paths(run.runId).old };
    return { path, details };
  }

  async apply(run: UpdateContext, ctx: StepContext): Promise<ApplyOutput> {
    const p = this.paths(run.runId);
    const patterns = this.c.preserve ?? [];
    // Stage the kept download: nothing on the device changes until the service is stopped.
    const staged = await withoutEffects(async () => {
      const { asset } = this.asset(run);
      // The file validate checked (its sha256 as recorded then); a run validated by an updater
      // that recorded none checks against the published .sha256, as validate would.
      const validated = stepsTaken(ctx, 'validate').findLast((s) => s.step === 'asset');
      const expected = validated?.step === 'asset' ? validated.sha256 : await this.publishedSha256(run, ctx);
      const kept = await this.obtain(run, ctx, expected);
      rmSync(p.staging, { recursive: true, force: true });
      let root: string;
      try {
        const extracted = await extractTarGz(kept.path, p.staging, { signal: ctx.signal });
        this.requireVersion(existsSync(join(extracted.root, 'VERSION')) ? readFileSync(join(extracted.root, 'VERSION'), 'utf8') : null, asset.name, run);
        root = extracted.root;
      } catch (error) {
        // An archive refused for what it holds is of no use kept.
        if (error instanceof UpdateError && error.code === 'bad_release') this.downloads.remove(asset.name);
        throw error;
      }
      // What preserve would do, checked before the stop: a release that makes it impossible aborts here.
      if (patterns.length) planPreserve(this.c.installPath, root, patterns);
      return root;
    });

    await recordStep(ctx, { step: 'stop' });
    await this.manager.stop(ctx.signal);
    const notes: string[] = [];
    if (patterns.length) {
      // With the service stopped, the device's files are as it left them: copy them into the new tree.
      const plan = planPreserve(this.c.installPath, staged, patterns);
      if (plan.length) {
        await recordStep(ctx, { step: 'preserve', kept: plan.map((f) => f.path), releaseCopies: plan.filter((f) => f.release === 'different').map((f) => `${f.path}.new`) });
        carryPreserved(this.c.installPath, staged, plan);
        const sentence = keptSentence(plan);
        if (sentence) notes.push(sentence);
        ctx.log.info({ kept: plan }, `${sentence}`);
      }
    }
    await recordStep(ctx, { step: 'old-aside', to: p.old });
    renameDurably(this.c.installPath, p.old);
    await recordStep(ctx, { step: 'new-in', from: staged });
    renameDurably(staged, this.c.installPath);
    if (existsSync(join(this.c.installPath, 'requirements.txt'))) {
      await recordStep(ctx, { step: 'requirements' });
      await this.installRequirements(ctx);
    }
    await recordStep(ctx, { step: 'start' });
    await this.manager.start(ctx.signal);
    return { notes };
  }

  private async installRequirements(ctx: StepContext): Promise<void> {
    const argv = [...this.pip(), '-r', join(this.c.installPath, 'requirements.txt')];
    ctx.progress('Installing Python requirements');
    const r = await runCommand(argv, { timeoutMs: 15 * 60_000, signal: ctx.signal, onLine: (line) => ctx.log.info({ pip: line }) });
    if (r.code !== 0) {
      throw new UpdateError('requirements_failed', `pip could not install requirements.txt (exit ${r.code ?? r.signal}${r.timedOut ? ', timed out' : ''}): ${tail(r.stderr || r.stdout, 2)}`);
    }
  }

  async verify(run: UpdateContext, ctx: StepContext): Promise<void> {
    // Verify follows apply, which ended by starting the service (in this process, or in the one
    // that crashed during verify: the start had succeeded then too).
    await this.waitHealthy(ctx, run.toVersion, true);
  }

  /**
   * Active and staying active for settleSeconds; health URL 200 with the version; VERSION as expected.
   * `started`: the run has just started the service. A service that goes down for good ends the
   * wait at once, not at the timeout (serviceWatch); a health URL that answers an error is asked
   * again until the timeout (a service may answer 503 while it starts).
   */
  private async waitHealthy(ctx: StepContext, version: string | null, started: boolean): Promise<void> {
    const pollMs = this.settings.pollMs ?? 100;
    const timeoutMs = (this.c.health?.timeoutSeconds ?? 60) * 1000;
    const judge = serviceWatch(this.manager.description, started);
    const checks: Array<() => Promise<string | null>> = [async () => judge(await this.manager.status(ctx.signal))];
    if (version) {
      checks.push(async () => {
        const installed = this.installed();
        return installed.version === parseVersion(version) ? null : `${this.c.installPath}/VERSION says ${installed.raw ?? installed.reason}, expected ${plainVersion(version)}`;
      });
    }
    if (this.c.health?.url) {
      const url = this.c.health.url;
      checks.push(() => probeHealthUrl({ url, expectVersion: version }, ctx.signal));
    }
    // Healthy, then still healthy settleSeconds later (two passes at least when settling).
    await waitUntilHealthy({ deadline: Date.now() + timeoutMs + this.c.settleSeconds * 1000, pollMs, signal: ctx.signal, checks, passesNeeded: this.c.settleSeconds > 0 ? 2 : 1, settleMs: this.c.settleSeconds * 1000 });
  }

  async rollback(run: UpdateContext, ctx: StepContext): Promise<void> {
    const p = this.paths(run.runId);
    const restore = run.mode === 'restore';
    const applied = stepsTaken(ctx, 'apply');
    const touched = restore || applied.some((s) => s.step === 'stop');
    const backup = run.backup?.path ?? null;
    const done: string[] = [];
    try {
      if (touched) {
        await recordStep(ctx, { step: 'stop' });
        await this.manager.stop(ctx.signal);
        if (!restore && existsSync(p.old)) {
          // The old tree is still beside: put it back by rename.
          if (existsSync(this.c.installPath)) {
            await recordStep(ctx, { step: 'failed-aside', to: p.failed });
            rmSync(p.failed, { recursive: true, force: true });
            renameDurably(this.c.installPath, p.failed);
          }
          await recordStep(ctx, { step: 'old-back', from: p.old });
          renameDurably(p.old, this.c.installPath);
          done.push(`the old tree is back in ${this.c.installPath}`);
        } else if (restore || !this.isVersion(run.fromVersion)) {
          // The old tree is gone (or this is a manual restore): rebuild it from the backup tarball.
          if (!backup || !existsSync(backup)) throw new UpdateError('no_backup', `the old tree is gone and the backup ${backup ?? '(none)'} is missing`);
          await recordStep(ctx, { step: 'restore-backup', backup });
          rmSync(p.restoring, { recursive: true, force: true });
          await restoreTree(backup, p.restoring, { signal: ctx.signal });
          if (existsSync(this.c.installPath)) {
            rmSync(p.failed, { recursive: true, force: true });
            renameDurably(this.c.installPath, p.failed);
          }
          renameDurably(p.restoring, this.c.installPath);
          done.push(`${this.c.installPath} restored from ${backup}`);
        }
        if ((restore || applied.some((s) => s.step === 'requirements')) && existsSync(join(this.c.installPath, 'requirements.txt'))) {
          await recordStep(ctx, { step: 'requirements' });
          await this.installRequirements(ctx);
        }
        await recordStep(ctx, { step: 'start' });
        await this.manager.start(ctx.signal);
      }
      await this.waitHealthy(ctx, restore ? null : run.fromVersion, touched);
    } catch (error) {
      const why = (error as Error).message;
      const where = [
        ...done,
        existsSync(p.old) ? `the old tree is at ${p.old}` : null,
        existsSync(p.failed) ? `the failed tree is at ${p.failed}` : null,
        backup ? `the backup is ${backup}` : null,
      ].filter(Boolean);
      throw new UpdateError(
        'rollback_failed',
        `${why}. ${where.join('; ')}. To finish by hand: stop the service, put the old tree (or the backup, tar -xzf BACKUP -C ${this.c.installPath}) in ${this.c.installPath}, start the service`,
      );
    }
  }

  private isVersion(version: string | null): boolean {
    const v = this.installed().version;
    return v !== null && version !== null && v === parseVersion(version);
  }

  async finalize(run: UpdateContext, outcome: Outcome, log: Logger): Promise<void> {
    // rollback_failed: nothing is deleted, so a person can see everything that is left.
    if (outcome === 'rollback_failed') return;
    const p = this.paths(run.runId);
    for (const path of [p.legacyDownload, p.staging, p.restoring, p.failed]) rmSync(path, { recursive: true, force: true });
    // The kept download is for the real run after a dry run: any other end removes it (a later
    // run downloads again); rollback_failed returned above (nothing is deleted then).
    if (outcome !== 'validated' && run.mode === 'update' && run.toVersion) {
      this.downloads.remove(this.c.asset.replaceAll('{version}', plainVersion(run.toVersion)));
    }
    if (outcome === 'succeeded') {
      rmSync(p.old, { recursive: true, force: true });
      const removed = pruneBackups(this.settings.backupDir, this.c.name, 'tar.gz', this.settings.backupRetention);
      if (removed.length) log.info({ removed }, `removed ${removed.length} old backup(s) of ${this.c.name}`);
    }
  }

  async sweep(settled: (runId: number) => boolean, log: Logger): Promise<void> {
    const parent = dirname(this.c.installPath);
    const base = this.c.installPath.replace(/\/+$/, '').slice(parent.length + 1);
    const beside = new RegExp(`^${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.(?:staging|restoring|failed|old)-(\\d+)$`);
    const downloads = join(this.settings.dataDir, 'downloads');
    // Per-run downloads, as an updater before kept downloads named them.
    const mine = new RegExp(`^${this.c.name}-(\\d+)\\.tar\\.gz$`);
    const candidates = [
      ...(existsSync(parent) ? readdirSync(parent).map((n) => [join(parent, n), beside.exec(n)] as const) : []),
      ...(existsSync(downloads) ? readdirSync(downloads).map((n) => [join(downloads, n), mine.exec(n)] as const) : []),
    ];
    for (const [path, m] of candidates) {
      if (m && settled(Number(m[1]))) {
        log.info({ path }, 'removing a leftover of a finished run');
        rmSync(path, { recursive: true, force: true });
      }
    }
    // A download cut by a crash (no run is active while the updater sweeps at start).
    if (existsSync(this.downloads.dir)) {
      for (const name of readdirSync(this.downloads.dir).filter((n) => n.endsWith('.partial'))) {
        log.info({ path: join(this.downloads.dir, name) }, 'removing a download cut short');
        rmSync(join(this.downloads.dir, name), { force: true });
      }
      // A kept download of the version now installed is of no more use: its run ended (a crash
      // after its end skipped finalize, which removes it); a dry run's of another version stays.
      const installed = this.installed().version;
      const asset = installed ? this.c.asset.replaceAll('{version}', plainVersion(installed)) : null;
      if (asset && existsSync(join(this.downloads.dir, asset))) {
        log.info({ path: join(this.downloads.dir, asset) }, 'removing the kept download of the installed version');
        this.downloads.remove(asset);
      }
    }
  }

  async planRestore(): Promise<RestorePlan | null> {
    const newest = listBackups(this.settings.backupDir, this.c.name, 'tar.gz').at(-1);
    if (!newest) return null;
    const details: AppBackup = { installPath: this.c.installPath, oldTree: null };
    return { backup: { path: newest, details }, version: await versionInArchive(newest), currentVersion: this.installed().version };
  }
}

/** The version in a backup tarball's top-level VERSION file, or null. */
async function versionInArchive(archive: string): Promise<string | null> {
  try {
    const text = await versionTextInArchive(archive, { stripSingleTopLevel: false, label: 'the backup archive' });
    return typeof text === 'string' ? versionFromFile(text).version : null;
  } catch {
    return null;
  }
}
