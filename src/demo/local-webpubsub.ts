/**
 * A local stand-in for the client side of Azure Web PubSub, on 127.0.0.1, for tests and the
 * embedded demo (Azure is not reachable from where they run). It speaks the client protocol the
 * way @azure/web-pubsub-client (1.1.0) and Microsoft's reference for the JSON subprotocols
 * describe it, so the real client library runs against it unchanged:
 *
 * - Connect: a WebSocket upgrade at `/client/hubs/<hub>?access_token=<JWT>` (or `/client?hub=<hub>`)
 *   with the subprotocol `json.reliable.webpubsub.azure.v1` (reliable) or `json.webpubsub.azure.v1`.
 *   The token is checked at the upgrade, before any WebSocket exists: HS256 signed with the
 *   AccessKey, `aud` = `<endpoint>/client/hubs/<hub>`, an `exp` in the future. A missing or bad
 *   token gets an HTTP 401 answer to the upgrade, as the service gives; the client library's
 *   start() then rejects ("Unexpected server response: 401").
 *   Azure's audience is its https endpoint plus `/client/hubs/<hub>`; here the endpoint is
 *   `http://127.0.0.1:PORT`, so the audience is `http://127.0.0.1:PORT/client/hubs/<hub>`: what
 *   Azure's server SDKs compute from this stand-in's connection string.
 * - The first frame is `{type:'system', event:'connected', userId, connectionId, reconnectionToken}`
 *   (no reconnectionToken with the non-reliable protocol). The token's `webpubsub.group` claim
 *   joins groups at connect; `role` grants `webpubsub.joinLeaveGroup[.<group>]` and
 *   `webpubsub.sendToGroup[.<group>]`. A request with an `ackId` gets
 *   `{type:'ack', ackId, success, error?: {name, message}}`: `Forbidden` for a missing role,
 *   `Duplicate` for an ackId the connection already had processed (only successful requests are
 *   remembered, as only they were "processed").
 * - Group messages reach every member of the group (but the sender with `noEcho`) as
 *   `{type:'message', from:'group', group, dataType, data, fromUserId, sequenceId}`; with the
 *   reliable protocol each connection numbers its messages from 1 and keeps them until the client's
 *   `{type:'sequenceAck', sequenceId}` covers them.
 * - Resumption (reliable protocol only): a dropped connection's session (id, groups, unacknowledged
 *   messages) is kept for a grace window (30 s, like the service's documented minimum). An upgrade
 *   with `awps_connection_id` and `awps_reconnection_token` within it gets the same connection:
 *   the `connected` frame again (same connectionId; the library records it and, as the client
 *   spec requires, emits no new `connected` event), then every unacknowledged message again, in
 *   order (the library drops those it already had by sequenceId). An unknown, expired or
 *   mismatched session is accepted as a WebSocket, sent `{type:'system', event:'disconnected'}`
 *   and closed with 1008, as the client spec describes: the library then stops recovering, emits
 *   `disconnected` and opens a new connection (new connectionId, a new `connected` event).
 *   The access token is not checked again on resumption: the service checks `exp` only when a
 *   new connection is made.
 * - `ping` gets `pong`; `event` requests are recorded and acknowledged (there is no upstream
 *   event handler here). Frames the stand-in cannot read (not JSON, binary, unknown types,
 *   missing fields) are ignored and recorded in protocolErrors(); nothing a client sends or does
 *   (vanishing mid-frame included) can crash it.
 *
 * Test controls: connections(), messages(group?), events(), refusals(), protocolErrors(),
 * dropConnection(id | 'all') (the socket dies abruptly; the session stays, so the client
 * resumes), dropSession(id | 'all') (the socket dies and the session is forgotten, so the client
 * must start over), holdResumptions(on) (resumption attempts get 503, as through an unreachable
 * gateway, so a test can act while a client is away), setAccessKey(key), close().
 * Nothing secret (the key, access or reconnection tokens) is ever passed to `log`.
 *
 * Imports only node built-ins, `ws` and `jose`: the embedded demo starts it too.
 */
import { createServer, STATUS_CODES, type IncomingMessage } from 'node:http';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { errors as joseErrors, jwtVerify, SignJWT, type JWTPayload } from 'jose';

export const RELIABLE_JSON_PROTOCOL = 'json.reliable.webpubsub.azure.v1';
export const JSON_PROTOCOL = 'json.webpubsub.azure.v1';
export type ClientProtocol = typeof RELIABLE_JSON_PROTOCOL | typeof JSON_PROTOCOL;

