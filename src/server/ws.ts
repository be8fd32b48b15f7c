/**
 * `GET /ws`: the WebSocket side of the API (CONTRACT.md "WebSocket /ws"; docs/websocket.md).
 * Envelope `{subject, body}` both ways.
 *
 * Delivery of transitions is gap-free and duplicate-free by construction:
 * - every live socket has a cursor, the seq of the last transition it was sent; it is only
 *   ever sent the journal's transitions after its cursor, in seq order, and the cursor moves
 *   to each one sent;
 * - transitions are published synchronously right after their SQLite commit, on this thread,
 *   so whatever is published is already in the journal. A published seq of cursor+1 is sent
 *   as is; a larger one means the socket missed some, which are read from the journal
 *   (`transitionsAfter(cursor)`, which includes the published one); a smaller or equal one
 *   was already sent and is skipped;
 * - a replay (`updater.subscribe`) reads the journal in chunks, yielding between chunks while
 *   the socket drains, and ignores live publishing meanwhile (the journal holds everything
 *   published). It goes live in the same synchronous step as the read that found the end of
 *   the journal, so nothing can be published between the two.
 * Sends are never awaited: a socket whose send buffer is over `maxBufferedBytes` is closed
 * with 1013, so one slow client never holds up the others.
 */
import fastifyWebsocket from '@fastify/websocket';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { RawData, WebSocket } from 'ws';
import { setTimeout as sleep } from 'node:timers/promises';
import { isTerminal, isWorkPhase } from '../../machines/update-machine.js';
import { EngineError, type ProgressEvent, type RunResult } from '../engine/engine.js';
import type { Journal, Transition } from '../journal/journal.js';
import { toCheckResult } from '../releases/checker.js';
import { presentedToken, tokenMatches } from './auth.js';
import type { AppDeps } from './deps.js';
import { componentViews } from './views.js';
import { componentNameSchema, stringProblem, versionSchema } from './schemas.js';

/** Frames above this are refused by ws itself: the connection is closed with 1009. */
export const MAX_PAYLOAD_BYTES = 1024 * 1024;
/** Text messages above this get an `error` `too_large`; the connection stays open. */
export const MAX_MESSAGE_BYTES = 64 * 1024;
export const DEFAULT_PING_INTERVAL_MS = 30_000;
export const DEFAULT_MAX_BUFFERED_BYTES = 1024 * 1024;
/** Transitions read from the journal at a time by a replay or a catch-up. */
const CHUNK = 200;
const OPEN = 1;

export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_TOO_SLOW = 1013;
export const CLOSE_UNAUTHORIZED = 4401;

type Json = Record<string, unknown>;

const encode = (subject: string, body: unknown): string => JSON.stringify({ subject, body });

/** `phase` of an `updater_progress`: the work phase entered, `finished` for an end state. */
function phaseOf(state: string): string {
  if (isWorkPhase(state)) return state;
  if (isTerminal(state)) return 'finished';
  return 'idle';
}

const progressOf = (t: Transition): string =>
  encode('updater_progress', { run_id: t.runId, component: t.component, seq: t.seq, phase: phaseOf(t.to), state: t.to, message: t.message, level: t.level });

interface Client {
  id: number;
  socket: WebSocket;
  log: Logger;
  /** `idle`: gets only replies. `replaying`: a replay is under way. `live`: gets every transition. */
  mode: 'idle' | 'replaying' | 'live';
  /** Seq of the last transition sent (meaningful unless idle). */
  cursor: number;
  /** Bumped by each subscribe: a replay stops when a newer one has started. */
  replay: number;
  /** `update_result`s published during a replay, sent when it goes live (after the run's last transition). */
  heldResults: string[];
  /** Ponged since the last ping. */
  alive: boolean;
  closed: boolean;
}

/** The sockets and what they are sent. One instance per app. */
class Feed {
  private readonly clients = new Set<Client>();
  /** The latest transition of each unfinished run: where transient progress is placed. */
  private readonly heads = new Map<number, { seq: number; state: string }>();
  private readonly unsubscribe: Array<() => void>;
  private readonly pinger: NodeJS.Timeout;
  private nextId = 1;
  private closed = false;

