/**
 * A systemd unit driven through `systemctl` (the configured argument list: `['systemctl']` in
 * production, `['docker', 'exec', C, 'systemctl']` against the test bed). What systemctl does
 * there, and this code relies on:
 * - `show --property=…` prints `Key=Value` lines in systemd's own order (not the order asked),
 *   exit 0 even for an unknown unit (then `LoadState=not-found`, `ActiveState=inactive`);
 * - `start` of a `Type=simple` unit returns 0 even when its process dies at once: callers check
 *   `status` after; a unit that hit its start limit refuses `start` until `reset-failed`;
 * - `stop` of a stopped unit returns 0, of an unknown unit 5 ("not loaded");
 * - `docker exec C systemctl` exits 126 when the container has no systemctl.
 * - a crash-looping `Restart=` unit is `activating` (SubState=auto-restart) between attempts,
 *   then `failed` once its start limit is hit; NRestarts counts those restarts (a start by hand
 *   sets it back to 0), and the restart is a queued job (`Job=<id>`) during the back-off; while
 *   the unit is up again between two crashes it is `active` with `Result=success`, so only
 *   NRestarts tells that it crashed;
 * - a unit waiting for its start job (at boot, behind its `After=` units) is `inactive` with
 *   `Job=<id>`; with no job queued `Job=` is empty;
 * - an inactive unit that nothing refers to is unloaded at once (garbage collected), which resets
 *   its ExecMain* properties: an `inactive` unit does not tell whether its process ever ran.
 */
import { constants } from 'node:os';
import { UpdateError } from '../core/errors.js';
import { runCommand, tail, type CommandResult } from './run-command.js';
import type { ServiceManager, ServiceManagerOptions, ServiceStatus, SystemdServiceManager } from './service-manager.js';

const UNIT_SUFFIX = /\.(service|socket|device|mount|automount|swap|target|path|timer|slice|scope)$/;

/** The unit name systemctl is given: `.service` appended when the name has no unit-type suffix. */
export function systemdUnitName(unit: string): string {
  const name = unit.trim();
  if (!name) throw new UpdateError('service_manager_invalid', 'systemd unit name is empty');
  return UNIT_SUFFIX.test(name) ? name : `${name}.service`;
}

export const SHOW_PROPERTIES = ['LoadState', 'ActiveState', 'SubState', 'Result', 'ExecMainCode', 'ExecMainStatus', 'NRestarts', 'Job'] as const;
export type UnitProperties = Partial<Record<(typeof SHOW_PROPERTIES)[number], string>> & Record<string, string | undefined>;

