/**
 * Many devices (CONTRACT.md, "Many devices: NATS and the fleet console"): the NATS subjects, the
 * JetStream KV buckets' records and the fleet console's answers, declared once for the device's
 * transport (src/nats/), the console (src/fleet/), the dashboard's Fleet page and the docs.
 */
import { z } from 'zod';
import { systemInfoBody } from './shapes.js';

/** Every device's status: key = device name, value = a `DeviceRecord`. */
export const DEVICES_BUCKET = 'dune_devices';
/** Every rollout: key = rollout id, value = a `RolloutRecord`, written before each step. */
export const ROLLOUTS_BUCKET = 'dune_rollouts';
/** A device counts as online when its record was written within this long. */
export const ONLINE_WITHIN_MS = 120_000;
/** A device rewrites its record at least this often (and on every (re)connect and change). */
export const DEVICE_REFRESH_MS = 60_000;

/** `dune.<device>.<ws subject>`: request/reply, the payload a /ws body, the reply a /ws envelope. */
export const requestSubject = (device: string, subject: string): string => `dune.${device}.${subject}`;
/** `dune.<device>.events.<subject>`: every outbound message of the device, as its /ws envelope. */
export const eventSubject = (device: string, subject: string): string => `dune.${device}.events.${subject}`;
/** A device name as a subject token and a KV key: no dots, spaces or wildcards. */
export const DEVICE_NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** The run a `updater.perform_update` request started (or, with the same `rollout`, had started): the reply's body, subject `run`. */
export const runReply = z.object({
  run_id: z.int(),
  component: z.string(),
  state: z.string().meta({ description: 'The run\'s state now.' }),
  result: z.string().nullable().meta({ description: 'Its end state once it has ended, else null.' }),
  message: z.string().nullable(),
  to_version: z.string().nullable(),
});
export type RunReply = z.output<typeof runReply>;

/** A device's record in `dune_devices`. */
export const deviceRecord = z.object({
  device: z.string(),
  updated_at: z.string().meta({ description: 'ISO 8601, UTC: when the device wrote it.' }),
  updater_version: z.string(),
  system_info: systemInfoBody.shape.system_info,
  active_run: z.object({ run_id: z.int(), component: z.string(), state: z.string() }).nullable(),
});
export type DeviceRecord = z.output<typeof deviceRecord>;

export const rolloutStates = ['canary', 'batches', 'done', 'halted'] as const;
export const deviceResults = z.string().meta({ description: '`pending`, `skipped`, or the run\'s end state (`succeeded`, `rolled_back`, …).' });

/** One device of a rollout. */
export const rolloutDevice = z.object({
  device: z.string(),
  group: z.string().meta({ description: '`canary`, `batch-1`, `batch-2`, …' }),
  result: deviceResults,
  run_id: z.int().nullable(),
  reason: z.string().nullable().meta({ description: 'Why it was skipped or failed, when it was.' }),
});
export type RolloutDevice = z.output<typeof rolloutDevice>;

/** `fleet show ID --json`. */
export const rolloutView = z.object({
  id: z.string(),
  component: z.string(),
  version: z.string(),
  state: z.enum(rolloutStates),
  devices: z.array(rolloutDevice),
});
export type RolloutView = z.output<typeof rolloutView>;

/** A rollout's record in `dune_rollouts`: its view, its settings, and the machine's stored state. */
export const rolloutRecord = rolloutView.extend({
  format: z.literal(1),
  canary: z.int(),
  batch: z.int(),
  max_failures: z.int(),
  /** Index of the group being worked on (0 = canary). */
  group_index: z.int(),
  created_at: z.string(),
  updated_at: z.string(),
});
export type RolloutRecord = z.output<typeof rolloutRecord>;

/** One line of `fleet status --json`. */
export const fleetDevice = z.object({
  device: z.string(),
  online: z.boolean(),
  updated_at: z.string(),
  components: z.array(z.object({ name: z.string(), installed: z.string().nullable(), latest: z.string().nullable() })),
  active_run: deviceRecord.shape.active_run,
});
export type FleetDevice = z.output<typeof fleetDevice>;
