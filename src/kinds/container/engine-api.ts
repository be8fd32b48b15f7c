/**
 * The Docker engine, through dockerode (DOCKER_HOST is honoured): ask the registry whether a tag
 * exists without pulling, pull with layer progress, inspect containers and images, re-tag.
 * dockerode is loaded at the first call, so a device with only app components never loads it
 * (it is the heaviest module the service has: ~15 MB of RSS and ~150 ms; docs/performance.md).
 */
import type Docker from 'dockerode';
import { UpdateError } from '../../core/errors.js';

export interface PullProgress {
  layersDone: number;
  layersTotal: number;
  bytes: number;
  total: number;
}

export interface ContainerState {
  id: string;
  name: string;
  imageId: string;
  /** Docker's State.Status: `created`, `running`, `paused`, `restarting`, `removing`, `exited` or `dead`. */
  status: string;
  /** True while restarting too (Docker counts a container in its restart back-off as running). */
  running: boolean;
  restarting: boolean;
  exitCode: number;
  error: string;
  restartCount: number;
  /** `starting`, `healthy`, `unhealthy`, or null without a HEALTHCHECK. */
  health: string | null;
  startedAt: string;
}

const statusOf = (error: unknown) => (error as { statusCode?: number }).statusCode;
const messageOf = (error: unknown) => {
  const e = error as { json?: { message?: string }; message?: string };
  return e.json?.message ?? e.message ?? String(error);
};

export class DockerEngine {
  private client: Promise<Docker> | null = null;

  /** The dockerode client, created at the first call. */
  private api(): Promise<Docker> {
    return (this.client ??= import('dockerode').then(({ default: Dockerode }) => new Dockerode()));
  }

  async ping(): Promise<void> {
    const docker = await this.api();
    try {
      await docker.ping();
    } catch (error) {
      throw new UpdateError('docker_unreachable', `the Docker engine does not answer (${messageOf(error)})`);
    }
  }

  /** Whether the registry has `ref` (asked through the engine, no pull). */
  async tagExists(ref: string, signal?: AbortSignal): Promise<boolean> {
    const docker = await this.api();
    try {
      await docker.getImage(ref).distribution({ abortSignal: signal });
      return true;
    } catch (error) {
      const status = statusOf(error);
      const message = messageOf(error);
      if (status === 404 || /manifest unknown|not found/i.test(message)) return false;
      throw new UpdateError('registry_unreachable', `cannot ask the registry about ${ref}: ${message}`);
    }
  }

  /** Pulls `ref`, reporting layer progress; resolves with the local image id. */
  async pull(ref: string, onProgress: (p: PullProgress) => void, signal?: AbortSignal): Promise<string> {
    const docker = await this.api();
    let stream: NodeJS.ReadableStream;
    try {
      stream = await docker.pull(ref, { abortSignal: signal });
    } catch (error) {
      throw new UpdateError(statusOf(error) === 404 ? 'image_missing' : 'pull_failed', `pulling ${ref} failed: ${messageOf(error)}`);
    }
    const layers = new Map<string, { current: number; total: number; done: boolean }>();
    await new Promise<void>((resolve, reject) => {
      docker.modem.followProgress(
        stream,
        (error: Error | null, output: Array<{ error?: string }>) => {
          const failed = error ?? (output.find((o) => o.error) ? new Error(output.find((o) => o.error)!.error) : null);
          if (failed) reject(new UpdateError('pull_failed', `pulling ${ref} failed: ${messageOf(failed)}`));
          else resolve();
        },
        (event: { id?: string; status?: string; progressDetail?: { current?: number; total?: number } }) => {
          if (!event.id || !event.status) return;
          const layer = layers.get(event.id) ?? { current: 0, total: 0, done: false };
          if (event.progressDetail?.total) layer.total = event.progressDetail.total;
          if (event.progressDetail?.current) layer.current = event.progressDetail.current;
          if (/complete|already exists/i.test(event.status)) layer.done = true;
          layers.set(event.id, layer);
          const all = [...layers.values()];
          onProgress({
            layersDone: all.filter((l) => l.done).length,
            layersTotal: all.length,
            bytes: all.reduce((s, l) => s + (l.done ? l.total : l.current), 0),
            total: all.reduce((s, l) => s + l.total, 0),
          });
        },
      );
    });
    return this.imageId(ref);
  }

  async imageId(ref: string): Promise<string> {
    const docker = await this.api();
    try {
      return (await docker.getImage(ref).inspect()).Id;
    } catch (error) {
      throw new UpdateError('image_missing', `the image ${ref} is not on this machine (${messageOf(error)})`);
    }
  }

  async hasImage(idOrRef: string): Promise<boolean> {
    const docker = await this.api();
    try {
      await docker.getImage(idOrRef).inspect();
      return true;
    } catch {
      return false;
    }
  }

  /** Points `repository:tag` at the image `imageId` (so a recreate uses exactly those bytes). */
  async tag(imageId: string, repository: string, tag: string): Promise<void> {
    const docker = await this.api();
    try {
      await docker.getImage(imageId).tag({ repo: repository, tag });
    } catch (error) {
      throw new UpdateError('tag_failed', `cannot tag image ${imageId.slice(0, 19)} as ${repository}:${tag}: ${messageOf(error)}`);
    }
  }

  /**
   * The container compose made for `service` of the project in `workingDir` (compose v1 and v2
   * both label it), through the Engine API: milliseconds, where `compose ps` costs half a second.
   */
  async serviceContainer(workingDir: string, service: string): Promise<string | null> {
    const docker = await this.api();
    try {
      const list = await docker.listContainers({
        all: true,
        filters: { label: [`com.docker.compose.service=${service}`, `com.docker.compose.project.working_dir=${workingDir}`] },
      });
      return list[0]?.Id ?? null;
    } catch (error) {
      throw new UpdateError('docker_unreachable', `cannot list containers: ${messageOf(error)}`);
    }
  }

  async container(id: string): Promise<ContainerState | null> {
    const docker = await this.api();
    try {
      const c = await docker.getContainer(id).inspect();
      return {
        id: c.Id,
        name: c.Name.replace(/^\//, ''),
        imageId: c.Image,
        status: c.State.Status,
        running: c.State.Running,
        restarting: c.State.Restarting,
        exitCode: c.State.ExitCode,
        error: c.State.Error,
        restartCount: c.RestartCount,
        health: (c.State as { Health?: { Status?: string } }).Health?.Status ?? null,
        startedAt: c.State.StartedAt,
      };
    } catch (error) {
      if (statusOf(error) === 404) return null;
      throw new UpdateError('docker_unreachable', `cannot inspect container ${id.slice(0, 12)}: ${messageOf(error)}`);
    }
  }

  /** Where the engine keeps images, for the free-disk check (null when it does not say). */
  async dataRoot(): Promise<string | null> {
    const docker = await this.api();
    try {
      return ((await docker.info()) as { DockerRootDir?: string }).DockerRootDir ?? null;
    } catch {
      return null;
    }
  }
}
