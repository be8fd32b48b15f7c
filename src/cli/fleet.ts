/**
 * `updater fleet status | rollout | resume | show`: the fleet console (docs/fleet.md). It needs
 * no configuration of its own: only the NATS to talk to (--nats, --creds, --user/--password,
 * --token, or UPDATER_NATS_URL, _CREDS, _USER, _PASSWORD, _TOKEN).
 * Exit codes: 0 done (or listed); 1 halted; 2 bad input (usage, unknown rollout, no devices);
 * 3 failure (NATS unreachable, the rollout's record cannot be stored: resume it later).
 */
import { parseArgs } from 'node:util';
import { DEVICE_NAME_PATTERN, type RolloutView } from '../contract/fleet.js';
import { componentNameLimits, stringProblem, versionLimits } from '../contract/limits.js';
import { EXIT } from './exit-codes.js';
import { busOptions, FleetError, openBus, type Bus } from '../fleet/bus.js';
import { devicesWith, fleetDevice, readDevices } from '../fleet/devices.js';
import { DEFAULT_GROUP_TIMEOUT_MS, fromRecord, loadRollout, newRolloutId, runRollout, tally, type RolloutOutcome } from '../fleet/rollout.js';
import { newRolloutContext, toRecord } from '../../machines/rollout-machine.js';
import type { RolloutRecord } from '../contract/fleet.js';

export const FLEET_USAGE = `Usage:
  updater fleet status  [--json]                               every device in dune_devices
  updater fleet rollout COMPONENT --version V [--devices a,b,…] [--canary N] [--batch N]
                        [--max-failures N] [--group-timeout S] [--json]
                                                               update the fleet: canary (default 1),
                                                               then batches (default 5); halts when
                                                               failures exceed --max-failures (0)
  updater fleet resume  ID [--json]                            go on with a rollout from its record
  updater fleet show    ID [--json]                            a rollout and its devices

NATS: --nats URL[,URL…] (default nats://127.0.0.1:4222), --creds FILE, --user U --password P,
--token T; or UPDATER_NATS_URL, UPDATER_NATS_CREDS, UPDATER_NATS_USER, UPDATER_NATS_PASSWORD,
UPDATER_NATS_TOKEN. Exit codes: 0 done; 1 halted; 2 bad input (unknown rollout, no devices);
3 NATS unreachable or the rollout's record cannot be stored (resume it later).`;

