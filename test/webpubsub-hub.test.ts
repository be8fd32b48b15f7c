/**
 * The real @azure/web-pubsub-client (the library the frontend and the devices use) against the
 * local Web PubSub stand-in (src/demo/local-webpubsub.ts): joining a group, the heartbeat from the
 * frontend to a device, acks, tokens refused at the upgrade, roles, resumption after a dropped
 * socket and a fresh start after a lost session; then the wire frames and bad input through a
 * raw WebSocket.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect as tcpConnect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  SendMessageError,
  WebPubSubClient,
  WebPubSubJsonProtocol,
  type GroupDataMessage,
  type OnDisconnectedArgs,
  type WebPubSubClientOptions,
} from '@azure/web-pubsub-client';
import { SignJWT } from 'jose';
import { WebSocket } from 'ws';
import {
  JSON_PROTOCOL,
  RELIABLE_JSON_PROTOCOL,
  startLocalWebPubSub,
  type ClientUrlOptions,
  type LocalWebPubSub,
} from '../src/demo/local-webpubsub.js';

const HUB = 'dunebugger';
const KEY = 'c2VjcmV0LWtleS1mb3ItdGhlLWxvY2FsLXN0YW5kLWluAA=';
const GROUP = 'device-7f3a';
const FRONTEND_ROLES = ['webpubsub.joinLeaveGroup', 'webpubsub.sendToGroup'];
const DEVICE_ROLES = [`webpubsub.joinLeaveGroup.${GROUP}`, `webpubsub.sendToGroup.${GROUP}`];

/**
 * Short keep-alive so a stopped client's timers end soon; no retry of refused sends (a test sees
 * the refusal at once); reconnects of a new connection 100 ms apart. The library's own pause
 * between two resumption attempts (1 s) is fixed.
 */
const FAST: WebPubSubClientOptions = {
  keepAliveIntervalInMs: 500,
  keepAliveTimeoutInMs: 5000,
  messageRetryOptions: { maxRetries: 0 },
  reconnectRetryOptions: { retryDelayInMs: 100, maxRetries: 50 },
};

/** A client and what it has seen. */
interface Peer {
  client: WebPubSubClient;
  connected: Array<{ connectionId: string; userId: string }>;
  disconnected: OnDisconnectedArgs[];
  received: GroupDataMessage[];
  /** The connectionId of the last `connected` event. */
  id(): string;
}

const cleanups = new WeakMap<TestContext, Array<() => unknown>>();

/**
 * Undo at the end of the test, last registered first: clients stop before the stand-in closes.
 * (Closed first, it would drop their sockets and they would try to resume, which stop() does not
 * interrupt: the library keeps trying for 30 s.)
 */
function atEnd(t: TestContext, undo: () => unknown): void {
  let list = cleanups.get(t);
  if (!list) {
    const created: Array<() => unknown> = [];
    cleanups.set(t, created);
    t.after(async () => {
      for (const step of created.reverse()) await step();
    });
    list = created;
  }
  list.push(undo);
}

async function world(t: TestContext, options: { sessionGraceMs?: number } = {}): Promise<LocalWebPubSub> {
  const hub = await startLocalWebPubSub({ hub: HUB, accessKey: KEY, ...options });
  atEnd(t, () => hub.close());
  return hub;
}

/** Stop a client and wait for its `stopped` event. */
function stopAtEnd(t: TestContext, client: WebPubSubClient): void {
  const stopped = new Promise<void>((resolve) => client.on('stopped', () => resolve()));
  atEnd(t, async () => {
    client.stop();
    await Promise.race([stopped, sleep(2000).then(() => assert.fail('the client did not stop'))]);
  });
}

