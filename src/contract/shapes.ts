/**
 * What the updater answers and sends (CONTRACT.md "REST" and "WebSocket /ws"): each shape declared
 * once, as a zod schema, giving the TypeScript type (for the server, the app layer and the
 * dashboard) and the JSON Schema (for the REST routes, /openapi.json and docs/api.md).
 *
 * This file imports nothing but zod: the dashboard's browser code imports its types (type-only,
 * under its own DOM tsconfig).
 */
import { z } from 'zod';

const nullableString = z.string().nullable();

/** Every error, REST and messages alike. */
export const errorDetail = z.object({
  code: z.string().meta({ description: '`not_found`, `busy`, `bad_body`… (docs/api.md, docs/websocket.md)' }),
  message: z.string().meta({ description: 'A sentence a person understands.' }),
});
export type ErrorDetail = z.output<typeof errorDetail>;

/** `{ "error": { "code", "message" } }`: every REST error. */
export const errorResponse = z.object({ error: errorDetail });
export type ErrorResponse = z.output<typeof errorResponse>;

export const errorBody = (code: string, message: string): ErrorResponse => ({ error: { code, message } });

/** `GET /healthz`. */
export const health = z.object({
  status: z.string(),
  version: z.string(),
  recovering: z.boolean().optional(),
  journal: z.enum(['ok', 'unwritable']),
  journal_error: z.string().optional().meta({ description: 'Why the journal cannot be written, naming its path (only when unwritable)' }),
  webpubsub: z.enum(['connected', 'disconnected']).optional().meta({ description: 'When `webpubsub` is configured: whether the device is in its group on the hub.' }),
  nats: z.enum(['connected', 'disconnected']).optional().meta({ description: 'When `nats` is configured: whether the device is connected to the bus.' }),
});
export type Health = z.output<typeof health>;

/** What `running` promises (the drivers' probe, see src/drivers/running-cache.ts), for the API description. */
export const RUNNING_NOTE =
  '`running` is what the service manager said at most 2 s ago: each component\'s status command runs at most once per 2 s, ' +
  'shared by concurrent requests (and by `system_info`), so a service stopped by something else shows as stopped within 2 s ' +
  '(plus the status command\'s own time). What the updater does to a service shows at once: its own start and stop of the ' +
  'service, and the end of a run, make the next request ask again.';

/** A component in `GET /api/components` (and, in part, in `system_info`). */
export const componentView = z.object({
  name: z.string(),
  kind: z.string(),
  current_version: nullableString,
  latest_version: nullableString,
  update_available: z.boolean(),
  last_checked: nullableString,
  release_notes: nullableString,
  release_url: nullableString,
  running: z.boolean().nullable().meta({ description: 'Whether the service runs now; null when it cannot be told.' }),
  active_run: z.int().nullable().meta({ description: "The id of this component's unfinished run, if any." }),
  reason: nullableString.meta({ description: 'Why no update can be offered, or why the result may be out of date; else null.' }),
  stale: z.boolean().meta({ description: 'True when the last check could not reach GitHub and these figures are from before it.' }),
});
export type ComponentView = z.output<typeof componentView>;

/** One component in `update_check_result` (and `POST /api/checks`). */
export const checkedComponent = z.object({
  current: nullableString,
  latest: nullableString,
  update_available: z.boolean(),
  release_notes: nullableString,
  release_url: nullableString,
  last_checked: nullableString,
  reason: z.string().optional(),
  stale: z.boolean().optional(),
});

/** `update_check_result`, and the answer of `POST /api/checks`. */
export const checkResult = z.object({ components: z.record(z.string(), checkedComponent) });
export type CheckResult = z.output<typeof checkResult>;

export const transitionLevel = z.enum(['info', 'warn', 'error']);

/** One committed transition of a run, as REST shows it. */
export const runTransition = z.object({
  seq: z.int(),
  from: nullableString,
  to: z.string(),
  event: z.string(),
  at: z.string(),
  message: z.string(),
  level: transitionLevel.optional(),
});
export type RunTransition = z.output<typeof runTransition>;

/** A run: `GET /api/runs` (without transitions) and `GET /api/runs/:id`. */
export const run = z.object({
  run_id: z.int(),
  component: z.string(),
  kind: z.string(),
  mode: z.enum(['update', 'restore']).optional(),
  from_version: nullableString,
  to_version: nullableString,
  dry_run: z.boolean(),
  state: z.string().meta({ description: 'The machine state.' }),
  result: nullableString.optional(),
  message: nullableString.meta({ description: 'The latest human sentence.' }),
  error: errorDetail.nullable().optional(),
  recoveries: z.int().optional(),
  created_at: z.string(),
  updated_at: z.string(),
  finished_at: nullableString.optional(),
  transitions: z.array(runTransition).optional(),
});
export type Run = z.output<typeof run>;

/** `202` of a request that started a run. */
export const runStarted = z.object({ run_id: z.int() });
export type RunStarted = z.output<typeof runStarted>;

/** One run of an update of all components. */
export const batchRun = z.object({
  component: z.string(),
  run_id: z.int(),
  from_version: nullableString.meta({ description: 'What was installed: as the check found it, then as the run found it.' }),
  to_version: nullableString.meta({ description: 'The version it goes to: the latest the check found, then what the run installed or tried.' }),
  result: nullableString.meta({ description: "The run's end state (`succeeded`, `rolled_back`…); null while it goes on, or if the updater stopped before it ended." }),
});
export type BatchRun = z.output<typeof batchRun>;