export type DataType = 'json' | 'text' | 'binary' | 'protobuf';

export interface LocalWebPubSubOptions {
  hub: string;
  accessKey: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** How long a dropped reliable connection can be resumed. Default 30 000 ms. */
  sessionGraceMs?: number;
  /**
   * Messages a reliable connection may leave unacknowledged before its session is dropped (the
   * service documents 1000 messages or 16 MB); the socket is closed with 1008. Default 1000.
   */
  maxUnacked?: number;
  /** Seconds of clock skew allowed on `exp`/`nbf`. Default 0. */
  clockToleranceSeconds?: number;
  /** One line per connection event; never a key or a token. */
  log?: (line: string) => void;
}

export interface ClientUrlOptions {
  /** The token's `sub`; the connection's userId (null without it). */
  userId?: string;
  /** The token's `role` claim, e.g. `webpubsub.joinLeaveGroup`, `webpubsub.sendToGroup.<group>`. */
  roles?: string[];
  /** The token's `webpubsub.group` claim: groups joined at connect. */
  groups?: string[];
  /** Default 3600 (the server SDKs' default of 60 minutes). Negative: already expired. */
  expiresInSeconds?: number;
}

export interface ConnectionInfo {
  connectionId: string;
  userId: string | null;
  protocol: ClientProtocol;
  roles: string[];
  groups: string[];
  /** False while the socket is gone and the session waits for a resumption. */
  attached: boolean;
  resumptions: number;
  /** Messages sent with a sequenceId that the client has not acknowledged yet. */
  unacked: number;
  /** Messages sent again on resumptions. */
  redelivered: number;
}

export interface GroupMessageRecord {
  group: string;
  fromConnectionId: string;
  fromUserId: string | null;
  dataType: DataType;
  /** As the frame carried it (binary and protobuf: base64). */
  data: unknown;
  noEcho: boolean;
  /** The connections it was delivered or queued to. */
  recipients: string[];
}

export interface EventRecord {
  connectionId: string;
  userId: string | null;
  event: string;
  dataType: DataType;
  data: unknown;
}

export type Refusal =
  /** An upgrade answered with an HTTP status instead of a WebSocket. */
  | { kind: 'http'; status: number; reason: string }
  /** A resumption accepted as a WebSocket and closed with 1008. */
  | { kind: 'close'; code: 1008; reason: string };

export interface ProtocolError {
  connectionId: string;
  reason: string;
}

export interface LocalWebPubSub {
  readonly hub: string;
  readonly port: number;
  /** `http://127.0.0.1:PORT` */
  readonly endpoint: string;
  /** `Endpoint=http://127.0.0.1:PORT;AccessKey=KEY;Version=1.0;` (holds the current key) */
  readonly connectionString: string;
  /** `ws://127.0.0.1:PORT/client/hubs/<hub>?access_token=<JWT>`, signed with the current key. */
  clientUrl(options?: ClientUrlOptions): Promise<string>;
  connections(): ConnectionInfo[];
  /** Every group message accepted, oldest first; only one group's with `group`. */
  messages(group?: string): GroupMessageRecord[];
  events(): EventRecord[];
  refusals(): Refusal[];
  protocolErrors(): ProtocolError[];
  /** Kill the socket without a close frame; the session stays for resumption. Returns how many sockets died. */
  dropConnection(id: string): number;
  /** Kill the socket and forget the session (groups, queued messages). Returns how many sessions were dropped. */
  dropSession(id: string): number;
  /** While on, resumption upgrades get HTTP 503 (the library keeps retrying for 30 s). */
  holdResumptions(on: boolean): void;
  /** New tokens are signed and checked with this key; open connections stay. */
  setAccessKey(key: string): void;
  close(): Promise<void>;
}

interface Queued {
  sequenceId: number;
  frame: string;
}

interface Session {
  id: string;
  userId: string | null;
  protocol: ClientProtocol;
  reliable: boolean;
  roles: Set<string>;
  groups: Set<string>;
  reconnectionToken: string | null;
  socket: WebSocket | null;
  nextSequenceId: number;
  outbox: Queued[];
  processedAckIds: Set<number>;
  graceTimer: NodeJS.Timeout | null;
  resumptions: number;
  redelivered: number;
}

const MAX_FRAME_BYTES = 1024 * 1024; // the service's documented limit for one frame
const DATA_TYPES: ReadonlySet<string> = new Set(['json', 'text', 'binary', 'protobuf']);