/** A started client whose access URL is asked for afresh on every new connection, as the frontend does. */
async function peer(t: TestContext, hub: LocalWebPubSub, token: ClientUrlOptions, options: WebPubSubClientOptions = {}): Promise<Peer> {
  const client = new WebPubSubClient({ getClientAccessUrl: () => hub.clientUrl(token) }, { ...FAST, ...options });
  const p: Peer = {
    client,
    connected: [],
    disconnected: [],
    received: [],
    id() {
      const last = this.connected.at(-1);
      assert.ok(last, 'not connected yet');
      return last.connectionId;
    },
  };
  client.on('connected', (e) => p.connected.push(e));
  client.on('disconnected', (e) => p.disconnected.push(e));
  client.on('group-message', (e) => p.received.push(e.message));
  await client.start();
  stopAtEnd(t, client);
  return p;
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

function connection(hub: LocalWebPubSub, id: string) {
  const found = hub.connections().find((c) => c.connectionId === id);
  assert.ok(found, `no connection ${id} in the stand-in`);
  return found;
}

function heartbeat(connectionId: string) {
  return { subject: 'controller.heartbeat', body: null, connectionId };
}

/** Assert a promise rejects with the library's SendMessageError carrying a Forbidden ack. */
async function assertForbidden(promise: Promise<unknown>): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof SendMessageError, `not a SendMessageError: ${String(error)}`);
    assert.equal(error.errorDetail?.name, 'Forbidden');
    assert.match(error.errorDetail.message, /permission/);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------
// Through the real client library

test('the frontend heartbeat reaches the device through the group, not the frontend itself (noEcho); acks resolve', async (t) => {
  const hub = await world(t);
  const frontend = await peer(t, hub, { userId: 'frontend', roles: FRONTEND_ROLES });
  const device = await peer(t, hub, { userId: 'device-7f3a', roles: DEVICE_ROLES });

  assert.equal(frontend.connected.length, 1);
  assert.equal(frontend.connected[0]?.userId, 'frontend');
  assert.equal(device.connected[0]?.userId, 'device-7f3a');
  assert.notEqual(frontend.id(), device.id());

  assert.deepEqual(await frontend.client.joinGroup(GROUP), { ackId: 1, isDuplicated: false });
  assert.deepEqual(await device.client.joinGroup(GROUP), { ackId: 1, isDuplicated: false });
  assert.deepEqual(connection(hub, device.id()).groups, [GROUP]);

  const beat = heartbeat(frontend.id());
  const ack = await frontend.client.sendToGroup(GROUP, beat, 'json', { noEcho: true });
  assert.equal(ack.isDuplicated, false);

  await waitFor('the heartbeat at the device', () => device.received.length === 1);
  const got = device.received[0];
  assert.equal(got?.group, GROUP);
  assert.equal(got?.dataType, 'json');
  assert.deepEqual(got?.data, beat);
  assert.equal(got?.fromUserId, 'frontend');
  assert.equal(got?.sequenceId, 1);

  // The same send without noEcho comes back to the sender too; so the first one really was held back.
  await frontend.client.sendToGroup(GROUP, 'echoed', 'text');
  await waitFor('the echo at the frontend', () => frontend.received.length === 1);
  await waitFor('the second message at the device', () => device.received.length === 2);
  assert.equal(frontend.received[0]?.data, 'echoed');
  assert.equal(device.received[1]?.data, 'echoed');

  const log = hub.messages(GROUP);
  assert.equal(log.length, 2);
  assert.deepEqual(log[0]?.recipients, [device.id()]);
  assert.equal(log[0]?.fromUserId, 'frontend');
  assert.deepEqual(log[0]?.data, beat);
  assert.deepEqual(new Set(log[1]?.recipients), new Set([frontend.id(), device.id()]));
});

test('a resent ackId is answered Duplicate: the library resolves it as a duplicate and the group gets the message once', async (t) => {
  const hub = await world(t);
  const frontend = await peer(t, hub, { userId: 'frontend', roles: FRONTEND_ROLES });
  const device = await peer(t, hub, { userId: 'device', roles: DEVICE_ROLES, groups: [GROUP] });
  assert.deepEqual(connection(hub, device.id()).groups, [GROUP], 'the token’s webpubsub.group claim joins at connect');

  assert.deepEqual(await frontend.client.sendToGroup(GROUP, { n: 1 }, 'json', { ackId: 42 }), { ackId: 42, isDuplicated: false });
  assert.deepEqual(await frontend.client.sendToGroup(GROUP, { n: 1 }, 'json', { ackId: 42 }), { ackId: 42, isDuplicated: true });
  await waitFor('the message at the device', () => device.received.length >= 1);
  await sleep(200);
  assert.equal(device.received.length, 1);
  assert.equal(hub.messages().length, 1);
});

