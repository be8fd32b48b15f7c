/**
 * The DuneBugger web frontend's way in: an adapter over the application core that speaks the
 * frontend's dialect in the device's group on an Azure Web PubSub hub (CONTRACT.md, "The
 * DuneBugger web frontend, through Azure Web PubSub"; docs/frontend.md).
 *
 * Inbound, from the group: `{subject, body}` (other keys ignored; `source: "controller"` is a
 * device's own reply and is ignored; a body may be a JSON string). The group also carries what
 * the frontend says to dunebugger-remote: a subject this adapter does not answer is ignored, never
 * refused. Outbound, to the group: every message of the feed (the runs' progress and results,
 * every check's result and system_info), the frontend's `log` lines around each run, and the
 * answers to its requests; each as `{subject, body, source: "controller", destination: "broadcast"}`.
 */
import type { Logger } from 'pino';
import type { JSONTypes } from '@azure/web-pubsub-client';
import type { Application } from '../app/index.js';
import { CommandError, handleMessage, type Session } from '../app/index.js';
import type { LogBody, OutboundMessage } from '../contract/index.js';
import type { WebPubSubConfig } from '../config/index.js';
import { parseConnectionString } from '../util/connection-string.js';
import { HubLink, type LinkOptions } from './link.js';
import { signClientUrl } from './token.js';

/** A heartbeat request is answered at once, then every minute for five minutes after the latest. */
export const HEARTBEAT_EVERY_MS = 60_000;
export const HEARTBEAT_FOR_MS = 300_000;
/** Download and pull progress is passed on at most this often per run (the hub is on the internet). */
const TRANSIENT_EVERY_MS = 1000;

export interface WebPubSubTransport {
  readonly link: HubLink;
  close(): Promise<void>;
}