/**
 * An update of all components (`POST /api/updates`): one run after another, stopping at the first
 * that does not succeed. `GET /api/updates` and the `update_batch` message.
 */
export const updateBatch = z.object({
  batch_id: z.int().meta({ description: 'Counted from 1 since the updater started (batches are not kept across restarts).' }),
  state: z.enum(['running', 'succeeded', 'stopped']).meta({
    description: '`running`; `succeeded` when every run succeeded (or there was nothing to update); `stopped` at a run that did not succeed, or a run that could not start.',
  }),
  components: z.array(z.string()).meta({ description: 'What it updates, in order: the `updateFirst` components first, then the others, each in config order. Empty: nothing to update.' }),
  runs: z.array(batchRun).meta({ description: 'The runs started so far, in order.' }),
  message: z.string().meta({ description: 'The latest sentence: "Updating core from 1.0.0 to 1.1.0" while a run goes on, then how it ended.' }),
  started_at: z.string().meta({ description: 'ISO 8601, UTC.' }),
  finished_at: nullableString.meta({ description: 'ISO 8601, UTC; null while it goes on.' }),
});
export type UpdateBatch = z.output<typeof updateBatch>;

/** `POST /api/updates`: what the update of all components starts with. */
export const updateAllStarted = z.object({
  batch_id: z.int().meta({ description: 'The batch, as `GET /api/updates` and the `update_batch` message show it.' }),
  components: z.array(z.string()).meta({ description: 'The components it updates, in order; empty when nothing has an update.' }),
  run_id: z.int().nullable().meta({ description: 'The first run (the next ones start as each one succeeds); null when there is nothing to update.' }),
  message: z.string().meta({ description: '"Updating remote from 1.0.0 to 1.1.0", or "Nothing to update: no component has an update available".' }),
});
export type UpdateAllStarted = z.output<typeof updateAllStarted>;

// ------------------------------------------------------------------------- outbound messages

export const progressLevel = z.enum(['info', 'warn', 'error', 'debug']);

/**
 * `updater_progress`: one per committed transition (`state` the machine state entered; `phase` that
 * state when it is a work phase, `finished` for an end state, else `idle`); with `transient: true`,
 * sub-step progress of a phase, never journaled nor replayed.
 */
export const progressBody = z.object({
  run_id: z.int(),
  component: z.string(),
  seq: z.int(),
  phase: z.string(),
  state: z.string(),
  message: z.string(),
  level: progressLevel,
  progress: z.object({ percent: z.number().optional(), bytes: z.number().optional(), total: z.number().optional() }).optional(),
  transient: z.literal(true).optional(),
});
export type ProgressBody = z.output<typeof progressBody>;

/** `update_result`: a run has ended (`success` for `succeeded`, `up_to_date`, `validated`). */
export const resultBody = z.object({
  run_id: z.int(),
  component: z.string(),
  success: z.boolean(),
  state: z.string(),
  message: z.string(),
});
export type ResultBody = z.output<typeof resultBody>;

/** A component in `system_info`. */
export const systemComponent = componentView
  .pick({
    name: true,
    running: true,
    current_version: true,
    latest_version: true,
    update_available: true,
    last_checked: true,
    release_notes: true,
    release_url: true,
  })
  .extend({
    // What the DuneBugger web frontend reads (CONTRACT.md, "The DuneBugger web frontend").
    state: z.enum(['running', 'stopped', 'unknown']).meta({ description: 'The frontend\'s word for `running`.' }),
    version: nullableString.meta({ description: 'The installed version (= `current_version`).' }),
    last_available_version: nullableString.meta({ description: 'The newest release (= `version` when current); null before the first check.' }),
  });
export type SystemComponent = z.output<typeof systemComponent>;

export const systemInfoBody = z.object({
  system_info: z.object({
    device_id: z.string().meta({ description: 'The device: its Web PubSub group, else its NATS device name, else its host name.' }),
    timestamp: z.string().meta({ description: 'UTC, `YYYY-MM-DDTHH:MM:SS`.' }),
    dunebugger_components: z.array(systemComponent).meta({ description: 'In config order.' }),
  }),
});
export type SystemInfoBody = z.output<typeof systemInfoBody>;

/** `log`: a sentence for the DuneBugger frontend's log (Web PubSub): a run started or ended, or a request that started nothing. */
export const logBody = z.object({
  success: z.boolean(),
  message: z.string(),
  level: z.enum(['info', 'warning', 'error']),
});
export type LogBody = z.output<typeof logBody>;

/** Every message the updater sends on /ws (and, later, on every message transport), by subject. */
export const outbound = {
  log: logBody,
  heartbeat: z.literal('I am alive').meta({ description: 'Web PubSub: the answer to a heartbeat request, repeated every 60 s while the frontend asks.' }),
  update_check_result: checkResult,
  updater_progress: progressBody,
  update_result: resultBody,
  system_info: systemInfoBody,
  update_batch: updateBatch,
  error: errorDetail,
} as const;
export type OutboundSubject = keyof typeof outbound;
export type OutboundMessage = { [S in OutboundSubject]: { subject: S; body: z.output<(typeof outbound)[S]> } }[OutboundSubject];