export async function startLocalWebPubSub(options: LocalWebPubSubOptions): Promise<LocalWebPubSub> {
  const { hub } = options;
  const host = options.host ?? '127.0.0.1';
  const graceMs = options.sessionGraceMs ?? 30_000;
  const maxUnacked = options.maxUnacked ?? 1000;
  const clockTolerance = options.clockToleranceSeconds ?? 0;
  const log = options.log ?? (() => undefined);
  let accessKey = options.accessKey;
  let holding = false;
  let closed = false;

  const sessions = new Map<string, Session>();
  const messageLog: GroupMessageRecord[] = [];
  const eventLog: EventRecord[] = [];
  const refusalLog: Refusal[] = [];
  const errorLog: ProtocolError[] = [];
  const pendingUpgrades = new Set<Duplex>();

  const server = createServer((req, res) => {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('The local Web PubSub stand-in serves WebSocket clients only.\n');
  });
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_FRAME_BYTES,
    handleProtocols: (offered) => chooseProtocol(offered) ?? false,
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const endpoint = `http://${host}:${port}`;
  const audience = `${endpoint}/client/hubs/${hub}`;

  // ---------------------------------------------------------------------------------------------
  // Upgrades

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => undefined);
    pendingUpgrades.add(socket);
    socket.once('close', () => pendingUpgrades.delete(socket));
    onUpgrade(req, socket, head).catch(() => refuse(socket, 500, 'internal error'));
  });

  async function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const url = new URL(req.url ?? '/', endpoint);
    if (requestedHub(url) !== hub) return refuse(socket, 404, 'unknown hub');
    const protocol = chooseProtocol(offeredProtocols(req));
    if (protocol === null) return refuse(socket, 400, 'no supported subprotocol (json.reliable.webpubsub.azure.v1, json.webpubsub.azure.v1)');

    const resumeId = url.searchParams.get('awps_connection_id');
    const resumeToken = url.searchParams.get('awps_reconnection_token');
    if (protocol === RELIABLE_JSON_PROTOCOL && resumeId !== null && resumeToken !== null) {
      if (holding) return refuse(socket, 503, 'resumptions held');
      return upgrade(req, socket, head, (ws) => resume(ws, resumeId, resumeToken));
    }

    const token = url.searchParams.get('access_token') ?? bearer(req);
    if (!token) return refuse(socket, 401, 'missing access token');
    let claims: JWTPayload;
    try {
      ({ payload: claims } = await jwtVerify(token, keyBytes(accessKey), {
        algorithms: ['HS256'],
        audience,
        clockTolerance,
        requiredClaims: ['exp'],
      }));
    } catch (error) {
      return refuse(socket, 401, tokenProblem(error));
    }
    upgrade(req, socket, head, (ws) => connect(ws, protocol, claims));
  }

  function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, then: (ws: WebSocket) => void): void {
    pendingUpgrades.delete(socket);
    if (closed || socket.destroyed) {
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      try {
        then(ws);
      } catch {
        log('a WebSocket was closed after an internal error');
        ws.terminate();
      }
    });
  }

  function refuse(socket: Duplex, status: number, reason: string): void {
    pendingUpgrades.delete(socket);
    refusalLog.push({ kind: 'http', status, reason });
    log(`upgrade refused: ${status} (${reason})`);
    if (socket.destroyed || !socket.writable) {
      socket.destroy();
      return;
    }
    const body = `${reason}\n`;
    socket.once('finish', () => socket.destroy());
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nConnection: close\r\nContent-Type: text/plain\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  }

  // ---------------------------------------------------------------------------------------------
  // Sessions

  function connect(ws: WebSocket, protocol: ClientProtocol, claims: JWTPayload): void {
    const reliable = protocol === RELIABLE_JSON_PROTOCOL;
    const session: Session = {
      id: newId(),
      userId: typeof claims.sub === 'string' ? claims.sub : null,
      protocol,
      reliable,
      roles: new Set(stringList(claims.role)),
      groups: new Set(stringList(claims['webpubsub.group']).filter((g) => g !== '')),
      reconnectionToken: reliable ? randomBytes(32).toString('base64url') : null,
      socket: null,
      nextSequenceId: 1,
      outbox: [],
      processedAckIds: new Set(),
      graceTimer: null,
      resumptions: 0,
      redelivered: 0,
    };
    sessions.set(session.id, session);
    attach(session, ws);
    log(`connected ${session.id} (user ${session.userId ?? '-'}, ${protocol})`);
    sendConnected(session);
  }

  function resume(ws: WebSocket, connectionId: string, reconnectionToken: string): void {
    const session = sessions.get(connectionId);
    const problem =
      session === undefined ? 'unknown or expired connection'
      : !sameSecret(session.reconnectionToken, reconnectionToken) ? 'reconnection token does not match'
      : null;
    if (problem !== null || session === undefined) {
      refusalLog.push({ kind: 'close', code: 1008, reason: problem ?? '' });
      log(`resumption refused (${problem})`);
      sendRaw(ws, { type: 'system', event: 'disconnected', message: `The connection cannot be recovered: ${problem}.` });
      ws.close(1008, 'Connection cannot be recovered');
      return;
    }
    const old = session.socket;
    session.socket = null;
    old?.terminate();
    session.resumptions += 1;
    attach(session, ws);
    log(`resumed ${session.id} (${session.outbox.length} unacknowledged message(s) sent again)`);
    sendConnected(session);
    for (const queued of session.outbox) {
      if (ws.readyState !== WebSocket.OPEN) break;
      ws.send(queued.frame);
      session.redelivered += 1;
    }
  }

  function attach(session: Session, ws: WebSocket): void {
    if (session.graceTimer) clearTimeout(session.graceTimer);
    session.graceTimer = null;
    session.socket = ws;
    ws.on('error', () => undefined);
    ws.on('message', (data, isBinary) => {
      if (session.socket === ws) onFrame(session, data, isBinary);
    });
    ws.on('close', () => {
      if (session.socket === ws) detach(session);
    });
  }

  function detach(session: Session): void {
    session.socket = null;
    if (!sessions.has(session.id)) return;
    if (!session.reliable || closed) {
      forget(session);
      log(`disconnected ${session.id}`);
      return;
    }
    log(`dropped ${session.id}; kept ${graceMs} ms for a resumption`);
    session.graceTimer = setTimeout(() => {
      forget(session);
      log(`expired ${session.id}`);
    }, graceMs);
    session.graceTimer.unref();
  }

  /** The session ends: later resumptions are refused; its socket, if any, is killed. */
  function forget(session: Session): void {
    if (session.graceTimer) clearTimeout(session.graceTimer);
    session.graceTimer = null;
    sessions.delete(session.id);
    const ws = session.socket;
    session.socket = null;
    ws?.terminate();
  }

  function sendConnected(session: Session): void {
    send(session, {
      type: 'system',
      event: 'connected',
      userId: session.userId,
      connectionId: session.id,
      ...(session.reconnectionToken !== null ? { reconnectionToken: session.reconnectionToken } : {}),
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Frames from clients

  function onFrame(session: Session, data: RawData, isBinary: boolean): void {
    if (isBinary) return protocolError(session, 'binary frame (the JSON subprotocols take text frames)');
    let frame: unknown;
    try {
      frame = JSON.parse(rawText(data));
    } catch {
      return protocolError(session, 'frame is not JSON');
    }
    if (!isRecord(frame)) return protocolError(session, 'frame is not a JSON object');
    const ackId = typeof frame.ackId === 'number' && Number.isSafeInteger(frame.ackId) && frame.ackId >= 0 ? frame.ackId : undefined;
    switch (frame.type) {
      case 'joinGroup':
      case 'leaveGroup': {
        const group = groupName(frame.group);
        if (group === null) return protocolError(session, `${frame.type} without a group`);
        const joining = frame.type === 'joinGroup';
        return acknowledged(session, ackId, () => {
          if (!permitted(session, 'webpubsub.joinLeaveGroup', group)) {
            return forbidden(`The connection has no permission to ${joining ? 'join' : 'leave'} group '${group}'.`);
          }
          if (joining) session.groups.add(group);
          else session.groups.delete(group);
          return null;
        });
      }
      case 'sendToGroup': {
        const group = groupName(frame.group);
        if (group === null) return protocolError(session, 'sendToGroup without a group');
        const payload = readPayload(frame);
        if (payload === null) return protocolError(session, 'sendToGroup without a valid dataType and data');
        const noEcho = frame.noEcho === true;
        return acknowledged(session, ackId, () => {
          if (!permitted(session, 'webpubsub.sendToGroup', group)) {
            return forbidden(`The connection has no permission to send to group '${group}'.`);
          }
          publish(session, group, payload.dataType, payload.data, noEcho);
          return null;
        });
      }
      case 'event': {
        if (typeof frame.event !== 'string' || frame.event === '') return protocolError(session, 'event without a name');
        const payload = readPayload(frame);
        if (payload === null) return protocolError(session, 'event without a valid dataType and data');
        const event = frame.event;
        return acknowledged(session, ackId, () => {
          eventLog.push({ connectionId: session.id, userId: session.userId, event, ...payload });
          return null;
        });
      }
      case 'sequenceAck': {
        const sequenceId = typeof frame.sequenceId === 'string' ? Number(frame.sequenceId) : frame.sequenceId;
        if (!session.reliable || typeof sequenceId !== 'number' || !Number.isSafeInteger(sequenceId)) {
          return protocolError(session, 'sequenceAck without a sequenceId, or on the non-reliable protocol');
        }
        session.outbox = session.outbox.filter((queued) => queued.sequenceId > sequenceId);
        return;
      }
      case 'ping':
        return send(session, { type: 'pong' });
      default:
        return protocolError(session, `unsupported frame type ${JSON.stringify(typeof frame.type === 'string' ? frame.type.slice(0, 40) : frame.type ?? null)}`);
    }
  }

  function acknowledged(session: Session, ackId: number | undefined, action: () => AckError | null): void {
    if (ackId !== undefined && session.processedAckIds.has(ackId)) {
      return sendAck(session, ackId, { name: 'Duplicate', message: `Message with ack-id: ${ackId} has been processed` });
    }
    const error = action();
    if (ackId === undefined) return;
    if (error === null) session.processedAckIds.add(ackId);
    sendAck(session, ackId, error);
  }

  function sendAck(session: Session, ackId: number, error: AckError | null): void {
    send(session, error === null ? { type: 'ack', ackId, success: true } : { type: 'ack', ackId, success: false, error });
  }

  function protocolError(session: Session, reason: string): void {
    errorLog.push({ connectionId: session.id, reason });
    log(`ignored a frame from ${session.id}: ${reason}`);
  }

  // ---------------------------------------------------------------------------------------------
  // Delivery

  function publish(from: Session, group: string, dataType: DataType, data: unknown, noEcho: boolean): void {
    const recipients: string[] = [];
    for (const session of [...sessions.values()]) {
      if (!session.groups.has(group) || (noEcho && session === from)) continue;
      recipients.push(session.id);
      deliver(session, {
        type: 'message',
        from: 'group',
        group,
        dataType,
        data,
        ...(from.userId !== null ? { fromUserId: from.userId } : {}),
      });
    }
    messageLog.push({ group, fromConnectionId: from.id, fromUserId: from.userId, dataType, data, noEcho, recipients });
  }

  /** A data message: numbered and kept until acknowledged with the reliable protocol. */
  function deliver(session: Session, message: Record<string, unknown>): void {
    if (!session.reliable) return send(session, message);
    const sequenceId = session.nextSequenceId++;
    const frame = JSON.stringify({ sequenceId, ...message });
    session.outbox.push({ sequenceId, frame });
    if (session.outbox.length > maxUnacked) {
      log(`dropping ${session.id}: more than ${maxUnacked} unacknowledged messages`);
      const ws = session.socket;
      session.socket = null;
      forget(session);
      if (ws && ws.readyState === WebSocket.OPEN) {
        sendRaw(ws, { type: 'system', event: 'disconnected', message: 'Too many unacknowledged messages.' });
        ws.close(1008, 'Too many unacknowledged messages');
      }
      return;
    }
    const ws = session.socket;
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(frame);
  }

  function send(session: Session, message: Record<string, unknown>): void {
    if (session.socket) sendRaw(session.socket, message);
  }

  // ---------------------------------------------------------------------------------------------
  // The handle

  function select(id: string): Session[] {
    if (id === 'all') return [...sessions.values()];
    const session = sessions.get(id);
    return session ? [session] : [];
  }

  return {
    hub,
    port,
    endpoint,
    get connectionString() {
      return `Endpoint=${endpoint};AccessKey=${accessKey};Version=1.0;`;
    },
    async clientUrl(opts = {}) {
      const now = Math.floor(Date.now() / 1000);
      const claims: JWTPayload = {};
      if (opts.roles && opts.roles.length > 0) claims.role = opts.roles;
      if (opts.groups && opts.groups.length > 0) claims['webpubsub.group'] = opts.groups;
      const jwt = new SignJWT(claims)
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setAudience(audience)
        .setIssuedAt(now)
        .setExpirationTime(now + (opts.expiresInSeconds ?? 3600));
      if (opts.userId !== undefined) jwt.setSubject(opts.userId);
      const token = await jwt.sign(keyBytes(accessKey));
      return `ws://${host}:${port}/client/hubs/${encodeURIComponent(hub)}?access_token=${token}`;
    },
    connections() {
      return [...sessions.values()].map((s) => ({
        connectionId: s.id,
        userId: s.userId,
        protocol: s.protocol,
        roles: [...s.roles],
        groups: [...s.groups],
        attached: s.socket !== null,
        resumptions: s.resumptions,
        unacked: s.outbox.length,
        redelivered: s.redelivered,
      }));
    },
    messages(group) {
      return messageLog.filter((m) => group === undefined || m.group === group);
    },
    events: () => [...eventLog],
    refusals: () => [...refusalLog],
    protocolErrors: () => [...errorLog],
    dropConnection(id) {
      let dropped = 0;
      for (const session of select(id)) {
        if (!session.socket) continue;
        session.socket.terminate(); // its 'close' detaches the session and starts the grace window
        dropped += 1;
      }
      return dropped;
    },
    dropSession(id) {
      const chosen = select(id);
      for (const session of chosen) {
        forget(session);
        log(`session ${session.id} dropped`);
      }
      return chosen.length;
    },
    holdResumptions(on) {
      holding = on;
    },
    setAccessKey(key) {
      accessKey = key;
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const session of [...sessions.values()]) forget(session);
      for (const socket of pendingUpgrades) socket.destroy();
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

// -----------------------------------------------------------------------------------------------
// Helpers

interface AckError {
  name: string;
  message: string;
}

function forbidden(message: string): AckError {
  return { name: 'Forbidden', message };
}

function permitted(session: Session, role: 'webpubsub.joinLeaveGroup' | 'webpubsub.sendToGroup', group: string): boolean {
  return session.roles.has(role) || session.roles.has(`${role}.${group}`);
}

function requestedHub(url: URL): string | null {
  const match = /^\/client\/hubs\/([^/]+)\/?$/.exec(url.pathname);
  if (match?.[1] !== undefined) {
    try {
      return decodeURIComponent(match[1]);
    } catch {
      return null;
    }
  }
  if (url.pathname === '/client' || url.pathname === '/client/') return url.searchParams.get('hub');
  return null;
}

function offeredProtocols(req: IncomingMessage): Set<string> {
  const header = req.headers['sec-websocket-protocol'] ?? '';
  return new Set(header.split(',').map((p) => p.trim()).filter((p) => p !== ''));
}

function chooseProtocol(offered: Set<string>): ClientProtocol | null {
  if (offered.has(RELIABLE_JSON_PROTOCOL)) return RELIABLE_JSON_PROTOCOL;
  if (offered.has(JSON_PROTOCOL)) return JSON_PROTOCOL;
  return null;
}

function bearer(req: IncomingMessage): string | null {
  const match = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  return match?.[1] ?? null;
}

function keyBytes(key: string): Uint8Array {
  return new TextEncoder().encode(key);
}

/** Why a token was refused, without the token. */
function tokenProblem(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return 'token expired';
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'bad signature';
  if (error instanceof joseErrors.JWTClaimValidationFailed) return `bad claim: ${error.claim}`;
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return 'algorithm not allowed';
  return 'malformed token';
}

function sameSecret(expected: string | null, given: string): boolean {
  if (expected === null) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

function newId(): string {
  return randomBytes(16).toString('base64url');
}

/** A claim that may be one string or a list of them (both occur in signed tokens). */
function stringList(claim: unknown): string[] {
  if (typeof claim === 'string') return [claim];
  if (Array.isArray(claim)) return claim.filter((item): item is string => typeof item === 'string');
  return [];
}

function groupName(value: unknown): string | null {
  return typeof value === 'string' && value !== '' && value.length <= 1024 ? value : null;
}

function readPayload(frame: Record<string, unknown>): { dataType: DataType; data: unknown } | null {
  const { dataType, data } = frame;
  if (typeof dataType !== 'string' || !DATA_TYPES.has(dataType) || !('data' in frame)) return null;
  if (dataType !== 'json' && typeof data !== 'string') return null;
  return { dataType: dataType as DataType, data };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}

function sendRaw(ws: WebSocket, message: Record<string, unknown>): void {
  if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
}
