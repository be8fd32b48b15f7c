#!/usr/bin/env node
/**
 * `updater serve | check | update [--all] | rollback | status | runs | run <id> | config check`.
 * Reading commands read the history through the composition root (the journal opened read-only),
 * so they work whether or not the service is running.
 */
import { parseArgs } from 'node:util';
import { ConfigError, EMBEDDED_SOURCE, loadConfig } from './config/index.js';
import { JournalError } from './journal/database.js';
import type { History } from './app/history.js';
import { createLogger } from './log.js';
import type { CheckResult, Run } from './contract/index.js';
import { EXIT } from './cli/exit-codes.js';
import { Remote, RemoteError } from './cli/remote.js';
import type { Config } from './config/index.js';
import { UPDATER_VERSION } from './version.js';

const USAGE = `updater ${UPDATER_VERSION}: keeps a device's components current from GitHub releases

Usage:
  updater serve    [--config FILE] [--ini dunebugger.conf]     run the service
  updater check    [COMPONENT] [--json]                        ask GitHub for new releases now
  updater update   COMPONENT [--version V] [--dry-run] [--json]
                                                               update, following every phase
  updater update   --all [--json]                              update every component that has an
                                                               update, one after another (updateFirst
                                                               ones first), stopping at a failure
  updater rollback COMPONENT [--json]                          restore the newest backup
  updater status   [--json]                                    components and the active run
  updater runs     [--component NAME] [--limit N] [--json]     the history
  updater run ID   [--json]                                    one run and its transitions
  updater config check [--config FILE] [--ini FILE]            validate the configuration
  updater frontend SUBJECT [BODY] [--wait S]                   play the DuneBugger frontend on the
                                                               Web PubSub hub (docs/frontend.md)
  updater fleet    status|rollout|resume|show …                the fleet console on NATS
                                                               (docs/fleet.md; updater fleet help)

Every command takes --config FILE (default ./updater.yaml, else the embedded demo) and --ini.
check, update and rollback go through the running service when one answers at server.host:port
(with server.token); otherwise they run here.
Exit codes: 0 done (succeeded, up to date, validated; update --all: every run succeeded, or
nothing to update); 1 not applied (aborted, rolled back, or refused because an updateFirst
component must be updated first); 2 usage or invalid configuration; 3 failure (journal, service);
4 rollback failed: manual intervention required; 5 busy (another run is active).`;

