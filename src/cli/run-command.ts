/**
 * `updater update` and `updater rollback`: start a run and follow it to its end, printing each
 * transition as it is committed. Through the running service when one answers; otherwise in
 * this process (taking the data dir's lock, recovering first, as the service would).
 */
import type { Config } from '../config/index.js';
import type { Run as RunView } from '../contract/index.js';
import { CommandError } from '../app/index.js';
import { createLogger } from '../log.js';
import { acquireInstanceLock } from '../journal/instance-lock.js';
import { createCore } from '../main.js';
import { Remote, RemoteError } from './remote.js';

/** Exit codes scripts can use. */
import { EXIT } from './exit-codes.js';

export { EXIT };

/** A manual rollback (`mode: restore`) that ends rolled_back did what was asked: 0. */
export function exitCodeFor(state: string, mode: 'update' | 'restore' = 'update'): number {
  if (state === 'succeeded' || state === 'up_to_date' || state === 'validated') return EXIT.ok;
  if (mode === 'restore' && state === 'rolled_back') return EXIT.ok;
  if (state === 'rollback_failed') return EXIT.manual;
  return EXIT.notApplied;
}

type Line = (t: { at: string; to: string; message: string }) => void;

const printLine: Line = (t) => console.log(`${t.at.slice(11, 19)}  ${t.to.padEnd(15)} ${t.message}`);

export interface RunRequest {
  component: string;
  version?: string | null;
  dryRun?: boolean;
  mode: 'update' | 'restore';
  json: boolean;
}

export async function runAndFollow(config: Config, req: RunRequest): Promise<number> {
  const remote = new Remote(config);
  // A running service knows its components (the demo's too): it answers for unknown ones.
  const viaRemote = await remote.reachable();
  if (!viaRemote && !config.components.some((c) => c.name === req.component)) {
    console.error(`no component named "${req.component}" (configured: ${config.components.map((c) => c.name).join(', ') || 'none'})`);
    return EXIT.usage;
  }
  const run = viaRemote ? await viaService(remote, req) : await inProcess(config, req);
  if (typeof run === 'number') return run;
  if (req.json) console.log(JSON.stringify(run));
  else console.log(`\n${run.state}: ${run.message ?? ''}`);
  return exitCodeFor(run.state, req.mode);
}

async function viaService(remote: Remote, req: RunRequest): Promise<RunView | number> {
  let runId: number;
  try {
    const path = req.mode === 'restore' ? `/api/components/${req.component}/rollback` : `/api/components/${req.component}/updates`;
    const body = req.mode === 'restore' ? undefined : { ...(req.version ? { version: req.version } : {}), ...(req.dryRun ? { dry_run: true } : {}) };
    ({ run_id: runId } = await remote.request<{ run_id: number }>('POST', path, body));
  } catch (error) {
    if (error instanceof RemoteError) {
      console.error(`${error.code}: ${error.message}`);
      return error.code === 'busy' ? EXIT.busy : error.status === 404 || error.status === 400 || error.status === 401 ? EXIT.usage : EXIT.failure;
    }
    throw error;
  }
  if (!req.json) console.log(`run ${runId} started by the service at ${remote.base}`);
  let seen = 0;
  for (;;) {
    const run = await remote.request<RunView>('GET', `/api/runs/${runId}`);
    for (const t of run.transitions ?? []) {
      if (t.seq > seen) {
        seen = t.seq;
        if (!req.json) printLine(t);
      }
    }
    if (run.result) return run;
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function inProcess(config: Config, req: RunRequest): Promise<RunView | number> {
  const logger = createLogger(process.env.UPDATER_LOG_LEVEL ?? 'silent');
  const lock = acquireInstanceLock(config.dataDir);
  try {
    const core = createCore({ config, logger });
    const { commands, queries, feed } = core.app;
    try {
      if (!req.json) {
        // Each transition as it is committed (the feed sends it in the same step).
        feed
          .subscribe({
            subjects: new Set(['updater_progress']),
            send: (m) => {
              if (m.subject === 'updater_progress' && !m.body.transient) printLine({ at: new Date().toISOString(), to: m.body.state, message: m.body.message });
              return true;
            },
          })
          .live();
      }
      await core.recover();
      try {
        const { runId } = req.mode === 'restore' ? await commands.restore(req.component) : await commands.startRun(req.component, { version: req.version ?? null, dryRun: req.dryRun ?? false });
        if (!req.json) console.log(`run ${runId} (no service running: run by this command)`);
        return await queries.runEnded(runId);
      } catch (error) {
        if (error instanceof CommandError) {
          console.error(`${error.code}: ${error.message}`);
          return error.code === 'busy' ? EXIT.busy : EXIT.notApplied;
        }
        throw error;
      }
    } finally {
      await core.close();
    }
  } finally {
    lock.release();
  }
}