test('the access token is checked at the upgrade: a token signed as Azure signs it works; a wrong key, an expired token, another audience or none get HTTP 401 and no WebSocket', async (t) => {
  const hub = await world(t);
  const base = `ws://127.0.0.1:${hub.port}/client/hubs/${HUB}`;
  const sign = async (key: string, claims: { aud?: string; expIn?: number } = {}) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ role: FRONTEND_ROLES })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject('frontend')
      .setAudience(claims.aud ?? `${hub.endpoint}/client/hubs/${HUB}`)
      .setIssuedAt(now)
      .setExpirationTime(now + (claims.expIn ?? 600))
      .sign(new TextEncoder().encode(key));
  };

  // Signed here, independently of the stand-in, the way Azure's server SDKs sign client tokens.
  const good = await peer(t, hub, { userId: 'unused' });
  const signed = new WebPubSubClient(`${base}?access_token=${await sign(KEY)}`, FAST);
  let userId = '';
  signed.on('connected', (e) => (userId = e.userId));
  await signed.start();
  stopAtEnd(t, signed);
  await waitFor('the connected event', () => userId !== '');
  assert.equal(userId, 'frontend');
  assert.equal(hub.connections().length, 2);

  const refused = async (url: string, reason: string) => {
    const client = new WebPubSubClient(url, FAST);
    await assert.rejects(client.start(), /401/, `the library's start() rejects (${reason})`);
    const last = hub.refusals().at(-1);
    assert.deepEqual(last, { kind: 'http', status: 401, reason });
    // And it is the HTTP answer to the upgrade itself, not a WebSocket closed afterwards.
    const status = await new Promise<number | 'open'>((resolve) => {
      const ws = new WebSocket(url, RELIABLE_JSON_PROTOCOL);
      ws.on('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0);
        ws.terminate();
      });
      ws.on('open', () => {
        resolve('open');
        ws.close();
      });
      ws.on('error', () => undefined);
    });
    assert.equal(status, 401, reason);
  };
  await refused(`${base}?access_token=${await sign('another-key')}`, 'bad signature');
  await refused(`${base}?access_token=${await sign(KEY, { expIn: -60 })}`, 'token expired');
  await refused(await hub.clientUrl({ userId: 'late', expiresInSeconds: -1 }), 'token expired');
  await refused(`${base}?access_token=${await sign(KEY, { aud: `https://${HUB}.webpubsub.azure.com/client/hubs/${HUB}` })}`, 'bad claim: aud');
  await refused(base, 'missing access token');
  assert.equal(hub.connections().length, 2, 'no connection was made by a refused token');

  // A new key: tokens signed with the old one are refused; open connections stay.
  const before = await hub.clientUrl({ userId: 'frontend' });
  hub.setAccessKey('rotated-key');
  await refused(before, 'bad signature');
  assert.match(hub.connectionString, /;AccessKey=rotated-key;/);
  await peer(t, hub, { userId: 'after-rotation' });
  assert.equal(connection(hub, good.id()).attached, true);
});

test('roles: without webpubsub.sendToGroup a send gets a Forbidden ack and reaches no one; joinLeaveGroup.<group> allows that group only', async (t) => {
  const hub = await world(t);
  const frontend = await peer(t, hub, { userId: 'frontend', roles: FRONTEND_ROLES });
  const listener = await peer(t, hub, { userId: 'listener', roles: [`webpubsub.joinLeaveGroup.${GROUP}`] });
  await frontend.client.joinGroup(GROUP);
  await listener.client.joinGroup(GROUP);

  await assertForbidden(listener.client.sendToGroup(GROUP, heartbeat(listener.id()), 'json', { noEcho: true }));
  await assertForbidden(listener.client.joinGroup('another-group'));
  await assertForbidden(listener.client.leaveGroup('another-group'));
  await sleep(200);
  assert.equal(frontend.received.length, 0, 'the refused message reached no one');
  assert.equal(hub.messages().length, 0);
  assert.deepEqual(connection(hub, listener.id()).groups, [GROUP]);

  // Leaving its own group is allowed, and then nothing reaches it.
  await listener.client.leaveGroup(GROUP);
  await frontend.client.sendToGroup(GROUP, 'after leaving', 'text', { noEcho: true });
  await sleep(200);
  assert.equal(listener.received.length, 0);
});

