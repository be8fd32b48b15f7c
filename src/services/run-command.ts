/**
 * Runs a program (an argument list, never a shell string unless the caller asks for `sh -c`),
 * with a time limit and an abort signal, capturing bounded output.
 */
import { spawn } from 'node:child_process';

export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface CommandOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Output kept per stream (the tail), default 64 KiB. */
  maxOutput?: number;
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
}

export function runCommand(argv: string[], options: CommandOptions = {}): Promise<CommandResult> {
  const [file, ...args] = argv;
  if (!file) return Promise.reject(new Error('runCommand: empty argument list'));
  const max = options.maxOutput ?? 64 * 1024;
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const keep = (acc: string, chunk: string) => (acc.length + chunk.length > max ? (acc + chunk).slice(-max) : acc + chunk);
    const lines = { stdout: '', stderr: '' };
    const onData = (stream: 'stdout' | 'stderr') => (b: Buffer) => {
      const s = b.toString('utf8');
      if (stream === 'stdout') stdout = keep(stdout, s);
      else stderr = keep(stderr, s);
      if (options.onLine) {
        const parts = (lines[stream] + s).split(/\r?\n|\r/);
        lines[stream] = parts.pop() ?? '';
        for (const line of parts) if (line.trim()) options.onLine(line, stream);
      }
    };
    child.stdout.on('data', onData('stdout'));
    child.stderr.on('data', onData('stderr'));
    const timer = options.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, options.timeoutMs)
      : null;
    const onAbort = () => child.kill('SIGKILL');
    options.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (error) => {
      if (timer) clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      reject(error);
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

/** The last non-empty lines of some output, for a message. */
export function tail(text: string, lines = 3): string {
  return text.trim().split('\n').filter(Boolean).slice(-lines).join(' | ');
}