  constructor(
    private readonly journal: Journal,
    deps: AppDeps,
    private readonly maxBuffered: number,
    pingIntervalMs: number,
  ) {
    this.unsubscribe = [
      deps.engine.transitions.subscribe((t) => this.onTransition(t)),
      deps.engine.progress.subscribe((p) => this.onProgress(p)),
      deps.engine.results.subscribe((r) => this.onResult(r)),
    ];
    this.pinger = setInterval(() => this.heartbeat(), pingIntervalMs);
    this.pinger.unref();
  }

  add(socket: WebSocket, logger: Logger): Client {
    const id = this.nextId++;
    const client: Client = { id, socket, log: logger.child({ ws: id }), mode: 'idle', cursor: 0, replay: 0, heldResults: [], alive: true, closed: this.closed };
    if (this.closed) socket.close(CLOSE_GOING_AWAY, 'the updater is shutting down');
    else this.clients.add(client);
    return client;
  }

  drop(c: Client): void {
    c.closed = true;
    c.heldResults = [];
    this.clients.delete(c);
  }

  get size(): number {
    return this.clients.size;
  }

  /** Sends a reply; false when the socket is gone or was just closed as too slow. */
  reply(c: Client, subject: string, body: unknown): boolean {
    return this.write(c, encode(subject, body));
  }

  /** A command makes an idle socket live from now on (no replay). */
  makeLive(c: Client): void {
    if (c.mode !== 'idle') return;
    c.cursor = this.journal.lastSeq();
    c.mode = 'live';
  }

  /**
   * Replays the journal's transitions after `afterSeq` (default: the last one, i.e. none; a
   * value beyond the last is taken as the last), then goes live. A subscribe on a socket that
   * is already live or replaying starts over from `afterSeq`: the client asked for those again.
   */
  async subscribe(c: Client, afterSeq?: number): Promise<void> {
    const last = this.journal.lastSeq();
    const generation = ++c.replay;
    c.mode = 'replaying';
    c.cursor = afterSeq === undefined ? last : Math.min(afterSeq, last);
    const stale = () => c.closed || c.replay !== generation;
    for (;;) {
      const rows = this.journal.transitionsAfter(c.cursor, CHUNK);
      for (const t of rows) {
        // Paced: a replay waits for the socket to drain rather than overflow it.
        if (c.socket.bufferedAmount > this.lowWater) await this.drained(c);
        if (stale() || !this.write(c, progressOf(t))) return;
        c.cursor = t.seq;
      }
      if (rows.length < CHUNK) {
        // The end of the journal, in the same synchronous step as going live: nothing was published in between.
        c.mode = 'live';
        for (const text of c.heldResults.splice(0)) if (!this.write(c, text)) return;
        return;
      }
      // Let the rest of the process run between chunks.
      await sleep(0);
      if (stale()) return;
    }
  }

