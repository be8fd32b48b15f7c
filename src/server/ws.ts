/**
 * `GET /ws` (CONTRACT.md "WebSocket /ws"; docs/websocket.md): the message protocol
 * (src/app/protocol.ts) and the feed (src/app/feed.ts, which makes delivery gap-free and
 * duplicate-free) over WebSockets. This adapter keeps the sockets: the token, ping, close (1001),
 * and their send buffers. Sends are never awaited; a replay waits while a socket's buffer is over
 * half of `maxBufferedBytes`, and a socket over it is closed with 1013, so one slow client never
 * holds up the others. Host and Origin are checked before any route (app.ts, guard.ts).
 */
import fastifyWebsocket from '@fastify/websocket';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RawData, WebSocket } from 'ws';
import { setTimeout as sleep } from 'node:timers/promises';
import { handleText, type Session, type Subscription } from '../app/index.js';
import { errorBody, type OutboundMessage } from '../contract/index.js';
import { presentedToken, tokenMatches } from './auth.js';
import type { AppDeps } from './deps.js';

/** Frames above this are refused by ws itself: the connection is closed with 1009. */
export const MAX_PAYLOAD_BYTES = 1024 * 1024;
export const DEFAULT_PING_INTERVAL_MS = 30_000;
export const DEFAULT_MAX_BUFFERED_BYTES = 1024 * 1024;
export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_TOO_SLOW = 1013;
export const CLOSE_UNAUTHORIZED = 4401;
const OPEN = 1;

interface Client extends Session {
  socket: WebSocket;
  feed: Subscription;
  /** Ponged since the last ping. */
  alive: boolean;
}

/** Each message is encoded once, however many sockets it goes to. */
const encoded = new WeakMap<OutboundMessage, string>();
function encode(m: OutboundMessage): string {
  let text = encoded.get(m);
  if (text === undefined) encoded.set(m, (text = JSON.stringify({ subject: m.subject, body: m.body })));
  return text;
}
const toBuffer = (data: RawData): Buffer => (Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data));

/** `?after_seq=N` on the URL: undefined when absent, null when malformed. */
function afterSeqQuery(request: FastifyRequest): number | undefined | null {
  const raw = (request.query as Record<string, unknown> | undefined)?.after_seq;
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || !/^\d{1,15}$/.test(raw)) return null;
  return Number(raw);
}

/** Registers `@fastify/websocket` and `GET /ws`. The app's close closes every socket with 1001. */
export async function registerWebSocket(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const { application } = deps;
  const log = deps.logger.child({ module: 'ws' });
  const maxBuffered = deps.ws?.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
  const clients = new Set<Client>();
  let nextId = 1;
  let closing = false;

  const drop = (c: Client) => {
    clients.delete(c);
    c.feed.close();
  };
  const send = (c: Client, message: OutboundMessage): boolean => {
    if (!clients.has(c)) return false;
    const buffered = c.socket.bufferedAmount;
    if (c.socket.readyState !== OPEN || buffered > maxBuffered) {
      drop(c);
      if (c.socket.readyState === OPEN) {
        c.log.warn({ buffered, limit: maxBuffered }, 'closing a client that does not keep up (1013)');
        c.socket.close(CLOSE_TOO_SLOW, 'too slow');
      }
      return false;
    }
    c.socket.send(encode(message));
    return true;
  };
  /** Resolves once the socket's send buffer is at most half the limit (or the socket is gone). */
  const drained = async (c: Client) => {
    while (clients.has(c) && c.socket.bufferedAmount > maxBuffered / 2) await sleep(10);
  };

  const pinger = setInterval(() => {
    for (const c of clients) {
      if (!c.alive) {
        c.log.warn('no pong since the last ping: terminating the connection');
        drop(c);
        c.socket.terminate();
        continue;
      }
      c.alive = false;
      if (c.socket.readyState === OPEN) c.socket.ping();
    }
  }, deps.ws?.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS);
  pinger.unref();
  /** Idempotent: every socket is told 1001, and terminated if still open a second later. */
  const closeAll = async () => {
    closing = true;
    clearInterval(pinger);
    const open = [...clients];
    for (const c of open) {
      drop(c);
      if (c.socket.readyState === OPEN) c.socket.close(CLOSE_GOING_AWAY, 'the updater is shutting down');
    }
    if (open.length > 0) setTimeout(() => open.forEach((c) => c.socket.terminate()), 1000).unref();
  };
  // Before the plugin's own preClose (which closes every socket without a code); onClose is the backstop.
  app.addHook('preClose', closeAll);
  app.addHook('onClose', closeAll);
  await app.register(fastifyWebsocket, {
    options: { maxPayload: MAX_PAYLOAD_BYTES },
    errorHandler(error, socket) {
      // ws closes with the right code itself on a protocol error (1009 for a frame over maxPayload).
      log.warn({ err: error }, `websocket error: ${error.message}`);
      if (socket.readyState === OPEN) socket.terminate();
    },
  });

  const authorized = (request: FastifyRequest) => tokenMatches(deps.token, presentedToken(request));

  const onSocket = (socket: WebSocket, request: FastifyRequest) => {
    if (!authorized(request)) return void socket.close(CLOSE_UNAUTHORIZED, 'unauthorized');
    if (closing) return void socket.close(CLOSE_GOING_AWAY, 'the updater is shutting down');
    const c: Client = {
      socket,
      log: log.child({ ws: nextId++ }),
      alive: true,
      reply: (message) => void send(c, message),
      feed: application.feed.subscribe({
        send: (message) => send(c, message),
        pace: () => (socket.bufferedAmount > maxBuffered / 2 ? drained(c) : undefined),
      }),
    };
    clients.add(c);
    c.log.debug({ clients: clients.size }, 'connected');
    socket.on('pong', () => (c.alive = true));
    socket.on('close', (code: number, reason: Buffer) => {
      drop(c);
      c.log.debug({ code, reason: reason.toString() }, 'disconnected');
    });
    socket.on('message', (data: RawData, isBinary: boolean) => {
      if (!clients.has(c)) return;
      if (isBinary) return c.reply({ subject: 'error', body: { code: 'bad_json', message: 'binary frames are not accepted: send JSON text' } });
      handleText(application, c, toBuffer(data)).catch((error: unknown) => {
        c.log.error({ err: error }, `handling a message failed: ${(error as Error).message}`);
        c.reply({ subject: 'error', body: { code: 'internal', message: 'internal error; see the updater log' } });
      });
    });
    const afterSeq = afterSeqQuery(request);
    if (typeof afterSeq === 'number') c.feed.replay(afterSeq).catch((error: unknown) => c.log.error({ err: error }, `replay failed: ${(error as Error).message}`));
  };

  app.route({
    method: 'GET',
    url: '/ws',
    schema: { hide: true },
    preValidation: async (request: FastifyRequest, reply: FastifyReply) => {
      if (!authorized(request)) return reply.code(401).send(errorBody('unauthorized', 'a valid token is required: Authorization: Bearer <token>, or ?token=<token>'));
      if (afterSeqQuery(request) === null) return reply.code(400).send(errorBody('bad_request', 'after_seq: must be an integer >= 0'));
    },
    // A plain GET (no Upgrade): say what this address is, in the API's error shape.
    handler: async (_request: FastifyRequest, reply: FastifyReply) =>
      reply.code(426).header('upgrade', 'websocket').send(errorBody('upgrade_required', 'GET /ws is the WebSocket API: connect with Upgrade: websocket (docs/websocket.md)')),
    wsHandler: onSocket,
  });
}
