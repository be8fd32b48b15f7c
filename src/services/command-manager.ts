/**
 * A service run by three shell commands (start, stop, status), each run as `sh -c CMD`.
 * Status exit 0 means active; any other exit means not active; 126/127 (cannot run / not
 * found) means the service is unknown.
 *
 * A start command commonly leaves a daemon behind (`app &`). Such a daemon inherits the
 * command's stdout and stderr, so a pipe to us would stay open for the daemon's life and the
 * command would never seem to end. Each command therefore writes to temporary files, read
 * (the tail) once it exits and then removed; a daemon that keeps writing to its inherited
 * stdout writes to the removed file, so start commands should redirect a daemon's output.
 */
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UpdateError } from '../core/errors.js';
import { runCommand, tail, type CommandResult } from './run-command.js';
import type { CommandServiceManager, ServiceManager, ServiceManagerOptions, ServiceStatus } from './service-manager.js';

const MAX_OUTPUT = 64 * 1024;

async function readTail(path: string, max = MAX_OUTPUT): Promise<string> {
  let file;
  try {
    file = await open(path, 'r');
  } catch {
    return '';
  }
  try {
    const { size } = await file.stat();
    const length = Math.min(size, max);
    const buffer = Buffer.alloc(length);
    await file.read(buffer, 0, length, size - length);
    return buffer.toString('utf8');
  } finally {
    await file.close();
  }
}

/**
 * `sh -c command` with its output going to files (see above), so that it ends when the command
 * does, whatever it leaves running. The exit code is the command's own (127: not found).
 */
export async function runShell(command: string, options: { timeoutMs: number; signal?: AbortSignal }): Promise<CommandResult> {
  options.signal?.throwIfAborted();
  const dir = await mkdtemp(join(tmpdir(), 'updater-service-'));
  const out = join(dir, 'stdout');
  const err = join(dir, 'stderr');
  try {
    // `exec`: the process we wait for (and kill on timeout) is the command's shell itself, and it
    // holds no end of our pipes.
    options.signal?.throwIfAborted();
    const r = await runCommand(['sh', '-c', 'exec sh -c "$1" >"$2" 2>"$3"', 'sh', command, out, err], options);
    return { ...r, stdout: r.stdout + (await readTail(out)), stderr: r.stderr + (await readTail(err)) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const within = (ms: number) => (ms < 1000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`);
const cannotRun = (r: CommandResult) => r.code === 126 || r.code === 127;
const brief = (command: string) => {
  const one = command.replace(/\s+/g, ' ').trim();
  return one.length > 80 ? `${one.slice(0, 77)}...` : one;
};

export class CommandManager implements ServiceManager {
  readonly description: string;
  private readonly actionTimeoutMs: number;
  private readonly queryTimeoutMs: number;

  constructor(
    private readonly config: Pick<CommandServiceManager, 'start' | 'stop' | 'status'>,
    options: ServiceManagerOptions = {},
  ) {
    this.actionTimeoutMs = options.timeoutMs ?? 60_000;
    this.queryTimeoutMs = options.queryTimeoutMs ?? 15_000;
    this.description = `command service (status: ${brief(config.status)})`;
  }

  private async run(which: 'start' | 'stop' | 'status', signal: AbortSignal | undefined): Promise<CommandResult> {
    const timeoutMs = which === 'status' ? this.queryTimeoutMs : this.actionTimeoutMs;
    try {
      const r = await runShell(this.config[which], { timeoutMs, signal });
      signal?.throwIfAborted();
      return r;
    } catch (error) {
      signal?.throwIfAborted();
      if (error instanceof UpdateError) throw error;
      const e = error as NodeJS.ErrnoException;
      if (e.code === 'ENOENT') throw new UpdateError('service_manager_missing', `cannot run the ${which} command of ${this.description}: sh not found`, { cause: error });
      const code = which === 'start' ? 'service_start_failed' : which === 'stop' ? 'service_stop_failed' : 'service_status_failed';
      throw new UpdateError(code, `cannot run the ${which} command (${brief(this.config[which])}): ${e.message}`, { cause: error });
    }
  }

  /** `exited 4: <tail of stderr or stdout>` / `did not finish within 60 s` / `killed by SIGKILL`. */
  private outcome(r: CommandResult, which: 'start' | 'stop' | 'status'): string {
    const timeoutMs = which === 'status' ? this.queryTimeoutMs : this.actionTimeoutMs;
    if (r.timedOut) return `did not finish within ${within(timeoutMs)}`;
    const how = r.code === null ? `was killed by ${r.signal}` : `exited ${r.code}`;
    const words = tail(r.stderr) || tail(r.stdout);
    return words ? `${how}: ${words}` : how;
  }

  async exists(signal?: AbortSignal): Promise<boolean> {
    return !cannotRun(await this.run('status', signal));
  }

  /**
   * Exit 0: active. A clean non-zero exit says the service is not running: `stopped` (nothing
   * supervises a command service, so nothing will start it by itself). A status command that hangs
   * (`unknown`) or cannot be run (126/127) proves nothing either way: not `stopped`.
   */
  async status(signal?: AbortSignal): Promise<ServiceStatus> {
    const r = await this.run('status', signal);
    const unsupervised = { restarting: false, restarts: null };
    if (r.code === 0 && !r.timedOut) return { active: true, state: 'active', detail: null, stopped: false, ...unsupervised };
    const detail = `status command ${this.outcome(r, 'status')}`;
    if (r.timedOut) return { active: false, state: 'unknown', detail, stopped: false, ...unsupervised };
    return { active: false, state: 'inactive', detail, stopped: typeof r.code === 'number' && !cannotRun(r), ...unsupervised };
  }

  async start(signal?: AbortSignal): Promise<void> {
    const r = await this.run('start', signal);
    if (r.code === 0 && !r.timedOut) return;
    throw new UpdateError('service_start_failed', `start command (${brief(this.config.start)}) ${this.outcome(r, 'start')}`);
  }

  async stop(signal?: AbortSignal): Promise<void> {
    const r = await this.run('stop', signal);
    if (r.code === 0 && !r.timedOut) return;
    // Stopping a stopped service is fine: a failing stop command (`kill` of a process that is
    // gone) counts when the status command runs and says not active. A status command that
    // cannot run or hangs proves nothing.
    if (!r.timedOut) {
      const s = await this.run('status', signal);
      if (typeof s.code === 'number' && s.code !== 0 && !s.timedOut && !cannotRun(s)) return;
    }
    throw new UpdateError('service_stop_failed', `stop command (${brief(this.config.stop)}) ${this.outcome(r, 'stop')}`);
  }
}