test('dropConnection: the library resumes the same connection (no disconnected, no new connected); a message sent while the device is away arrives after', async (t) => {
  const hub = await world(t);
  const frontend = await peer(t, hub, { userId: 'frontend', roles: FRONTEND_ROLES });
  const device = await peer(t, hub, { userId: 'device', roles: DEVICE_ROLES });
  await frontend.client.joinGroup(GROUP);
  await device.client.joinGroup(GROUP);
  const id = device.id();

  hub.holdResumptions(true); // the device stays away until released
  assert.equal(hub.dropConnection(id), 1);
  await waitFor('the stand-in to see the socket gone', () => !connection(hub, id).attached);

  const ack = await frontend.client.sendToGroup(GROUP, heartbeat(frontend.id()), 'json', { noEcho: true });
  assert.equal(ack.isDuplicated, false, 'the service accepted the message while the device was away');
  await waitFor('a refused resumption attempt', () => hub.refusals().some((r) => r.kind === 'http' && r.status === 503));
  assert.equal(device.received.length, 0);
  assert.equal(connection(hub, id).unacked, 1);

  hub.holdResumptions(false);
  await waitFor('the message after the resumption', () => device.received.length === 1, 4000);
  assert.deepEqual(device.received[0]?.data, heartbeat(frontend.id()));

  const after = connection(hub, id);
  assert.equal(after.attached, true);
  assert.equal(after.resumptions, 1);
  assert.deepEqual(after.groups, [GROUP], 'the group membership was kept, not rejoined');
  assert.equal(device.connected.length, 1, 'no second connected event');
  assert.equal(device.disconnected.length, 0, 'no disconnected event');
  assert.equal(hub.connections().length, 2, 'no new connection');

  // It goes on working as before.
  await device.client.sendToGroup(GROUP, 'from the device', 'text', { noEcho: true });
  await waitFor('the device’s message at the frontend', () => frontend.received.length === 1);
});

test('messages delivered but not yet sequence-acked are sent again on resumption; the library drops the copies', async (t) => {
  const hub = await world(t);
  const frontend = await peer(t, hub, { userId: 'frontend', roles: FRONTEND_ROLES });
  const device = await peer(t, hub, { userId: 'device', roles: DEVICE_ROLES, groups: [GROUP] });
  const id = device.id();
  let unackedAtDrop = -1;
  // Drop the socket the moment the third message is handed to the application: its sequenceAck
  // (sent by the library at most once a second) cannot have reached the stand-in yet.
  device.client.on('group-message', () => {
    if (device.received.length === 3 && unackedAtDrop === -1) {
      unackedAtDrop = connection(hub, id).unacked;
      hub.dropConnection(id);
    }
  });
  for (const n of [1, 2, 3]) await frontend.client.sendToGroup(GROUP, { n }, 'json', { noEcho: true });

  await waitFor('the resumption', () => connection(hub, id).resumptions === 1 && connection(hub, id).attached, 4000);
  assert.ok(unackedAtDrop >= 1, `unacknowledged at the drop: ${unackedAtDrop}`);
  assert.equal(connection(hub, id).redelivered, unackedAtDrop, 'every unacknowledged message was sent again');
  await waitFor('the sequenceAck after the resumption', () => connection(hub, id).unacked === 0, 3000);
  assert.deepEqual(device.received.map((m) => m.data), [{ n: 1 }, { n: 2 }, { n: 3 }], 'each message once');
  assert.deepEqual(device.received.map((m) => m.sequenceId), [1, 2, 3]);
  assert.equal(device.connected.length, 1);

  // And again: the library resumes with what the resumed connection told it.
  hub.dropConnection(id);
  await waitFor('the second resumption', () => connection(hub, id).resumptions === 2 && connection(hub, id).attached, 4000);
  await frontend.client.sendToGroup(GROUP, { n: 4 }, 'json', { noEcho: true });
  await waitFor('the fourth message', () => device.received.length === 4);
  assert.equal(device.received[3]?.sequenceId, 4);
  assert.equal(device.connected.length, 1);
  assert.equal(device.disconnected.length, 0);
});

