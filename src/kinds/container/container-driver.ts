/**
 * Container components: a service in a docker compose file, versioned by its image tag.
 * The seed's PHASE 4A (apply), 5 (verify) and 7 (rollback), with every step idempotent and
 * recorded before it is done, so recovery and rollback know exactly what took effect.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import type { BackupRef, UpdateContext } from '../../../machines/update-machine.js';
import type { ContainerComponent } from './config.js';
import { UpdateError, withoutEffects } from '../../core/errors.js';
import type { Outcome, RestorePlan, StepContext } from '../../core/driver.js';
import type { Installed } from '../../core/installed.js';
import { readComposeVersion } from './installed.js';
import type { Manifest } from '../../releases/manifest.js';
import { parseVersion, plainVersion } from '../../core/versions.js';
import { probeHealthUrl, waitUntilHealthy } from '../../services/health.js';
import { writeFileAtomic } from '../../util/fs-atomic.js';
import { listBackups, newBackupPath, pruneBackups, requireFreeSpace, requireWritable } from '../backups.js';
import type { KindDriver } from '../kind.js';
import { releaseOf } from '../../releases/facts.js';
import { ComposeCli } from './compose-cli.js';
import { ComposeFile } from './compose-file.js';
import { containerWatch } from './container-watch.js';
import type { DockerEngine } from './engine-api.js';
import { backupOf, recordStep, stepsTaken, type ContainerBackup } from './records.js';

export interface ContainerSettings {
  backupDir: string;
  backupRetention: number;
  /** Consecutive healthy polls (50 ms apart) before verify passes. */
  settlePolls?: number;
}

export class ContainerDriver implements KindDriver {
  constructor(
    private readonly c: ContainerComponent,
    private readonly settings: ContainerSettings,
    private readonly docker: DockerEngine,
  ) {}

  installed(): Installed {
    return readComposeVersion(this.c.composeFile, this.c.service);
  }

  /** Whether the service's container runs (null when Docker cannot be asked). */
  async running(): Promise<boolean | null> {
    try {
      const id = await this.containerId();
      const state = id ? await this.docker.container(id) : null;
      return state ? state.running && !state.restarting : false;
    } catch {
      return null;
    }
  }

  /** The service's container: by compose labels through the Engine API, else by asking compose. */
  private async containerId(signal?: AbortSignal): Promise<string | null> {
    const byLabel = await this.docker.serviceContainer(dirname(this.c.composeFile), this.c.service);
    if (byLabel) return byLabel;
    return (await ComposeCli.create(this.c.composeFile)).containerId(this.c.service, signal);
  }

  /** The image tag for the target version: the style of the current tag first (`v` or not). */
  private async targetRef(run: UpdateContext, signal: AbortSignal): Promise<{ ref: string; repository: string; tag: string }> {
    const { ref: current, tag: currentTag } = ComposeFile.read(this.c.composeFile).image(this.c.service);
    const version = plainVersion(run.toVersion!);
    const release = releaseOf(run);
    const styled = /^v/i.test(currentTag) ? `v${version}` : version;
    const candidates = [...new Set([styled, release.tag, plainVersion(release.tag)])];
    for (const tag of candidates) {
      if (await this.docker.tagExists(`${current.repository}:${tag}`, signal)) return { ref: `${current.repository}:${tag}`, repository: current.repository, tag };
    }
    throw new UpdateError('image_missing', `the registry has no image ${current.repository}:${candidates.join(' or :')} for release ${release.tag}`);
  }

  async validate(run: UpdateContext, ctx: StepContext, manifest: Manifest): Promise<void> {
    ComposeFile.read(this.c.composeFile).image(this.c.service); // parses, has the service, tag rewritable
    await ComposeCli.create(this.c.composeFile); // the compose tool is installed
    await this.docker.ping();
    await this.targetRef(run, ctx.signal);
    // The new image where the engine keeps images (minFreeMB is that disk's floor), and the copy
    // of the compose file (a few KiB; 1 MB is ample) in backupDir.
    const root = await this.docker.dataRoot();
    requireFreeSpace(
      [
        { what: 'the new image', path: root && existsSync(root) ? root : this.settings.backupDir, mb: 0 },
        { what: 'the backup', path: this.settings.backupDir, mb: 1 },
      ],
      Math.max(this.c.minFreeMB ?? 0, manifest.minFreeMB ?? 0),
      `${this.c.name} ${run.toVersion}`,
    );
    requireWritable(this.c.composeFile, 'the compose file');
    requireWritable(dirname(this.c.composeFile), 'the compose file\'s directory');
    requireWritable(this.settings.backupDir, 'the backup directory');
    if (manifest.requiresRunning) {
      const id = await this.containerId(ctx.signal);
      const state = id ? await this.docker.container(id) : null;
      if (!state?.running) throw new UpdateError('service_not_running', `the release requires ${this.c.service} to be running before the update, and it is not`);
    }
  }

