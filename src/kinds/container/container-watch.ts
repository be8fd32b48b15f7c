/**
 * While verify (or a rollback) waits for a container to be healthy: whether the service's
 * container is up, still coming up, or down for good, from one inspect after another. Down for
 * good ends the wait at once (`Hopeless`) instead of at `timeoutSeconds` (docs/reliability.md, "A
 * release that fails at once fails fast"). No I/O: the driver inspects and hands each state in.
 */
import { Hopeless } from '../../services/health.js';
import type { ContainerState } from './engine-api.js';

const times = (n: number) => (n === 1 ? 'once' : `${n} times`);

/**
 * `imageId`: the image the container must run (null: any). The returned function takes each
 * state in turn: null while the container runs on that image (healthy by its HEALTHCHECK when it
 * has one), a reason while it may still get there (another image: compose has not recreated it
 * yet; created, paused, removing; HEALTHCHECK starting), and throws Hopeless when it is down:
 * - restarting: its process ended and a restart policy brings it back (Docker counts a container
 *   in its restart back-off as running, so this comes first);
 * - restarted since the first look at this container (RestartCount grew: up again between two
 *   crashes, it looks running);
 * - exited or dead;
 * - unhealthy by its own HEALTHCHECK.
 */
export function containerWatch(imageId: string | null): (s: ContainerState) => string | null {
  /** The RestartCount at the first look at the container (a recreated container is looked at afresh). */
  let first: { id: string; restarts: number } | null = null;
  return (s) => {
    if (imageId && s.imageId !== imageId) return `container ${s.name} runs image ${s.imageId.slice(7, 19)}, not ${imageId.slice(7, 19)}`;
    if (first?.id !== s.id) first = { id: s.id, restarts: s.restartCount };
    if (s.restarting) throw new Hopeless('container_exited', `container ${s.name} exited with code ${s.exitCode} and Docker is restarting it (restarted ${times(s.restartCount)} so far)`);
    if (s.restartCount > first.restarts) throw new Hopeless('container_exited', `container ${s.name} restarted ${times(s.restartCount - first.restarts)} while the updater waited for it to be healthy`);
    if (s.status === 'created' || s.status === 'paused' || s.status === 'removing') return `container ${s.name} is ${s.status}`;
    if (!s.running) throw new Hopeless('container_exited', `container ${s.name} exited with code ${s.exitCode}${s.error ? ` (${s.error})` : ''}`);
    if (s.health === 'unhealthy') throw new Hopeless('health_failed', `container ${s.name} is unhealthy (Docker HEALTHCHECK)`);
    if (s.health === 'starting') return `container ${s.name}'s HEALTHCHECK is still starting`;
    return null;
  };
}