  /** Idempotent. Closes every socket with 1001, and terminates those that have not closed within a second. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.pinger);
    for (const off of this.unsubscribe.splice(0)) off();
    const closing = [...this.clients];
    for (const c of closing) {
      this.drop(c);
      if (c.socket.readyState === OPEN) c.socket.close(CLOSE_GOING_AWAY, 'the updater is shutting down');
    }
    if (closing.length > 0) setTimeout(() => closing.forEach((c) => c.socket.terminate()), 1000).unref();
  }

  private onTransition(t: Transition): void {
    if (isTerminal(t.to)) this.heads.delete(t.runId);
    else this.heads.set(t.runId, { seq: t.seq, state: t.to });
    let text: string | undefined;
    for (const c of this.clients) {
      if (c.mode !== 'live' || t.seq <= c.cursor) continue;
      if (t.seq === c.cursor + 1) {
        if (this.write(c, (text ??= progressOf(t)))) c.cursor = t.seq;
      } else {
        this.catchUp(c);
      }
    }
  }

  private onProgress(p: ProgressEvent): void {
    const head = this.heads.get(p.runId) ?? this.headFromJournal(p.runId);
    if (!head) return;
    const progress: Json = {};
    if (p.percent !== undefined) progress.percent = p.percent;
    if (p.bytes !== undefined) progress.bytes = p.bytes;
    if (p.total !== undefined) progress.total = p.total;
    const text = encode('updater_progress', {
      run_id: p.runId,
      component: p.component,
      seq: head.seq,
      phase: p.phase,
      state: head.state,
      message: p.message,
      level: 'debug',
      progress,
      transient: true,
    });
    for (const c of this.clients) {
      if (c.mode !== 'live') continue;
      if (c.cursor < head.seq) this.catchUp(c);
      this.write(c, text);
    }
  }

  private onResult(r: RunResult): void {
    const text = encode('update_result', { run_id: r.runId, component: r.component, success: r.success, state: r.state, message: r.message });
    for (const c of this.clients) {
      if (c.mode === 'live') this.write(c, text);
      else if (c.mode === 'replaying') c.heldResults.push(text);
    }
  }

  private headFromJournal(runId: number): { seq: number; state: string } | null {
    const last = this.journal.transitionsOf(runId).at(-1);
    return last ? { seq: last.seq, state: last.to_state } : null;
  }

  /** Sends what a live socket missed, synchronously (a gap is at most a few transitions). */
  private catchUp(c: Client): void {
    for (;;) {
      const rows = this.journal.transitionsAfter(c.cursor, CHUNK);
      for (const t of rows) {
        if (!this.write(c, progressOf(t))) return;
        c.cursor = t.seq;
      }
      if (rows.length < CHUNK) return;
    }
  }

  private get lowWater(): number {
    return this.maxBuffered / 2;
  }

  /** Resolves once the socket's send buffer is at most half the limit (or the socket is gone). */
  private async drained(c: Client): Promise<void> {
    while (!c.closed && c.socket.bufferedAmount > this.lowWater) await sleep(10);
  }

  private write(c: Client, text: string): boolean {
    if (c.closed) return false;
    if (c.socket.readyState !== OPEN) {
      this.drop(c);
      return false;
    }
    const buffered = c.socket.bufferedAmount;
    if (buffered > this.maxBuffered) {
      c.log.warn({ buffered, limit: this.maxBuffered }, 'closing a client that does not keep up (1013)');
      this.drop(c);
      c.socket.close(CLOSE_TOO_SLOW, 'too slow');
      return false;
    }
    c.socket.send(text);
    return true;
  }

  private heartbeat(): void {
    for (const c of [...this.clients]) {
      if (!c.alive) {
        c.log.warn('no pong since the last ping: terminating the connection');
        this.drop(c);
        c.socket.terminate();
        continue;
      }
      c.alive = false;
      if (c.socket.readyState === OPEN) c.socket.ping();
    }
  }
}

type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };
const fail = (message: string): { ok: false; message: string } => ({ ok: false, message });
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const absent = (v: unknown) => v === undefined || v === null;

function unknownField(body: Json, allowed: string[]): string | null {
  const extra = Object.keys(body).find((k) => !allowed.includes(k));
  return extra === undefined ? null : `body.${extra}: unknown field (allowed: ${allowed.join(', ')})`;
}

function parsePerformUpdate(body: unknown): Parsed<{ component: string; dryRun: boolean; version: string | null }> {
  if (!isObject(body)) return fail('body: must be an object {component, dry_run?, version?}');
  const extra = unknownField(body, ['component', 'dry_run', 'version']);
  if (extra) return fail(extra);
  const { component, dry_run: dryRun, version } = body;
  if (typeof component !== 'string' || component === '') return fail('body.component: required string');
  const badName = stringProblem(componentNameSchema, component);
  if (badName) return fail(`body.component: ${badName}`);
  if (!absent(dryRun) && typeof dryRun !== 'boolean') return fail('body.dry_run: must be a boolean');
  if (!absent(version) && (typeof version !== 'string' || version === '')) return fail('body.version: must be a non-empty string');
  const badVersion = typeof version === 'string' ? stringProblem(versionSchema, version) : null;
  if (badVersion) return fail(`body.version: ${badVersion}`);
  return { ok: true, value: { component, dryRun: dryRun === true, version: typeof version === 'string' ? version : null } };
}