test('dropSession: the resumption is refused with 1008; the library emits disconnected, starts over and emits connected with a new connectionId; autoRejoinGroups decides the groups', async (t) => {
  const hub = await world(t);
  const frontend = await peer(t, hub, { userId: 'frontend', roles: FRONTEND_ROLES });
  const rejoining = await peer(t, hub, { userId: 'device-a', roles: DEVICE_ROLES });
  const manual = await peer(t, hub, { userId: 'device-b', roles: DEVICE_ROLES }, { autoRejoinGroups: false });
  for (const p of [frontend, rejoining, manual]) await p.client.joinGroup(GROUP);
  const oldA = rejoining.id();
  const oldB = manual.id();

  assert.equal(hub.dropSession(oldA), 1);
  assert.equal(hub.dropSession(oldB), 1);
  await waitFor('connected again', () => rejoining.connected.length === 2 && manual.connected.length === 2);
  assert.notEqual(rejoining.id(), oldA);
  assert.notEqual(manual.id(), oldB);
  for (const p of [rejoining, manual]) {
    assert.equal(p.disconnected.length, 1);
    assert.match(p.disconnected[0]?.message?.message ?? '', /cannot be recovered/);
  }
  assert.equal(hub.refusals().filter((r) => r.kind === 'close' && r.code === 1008).length, 2);
  assert.equal(hub.connections().length, 3, 'the old sessions are gone');

  await waitFor('the automatic rejoin', () => connection(hub, rejoining.id()).groups.includes(GROUP));
  assert.deepEqual(connection(hub, manual.id()).groups, [], 'without autoRejoinGroups the new connection is in no group');
  await frontend.client.sendToGroup(GROUP, 'one', 'text', { noEcho: true });
  await waitFor('the message at the rejoined device', () => rejoining.received.length === 1);
  await sleep(100);
  assert.equal(manual.received.length, 0);

  // The application rejoins on its own, as it must without autoRejoinGroups.
  await manual.client.joinGroup(GROUP);
  await frontend.client.sendToGroup(GROUP, 'two', 'text', { noEcho: true });
  await waitFor('the message after the manual rejoin', () => manual.received.length === 1);
  assert.equal(manual.received[0]?.data, 'two');
});

test('a session kept past the grace window is gone: the late resumption is refused and the library starts a new connection', async (t) => {
  const hub = await world(t, { sessionGraceMs: 200 });
  const device = await peer(t, hub, { userId: 'device', roles: DEVICE_ROLES, groups: [GROUP] });
  const id = device.id();
  hub.holdResumptions(true);
  hub.dropConnection(id);
  await sleep(400);
  assert.equal(hub.connections().length, 0, 'the session expired');
  hub.holdResumptions(false);
  await waitFor('the new connection', () => device.connected.length === 2, 4000);
  assert.notEqual(device.id(), id);
  assert.equal(device.disconnected.length, 1);
  assert.deepEqual(hub.refusals().at(-1), { kind: 'close', code: 1008, reason: 'unknown or expired connection' });
});

test('the non-reliable protocol: no sequenceId, and a dropped connection is not resumed but started over', async (t) => {
  const hub = await world(t);
  const frontend = await peer(t, hub, { userId: 'frontend', roles: FRONTEND_ROLES, groups: [GROUP] });
  const device = await peer(t, hub, { userId: 'device', roles: DEVICE_ROLES, groups: [GROUP] }, { protocol: WebPubSubJsonProtocol() });
  const id = device.id();
  assert.equal(connection(hub, id).protocol, JSON_PROTOCOL);

  await frontend.client.sendToGroup(GROUP, 'plain', 'text', { noEcho: true });
  await waitFor('the message', () => device.received.length === 1);
  assert.equal(device.received[0]?.sequenceId, undefined);

  hub.dropConnection(id);
  await waitFor('a new connection', () => device.connected.length === 2);
  assert.notEqual(device.id(), id);
  assert.equal(hub.refusals().length, 0, 'the library did not try to resume');
});

// ---------------------------------------------------------------------------------------------
// The wire, through a raw WebSocket

/** A raw client that records every frame. */
async function raw(url: string, protocol = RELIABLE_JSON_PROTOCOL): Promise<{ ws: WebSocket; frames: any[]; next: (n: number) => Promise<any> }> {
  const ws = new WebSocket(url, protocol);
  const frames: any[] = [];
  ws.on('message', (data) => frames.push(JSON.parse(data.toString())));
  ws.on('error', () => undefined);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
  return {
    ws,
    frames,
    async next(n) {
      await waitFor(`frame ${n}`, () => frames.length > n, 2000);
      return frames[n];
    },
  };
}