/** `Key=Value` lines of `systemctl show`, in any order; the value is everything after the first `=`. */
export function parseShow(text: string): UnitProperties {
  const props: UnitProperties = {};
  for (const line of text.split(/\r?\n/)) {
    const eq = line.indexOf('=');
    if (eq > 0) props[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return props;
}

const within = (ms: number) => (ms < 1000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`);
const signalName = (n: number) => Object.entries(constants.signals).find(([, v]) => v === n)?.[0];

/** Why a unit is not active, in systemd's words, without repeating ActiveState: `Result=exit-code, ExecMainStatus=3`. */
export function describeUnit(p: UnitProperties): string {
  const parts: string[] = [];
  if (p.LoadState && p.LoadState !== 'loaded') parts.push(`LoadState=${p.LoadState}`);
  if (p.SubState && p.SubState !== p.ActiveState && !(p.ActiveState === 'inactive' && p.SubState === 'dead')) parts.push(`SubState=${p.SubState}`);
  const clean = !p.Result || p.Result === 'success';
  if (p.Result && (p.LoadState === 'loaded' || !clean)) parts.push(`Result=${p.Result}`);
  if (p.ExecMainStatus && (p.ExecMainStatus !== '0' || !clean)) {
    // ExecMainCode: 1 exited (status = exit code), 2 killed / 3 dumped (status = signal number).
    const sig = p.ExecMainCode === '2' || p.ExecMainCode === '3' ? signalName(Number(p.ExecMainStatus)) : undefined;
    parts.push(`ExecMainStatus=${p.ExecMainStatus}${sig ? ` (${sig})` : ''}`);
  }
  return parts.join(', ') || (p.ActiveState ?? 'unknown');
}

type FailCode = 'service_start_failed' | 'service_stop_failed' | 'service_status_failed';

export class SystemdManager implements ServiceManager {
  readonly unit: string;
  readonly description: string;
  private readonly systemctl: string[];
  private readonly actionTimeoutMs: number;
  private readonly queryTimeoutMs: number;

  constructor(config: Pick<SystemdServiceManager, 'unit'> & { systemctl?: string[] }, options: ServiceManagerOptions = {}) {
    this.unit = systemdUnitName(config.unit);
    this.systemctl = config.systemctl?.length ? [...config.systemctl] : ['systemctl'];
    this.actionTimeoutMs = options.timeoutMs ?? 60_000;
    this.queryTimeoutMs = options.queryTimeoutMs ?? 15_000;
    this.description = `systemd unit ${this.unit}`;
  }

  private get command(): string {
    return this.systemctl.join(' ');
  }

  /** One systemctl call; spawn failures become UpdateErrors, an abort rethrows the signal's reason. */
  private async run(args: string[], timeoutMs: number, signal: AbortSignal | undefined, failCode: FailCode): Promise<CommandResult> {
    signal?.throwIfAborted();
    let r: CommandResult;
    try {
      r = await runCommand([...this.systemctl, ...args], { timeoutMs, signal });
    } catch (error) {
      signal?.throwIfAborted();
      const e = error as NodeJS.ErrnoException;
      if (e.code === 'ENOENT') {
        throw new UpdateError('service_manager_missing', `cannot run ${this.command} for ${this.description}: ${this.systemctl[0]} not found`, { cause: error });
      }
      throw new UpdateError(failCode, `cannot run ${this.command} ${args[0]} ${this.unit}: ${e.message}`, { cause: error });
    }
    signal?.throwIfAborted();
    // systemctl itself never exits 126/127; a wrapper (docker exec, sudo, ssh) does when it cannot
    // find or run it (docker exec: 126 "executable file not found").
    if (r.code === 126 || r.code === 127) {
      throw new UpdateError('service_manager_missing', `cannot run ${this.command} for ${this.description}: exit ${r.code}: ${tail(r.stderr || r.stdout)}`);
    }
    return r;
  }

  private failure(r: CommandResult, verb: string, timeoutMs: number): string {
    if (r.timedOut) return `${this.command} ${verb} ${this.unit} did not finish within ${within(timeoutMs)}`;
    const how = r.code === null ? `killed by ${r.signal}` : `exit ${r.code}`;
    const words = tail(r.stderr || r.stdout);
    return `${this.command} ${verb} ${this.unit} failed (${how})${words ? `: ${words}` : ''}`;
  }

  /** The unit's properties (LoadState, ActiveState, SubState, Result, ExecMainCode, ExecMainStatus, NRestarts, Job). */
  async show(signal?: AbortSignal): Promise<UnitProperties> {
    const args = ['show', ...SHOW_PROPERTIES.map((p) => `--property=${p}`), '--', this.unit];
    const r = await this.run(args, this.queryTimeoutMs, signal, 'service_status_failed');
    if (r.code !== 0 || r.timedOut) throw new UpdateError('service_status_failed', this.failure(r, 'show', this.queryTimeoutMs));
    const props = parseShow(r.stdout);
    if (!props.LoadState || !props.ActiveState) {
      throw new UpdateError('service_status_failed', `${this.command} show ${this.unit} printed no LoadState/ActiveState: ${tail(r.stdout || r.stderr) || '(nothing)'}`);
    }
    return props;
  }

  async exists(signal?: AbortSignal): Promise<boolean> {
    return (await this.show(signal)).LoadState === 'loaded';
  }

  async status(signal?: AbortSignal): Promise<ServiceStatus> {
    return toStatus(await this.show(signal));
  }

  async start(signal?: AbortSignal): Promise<void> {
    // A unit that hit its start limit refuses `start` until its failed state is reset; for any
    // other unit (not failed, not loaded) reset-failed is a harmless non-zero exit.
    await this.run(['reset-failed', '--', this.unit], this.queryTimeoutMs, signal, 'service_start_failed');
    const r = await this.run(['start', '--', this.unit], this.actionTimeoutMs, signal, 'service_start_failed');
    if (r.code === 0 && !r.timedOut) return;
    throw new UpdateError('service_start_failed', this.failure(r, 'start', this.actionTimeoutMs) + (await this.stateSuffix(signal)));
  }

  async stop(signal?: AbortSignal): Promise<void> {
    const r = await this.run(['stop', '--', this.unit], this.actionTimeoutMs, signal, 'service_stop_failed');
    if (r.code === 0 && !r.timedOut) return;
    // Not running afterwards is what stop promises: an unknown unit (exit 5, "not loaded"), or a
    // unit whose stop job failed but whose processes are gone (inactive / failed), counts as stopped.
    let props: UnitProperties | null = null;
    if (!r.timedOut) {
      try {
        props = await this.show(signal);
      } catch {
        signal?.throwIfAborted();
      }
    }
    if (props && (props.ActiveState === 'inactive' || props.ActiveState === 'failed')) return;
    const state = props ? `; the unit is ${props.ActiveState} (${describeUnit(props)})` : '';
    throw new UpdateError('service_stop_failed', this.failure(r, 'stop', this.actionTimeoutMs) + state);
  }

  /** `; the unit is failed (Result=…)` for a failure message, or '' when that cannot be learnt. */
  private async stateSuffix(signal?: AbortSignal): Promise<string> {
    try {
      const p = await this.show(signal);
      return `; the unit is ${p.ActiveState} (${describeUnit(p)})`;
    } catch {
      signal?.throwIfAborted();
      return '';
    }
  }
}

export function toStatus(p: UnitProperties): ServiceStatus {
  const state = p.ActiveState || 'unknown';
  // `systemctl is-active` counts reloading as running too.
  const active = state === 'active' || state === 'reloading';
  const restarts = p.NRestarts && /^\d+$/.test(p.NRestarts) ? Number(p.NRestarts) : null;
  return {
    active,
    state,
    detail: active ? null : describeUnit(p),
    stopped: (state === 'inactive' || state === 'failed') && !p.Job,
    restarting: state === 'activating' && p.SubState === 'auto-restart',
    restarts,
  };
}