  async backup(run: UpdateContext, ctx: StepContext): Promise<BackupRef> {
    // Idempotent: a copy written by an interrupted attempt of this run is discarded first.
    if (ctx.resumed) this.discardOwnBackups(ctx);
    const text = readFileSync(this.c.composeFile, 'utf8');
    const { ref, tag } = ComposeFile.parse(this.c.composeFile, text).image(this.c.service);
    const id = await this.containerId(ctx.signal);
    const state = id ? await this.docker.container(id) : null;
    const imageId = state?.imageId ?? ((await this.docker.hasImage(`${ref.repository}:${tag}`)) ? await this.docker.imageId(`${ref.repository}:${tag}`) : null);
    const path = newBackupPath(this.settings.backupDir, this.c.name, 'yml');
    await recordStep(ctx, { step: 'backup-file', path });
    writeFileAtomic(path, text);
    const details: ContainerBackup = { composeFile: this.c.composeFile, service: this.c.service, repository: ref.repository, tag, imageId };
    ctx.log.info({ backup: path, image: imageId }, `backed up ${this.c.composeFile} to ${path}`);
    return { path, details };
  }

  /** Removes the backup files an interrupted attempt of this run recorded (their names are ours). */
  private discardOwnBackups(ctx: StepContext): void {
    for (const step of stepsTaken(ctx, 'backup')) {
      if (step.step === 'backup-file' && existsSync(step.path)) {
        ctx.log.info({ path: step.path }, 'discarding the backup of an interrupted attempt');
        rmSync(step.path, { force: true });
      }
    }
  }

  async apply(run: UpdateContext, ctx: StepContext): Promise<void> {
    const backup = backupOf(run);
    // Until the compose file is written nothing on the device has changed: a failure aborts.
    const { file, target } = await withoutEffects(async () => {
      const file = ComposeFile.read(this.c.composeFile);
      // The compose file must be what was backed up: a hand edit since validate is never overwritten.
      if (file.text !== readFileSync(backup.path, 'utf8')) {
        throw new UpdateError('compose_changed', `${this.c.composeFile} was changed by someone else since it was backed up; it was left as it is`);
      }
      const target = await this.targetRef(run, ctx.signal);
      await recordStep(ctx, { step: 'pull', ref: target.ref });
      let last = 0;
      await this.docker.pull(
        target.ref,
        (p) => {
          const now = Date.now();
          if (now - last < 250 && p.layersDone < p.layersTotal) return;
          last = now;
          const percent = p.total > 0 ? Math.min(100, Math.round((p.bytes / p.total) * 100)) : undefined;
          ctx.progress(`Pulling ${target.ref}: ${p.layersDone}/${p.layersTotal} layers`, { percent, bytes: p.bytes, total: p.total });
        },
        ctx.signal,
      );
      return { file, target };
    });

    await recordStep(ctx, { step: 'write-tag', tag: target.tag });
    file.writeTag(this.c.service, target.tag);

    await recordStep(ctx, { step: 'recreate' });
    const compose = await ComposeCli.create(this.c.composeFile);
    await compose.up(this.c.service, { signal: ctx.signal, onLine: (line) => ctx.log.debug({ compose: line }) });
  }

  async verify(run: UpdateContext, ctx: StepContext): Promise<void> {
    // What the compose file now names, and the local image it is: no registry needed here.
    const { image } = ComposeFile.read(this.c.composeFile).image(this.c.service);
    const imageId = await this.docker.imageId(image);
    await this.waitHealthy(ctx, run.toVersion, imageId);
    const installed = this.installed();
    if (installed.version !== parseVersion(run.toVersion)) {
      throw new UpdateError('verify_failed', `the compose file names ${installed.raw ?? installed.reason}, not ${run.toVersion}`);
    }
  }