test('the wire frames: connected, ack, Forbidden, group message with sequenceId, sequenceAck, ping/pong', async (t) => {
  const hub = await world(t);
  const a = await raw(await hub.clientUrl({ userId: 'a', roles: FRONTEND_ROLES }));
  const b = await raw(await hub.clientUrl({ roles: [] }));
  atEnd(t, () => {
    a.ws.terminate();
    b.ws.terminate();
  });
  assert.equal(a.ws.protocol, RELIABLE_JSON_PROTOCOL);

  const connected = await a.next(0);
  assert.deepEqual(Object.keys(connected).sort(), ['connectionId', 'event', 'reconnectionToken', 'type', 'userId']);
  assert.equal(connected.type, 'system');
  assert.equal(connected.event, 'connected');
  assert.equal(connected.userId, 'a');
  assert.equal((await b.next(0)).userId, null, 'a token without sub');

  a.ws.send(JSON.stringify({ type: 'joinGroup', group: GROUP, ackId: 1 }));
  assert.deepEqual(await a.next(1), { type: 'ack', ackId: 1, success: true });
  b.ws.send(JSON.stringify({ type: 'joinGroup', group: GROUP, ackId: 1 }));
  assert.deepEqual(await b.next(1), {
    type: 'ack',
    ackId: 1,
    success: false,
    error: { name: 'Forbidden', message: `The connection has no permission to join group '${GROUP}'.` },
  });
  // Fire-and-forget (no ackId): done, nothing answered.
  a.ws.send(JSON.stringify({ type: 'sendToGroup', group: GROUP, dataType: 'binary', data: Buffer.from('hi').toString('base64') }));
  assert.deepEqual(await a.next(2), {
    sequenceId: 1,
    type: 'message',
    from: 'group',
    group: GROUP,
    dataType: 'binary',
    data: 'aGk=',
    fromUserId: 'a',
  });
  a.ws.send(JSON.stringify({ type: 'sendToGroup', group: GROUP, dataType: 'text', data: 'x', ackId: 2, noEcho: false }));
  const [m2, ack2] = [await a.next(3), await a.next(4)];
  assert.equal(m2.sequenceId, 2);
  assert.deepEqual(ack2, { type: 'ack', ackId: 2, success: true });
  assert.equal(connection(hub, connected.connectionId).unacked, 2);
  a.ws.send(JSON.stringify({ type: 'sequenceAck', sequenceId: 1 }));
  await waitFor('the first sequenceAck', () => connection(hub, connected.connectionId).unacked === 1);
  a.ws.send(JSON.stringify({ type: 'sequenceAck', sequenceId: 2 }));
  await waitFor('the second sequenceAck', () => connection(hub, connected.connectionId).unacked === 0);

  a.ws.send(JSON.stringify({ type: 'ping' }));
  assert.deepEqual(await a.next(5), { type: 'pong' });
  a.ws.send(JSON.stringify({ type: 'event', event: 'hello', dataType: 'json', data: { x: 1 }, ackId: 3 }));
  assert.deepEqual(await a.next(6), { type: 'ack', ackId: 3, success: true });
  assert.deepEqual(hub.events(), [{ connectionId: connected.connectionId, userId: 'a', event: 'hello', dataType: 'json', data: { x: 1 } }]);

  // The non-reliable protocol: no reconnectionToken, no sequenceId.
  const c = await raw(await hub.clientUrl({ userId: 'c', roles: FRONTEND_ROLES, groups: [GROUP] }), JSON_PROTOCOL);
  atEnd(t, () => c.ws.terminate());
  assert.equal(c.ws.protocol, JSON_PROTOCOL);
  assert.equal('reconnectionToken' in (await c.next(0)), false);
  a.ws.send(JSON.stringify({ type: 'sendToGroup', group: GROUP, dataType: 'json', data: [1], noEcho: true }));
  assert.deepEqual(await c.next(1), { type: 'message', from: 'group', group: GROUP, dataType: 'json', data: [1], fromUserId: 'a' });

  // A reconnection token that does not match is no way into the session.
  const resume = new URL(`ws://127.0.0.1:${hub.port}/client/hubs/${HUB}`);
  resume.searchParams.set('awps_connection_id', connected.connectionId);
  resume.searchParams.set('awps_reconnection_token', 'not-the-token');
  const intruder = await raw(resume.toString());
  const closed = new Promise<number>((resolve) => intruder.ws.once('close', (code) => resolve(code)));
  assert.deepEqual((await intruder.next(0)).event, 'disconnected');
  assert.equal(await closed, 1008);
  assert.equal(connection(hub, connected.connectionId).attached, true, 'the session is untouched');

  // The right one resumes it: the same connected frame first, then what was missed.
  a.ws.terminate();
  await waitFor('the drop', () => !connection(hub, connected.connectionId).attached);
  c.ws.send(JSON.stringify({ type: 'sendToGroup', group: GROUP, dataType: 'text', data: 'while away', noEcho: true }));
  await waitFor('the message queued', () => connection(hub, connected.connectionId).unacked === 1);
  resume.searchParams.set('awps_reconnection_token', connected.reconnectionToken);
  const back = await raw(resume.toString());
  atEnd(t, () => back.ws.terminate());
  assert.deepEqual(await back.next(0), connected);
  assert.deepEqual(await back.next(1), { sequenceId: 3, type: 'message', from: 'group', group: GROUP, dataType: 'text', data: 'while away', fromUserId: 'c' });
  assert.equal(connection(hub, connected.connectionId).resumptions, 1);
});

