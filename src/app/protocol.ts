/**
 * The message protocol every message transport speaks (/ws today; Web PubSub and NATS next): an
 * inbound `{subject, body}` becomes a command, a query or a feed request, and its answer goes to
 * the asker (`Session.reply`) or, for what every client must hear, through the feed. A transport
 * only decodes its frames and keeps its connections.
 */
import type { Logger } from 'pino';
import { componentNameLimits, parseInbound, stringProblem, type OutboundMessage } from '../contract/index.js';
import { CommandError } from './errors.js';
import type { Application } from './index.js';
import type { Subscription } from './feed.js';

/** One client of a message transport. */
export interface Session {
  /** The client's place in the feed: any valid command makes it live (replies only until then). */
  readonly feed: Subscription;
  /** Answers this client only. */
  reply(message: OutboundMessage): void;
  readonly log: Logger;
}

/** Text messages above this get an `error` `too_large` (the connection stays open). */
export const MAX_MESSAGE_BYTES = 64 * 1024;

const error = (code: string, message: string): OutboundMessage => ({ subject: 'error', body: { code, message } });
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Handles one message received as JSON text, `{"subject": string, "body": any}` (other keys are
 * ignored): refused with `too_large`, `bad_json` or `bad_envelope` before its subject is looked at.
 */
export async function handleText(app: Application, session: Session, text: Buffer): Promise<void> {
  if (text.byteLength > MAX_MESSAGE_BYTES) return session.reply(error('too_large', `the message is ${text.byteLength} bytes; the limit is ${MAX_MESSAGE_BYTES}`));
  let message: unknown;
  try {
    message = JSON.parse(text.toString('utf8'));
  } catch (e) {
    return session.reply(error('bad_json', `the message is not JSON: ${(e as Error).message}`));
  }
  if (!isObject(message) || typeof message.subject !== 'string') return session.reply(error('bad_envelope', 'a message is an object {"subject": string, "body": any}'));
  session.log.debug({ subject: message.subject }, `message ${message.subject}`);
  return handleMessage(app, session, message.subject, message.body);
}

/**
 * Handles one inbound message. Refusals are answered as `error` (`unknown_subject`, `bad_body`, the
 * engine's `busy`, `not_found`…); anything else thrown is a bug, for the transport to log and
 * answer `internal`.
 */
export async function handleMessage(app: Application, session: Session, subject: string, body: unknown): Promise<void> {
  const parsed = parseInbound(subject, body);
  if (!parsed.ok) return session.reply(error(parsed.code, parsed.message));
  const m = parsed.message;
  // Live before the run starts, so the client sees the run's first transition.
  const refusedAs = async (work: () => Promise<void>) => {
    session.feed.live();
    try {
      await work();
    } catch (e) {
      if (!(e instanceof CommandError)) throw e;
      session.reply(error(e.code, e.message));
    }
  };
  const start = (component: string, request: { version?: string | null; dryRun?: boolean; rollout?: string | null }) =>
    refusedAs(async () => {
      const { runId, existing } = await app.commands.startRun(component, request);
      if (existing) session.log.info({ run_id: runId, component, rollout: request.rollout }, `run ${runId} of ${component} was already started by rollout ${request.rollout ?? ''}`);
      else session.log.info({ run_id: runId, component }, `run ${runId} of ${component} started by ${subject}`);
    });
  switch (m.subject) {
    case 'updater.check_updates':
      session.feed.live();
      // The result reaches this client through the feed, as it reaches every other.
      await app.commands.check();
      return;
    case 'updater.perform_update':
      return start(m.component, { version: m.version, dryRun: m.dryRun, rollout: m.rollout });
    case 'updater.update': {
      // `"all"`, or the frontend's `"manual_confirmation"`: every component with an update. Its
      // progress reaches this client through the feed (`update_batch`, each run's messages).
      if (m.all) {
        return refusedAs(async () => {
          const started = await app.commands.updateAll();
          session.log.info({ batch_id: started.batch_id, run_id: started.run_id, components: started.components }, `update of all started by ${subject}: ${started.message}`);
        });
      }
      // The seed's form: `"core"`, or `"dunebugger-core"` when `core` is configured.
      const component = app.queries.componentNamed(m.name);
      const problem = stringProblem(componentNameLimits, component);
      if (problem) return session.reply(error('bad_body', `${subject}: body: a component name ${problem}`));
      return start(component, {});
    }
    case 'updater.subscribe':
      return session.feed.replay(m.afterSeq);
    case 'controller.system_info':
      session.feed.live();
      return session.reply({ subject: 'system_info', body: await app.queries.systemInfo() });
  }
}
