/**
 * The seam between the updater and whatever runs an installed app: systemd (through a
 * configurable `systemctl` argument list, e.g. `docker exec C systemctl` in tests) or three
 * shell commands. Failures are `UpdateError`s carrying the manager's own words.
 */
import { CommandManager } from './command-manager.js';
import { SystemdManager } from './systemd.js';

/** `{ manager: systemd, unit: NAME, systemctl: [...] }` in an app's configuration. */
export interface SystemdServiceManager {
  manager: 'systemd';
  unit: string;
  /** The systemctl command as an argument list; default `['systemctl']`. */
  systemctl: string[];
}

/** `{ manager: command, start: CMD, stop: CMD, status: CMD }`: shell commands. */
export interface CommandServiceManager {
  manager: 'command';
  start: string;
  stop: string;
  status: string;
}

export type ServiceManagerConfig = SystemdServiceManager | CommandServiceManager;

export interface ServiceStatus {
  active: boolean;
  /** As the manager says: 'active' | 'inactive' | 'failed' | 'activating' | 'deactivating' | 'reloading' | 'unknown' … */
  state: string;
  /** Why, when not active (systemd: `Result=exit-code, ExecMainStatus=3`); null when active. Never repeats `state`. */
  detail: string | null;
  /**
   * Not running, and nothing under way to start it: systemd `inactive` or `failed` with no job
   * queued for the unit; a command service whose status command ran and exited non-zero (not
   * 126/127, not timed out). Whether that is final depends on whether someone had started it: a
   * service the updater has just started and that is `stopped` has ended (see the app driver's verify).
   */
  stopped: boolean;
  /** The manager is about to start the service again by itself because its process ended (systemd: `activating`, SubState=auto-restart). */
  restarting: boolean;
  /**
   * How many times the manager has restarted the service by itself since it was last started by
   * hand (systemd: NRestarts); null when the manager does not count (command, or a systemd
   * older than 235).
   */
  restarts: number | null;
}

export interface ServiceManager {
  /** "systemd unit dunebugger.service" / "command service (status: …)". */
  readonly description: string;
  /** Known to its manager (systemd: LoadState=loaded; command: the status command can be run, i.e. not exit 126/127). */
  exists(signal?: AbortSignal): Promise<boolean>;
  status(signal?: AbortSignal): Promise<ServiceStatus>;
  /** Throws UpdateError('service_start_failed', …). Does not wait for the service to stay up: check `status` after. */
  start(signal?: AbortSignal): Promise<void>;
  /** Idempotent: stopping a stopped (or unknown) service is fine. Throws UpdateError('service_stop_failed', …). */
  stop(signal?: AbortSignal): Promise<void>;
}

export interface ServiceManagerOptions {
  /** Bound of start and stop, default 60 000 ms. */
  timeoutMs?: number;
  /** Bound of status/exists queries, default 15 000 ms. */
  queryTimeoutMs?: number;
}

/** A service manager that calls `changed` before and after it starts or stops the service (readers ask again). */
export function announcing(manager: ServiceManager, changed: () => void): ServiceManager {
  const around = async (work: () => Promise<void>) => {
    changed();
    try {
      await work();
    } finally {
      changed();
    }
  };
  return {
    description: manager.description,
    exists: (signal) => manager.exists(signal),
    status: (signal) => manager.status(signal),
    start: (signal) => around(() => manager.start(signal)),
    stop: (signal) => around(() => manager.stop(signal)),
  };
}

export function createServiceManager(config: ServiceManagerConfig, options: ServiceManagerOptions = {}): ServiceManager {
  switch (config.manager) {
    case 'systemd':
      return new SystemdManager(config, options);
    case 'command':
      return new CommandManager(config, options);
    default: {
      const never: never = config;
      throw new Error(`unknown service manager ${JSON.stringify((never as { manager?: unknown }).manager)}`);
    }
  }
}