const options = {
  nats: { type: 'string' },
  creds: { type: 'string' },
  user: { type: 'string' },
  password: { type: 'string' },
  token: { type: 'string' },
  version: { type: 'string' },
  devices: { type: 'string' },
  canary: { type: 'string' },
  batch: { type: 'string' },
  'max-failures': { type: 'string' },
  'group-timeout': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseArgs<{ args: string[]; allowPositionals: true; options: typeof options }>>['values'];

export async function fleet(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options });
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${FLEET_USAGE}`);
    return EXIT.usage;
  }
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (values.help || command === undefined || command === 'help') {
    console.log(FLEET_USAGE);
    return command === undefined && !values.help ? EXIT.usage : EXIT.ok;
  }
  try {
    switch (command) {
      case 'status':
        return await withBus(values, (bus) => status(bus, values.json ?? false));
      case 'rollout':
        return await rollout(rest, values);
      case 'resume':
      case 'show': {
        const id = rest[0];
        if (!id || rest.length > 1) throw new FleetError(`usage: updater fleet ${command} ID`, EXIT.usage);
        return await withBus(values, (bus) => (command === 'show' ? show(bus, id, values.json ?? false) : resume(bus, id, values)));
      }
      default:
        throw new FleetError(`unknown fleet command "${command}"\n\n${FLEET_USAGE}`, EXIT.usage);
    }
  } catch (error) {
    if (error instanceof FleetError) {
      console.error(error.message);
      return error.exit;
    }
    throw error;
  }
}

async function withBus(values: Values, fn: (bus: Bus) => Promise<number>): Promise<number> {
  const bus = await openBus(busOptions(values, process.env));
  try {
    return await fn(bus);
  } finally {
    await bus.close();
  }
}

async function status(bus: Bus, json: boolean): Promise<number> {
  const { records, unreadable } = await readDevices(bus.devices);
  const now = Date.now();
  const lines = records.map((r) => fleetDevice(r, now));
  if (json) console.log(JSON.stringify(lines));
  else if (lines.length === 0) console.log(`no device in dune_devices yet (NATS at ${bus.servers})`);
  else {
    const rows = lines.map((d) => [
      d.device,
      d.online ? 'online' : 'offline',
      d.updated_at,
      d.components.map((c) => `${c.name} ${c.installed ?? '?'}${c.latest && c.latest !== c.installed ? ` (→ ${c.latest})` : ''}`).join(', '),
      d.active_run ? `run ${d.active_run.run_id} ${d.active_run.component} ${d.active_run.state}` : '-',
    ]);
    console.log(table(['DEVICE', 'STATUS', 'UPDATED', 'COMPONENTS', 'ACTIVE RUN'], rows));
  }
  if (unreadable.length) console.error(`left out (not a device record): ${unreadable.join(', ')}`);
  return EXIT.ok;
}

/** A whole number ≥ min from an option, or a usage error naming it. */
function count(value: string | undefined, name: string, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min) throw new FleetError(`--${name} must be a whole number ≥ ${min} (got "${value}")`, EXIT.usage);
  return n;
}

async function rollout(rest: string[], values: Values): Promise<number> {
  const component = rest[0];
  if (!component || rest.length > 1) throw new FleetError('usage: updater fleet rollout COMPONENT --version V [--devices a,b,…] [--canary N] [--batch N] [--max-failures N]', EXIT.usage);
  const componentProblem = stringProblem(componentNameLimits, component);
  if (componentProblem) throw new FleetError(`component "${component}": ${componentProblem}`, EXIT.usage);
  const version = values.version;
  if (version === undefined) throw new FleetError('--version V is required: the release every device is to install (e.g. --version 1.2.0)', EXIT.usage);
  const versionProblem = stringProblem(versionLimits, version);
  if (versionProblem) throw new FleetError(`--version "${version}": ${versionProblem}`, EXIT.usage);
  const canary = count(values.canary, 'canary', 1, 0);
  const batch = count(values.batch, 'batch', 5, 1);
  const maxFailures = count(values['max-failures'], 'max-failures', 0, 0);
  const groupTimeoutMs = count(values['group-timeout'], 'group-timeout', DEFAULT_GROUP_TIMEOUT_MS / 1000, 1) * 1000;
  let named: string[] | null = null;
  if (values.devices !== undefined) {
    named = [...new Set(values.devices.split(',').map((d) => d.trim()).filter(Boolean))];
    const bad = named.find((d) => !DEVICE_NAME_PATTERN.test(d));
    if (bad !== undefined) throw new FleetError(`--devices: "${bad}" is not a device name (${DEVICE_NAME_PATTERN.source})`, EXIT.usage);
    if (named.length === 0) throw new FleetError('--devices: no device named', EXIT.usage);
  }
  return withBus(values, async (bus) => {
    let devices = named;
    if (devices === null) {
      const { records } = await readDevices(bus.devices);
      devices = devicesWith(records, component);
      if (devices.length === 0) {
        throw new FleetError(
          records.length === 0 ? `no devices: dune_devices is empty (NATS at ${bus.servers}); name them with --devices` : `no devices: none of the ${records.length} device(s) in dune_devices has a component "${component}"`,
          EXIT.usage,
        );
      }
    }
    const id = newRolloutId();
    const context = newRolloutContext({ id, component, version, devices, canary, batch, maxFailures });
    // The id first, on its own line: a script (or a person) needs it to resume or show the rollout.
    console.log(id);
    const json = values.json ?? false;
    say(json)(`rollout ${id}: ${component} ${version} on ${devices.length} device(s), canary ${Math.min(canary, devices.length)}, batches of ${batch}, at most ${maxFailures} failure(s)`);
    return finish(await drive(bus, id, () => runRollout(bus, context, 'START', null, { groupTimeoutMs, say: say(json) })), json);
  });
}

async function resume(bus: Bus, id: string, values: Values): Promise<number> {
  const json = values.json ?? false;
  const loaded = await loadRollout(bus.rollouts, id);
  if (!loaded) throw new FleetError(`no rollout "${id}" in dune_rollouts (NATS at ${bus.servers})`, EXIT.usage);
  const { record, revision } = loaded;
  if (record.state === 'done' || record.state === 'halted') {
    print(record, json);
    return record.state === 'done' ? EXIT.ok : EXIT.notApplied;
  }
  const groupTimeoutMs = count(values['group-timeout'], 'group-timeout', DEFAULT_GROUP_TIMEOUT_MS / 1000, 1) * 1000;
  say(json)(`resuming rollout ${id} (${record.component} ${record.version}) in ${record.state}, group ${record.group_index + 1}: ${tally(record.devices)}`);
  return finish(await drive(bus, id, () => runRollout(bus, fromRecord(record), 'BOOT', revision, { groupTimeoutMs, say: say(json) })), json);
}

/** Runs the rollout; SIGINT/SIGTERM leave it as stored, to be resumed. */
async function drive(_bus: Bus, id: string, run: () => Promise<RolloutOutcome>): Promise<RolloutOutcome> {
  const onSignal = (signal: string) => {
    console.error(`stopped by ${signal}; the rollout is stored as it stands: updater fleet resume ${id}`);
    process.exit(EXIT.failure);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await run();
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function finish(outcome: RolloutOutcome, json: boolean): number {
  const { state, context } = outcome;
  if (state === 'interrupted') {
    console.error(`rollout ${context.id} interrupted: ${context.interruption?.message ?? 'unknown reason'}; its record is as last stored: updater fleet resume ${context.id}`);
    return EXIT.failure;
  }
  if (json) console.log(JSON.stringify(view(toRecord(context, state))));
  else console.log(`rollout ${context.id} ${state}: ${tally(context.devices)}`);
  return state === 'done' ? EXIT.ok : EXIT.notApplied;
}

async function show(bus: Bus, id: string, json: boolean): Promise<number> {
  const loaded = await loadRollout(bus.rollouts, id);
  if (!loaded) throw new FleetError(`no rollout "${id}" in dune_rollouts (NATS at ${bus.servers})`, EXIT.usage);
  print(loaded.record, json);
  return EXIT.ok;
}

export function view(record: RolloutRecord): RolloutView {
  return { id: record.id, component: record.component, version: record.version, state: record.state, devices: record.devices };
}

function print(record: RolloutRecord, json: boolean): void {
  if (json) {
    console.log(JSON.stringify(view(record)));
    return;
  }
  console.log(`rollout ${record.id}: ${record.component} ${record.version}, ${record.state} (${tally(record.devices)})`);
  console.log(`created ${record.created_at}, updated ${record.updated_at}; canary ${record.canary}, batches of ${record.batch}, at most ${record.max_failures} failure(s)\n`);
  console.log(table(['DEVICE', 'GROUP', 'RESULT', 'RUN', 'REASON'], record.devices.map((d) => [d.device, d.group, d.result, d.run_id === null ? '-' : String(d.run_id), d.reason ?? ''])));
}

/** Progress lines: stdout for people, stderr with --json (stdout keeps the id and the final JSON). */
const say = (json: boolean) => (line: string) => (json ? console.error(line) : console.log(line));

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}
