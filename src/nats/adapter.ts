/**
 * The device on the NATS bus (CONTRACT.md, "Many devices: NATS and the fleet console";
 * docs/fleet.md, "The device on NATS"): an adapter over the application core, as /ws is.
 *
 * - Requests: `dune.<device>.<ws subject>` (not `dune.<device>.events.>`), the payload the /ws body
 *   as JSON (empty: no body); the reply is the first answer as a /ws envelope `{subject, body}`:
 *   `update_check_result`, `system_info`, `run` (a `RunReply`), `update_batch`, or `error`. A
 *   message without a reply subject is handled and not answered.
 * - Events: every message of the feed, as its envelope, on `dune.<device>.events.<subject>`.
 * - Status: the device's `DeviceRecord` in the KV bucket `dune_devices` (key: the device), written on
 *   every (re)connection, on every change, and at least every `DEVICE_REFRESH_MS`.
 * The bus never holds up the device: publishes are buffered by the client while it reconnects,
 * KV writes are best effort in the background, one at a time.
 */
import type { Logger } from 'pino';
import type { JetStreamClient, KV, Msg, NatsConnection } from 'nats';
import type { Application } from '../app/index.js';
import { CommandError, MAX_MESSAGE_BYTES } from '../app/index.js';
import {
  DEVICE_REFRESH_MS,
  DEVICES_BUCKET,
  ONLINE_WITHIN_MS,
  ROLLOUTS_BUCKET,
  componentNameLimits,
  eventSubject,
  parseInbound,
  rolloutRecord,
  deviceRecord,
  stringProblem,
  type DeviceRecord,
  type FleetDevice,
  type FleetView,
  type OutboundMessage,
  type RolloutRecord,
  type RunReply,
} from '../contract/index.js';
import type { NatsConfig } from '../config/index.js';
import { NatsLink, type NatsLinkOptions } from './link.js';

/** A reply: an outbound message, or a started run (`run`), as `{subject, body}`. */
export type NatsReply = OutboundMessage | { subject: 'run'; body: RunReply };

export interface NatsTransport {
  readonly link: NatsLink;
  /** Resolves once the record write under way (if any) is done (tests). */
  recordWritten(): Promise<void>;
  close(): Promise<void>;
}

export interface NatsOptions {
  /** Tests shorten the link's delays. */
  link?: Partial<Omit<NatsLinkOptions, 'config' | 'logger'>>;
  /** How often the record is written when nothing changes (default DEVICE_REFRESH_MS). */
  refreshMs?: number;
  /** A KV write or read waits at most this long (default 5 s). */
  timeoutMs?: number;
  /** A record write that failed is tried again after this long (default 5 s). */
  retryMs?: number;
}

const error = (code: string, message: string): NatsReply => ({ subject: 'error', body: { code, message } });

/** What makes the record change: a run's committed transition, its result, a check, an update of all. */
const CHANGES = new Set<OutboundMessage['subject']>(['updater_progress', 'update_result', 'update_check_result', 'system_info', 'update_batch']);