async function main(argv: string[]): Promise<number> {
  // The fleet console has options of its own and needs no configuration (only the NATS to talk to).
  if (argv[0] === 'fleet') {
    const { fleet } = await import('./cli/fleet.js');
    return fleet(argv.slice(1));
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        ini: { type: 'string' },
        component: { type: 'string' },
        limit: { type: 'string' },
        version: { type: 'string' },
        'dry-run': { type: 'boolean' },
        all: { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        'show-version': { type: 'boolean' },
        wait: { type: 'string' },
      },
    });
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values['show-version'] || positionals[0] === 'version') {
    console.log(UPDATER_VERSION);
    return 0;
  }
  const [command = values.help ? 'help' : 'serve', ...rest] = positionals;
  if (command === 'help') {
    console.log(USAGE);
    return 0;
  }

  let loaded;
  try {
    loaded = loadConfig({ configPath: values.config ?? process.env.UPDATER_CONFIG, iniPath: values.ini, env: process.env });
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`invalid configuration: ${error.message}`);
      return 2;
    }
    throw error;
  }
  const { config, source } = loaded;

  // With no configuration at all, the components are the embedded demo's, which exists only
  // inside a running `updater serve`: without one answering, there is nothing here to ask about.
  let demoComponents: Array<{ name: string; kind: string }> | null = null;
  if (source === EMBEDDED_SOURCE && config.components.length === 0 && ['check', 'status', 'update', 'rollback'].includes(command)) {
    const remote = new Remote(config);
    if (!(await remote.reachable())) {
      console.error(demoAbsent(remote.base));
      return EXIT.usage;
    }
    if (command === 'status') {
      try {
        demoComponents = (await remote.request<Array<{ name: string; kind: string }>>('GET', '/api/components')).map(({ name, kind }) => ({ name, kind }));
      } catch (error) {
        if (!(error instanceof RemoteError)) throw error;
        console.error(`${error.code}: ${error.message}`);
        return EXIT.failure;
      }
    }
  }

  switch (command) {
    case 'serve':
      return serve(config, source);
    case 'check':
      return check(config, rest[0], values.json ?? false);
    case 'update':
    case 'rollback': {
      if (values.all) {
        if (command !== 'update' || rest[0] || values.version || values['dry-run']) {
          console.error('usage: updater update --all [--json] (no component, --version or --dry-run with --all)');
          return EXIT.usage;
        }
        const { updateAllAndFollow } = await import('./cli/run-command.js');
        return updateAllAndFollow(config, { json: values.json ?? false });
      }
      if (!rest[0]) {
        console.error(`usage: updater ${command} COMPONENT${command === 'update' ? ' (or --all)' : ''}`);
        return EXIT.usage;
      }
      const { runAndFollow } = await import('./cli/run-command.js');
      return runAndFollow(config, { component: rest[0], version: values.version ?? null, dryRun: values['dry-run'] ?? false, mode: command === 'rollback' ? 'restore' : 'update', json: values.json ?? false });
    }
    case 'frontend': {
      const wait = values.wait === undefined ? 3 : Number(values.wait);
      if (!rest[0] || !Number.isFinite(wait) || wait < 0) {
        console.error('usage: updater frontend SUBJECT [BODY] [--wait SECONDS], e.g. `updater frontend updater.update sample-app`');
        return EXIT.usage;
      }
      const { playFrontend } = await import('./cli/frontend.js');
      // At once: the client library's keep-alive timer would hold the process another 20 s.
      return process.exit(await playFrontend(config, rest[0], rest[1], wait));
    }
    case 'config': {
      if (rest[0] !== 'check') {
        console.error('usage: updater config check [--config FILE] [--ini FILE]');
        return EXIT.usage;
      }
      console.log(`configuration ok (${source}): ${config.components.length} component(s)${config.components.length ? `: ${config.components.map((c) => `${c.name} (${c.kind})`).join(', ')}` : source === EMBEDDED_SOURCE ? ' (serve runs the demo)' : ''}`);
      console.log(`dataDir ${config.dataDir}, backupDir ${config.backupDir}, listening on ${config.server.host}:${config.server.port}${config.server.token ? ' with a token' : ' without a token'}`);
      return 0;
    }
    case 'status':
      return withHistory(config, (h) => {
        const active = h.unfinished();
        const rows = (demoComponents ?? config.components).map((c) => {
          const last = h.runs({ component: c.name, limit: 1 })[0];
          return [c.name, c.kind, last ? `${last.state} (run ${last.run_id})` : '-', last?.message ?? ''];
        });
        if (values.json) console.log(JSON.stringify({ active_run: active ?? null, components: rows }));
        else {
          console.log(table(['COMPONENT', 'KIND', 'LAST RUN', 'MESSAGE'], rows));
          console.log(active ? `\nactive: run ${active.id} of ${active.component}, in ${active.state}` : '\nno active run');
        }
        return 0;
      });
    case 'runs':
      return withHistory(config, (h) => {
        const limit = values.limit ? Number(values.limit) : 20;
        if (!Number.isInteger(limit) || limit < 1) {
          console.error('--limit must be a positive whole number');
          return 2;
        }
        const runs = h.runs({ component: values.component, limit });
        if (values.json) console.log(JSON.stringify(runs));
        else console.log(table(['RUN', 'COMPONENT', 'FROM', 'TO', 'STATE', 'UPDATED', 'MESSAGE'], runs.map(runRow)));
        return 0;
      });
    case 'run': {
      const id = Number(rest[0]);
      if (!Number.isInteger(id) || id < 1) {
        console.error(`usage: updater run ID (got ${rest[0] ?? 'nothing'})`);
        return 2;
      }
      return withHistory(config, (h) => {
        const run = h.run(id);
        if (!run) {
          console.error(`no run ${id}`);
          return 1;
        }
        if (values.json) console.log(JSON.stringify(run));
        else {
          console.log(`run ${run.run_id}: ${run.component} (${run.kind}) ${run.from_version ?? '?'} → ${run.to_version ?? '?'}${run.dry_run ? ' [dry run]' : ''}`);
          console.log(`state: ${run.state}${run.recoveries ? `, recovered ${run.recoveries}×` : ''}\n${run.message ?? ''}\n`);
          console.log(table(['SEQ', 'AT', 'FROM', 'TO', 'EVENT', 'MESSAGE'], run.transitions!.map((t) => [String(t.seq), t.at, t.from ?? '', t.to, t.event, t.message])));
        }
        return 0;
      });
    }
    default:
      console.error(`unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

/** What `check`, `status`, `update` and `rollback` say with no configuration and no service answering. */
function demoAbsent(url: string): string {
  return [
    'There is no configuration here (no --config, no ./updater.yaml, no --ini), so the components would be those of',
    'the embedded demo, and the demo lives only inside a running `updater serve` (`npm start`).',
    `No updater answers at ${url}. Start the demo in another terminal and ask again, or name a configuration`,
    'with --config FILE.',
  ].join('\n');
}

async function serve(config: Config, source: string): Promise<number> {
  const { startService } = await import('./main.js');
  const logger = createLogger();
  let service;
  try {
    service = await startService(config, source, logger);
  } catch (error) {
    logger.fatal({ err: error }, (error as Error).message);
    return error instanceof JournalError ? 3 : 1;
  }
  await new Promise<void>((resolve) => {
    const onSignal = (signal: string) => {
      logger.info({ signal }, `stopping on ${signal}`);
      service.stop().then(resolve, resolve);
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  });
  logger.info('stopped');
  // Everything of ours is closed; a library's leftover timer (the Web PubSub client's keep-alive
  // waits out its 20 s interval even once aborted) must not hold the process past its stop.
  process.exit(0);
}

async function check(config: Config, only: string | undefined, json: boolean): Promise<number> {
  const remote = new Remote(config);
  const viaRemote = await remote.reachable();
  if (!viaRemote && only && !config.components.some((c) => c.name === only)) {
    console.error(`no component named "${only}" (configured: ${config.components.map((c) => c.name).join(', ') || 'none'})`);
    return 1;
  }
  if (viaRemote) {
    try {
      const body = await remote.request<CheckResult>('POST', '/api/checks', only ? { component: only } : {});
      if (json) console.log(JSON.stringify(body));
      else {
        console.log(
          table(
            ['COMPONENT', 'INSTALLED', 'LATEST', 'UPDATE', 'CHECKED', 'NOTE'],
            Object.entries(body.components).map(([name, c]) => [name, c.current ?? '?', c.latest ?? '?', c.update_available ? 'yes' : 'no', c.last_checked ?? 'never', (c.stale ? '[stale] ' : '') + (c.reason ?? '')]),
          ),
        );
      }
      return 0;
    } catch (error) {
      if (error instanceof RemoteError) {
        console.error(`${error.code}: ${error.message}`);
        return error.status === 404 ? 1 : EXIT.failure;
      }
      throw error;
    }
  }
  const logger = createLogger(process.env.UPDATER_LOG_LEVEL ?? 'silent');
  const { createCore } = await import('./main.js');
  const core = createCore({ config, logger });
  try {
    const result = await core.app.commands.check(only);
    if (json) console.log(JSON.stringify(result));
    else {
      const kinds = new Map(config.components.map((c) => [c.name, c.kind]));
      console.log(
        table(
          ['COMPONENT', 'KIND', 'INSTALLED', 'LATEST', 'UPDATE', 'CHECKED', 'NOTE'],
          Object.entries(result.components).map(([name, c]) => [name, kinds.get(name) ?? '?', c.current ?? '?', c.latest ?? '?', c.update_available ? 'yes' : 'no', c.last_checked ?? 'never', (c.stale ? '[stale] ' : '') + (c.reason ?? '')]),
        ),
      );
    }
    return 0;
  } finally {
    await core.close();
  }
}

async function withHistory(config: Config, fn: (h: History) => number): Promise<number> {
  const { readHistory } = await import('./main.js');
  const answer = readHistory(config, fn);
  if (answer === null) {
    console.error(`no journal in ${config.dataDir} yet: the service has not run with this configuration`);
    return 1;
  }
  return answer;
}

function runRow(r: Run): string[] {
  return [String(r.run_id), r.component, r.from_version ?? '-', r.to_version ?? '-', r.state + (r.dry_run ? ' (dry)' : ''), r.updated_at, r.message ?? ''];
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}

const code = await main(process.argv.slice(2));
// A release on trial never exits 2 ("invalid configuration, do not restart" to the supervisor):
// launch must get to count the start and give the release up.
process.exitCode = code === 2 && process.env.UPDATER_ON_TRIAL === '1' ? 1 : code;
