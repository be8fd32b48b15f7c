/**
 * `<dataDir>/logs/updates.log`: one line per finished run, the file the Python updater kept, for
 * people and scripts that read it (the journal stays the record the updater itself trusts):
 *
 *   2026-12-02T10:11:12Z core 1.0.0 -> 1.1.0 succeeded "Updated core to 1.1.0"
 *
 * The run's end time (UTC, to the second), the component, the versions without a `v` (`-` when
 * unknown), the end state, and the run's message as a JSON string (so quotes and newlines in it
 * cannot break the line). Every end is written: dry runs (`validated`) and `up_to_date` too.
 *
 * Writing never fails or holds up a run: lines are queued and written in order in the background,
 * each with one `write` on a file opened with O_APPEND (a line is never interleaved with another
 * writer's), and a write that fails (a full disk, a read-only file system) is logged and dropped.
 *
 * Rotation, before a line that would take the file over `maxBytes` (1 MiB): `updates.log.1` becomes
 * `updates.log.2` (the old `.2` is dropped), `updates.log` becomes `updates.log.1`, and the line
 * starts a new `updates.log`. So at most 3 files, none over 1 MiB (unless one line alone is), the
 * newest lines in `updates.log`. The same rule as the Python updater's RotatingFileHandler with
 * maxBytes 1 MiB and backupCount 2.
 */
import { mkdir, open, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';

export const UPDATE_LOG_MAX_BYTES = 1024 * 1024;
/** updates.log, updates.log.1, updates.log.2. */
export const UPDATE_LOG_FILES = 3;

export interface UpdateLogEntry {
  /** When the run ended (ISO or a Date). */
  at: string | Date;
  component: string;
  fromVersion: string | null;
  toVersion: string | null;
  /** The end state: succeeded, up_to_date, validated, aborted, rolled_back, rollback_failed. */
  state: string;
  message: string;
}

const plain = (version: string | null): string => (version ? version.trim().replace(/^[vV](?=\d)/, '') || '-' : '-');

/** The line of one finished run, with its newline. */
export function updateLogLine(e: UpdateLogEntry): string {
  const at = new Date(e.at).toISOString().replace(/\.\d{3}Z$/, 'Z');
  return `${at} ${e.component} ${plain(e.fromVersion)} -> ${plain(e.toVersion)} ${e.state} ${JSON.stringify(e.message)}\n`;
}

export class UpdateLog {
  readonly path: string;
  private readonly maxBytes: number;
  /** The writes, one after another, in the order of the runs' ends. */
  private queue: Promise<void> = Promise.resolve();

  constructor(
    readonly dir: string,
    private readonly log: Logger,
    /** The size limit of one file (tests lower it). */
    options: { maxBytes?: number } = {},
  ) {
    this.path = join(dir, 'updates.log');
    this.maxBytes = options.maxBytes ?? UPDATE_LOG_MAX_BYTES;
  }

  /** Queues the line of a finished run; returns at once. */
  append(entry: UpdateLogEntry): void {
    const line = Buffer.from(updateLogLine(entry));
    this.queue = this.queue.then(
      () =>
        this.write(line).catch((error: unknown) => {
          const e = error as NodeJS.ErrnoException;
          this.log.error({ err: e, path: this.path }, `cannot write the update log ${this.path} (${e.code ?? e.message}); this line is lost: ${line.toString().trimEnd()}`);
        }),
    );
  }

  /** Resolves once the queued lines are written (or given up), or after `timeoutMs`, whichever is first. */
  async flush(timeoutMs = 2000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.queue, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  private async write(line: Buffer): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    let size = await sizeOf(this.path);
    if (size > 0 && size + line.length > this.maxBytes) {
      await this.rotate();
      size = 0;
    }
    // O_APPEND | O_CREAT | O_WRONLY: each write lands at the end, whoever else appends.
    const file = await open(this.path, 'a', 0o644);
    try {
      // A line cut short earlier (the disk filled mid-write) is ended first, so that this one stays a line of its own.
      const data = size > 0 && !(await endsWithNewline(this.path, size)) ? Buffer.concat([Buffer.from('\n'), line]) : line;
      const { bytesWritten } = await file.write(data);
      if (bytesWritten !== data.length) throw Object.assign(new Error(`only ${bytesWritten} of ${data.length} bytes were written`), { code: 'ESHORTWRITE' });
    } finally {
      await file.close();
    }
  }

  private async rotate(): Promise<void> {
    const name = (i: number) => (i === 0 ? this.path : `${this.path}.${i}`);
    // .1 → .2 (replacing the oldest), then updates.log → .1. A rename replaces its target at once.
    for (let i = UPDATE_LOG_FILES - 1; i >= 1; i--) {
      try {
        await rename(name(i - 1), name(i));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
  }
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw error;
  }
}

async function endsWithNewline(path: string, size: number): Promise<boolean> {
  const file = await open(path, 'r');
  try {
    const last = Buffer.alloc(1);
    await file.read(last, 0, 1, size - 1);
    return last[0] === 0x0a;
  } finally {
    await file.close();
  }
}