test('bad input does not hurt the stand-in: garbage frames are ignored and recorded, a client vanishing mid-frame is fine', async (t) => {
  const hub = await world(t);
  const url = await hub.clientUrl({ userId: 'noisy', roles: FRONTEND_ROLES });
  const noisy = await raw(url);
  atEnd(t, () => noisy.ws.terminate());
  await noisy.next(0);
  for (const frame of [
    'not json',
    '[1, 2]',
    'null',
    '{"type":"nope"}',
    '{"type":"joinGroup","ackId":5}',
    '{"type":"sendToGroup","group":"g","dataType":"weird","data":1,"ackId":6}',
    '{"type":"sendToGroup","group":"g","dataType":"text","data":{"not":"text"},"ackId":7}',
    '{"type":"sequenceAck","sequenceId":"many"}',
  ]) {
    noisy.ws.send(frame);
  }
  noisy.ws.send(Buffer.from([0, 1, 2]), { binary: true });
  noisy.ws.send(JSON.stringify({ type: 'joinGroup', group: GROUP, ackId: 8 }));
  assert.deepEqual(await noisy.next(1), { type: 'ack', ackId: 8, success: true }, 'still answering, and no ack for the bad frames');
  assert.equal(hub.protocolErrors().length, 9);
  assert.ok(hub.protocolErrors().every((e) => e.reason.length > 0 && !e.reason.includes('access_token')));

  // A client that opens the WebSocket, sends half a frame and vanishes.
  const token = new URL(await hub.clientUrl({ userId: 'vanishing' })).searchParams.get('access_token') ?? '';
  await new Promise<void>((resolve, reject) => {
    const socket = tcpConnect(hub.port, '127.0.0.1', () => {
      socket.write(
        `GET /client/hubs/${HUB}?access_token=${token} HTTP/1.1\r\nHost: 127.0.0.1:${hub.port}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n` +
          `Sec-WebSocket-Protocol: ${RELIABLE_JSON_PROTOCOL}\r\n\r\n`,
      );
    });
    socket.on('error', reject);
    socket.once('data', (answer) => {
      assert.match(answer.toString(), /^HTTP\/1\.1 101 /);
      // A masked text frame announcing 200 bytes, of which only 20 come.
      const header = Buffer.from([0x81, 0x80 | 126, 0, 200, 1, 2, 3, 4]);
      socket.write(Buffer.concat([header, randomBytes(20)]), () => {
        socket.destroy();
        resolve();
      });
    });
  });
  await waitFor('the vanished socket to be noticed', () => hub.connections().some((c) => c.userId === 'vanishing' && !c.attached));

  // And the real library still works against it.
  const late = await peer(t, hub, { userId: 'late', roles: FRONTEND_ROLES });
  assert.deepEqual(await late.client.joinGroup(GROUP), { ackId: 1, isDuplicated: false });
  noisy.ws.send(JSON.stringify({ type: 'sendToGroup', group: GROUP, dataType: 'text', data: 'still here', noEcho: true }));
  await waitFor('a message through the stand-in', () => late.received.length === 1);
});