export function startNats(app: Application, config: NatsConfig, logger: Logger, options: NatsOptions = {}): NatsTransport {
  const log = logger.child({ module: 'nats' });
  const device = config.device;
  const prefix = `dune.${device}.`;
  const timeout = options.timeoutMs ?? 5000;
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  const encode = (value: unknown): Uint8Array => encoder.encode(JSON.stringify(value));
  let closed = false;

  // ---- requests
  const runReply = (runId: number): NatsReply => {
    const run = app.queries.run(runId);
    if (!run) return error('not_found', `no run ${runId}`);
    return { subject: 'run', body: { run_id: run.run_id, component: run.component, state: run.state, result: run.result ?? null, message: run.message, to_version: run.to_version } };
  };
  const answer = async (subject: string, data: Uint8Array): Promise<NatsReply> => {
    if (data.byteLength > MAX_MESSAGE_BYTES) return error('too_large', `the message is ${data.byteLength} bytes; the limit is ${MAX_MESSAGE_BYTES}`);
    let body: unknown;
    if (data.byteLength > 0) {
      try {
        body = JSON.parse(decoder.decode(data));
      } catch (e) {
        return error('bad_json', `the payload is not JSON: ${(e as Error).message}`);
      }
    }
    const parsed = parseInbound(subject, body);
    if (!parsed.ok) return error(parsed.code, parsed.message);
    const m = parsed.message;
    try {
      switch (m.subject) {
        case 'updater.check_updates':
          // Its result also reaches every client through the feed (and so the events), as every check's.
          return { subject: 'update_check_result', body: await app.commands.check() };
        case 'controller.system_info':
          return { subject: 'system_info', body: await app.queries.systemInfo() };
        case 'updater.perform_update': {
          const { runId, existing } = await app.commands.startRun(m.component, { version: m.version, dryRun: m.dryRun, rollout: m.rollout });
          if (existing) log.info({ run_id: runId, component: m.component, rollout: m.rollout }, `run ${runId} of ${m.component} was already started by rollout ${m.rollout ?? ''}`);
          else log.info({ run_id: runId, component: m.component, rollout: m.rollout }, `run ${runId} of ${m.component} started by ${subject} on NATS`);
          return runReply(runId);
        }
        case 'updater.update': {
          if (m.all) {
            const started = await app.commands.updateAll();
            log.info({ batch_id: started.batch_id, run_id: started.run_id, components: started.components }, `update of all started on NATS: ${started.message}`);
            const batch = app.queries.batch();
            return batch ? { subject: 'update_batch', body: batch } : error('not_found', 'the update of all is not known');
          }
          const component = app.queries.componentNamed(m.name);
          const problem = stringProblem(componentNameLimits, component);
          if (problem) return error('bad_body', `${subject}: body: a component name ${problem}`);
          const { runId } = await app.commands.startRun(component, {});
          log.info({ run_id: runId, component }, `run ${runId} of ${component} started by ${subject} on NATS`);
          return runReply(runId);
        }
        case 'updater.subscribe':
          return error('unknown_subject', `${subject} is for /ws: on NATS every message is published on ${eventSubject(device, '>')}`);
      }
    } catch (e) {
      if (e instanceof CommandError) return error(e.code, e.message);
      throw e;
    }
  };
  const onRequest = (msg: Msg): void => {
    const subject = msg.subject.slice(prefix.length);
    if (subject === 'events' || subject.startsWith('events.')) return;
    void answer(subject, msg.data)
      .catch((e: unknown) => {
        log.error({ err: e, subject }, `NATS: ${subject} failed: ${(e as Error).message}`);
        return error('internal', 'the request failed; the device\'s log says why');
      })
      .then((reply) => {
        if (!msg.reply) return;
        try {
          msg.respond(encode(reply));
        } catch (e) {
          log.debug(`NATS: could not answer ${subject}: ${link.redact((e as Error).message)}`);
        }
      });
  };

  // ---- the device's record in dune_devices: one write at a time, the latest state each time
  let kv: KV | null = null;
  let kvOf: NatsConnection | null = null;
  let dirty = false;
  let writing: Promise<void> | null = null;
  let lastKvProblem = '';
  let retry: NodeJS.Timeout | null = null;
  const bucket = async (nc: NatsConnection): Promise<KV> => {
    if (kv && kvOf === nc) return kv;
    const js: JetStreamClient = nc.jetstream({ timeout });
    kv = await js.views.kv(DEVICES_BUCKET, { history: 1, timeout });
    kvOf = nc;
    return kv;
  };
  const record = async (): Promise<DeviceRecord> => {
    const active = app.queries.activeRun();
    return {
      device,
      updated_at: new Date().toISOString(),
      updater_version: app.queries.health().version,
      system_info: (await app.queries.systemInfo()).system_info,
      active_run: active ? { run_id: active.id, component: active.component, state: active.state } : null,
    };
  };
  const writeRecord = (): void => {
    dirty = true;
    if (writing || closed) return;
    writing = (async () => {
      while (dirty && !closed) {
        const nc = link.connection;
        // Away: written again on the reconnection.
        if (!nc || link.status !== 'connected') return;
        dirty = false;
        try {
          await (await bucket(nc)).put(device, encode(await record()));
          lastKvProblem = '';
        } catch (e) {
          const why = link.redact((e as Error).message);
          if (why !== lastKvProblem) log.warn(`NATS: cannot write the device's record in ${DEVICES_BUCKET}: ${why}`);
          lastKvProblem = why;
          kv = null;
          // Again soon rather than at the next change or refresh (a bus that was just (re)started may not have JetStream ready).
          retry ??= setTimeout(() => {
            retry = null;
            writeRecord();
          }, options.retryMs ?? 5000);
          retry.unref();
          return;
        }
      }
    })().finally(() => (writing = null));
  };
  const refresh = setInterval(writeRecord, options.refreshMs ?? DEVICE_REFRESH_MS);
  refresh.unref();

  // ---- events: every message of the feed
  const subscription = app.feed.subscribe({
    send(message: OutboundMessage): boolean {
      const nc = link.connection;
      if (nc && !nc.isClosed()) {
        try {
          nc.publish(eventSubject(device, message.subject), encode(message));
        } catch (e) {
          log.debug(`NATS: an event was not published: ${link.redact((e as Error).message)}`);
        }
      }
      // Transient download progress changes nothing in the record.
      if (CHANGES.has(message.subject) && !(message.subject === 'updater_progress' && message.body.transient)) writeRecord();
      return true;
    },
  });
  subscription.live();

  const link = new NatsLink({
    config,
    logger: log,
    ...options.link,
    onConnected: (nc, reconnected) => {
      // The subscription lives with the connection (the client renews it after a reconnect).
      if (!reconnected) nc.subscribe(`${prefix}>`, { callback: (err, msg) => (err ? log.warn(`NATS: ${link.redact(err.message)}`) : onRequest(msg)) });
      writeRecord();
    },
  });
  app.queries.reportLink('nats', () => link.status);
  app.queries.reportFleet(async () => {
    const nc = link.connection;
    if (!nc || link.status !== 'connected') throw new Error('the device is not connected to the NATS bus');
    return readFleet(nc.jetstream({ timeout }), timeout);
  });
  link.start();
  log.info({ servers: config.servers.map(link.redact), device }, `NATS: answering on ${prefix}> as ${device}`);

  return {
    link,
    recordWritten: async () => {
      while (writing) await writing;
    },
    async close() {
      if (closed) return;
      // The last record first (best effort): the console sees the device's latest state.
      await Promise.race([writing ?? Promise.resolve(), new Promise((r) => setTimeout(r, 1000).unref())]);
      closed = true;
      clearInterval(refresh);
      if (retry) clearTimeout(retry);
      subscription.close();
      await link.close();
    },
  };
}

