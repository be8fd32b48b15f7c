/**
 * The `updater serve` process as the `self` kind sees it (src/core/host.ts): its version, the
 * install root `launch` started it from, its own server (for the new release's check of itself)
 * and its supervisor (exit, and launch starts the next release). Made by the composition root.
 */
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from 'pino';
import type { UpdaterHost } from './core/host.js';
import { InstallRoot } from './kinds/self/install-root.js';
import { fsyncDir, fsyncFile } from './util/fs-atomic.js';

export interface ServeHost extends UpdaterHost {
  /** Told once the server listens (selfCheck asks it). */
  listening(url: string): void;
  /** Resolves when a run asked the process to exit for its supervisor. */
  readonly restartRequested: Promise<{ code: number; why: string }>;
}

/** How long the new release tries its own /healthz before its check fails. */
const SELF_CHECK_MS = 15_000;

export function serveHost(o: { version: string; databasePath: string; env?: NodeJS.ProcessEnv }): ServeHost {
  const env = o.env ?? process.env;
  let url: string | null = null;
  let request!: (r: { code: number; why: string }) => void;
  const restartRequested = new Promise<{ code: number; why: string }>((resolve) => (request = resolve));
  return {
    version: o.version,
    installRoot: env.UPDATER_INSTALL_ROOT || null,
    onTrial: env.UPDATER_ON_TRIAL === '1',
    databasePath: o.databasePath,
    listening(at) {
      url = at;
    },
    async selfCheck(signal) {
      if (!url) throw new Error('the server is not listening');
      const deadline = Date.now() + SELF_CHECK_MS;
      let last = 'no answer yet';
      for (;;) {
        try {
          const res = await fetch(`${url}/healthz`, { signal: AbortSignal.any([signal, AbortSignal.timeout(3000)]) });
          const body = (await res.json()) as { version?: unknown; journal?: unknown };
          if (res.ok && body.version === o.version && body.journal === 'ok') return;
          last = `/healthz answered ${res.status} with version ${String(body.version)} and journal ${String(body.journal)}`;
        } catch (error) {
          signal.throwIfAborted();
          last = `/healthz did not answer: ${(error as Error).message}`;
        }
        if (Date.now() > deadline) throw new Error(last);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    restart(code, why) {
      request({ code, why });
    },
    restartRequested,
  };
}

/**
 * On trial, before the journal's migrations run: the new release copies the journal with SQLite's
 * backup API and records the copy in the trial file, so that launch can put it back if the trial
 * is given up (the old release cannot read a schema it does not know). Done once per trial: a
 * later start of the same release finds `dbCopy` set. A copy that cannot be made stops the start
 * (the caller exits non-zero; launch counts it), so no migration runs without one.
 */
export async function copyJournalForTrial(host: UpdaterHost, logger: Logger): Promise<string | null> {
  if (!host.installRoot) return null;
  const root = new InstallRoot(host.installRoot);
  const trial = root.readTrial();
  if (!trial || trial.to !== host.version || trial.dbCopy || !existsSync(host.databasePath)) return null;
  const copy = `${host.databasePath}.before-${trial.to}`;
  const db = new Database(host.databasePath, { fileMustExist: true });
  try {
    await db.backup(copy);
  } finally {
    db.close();
  }
  fsyncFile(copy);
  fsyncDir(dirname(copy));
  root.writeTrial({ ...trial, dbCopy: copy });
  logger.info({ copy }, `on trial: copied the journal to ${copy} before its migrations (launch puts it back if this release is given up)`);
  return copy;
}
