/**
 * While verify (or a rollback) waits for an app's service to be healthy: whether the service is
 * up, still coming up, or down for good, from one status after another. Down for good ends the
 * wait at once (`Hopeless`) instead of at `timeoutSeconds` (docs/reliability.md, "A release that
 * fails at once fails fast"). No I/O: the driver asks the service manager and hands each answer in.
 */
import { Hopeless } from './health.js';
import type { ServiceStatus } from './service-manager.js';

const times = (n: number) => (n === 1 ? 'once' : `${n} times`);

/**
 * `what`: the service, for messages ("systemd unit dunebugger.service"). `started`: the run has
 * just started it (verify after apply; a rollback once it started the old tree).
 *
 * The returned function takes each status in turn: null while the service is active, a reason
 * while it may still come up (activating; inactive with a start job queued, as at boot; a status
 * command that hangs or cannot be run), and throws Hopeless when it is down for good:
 * - `failed`;
 * - restarting by itself because its process ended (systemd auto-restart);
 * - restarted by its manager since the first status (systemd NRestarts grew: up again between two
 *   crashes, it looks active);
 * - stopped with nothing under way to start it (systemd: inactive, no job queued; command: the
 *   status command said not running) once it had been started: by the run, or seen active,
 *   activating or deactivating by this watch. A service nobody started may yet be started by
 *   someone else, so that one waits (and fails at the timeout).
 */
export function serviceWatch(what: string, started: boolean): (s: ServiceStatus) => string | null {
  let up = started;
  let firstRestarts: number | null = null;
  return (s) => {
    const why = s.detail ? ` (${s.detail})` : '';
    if (s.restarts !== null) {
      firstRestarts ??= s.restarts;
      const more = s.restarts - firstRestarts;
      if (more > 0) throw new Hopeless('service_failed', `${what} ended and was restarted by its service manager ${times(more)} while the updater waited for it to be healthy${why}`);
    }
    if (s.active) {
      up = true;
      return null;
    }
    if (s.state === 'failed') throw new Hopeless('service_failed', `${what} failed${why}`);
    if (s.restarting) throw new Hopeless('service_failed', `${what} ended and its service manager is restarting it${why}`);
    if (s.stopped && up) throw new Hopeless('service_failed', `${what} is ${s.state}: it stopped after it was started${why}`);
    if (s.state === 'activating' || s.state === 'deactivating') up = true; // someone had started it
    return `${what} is ${s.state}${why}`;
  };
}