const isSeq = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function parseSubscribe(body: unknown): Parsed<number | undefined> {
  if (absent(body)) return { ok: true, value: undefined };
  if (!isObject(body)) return fail('body: must be an object {after_seq?}');
  const extra = unknownField(body, ['after_seq']);
  if (extra) return fail(extra);
  if (absent(body.after_seq)) return { ok: true, value: undefined };
  if (!isSeq(body.after_seq)) return fail('body.after_seq: must be an integer >= 0');
  return { ok: true, value: body.after_seq };
}

/** `?after_seq=N` on the URL: undefined when absent, null when malformed. */
function afterSeqQuery(request: FastifyRequest): number | undefined | null {
  const raw = (request.query as Json | undefined)?.after_seq;
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || !/^\d{1,15}$/.test(raw)) return null;
  return Number(raw);
}

const toBuffer = (data: RawData): Buffer => (Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data));

/** Registers `@fastify/websocket` and `GET /ws`. The feed is closed by the app's onClose. */
export async function registerWebSocket(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const log = deps.logger.child({ module: 'ws' });
  const feed = new Feed(deps.journal, deps, deps.ws?.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES, deps.ws?.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS);
  // Added before the plugin's own preClose (which closes every socket without a code), so
  // clients are told 1001 "going away"; onClose is the backstop (close is idempotent).
  app.addHook('preClose', async () => feed.close());
  app.addHook('onClose', async () => feed.close());
  try {
    await app.register(fastifyWebsocket, {
      options: { maxPayload: MAX_PAYLOAD_BYTES },
      errorHandler(error, socket) {
        // ws closes with the right code itself on a protocol error (1009 for a frame over
        // maxPayload): let that close go out. Anything else ends the connection.
        log.warn({ err: error }, `websocket error: ${error.message}`);
        if (socket.readyState === OPEN) socket.terminate();
      },
    });
  } catch (error) {
    feed.close();
    throw error;
  }

  const knownComponent = (name: string) => deps.components.some((c) => c.name === name) || deps.engine.component(name) !== undefined;
  const authorized = (request: FastifyRequest) => tokenMatches(deps.token, presentedToken(request));

  const startRun = async (c: Client, component: string, options: { dryRun: boolean; version: string | null }) => {
    feed.makeLive(c);
    try {
      const { runId } = await deps.engine.startRun(component, { dryRun: options.dryRun, version: options.version });
      c.log.info({ run_id: runId, component }, `run ${runId} of ${component} started over WebSocket`);
    } catch (error) {
      if (error instanceof EngineError) feed.reply(c, 'error', { code: error.code, message: error.message });
      else throw error;
    }
  };

  const handle = async (c: Client, data: RawData, isBinary: boolean): Promise<void> => {
    if (isBinary) return void feed.reply(c, 'error', { code: 'bad_json', message: 'binary frames are not accepted: send JSON text' });
    const bytes = toBuffer(data);
    if (bytes.byteLength > MAX_MESSAGE_BYTES) {
      return void feed.reply(c, 'error', { code: 'too_large', message: `the message is ${bytes.byteLength} bytes; the limit is ${MAX_MESSAGE_BYTES}` });
    }
    let message: unknown;
    try {
      message = JSON.parse(bytes.toString('utf8'));
    } catch (error) {
      return void feed.reply(c, 'error', { code: 'bad_json', message: `the message is not JSON: ${(error as Error).message}` });
    }
    if (!isObject(message) || typeof message.subject !== 'string') {
      return void feed.reply(c, 'error', { code: 'bad_envelope', message: 'a message is an object {"subject": string, "body": any}' });
    }
    const { subject, body } = message;
    c.log.debug({ subject }, `message ${subject}`);
    const badBody = (why: string) => void feed.reply(c, 'error', { code: 'bad_body', message: `${subject}: ${why}` });

    switch (subject) {
      case 'updater.check_updates': {
        feed.makeLive(c);
        feed.reply(c, 'update_check_result', toCheckResult(await deps.checker.check()));
        return;
      }
      case 'updater.perform_update': {
        const parsed = parsePerformUpdate(body);
        if (!parsed.ok) return badBody(parsed.message);
        return startRun(c, parsed.value.component, { dryRun: parsed.value.dryRun, version: parsed.value.version });
      }
      case 'updater.update': {
        if (typeof body !== 'string' || body === '') return badBody('body: must be a component name (string), e.g. "core"');
        const bare = body.startsWith('dunebugger-') ? body.slice('dunebugger-'.length) : body;
        const name = bare !== body && knownComponent(bare) ? bare : body;
        const badName = stringProblem(componentNameSchema, name);
        if (badName) return badBody(`body: a component name ${badName}`);
        return startRun(c, name, { dryRun: false, version: null });
      }
      case 'updater.subscribe': {
        const parsed = parseSubscribe(body);
        if (!parsed.ok) return badBody(parsed.message);
        return feed.subscribe(c, parsed.value);
      }
      case 'controller.system_info': {
        feed.makeLive(c);
        const views = await componentViews(deps.components, deps.checker, deps.engine, deps.running);
        feed.reply(c, 'system_info', {
          system_info: {
            dunebugger_components: views.map((v) => ({
              name: v.name,
              running: v.running,
              current_version: v.current_version,
              latest_version: v.latest_version,
              update_available: v.update_available,
              last_checked: v.last_checked,
              release_notes: v.release_notes,
              release_url: v.release_url,
            })),
          },
        });
        return;
      }
      default:
        return void feed.reply(c, 'error', { code: 'unknown_subject', message: `unknown subject "${subject}"` });
    }
  };

  const onSocket = (socket: WebSocket, request: FastifyRequest) => {
    if (!authorized(request)) {
      socket.close(CLOSE_UNAUTHORIZED, 'unauthorized');
      return;
    }
    const c = feed.add(socket, log);
    c.log.debug({ clients: feed.size }, 'connected');
    socket.on('pong', () => {
      c.alive = true;
    });
    socket.on('close', (code: number, reason: Buffer) => {
      feed.drop(c);
      c.log.debug({ code, reason: reason.toString() }, 'disconnected');
    });
    socket.on('message', (data: RawData, isBinary: boolean) => {
      if (c.closed) return;
      handle(c, data, isBinary).catch((error: unknown) => {
        c.log.error({ err: error }, `handling a message failed: ${(error as Error).message}`);
        feed.reply(c, 'error', { code: 'internal', message: 'internal error; see the updater log' });
      });
    });
    const afterSeq = afterSeqQuery(request);
    if (typeof afterSeq === 'number') {
      feed.subscribe(c, afterSeq).catch((error: unknown) => c.log.error({ err: error }, `replay failed: ${(error as Error).message}`));
    }
  };

  app.route({
    method: 'GET',
    url: '/ws',
    schema: { hide: true },
    preValidation: async (request: FastifyRequest, reply: FastifyReply) => {
      if (!authorized(request)) {
        return reply.code(401).send({ error: { code: 'unauthorized', message: 'a valid token is required: Authorization: Bearer <token>, or ?token=<token>' } });
      }
      if (afterSeqQuery(request) === null) {
        return reply.code(400).send({ error: { code: 'bad_request', message: 'after_seq: must be an integer >= 0' } });
      }
    },
    // A plain GET (no Upgrade): say what this address is, in the API's error shape.
    handler: async (_request: FastifyRequest, reply: FastifyReply) =>
      reply.code(426).header('upgrade', 'websocket').send({ error: { code: 'upgrade_required', message: 'GET /ws is the WebSocket API: connect with Upgrade: websocket (docs/websocket.md)' } }),
    wsHandler: onSocket,
  });
}