/** A device's record as `fleet status` and the Fleet page show it. */
export function fleetDeviceOf(r: DeviceRecord, now = Date.now()): FleetDevice {
  return {
    device: r.device,
    online: now - Date.parse(r.updated_at) <= ONLINE_WITHIN_MS,
    updated_at: r.updated_at,
    components: r.system_info.dunebugger_components.map((c) => ({ name: c.name, installed: c.current_version, latest: c.latest_version })),
    active_run: r.active_run,
  };
}

/** Every entry of a bucket (none when the bucket does not exist yet); entries that do not parse are left out. */
async function entries<T>(js: JetStreamClient, name: string, parse: (v: unknown) => T | null, timeout: number): Promise<T[]> {
  let kv: KV;
  try {
    kv = await js.views.kv(name, { bindOnly: true, timeout });
  } catch (e) {
    if (/stream not found|bucket not found|no stream/i.test((e as Error).message)) return [];
    throw e;
  }
  const keys: string[] = [];
  for await (const k of await kv.keys()) keys.push(k);
  const out: T[] = [];
  for (const key of keys.sort()) {
    const e = await kv.get(key);
    if (!e || e.operation !== 'PUT') continue;
    try {
      const v = parse(e.json());
      if (v !== null) out.push(v);
    } catch {
      // not JSON: not a record of ours
    }
  }
  return out;
}

/** `GET /api/fleet`: both buckets, read now. */
export async function readFleet(js: JetStreamClient, timeout = 5000): Promise<FleetView> {
  const now = Date.now();
  const devices = await entries(js, DEVICES_BUCKET, (v) => {
    const r = deviceRecord.safeParse(v);
    return r.success ? fleetDeviceOf(r.data, now) : null;
  }, timeout);
  const rollouts = await entries<RolloutRecord>(js, ROLLOUTS_BUCKET, (v) => {
    const r = rolloutRecord.safeParse(v);
    return r.success ? r.data : null;
  }, timeout);
  rollouts.sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0));
  return { devices, rollouts };
}
