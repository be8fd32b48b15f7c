/**
 * The compose tool: `docker compose` (v2 plugin) or `docker-compose` (v1), whichever exists,
 * detected once. Only the service being updated is touched (`up -d --no-deps <service>`).
 */
import { dirname } from 'node:path';
import { UpdateError } from '../../core/errors.js';
import { runCommand, tail, type CommandResult } from '../../services/run-command.js';

let detected: Promise<string[] | null> | null = null;

async function works(argv: string[]): Promise<boolean> {
  try {
    const r = await runCommand([...argv, 'version'], { timeoutMs: 15_000 });
    return r.code === 0;
  } catch {
    return false;
  }
}

/** The compose command as an argument list, or null when neither is installed. */
export function detectCompose(): Promise<string[] | null> {
  detected ??= (async () => {
    if (await works(['docker', 'compose'])) return ['docker', 'compose'];
    if (await works(['docker-compose'])) return ['docker-compose'];
    return null;
  })();
  return detected;
}

export class ComposeCli {
  constructor(
    readonly composeFile: string,
    private readonly tool: string[],
  ) {}

  static async create(composeFile: string): Promise<ComposeCli> {
    const tool = await detectCompose();
    if (!tool) throw new UpdateError('compose_missing', 'neither "docker compose" nor "docker-compose" is installed');
    return new ComposeCli(composeFile, tool);
  }

  get toolName(): string {
    return this.tool.join(' ');
  }

  private run(args: string[], options: { signal?: AbortSignal; timeoutMs?: number; onLine?: (line: string) => void } = {}): Promise<CommandResult> {
    // Run in the compose file's directory, as a person would: same project name, same .env.
    return runCommand([...this.tool, '-f', this.composeFile, ...args], {
      cwd: dirname(this.composeFile),
      signal: options.signal,
      timeoutMs: options.timeoutMs ?? 10 * 60_000,
      onLine: options.onLine ? (line) => options.onLine!(line) : undefined,
    });
  }

  /** Recreates only `service` from the image its compose file names (already pulled). */
  async up(service: string, options: { forceRecreate?: boolean; signal?: AbortSignal; onLine?: (line: string) => void } = {}): Promise<void> {
    const args = ['up', '-d', '--no-deps', ...(options.forceRecreate ? ['--force-recreate'] : []), service];
    const r = await this.run(args, options);
    if (r.code !== 0) throw new UpdateError('compose_failed', `${this.toolName} up ${service} failed (exit ${r.code ?? r.signal}${r.timedOut ? ', timed out' : ''}): ${tail(r.stderr || r.stdout)}`);
  }

  /** The id of the service's container, or null when it has none. */
  async containerId(service: string, signal?: AbortSignal): Promise<string | null> {
    const r = await this.run(['ps', '-q', service], { signal, timeoutMs: 30_000 });
    if (r.code !== 0) throw new UpdateError('compose_failed', `${this.toolName} ps ${service} failed: ${tail(r.stderr || r.stdout)}`);
    return r.stdout.trim().split('\n').filter(Boolean)[0] ?? null;
  }
}