  /**
   * Running on the expected image, Docker health healthy when it has one, health URL 200 with the
   * version. A container that goes down (exits, restarts, turns unhealthy) ends the wait at once,
   * not at the timeout (containerWatch); a health URL that answers an error is asked again until
   * the timeout (a service may answer 503 while it starts).
   */
  private async waitHealthy(ctx: StepContext, version: string | null, imageId: string | null): Promise<void> {
    const timeoutMs = (this.c.health?.timeoutSeconds ?? 60) * 1000;
    let containerId: string | null = null;
    const judge = containerWatch(imageId);
    const checks: Array<() => Promise<string | null>> = [
      async () => {
        containerId ??= await this.containerId(ctx.signal);
        if (!containerId) return `${this.c.service} has no container`;
        const s = await this.docker.container(containerId);
        if (!s) {
          containerId = null;
          return `${this.c.service}'s container is gone`;
        }
        return judge(s);
      },
    ];
    if (this.c.health?.url) {
      const url = this.c.health.url;
      checks.push(() => probeHealthUrl({ url, expectVersion: version }, ctx.signal));
    }
    // Polled every 50 ms; two passes in a row (so a container that dies right after starting is caught).
    await waitUntilHealthy({ deadline: Date.now() + timeoutMs, pollMs: 50, signal: ctx.signal, checks, passesNeeded: this.settings.settlePolls ?? 2 });
  }

  async rollback(run: UpdateContext, ctx: StepContext): Promise<void> {
    const backup = backupOf(run);
    const restore = run.mode === 'restore';
    const applied = stepsTaken(ctx, 'apply');
    const wroteFile = restore || applied.some((s) => s.step === 'write-tag');
    const recreated = restore || applied.some((s) => s.step === 'recreate') || wroteFile;
    const where: string[] = [];
    try {
      if (wroteFile) {
        await recordStep(ctx, { step: 'restore-compose', from: backup.path });
        const saved = readFileSync(backup.path, 'utf8');
        if (readFileSync(this.c.composeFile, 'utf8') !== saved) writeFileAtomic(this.c.composeFile, saved);
        where.push(`${this.c.composeFile} restored from ${backup.path}`);
      }
      if (backup.imageId && (await this.docker.hasImage(backup.imageId))) {
        // The old tag may have moved in the registry: point it back at the exact image that ran.
        await recordStep(ctx, { step: 'retag', imageId: backup.imageId, ref: `${backup.repository}:${backup.tag}` });
        await this.docker.tag(backup.imageId, backup.repository, backup.tag);
      }
      if (recreated) {
        await recordStep(ctx, { step: 'recreate' });
        const compose = await ComposeCli.create(this.c.composeFile);
        await compose.up(this.c.service, { forceRecreate: true, signal: ctx.signal });
      }
      await this.waitHealthy(ctx, restore ? null : run.fromVersion, backup.imageId);
    } catch (error) {
      const why = (error as Error).message;
      throw new UpdateError(
        'rollback_failed',
        `${why}. ${where.length ? `${where.join('; ')}. ` : ''}The backup of the compose file is ${backup.path}${backup.imageId ? `, the old image ${backup.imageId}` : ''}. To finish by hand: cp ${backup.path} ${this.c.composeFile} && (cd ${dirname(this.c.composeFile)} && docker compose up -d ${this.c.service})`,
      );
    }
  }

  async finalize(run: UpdateContext, outcome: Outcome, log: Logger): Promise<void> {
    if (outcome !== 'succeeded') return;
    const removed = pruneBackups(this.settings.backupDir, this.c.name, 'yml', this.settings.backupRetention);
    if (removed.length) log.info({ removed }, `removed ${removed.length} old backup(s) of ${this.c.name}`);
  }

  async planRestore(): Promise<RestorePlan | null> {
    const newest = listBackups(this.settings.backupDir, this.c.name, 'yml').at(-1);
    if (!newest) return null;
    const file = ComposeFile.read(newest);
    const { ref, tag } = file.image(this.c.service);
    const details: ContainerBackup = { composeFile: this.c.composeFile, service: this.c.service, repository: ref.repository, tag, imageId: null };
    return { backup: { path: newest, details }, version: parseVersion(tag), currentVersion: this.installed().version };
  }
}