export interface WebPubSubOptions {
  /** Tests shorten the link's delays and the heartbeat period. */
  link?: Partial<LinkOptions>;
  heartbeatEveryMs?: number;
  heartbeatForMs?: number;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A body the frontend sent as a JSON string (`"null"`, `"\"core\""`) is read as that JSON; other text stays text. */
function bodyOf(raw: unknown): unknown {
  if (typeof raw !== 'string') return raw;
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}

export function startWebPubSub(app: Application, config: WebPubSubConfig, logger: Logger, options: WebPubSubOptions = {}): WebPubSubTransport {
  const log = logger.child({ module: 'webpubsub' });
  const group = config.group;
  const userId = config.userId ?? group;
  const clientUrl = config.connectionString !== undefined ? signer(config.connectionString, config.hub ?? '', group, userId) : () => Promise.resolve(config.url ?? '');

  const publish = (message: OutboundMessage): void => {
    link.send({ subject: message.subject, body: message.body as JSONTypes, source: 'controller', destination: 'broadcast' });
  };
  const say = (body: LogBody): void => publish({ subject: 'log', body });
  const systemInfo = async (): Promise<void> => publish({ subject: 'system_info', body: await app.queries.systemInfo() });
  const safely = (work: Promise<void>, what: string): void => {
    work.catch((error: unknown) => log.error({ err: error }, `Web PubSub: ${what} failed: ${(error as Error).message}`));
  };

  // ---- heartbeat: at once, then every minute until five minutes after the latest request
  let heartbeatUntil = 0;
  let heartbeatTimer: NodeJS.Timeout | null = null;
  const heartbeat = (): void => {
    publish({ subject: 'heartbeat', body: 'I am alive' });
    heartbeatUntil = Date.now() + (options.heartbeatForMs ?? HEARTBEAT_FOR_MS);
    heartbeatTimer ??= setInterval(() => {
      if (Date.now() >= heartbeatUntil) {
        clearInterval(heartbeatTimer!);
        heartbeatTimer = null;
        return;
      }
      publish({ subject: 'heartbeat', body: 'I am alive' });
    }, options.heartbeatEveryMs ?? HEARTBEAT_EVERY_MS);
    heartbeatTimer.unref();
  };

  // ---- runs: a log line when each starts (its target known) and when it ends, then system_info
  const announced = new Set<number>();
  const lastTransient = new Map<number, number>();
  const feedSink = {
    send(message: OutboundMessage): boolean {
      if (message.subject === 'updater_progress') {
        const p = message.body;
        if (p.transient) {
          const now = Date.now();
          if (now - (lastTransient.get(p.run_id) ?? 0) < TRANSIENT_EVERY_MS) return true;
          lastTransient.set(p.run_id, now);
        } else if (!announced.has(p.run_id)) {
          const run = app.queries.run(p.run_id);
          if (run && (run.mode === 'restore' || run.to_version !== null)) {
            announced.add(p.run_id);
            say({
              success: true,
              message: run.mode === 'restore' ? `Restoring ${run.component} from its newest backup` : `Updating ${run.component} from ${run.from_version ?? 'an unknown version'} to ${run.to_version}`,
              level: 'info',
            });
          }
        }
      }
      publish(message);
      if (message.subject === 'update_result') {
        const r = message.body;
        announced.delete(r.run_id);
        lastTransient.delete(r.run_id);
        say({ success: r.success, message: r.message, level: r.success ? 'info' : r.state === 'rolled_back' ? 'warning' : 'error' });
        safely(systemInfo(), 'system_info after a run');
      }
      return true;
    },
  };
  const subscription = app.feed.subscribe(feedSink);
  subscription.live();

  // ---- requests that start something
  const refusal = (error: unknown): boolean => {
    if (!(error instanceof CommandError)) return false;
    say({ success: false, message: error.message, level: error.code === 'not_found' ? 'error' : 'warning' });
    return true;
  };
  const updateOne = async (name: string): Promise<void> => {
    const component = app.queries.componentNamed(name);
    if (!app.queries.hasComponent(component)) return say({ success: false, message: `Unknown component: ${name}`, level: 'error' });
    const status = (await app.queries.components()).find((c) => c.name === component);
    if (status && status.latest_version !== null && !status.update_available) return say({ success: false, message: `No update available for ${component}`, level: 'info' });
    try {
      const { runId } = await app.commands.startRun(component, {});
      log.info({ run_id: runId, component }, `run ${runId} of ${component} started from the frontend`);
    } catch (error) {
      if (!refusal(error)) throw error;
    }
  };
  const updateAll = async (): Promise<void> => {
    try {
      const batch = await app.commands.updateAll();
      if (batch.components.length === 0) say({ success: false, message: batch.message, level: 'info' });
      else log.info({ components: batch.components }, `update of ${batch.components.join(', ')} started from the frontend`);
    } catch (error) {
      if (!refusal(error)) throw error;
    }
  };

  // /ws's own subjects (perform_update, subscribe) through the shared protocol; its refusals become log lines.
  const session: Session = {
    feed: subscription,
    reply: (message) => {
      if (message.subject === 'error') say({ success: false, message: message.body.message, level: 'error' });
      else publish(message);
    },
    log,
  };

  const onMessage = (data: unknown): void => {
    if (!isObject(data) || typeof data.subject !== 'string' || data.source === 'controller') return;
    const subject = data.subject;
    const body = bodyOf(data.body);
    const controller = config.controller;
    switch (subject) {
      case 'updater.heartbeat':
        return heartbeat();
      case 'controller.heartbeat':
        return controller ? heartbeat() : undefined;
      case 'updater.system_info':
        return safely(systemInfo(), subject);
      case 'controller.system_info':
      case 'controller.get_system_info':
        return controller ? safely(systemInfo(), subject) : undefined;
      case 'updater.check_updates':
        // The result and a fresh system_info reach the group through the feed, as every check's.
        return safely(
          app.commands.check().then(() => undefined),
          subject,
        );
      case 'updater.update': {
        if (typeof body !== 'string' || body.trim() === '') return say({ success: false, message: 'updater.update needs a component name, "all" or "manual_confirmation"', level: 'error' });
        const name = body.trim();
        return safely(name === 'all' || name === 'manual_confirmation' ? updateAll() : updateOne(name), subject);
      }
      case 'updater.perform_update':
      case 'updater.subscribe':
        return safely(handleMessage(app, session, subject, body), subject);
      default:
        return; // another component's subject (dunebugger-remote answers those)
    }
  };

  const link = new HubLink({
    clientUrl,
    group,
    onMessage,
    onStatus: (status) => {
      if (status === 'connected') safely(systemInfo(), 'system_info on connecting');
    },
    logger: log,
    ...options.link,
  });
  app.queries.reportLink('webpubsub', () => link.status);
  link.start();
  log.info({ group, user_id: userId, controller: config.controller }, `Web PubSub: joining the group ${group}${config.hub ? ` of the hub ${config.hub}` : ''}`);

  return {
    link,
    async close() {
      if (heartbeatTimer) clearInterval(heartbeatTimer);
      subscription.close();
      await link.close();
    },
  };
}

/** A fresh signed client URL for each connection (the AccessKey never leaves this closure). */
function signer(connectionString: string, hub: string, group: string, userId: string): () => Promise<string> {
  const connection = parseConnectionString(connectionString);
  if ('problem' in connection) throw new Error(`webpubsub.connectionString ${connection.problem}`);
  return () => signClientUrl({ connection, hub, group, userId });
}
