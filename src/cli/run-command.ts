/**
 * `updater update`, `updater update --all` and `updater rollback`: start a run (or an update of
 * all components, one run after another) and follow it to its end, printing each transition as it
 * is committed. Through the running service when one answers; otherwise in this process (taking
 * the data dir's lock, recovering first, as the service would).
 */
import type { Config } from '../config/index.js';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BatchRun, Run as RunView, UpdateAllStarted, UpdateBatch } from '../contract/index.js';
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

/** The exit code of a request the service refused. */
function refusedExit(error: RemoteError): number {
  console.error(`${error.code}: ${error.message}`);
  if (error.code === 'busy') return EXIT.busy;
  // Another component must be updated first: nothing was applied.
  if (error.code === 'update_first') return EXIT.notApplied;
  return error.status === 404 || error.status === 400 || error.status === 401 ? EXIT.usage : EXIT.failure;
}

async function viaService(remote: Remote, req: RunRequest): Promise<RunView | number> {
  let runId: number;
  try {
    const path = req.mode === 'restore' ? `/api/components/${req.component}/rollback` : `/api/components/${req.component}/updates`;
    const body = req.mode === 'restore' ? undefined : { ...(req.version ? { version: req.version } : {}), ...(req.dryRun ? { dry_run: true } : {}) };
    ({ run_id: runId } = await remote.request<{ run_id: number }>('POST', path, body));
  } catch (error) {
    if (error instanceof RemoteError) return refusedExit(error);
    throw error;
  }
  if (!req.json) console.log(`run ${runId} started by the service at ${remote.base}`);
  return followRun(remote, runId, req.json);
}

/** Prints each transition of a run of the service as it is committed, until the run ends. */
async function followRun(remote: Remote, runId: number, quiet: boolean): Promise<RunView> {
  let seen = 0;
  for (;;) {
    const run = await remote.request<RunView>('GET', `/api/runs/${runId}`);
    for (const t of run.transitions ?? []) {
      if (t.seq > seen) {
        seen = t.seq;
        if (!quiet) printLine(t);
      }
    }
    if (run.result) return run;
    await sleep(250);
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

// ------------------------------------------------------------------------------ update --all

/** `Updating core from 1.0.0 to 1.1.0 (run 7)`: a run of an update of all, as it starts. */
const runHeader = (r: BatchRun) => `Updating ${r.component} from ${r.from_version ?? 'an unknown version'} to ${r.to_version ?? 'the latest'} (run ${r.run_id})`;

/**
 * 0 when every run succeeded (or there was nothing to update); else the code of the run that
 * stopped it (1 not applied, 4 rollback failed), or 3 when a run could not start or did not end.
 */
export function exitCodeForBatch(batch: UpdateBatch): number {
  if (batch.state === 'succeeded') return EXIT.ok;
  const last = batch.runs.at(-1);
  if (!last?.result || last.result === 'succeeded' || last.result === 'up_to_date') return EXIT.failure;
  return exitCodeFor(last.result);
}

/** `updater update --all`: every component with an update, one run after another, each followed. */
export async function updateAllAndFollow(config: Config, options: { json: boolean }): Promise<number> {
  const remote = new Remote(config);
  const batch = (await remote.reachable()) ? await allViaService(remote, options.json) : await allInProcess(config, options.json);
  if (typeof batch === 'number') return batch;
  if (options.json) console.log(JSON.stringify(batch));
  else console.log(batch.components.length === 0 ? batch.message : `\n${batch.state}: ${batch.message}`);
  return exitCodeForBatch(batch);
}

async function allViaService(remote: Remote, json: boolean): Promise<UpdateBatch | number> {
  let started: UpdateAllStarted;
  try {
    started = await remote.request<UpdateAllStarted>('POST', '/api/updates', {});
  } catch (error) {
    if (error instanceof RemoteError) return refusedExit(error);
    throw error;
  }
  if (!json && started.components.length > 0) console.log(`update of all (batch ${started.batch_id}) started by the service at ${remote.base}: ${started.components.join(', then ')}`);
  let followed = 0;
  try {
    for (;;) {
      const batch = await remote.request<UpdateBatch>('GET', '/api/updates');
      // A batch lives in the service's memory: a restart ends it (the run under way is recovered).
      if (batch.batch_id !== started.batch_id) throw new Error(`the service now reports batch ${batch.batch_id}, not ${started.batch_id}`);
      if (followed === batch.runs.length && batch.state !== 'running') return batch;
      for (const r of batch.runs.slice(followed)) {
        if (!json) console.log(runHeader(r));
        const run = await followRun(remote, r.run_id, json);
        if (!json) console.log(`${run.state}: ${run.message ?? ''}`);
        followed++;
      }
      if (batch.state === 'running') await sleep(250);
    }
  } catch (error) {
    console.error(`lost the update of all (batch ${started.batch_id}) at the service ${remote.base}: ${(error as Error).message}; was it restarted? \`updater runs\` shows what was done`);
    return EXIT.failure;
  }
}

async function allInProcess(config: Config, json: boolean): Promise<UpdateBatch | number> {
  const logger = createLogger(process.env.UPDATER_LOG_LEVEL ?? 'silent');
  const lock = acquireInstanceLock(config.dataDir);
  try {
    const core = createCore({ config, logger });
    try {
      let ended!: (batch: UpdateBatch) => void;
      const end = new Promise<UpdateBatch>((resolve) => (ended = resolve));
      core.app.feed
        .subscribe({
          subjects: new Set(['updater_progress', 'update_result', 'update_batch']),
          send: (m) => {
            // Each run of the batch is announced before its first transition.
            if (m.subject === 'update_batch') {
              if (m.body.state !== 'running') ended(m.body);
              else if (!json) {
                if (m.body.runs.length === 1) console.log(`update of all (no service running: run by this command): ${m.body.components.join(', then ')}`);
                console.log(runHeader(m.body.runs.at(-1)!));
              }
            } else if (json) return true;
            else if (m.subject === 'updater_progress' && !m.body.transient) printLine({ at: new Date().toISOString(), to: m.body.state, message: m.body.message });
            else if (m.subject === 'update_result') console.log(`${m.body.state}: ${m.body.message}`);
            return true;
          },
        })
        .live();
      await core.recover();
      try {
        await core.app.commands.updateAll();
      } catch (error) {
        if (error instanceof CommandError) {
          console.error(`${error.code}: ${error.message}`);
          return error.code === 'busy' ? EXIT.busy : EXIT.failure;
        }
        throw error;
      }
      return await end;
    } finally {
      await core.close();
    }
  } finally {
    lock.release();
  }
}
