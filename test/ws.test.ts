/**
 * `/ws` over a real engine on a real SQLite file: the protocol through `app.injectWS`, and
 * auth, fan-out to 100 clients, reconnection, slow clients and ping/pong over real sockets.
 */
import { test } from 'node:test';
import { hostname } from 'node:os';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify, { type FastifyInstance } from 'fastify';
import { WebSocket, type ClientOptions } from 'ws';
import { registerWebSocket } from '../src/server/ws.js';
import type { AppDeps } from '../src/server/deps.js';
import type { ReleaseSource } from '../src/releases/discovery.js';
import type { Release } from '../src/releases/types.js';
import { cleanup, openHarness, seedRoot, tempDir, testLogger, type Harness } from './support/harness.js';
import { apiWorld } from './support/api-harness.js';

// ---------------------------------------------------------------------------------------------
// Helpers

interface Envelope {
  subject: string;
  body: any;
}

/** A client socket that records every message and lets a test wait for them. */
class Peer {
  readonly messages: Envelope[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private read = 0;
  private waiters: Array<() => void> = [];

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.messages.push(JSON.parse(data.toString()) as Envelope);
      this.wake();
    });
    ws.on('error', () => undefined);
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => {
        resolve({ code, reason: reason.toString() });
        this.wake();
      }),
    );
  }

  send(subject: string, body?: unknown): void {
    this.ws.send(JSON.stringify(body === undefined ? { subject } : { subject, body }));
  }

  /** The next unread message that matches (messages skipped on the way are consumed). */
  next(match: (m: Envelope) => boolean = () => true, timeoutMs = 5000): Promise<Envelope> {
    return this.until(
      () => {
        while (this.read < this.messages.length) {
          const m = this.messages[this.read++]!;
          if (match(m)) return m;
        }
        return undefined;
      },
      timeoutMs,
      'a message',
    );
  }

  /** Sends, then returns the next message of `reply` subject or `error`. */
  async request(subject: string, body?: unknown, reply?: string): Promise<Envelope> {
    this.read = this.messages.length;
    this.send(subject, body);
    return this.next((m) => m.subject === 'error' || (reply !== undefined && m.subject === reply));
  }

  /** Resolves once `done(messages)` holds. */
  async waitFor(done: (messages: Envelope[]) => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    await this.until(() => (done(this.messages) ? true : undefined), timeoutMs, what);
  }

  /** Journaled transitions received (transient progress left out). */
  progress(): Envelope['body'][] {
    return this.messages.filter((m) => m.subject === 'updater_progress' && !m.body.transient).map((m) => m.body);
  }

  seqs(): number[] {
    return this.progress().map((p) => p.seq as number);
  }

  results(): Envelope['body'][] {
    return this.messages.filter((m) => m.subject === 'update_result').map((m) => m.body);
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private async until<T>(fn: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = fn();
      if (value !== undefined) return value;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; last messages: ${JSON.stringify(this.messages.slice(-4))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

const release = (version: string): Release => ({
  tag: `v${version}`,
  name: version,
  notes: `notes of ${version}`,
  url: `https://example.test/o/dir/releases/v${version}`,
  draft: false,
  prerelease: false,
  publishedAt: '2024-01-01T00:00:00Z',
  assets: [],
});

const source: ReleaseSource = {
  listReleases: async () => ({ value: [release('1.1.0'), release('1.2.0')], stale: false, reason: null, fetchedAt: new Date().toISOString() }),
  releaseByVersion: async () => null,
  fetchRaw: async () => null,
};

interface World {
  root: string;
  h: Harness;
  app: FastifyInstance;
  deps: AppDeps;
  /** Opens a port (once) and returns the ws:// URL of /ws. */
  url(query?: string): Promise<string>;
  /** A real-socket client; resolves once open. */
  connect(query?: string, options?: ClientOptions): Promise<Peer>;
  /** An injected client (no port). */
  inject(path?: string, headers?: Record<string, string>): Promise<Peer>;
  close(): Promise<void>;
}

async function world(options: { token?: string; stepDelayMs?: number; ws?: AppDeps['ws'] } = {}): Promise<World> {
  const root = tempDir('updater-ws-');
  seedRoot(root);
  const h = openHarness(root, { stepDelayMs: options.stepDelayMs ?? 0, source });
  const deps: AppDeps = { application: h.core.app, token: options.token ?? null, logger: testLogger(), ws: options.ws };
  const app = Fastify();
  await registerWebSocket(app, deps);
  await app.ready();

  const sockets: WebSocket[] = [];
  let base: Promise<string> | null = null;
  const url = async (query = '') => {
    base ??= app.listen({ port: 0, host: '127.0.0.1' }).then((address) => address.replace(/^http/, 'ws'));
    return `${await base}/ws${query}`;
  };
  return {
    root,
    h,
    app,
    deps,
    url,
    async connect(query = '', clientOptions = {}) {
      const ws = new WebSocket(await url(query), clientOptions);
      sockets.push(ws);
      const peer = new Peer(ws);
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
        ws.once('error', reject);
      });
      return peer;
    },
    async inject(path = '/ws', headers = {}) {
      let peer!: Peer;
      const ws = await app.injectWS(path, { headers }, { onInit: (socket) => (peer = new Peer(socket)) });
      sockets.push(ws);
      return peer;
    },
    async close() {
      for (const ws of sockets) ws.terminate();
      await h.core.close([app.close()]);
      cleanup(root);
    },
  };
}

const progressKeys = ['component', 'level', 'message', 'phase', 'run_id', 'seq', 'state'];

/** Waits for the end of the run that `peer` started and returns what it received of it. */
async function runSeenBy(w: World, peer: Peer) {
  await peer.waitFor((ms) => ms.some((m) => m.subject === 'update_result'), 'update_result');
  const result = peer.results()[0]!;
  const progress = peer.progress().filter((p) => p.run_id === result.run_id);
  return { result, progress, journal: w.h.journal.transitionsOf(result.run_id as number) };
}

// ---------------------------------------------------------------------------------------------
// Protocol (injected sockets)

test('check_updates answers update_check_result and system_info answers system_info', async () => {
  const w = await world();
  try {
    const peer = await w.inject();
    const check = await peer.request('updater.check_updates', undefined, 'update_check_result');
    assert.equal(check.subject, 'update_check_result');
    const dir = check.body.components.dir;
    assert.equal(dir.current, '1.0.0');
    assert.equal(dir.latest, '1.2.0');
    assert.equal(dir.update_available, true);
    assert.equal(dir.release_notes, 'notes of 1.2.0');
    assert.equal(dir.release_url, 'https://example.test/o/dir/releases/v1.2.0');
    assert.equal(typeof dir.last_checked, 'string');

    const info = await peer.request('controller.system_info', undefined, 'system_info');
    assert.equal(info.subject, 'system_info');
    const [view, ...rest] = info.body.system_info.dunebugger_components;
    assert.equal(rest.length, 0);
    assert.deepEqual(Object.keys(view).sort(), ['current_version', 'last_available_version', 'last_checked', 'latest_version', 'name', 'release_notes', 'release_url', 'running', 'state', 'update_available', 'version']);
    assert.equal(info.body.system_info.device_id, hostname());
    assert.match(info.body.system_info.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/);
    assert.equal(view.state, 'unknown');
    assert.equal(view.version, '1.0.0');
    assert.equal(view.last_available_version, '1.2.0');
    assert.equal(view.name, 'dir');
    assert.equal(view.current_version, '1.0.0');
    assert.equal(view.latest_version, '1.2.0');
    assert.equal(view.update_available, true);
    assert.equal(view.running, null);
  } finally {
    await w.close();
  }
});

test('every connected client hears every check\'s result, whoever asked and however (REST, /ws), each once', async () => {
  const w = await apiWorld();
  try {
    await w.app.ready();
    const connect = async () => {
      let peer!: Peer;
      await w.app.injectWS('/ws', { headers: { host: 'localhost' } }, { onInit: (socket) => (peer = new Peer(socket)) });
      return peer;
    };
    const idle = await connect(); // has sent nothing at all
    const asker = await connect();
    const rest = await w.app.inject({ method: 'POST', url: '/api/checks', headers: { host: 'localhost' } });
    assert.equal(rest.statusCode, 200);
    const heard = (peer: Peer, n: number) => peer.waitFor((ms) => ms.filter((m) => m.subject === 'system_info').length === n, `system_info #${n}`);
    await Promise.all([heard(idle, 1), heard(asker, 1)]);
    asker.send('updater.check_updates');
    await Promise.all([heard(idle, 2), heard(asker, 2)]);
    await sleep(100);
    for (const peer of [idle, asker]) {
      assert.deepEqual(peer.messages.map((m) => m.subject), ['update_check_result', 'system_info', 'update_check_result', 'system_info']);
      assert.deepEqual(peer.messages[0]!.body, rest.json(), 'the REST answer is what every client heard');
      assert.equal(peer.messages[1]!.body.system_info.dunebugger_components[0].latest_version, '1.2.0');
    }
  } finally {
    await w.close();
  }
});

test('every kind of bad message gets an error with its code and the connection keeps working', async () => {
  const w = await world();
  try {
    const peer = await w.inject();
    const big = JSON.stringify({ subject: 'controller.system_info', body: 'x'.repeat(100 * 1024) });
    const cases: Array<[string, string | Buffer | object, string, RegExp?]> = [
      ['not JSON', 'hello {', 'bad_json'],
      ['binary frame', Buffer.from([1, 2, 3]), 'bad_json', /binary/],
      ['array', '[1, 2]', 'bad_envelope'],
      ['string', '"updater.check_updates"', 'bad_envelope'],
      ['no subject', { body: {} }, 'bad_envelope'],
      ['numeric subject', { subject: 42 }, 'bad_envelope'],
      ['unknown subject', { subject: 'updater.nope' }, 'unknown_subject', /updater\.nope/],
      ['perform_update without component', { subject: 'updater.perform_update', body: {} }, 'bad_body', /body\.component: required string/],
      ['perform_update numeric component', { subject: 'updater.perform_update', body: { component: 5 } }, 'bad_body', /body\.component: required string/],
      ['perform_update string dry_run', { subject: 'updater.perform_update', body: { component: 'dir', dry_run: 'yes' } }, 'bad_body', /body\.dry_run/],
      ['perform_update numeric version', { subject: 'updater.perform_update', body: { component: 'dir', version: 3 } }, 'bad_body', /body\.version/],
      ['perform_update unknown field', { subject: 'updater.perform_update', body: { component: 'dir', force: true } }, 'bad_body', /body\.force: unknown field/],
      ['perform_update body not an object', { subject: 'updater.perform_update', body: 'dir' }, 'bad_body', /body: must be an object/],
      ['update with an object', { subject: 'updater.update', body: { component: 'dir' } }, 'bad_body', /component name/],
      ['subscribe negative', { subject: 'updater.subscribe', body: { after_seq: -1 } }, 'bad_body', /body\.after_seq: must be an integer >= 0/],
      ['subscribe fraction', { subject: 'updater.subscribe', body: { after_seq: 1.5 } }, 'bad_body', /body\.after_seq/],
      ['subscribe string', { subject: 'updater.subscribe', body: { after_seq: '3' } }, 'bad_body', /body\.after_seq/],
      ['subscribe unknown field', { subject: 'updater.subscribe', body: { from: 1 } }, 'bad_body', /body\.from: unknown field/],
      ['subscribe array', { subject: 'updater.subscribe', body: [] }, 'bad_body', /body: must be an object/],
      ['100 KiB text', big, 'too_large', /65536/],
    ];
    for (const [name, payload, code, pattern] of cases) {
      const before = peer.messages.length;
      peer.ws.send(typeof payload === 'string' || Buffer.isBuffer(payload) ? payload : JSON.stringify(payload));
      const reply = await peer.next((m) => m.subject === 'error');
      assert.equal(peer.messages.length, before + 1, `${name}: exactly one reply`);
      assert.equal(reply.body.code, code, `${name}: code`);
      assert.equal(typeof reply.body.message, 'string');
      if (pattern) assert.match(reply.body.message, pattern, `${name}: message`);
      const info = await peer.request('controller.system_info', undefined, 'system_info');
      assert.equal(info.subject, 'system_info', `${name}: the socket still answers`);
    }
    assert.equal(w.h.journal.listRuns().length, 0, 'no bad message started a run');
  } finally {
    await w.close();
  }
});

test('a frame over the 1 MiB hard cap is closed by ws with 1009', async () => {
  const w = await world();
  try {
    const peer = await w.connect();
    peer.ws.send('x'.repeat(1024 * 1024 + 1));
    const { code } = await peer.closed;
    assert.equal(code, 1009);
  } finally {
    await w.close();
  }
});

test('perform_update to a good release: one updater_progress per transition, in order, then update_result', async () => {
  const w = await world();
  try {
    const peer = await w.inject();
    peer.send('updater.perform_update', { component: 'dir', version: '1.1.0' });
    const { result, progress, journal } = await runSeenBy(w, peer);
    assert.deepEqual(result, { run_id: result.run_id, component: 'dir', success: true, state: 'succeeded', message: 'Updated dir to 1.1.0' });
    assert.deepEqual(progress.map((p) => p.state), ['discover', 'validate', 'backup', 'apply', 'verify', 'succeeded']);
    assert.deepEqual(progress.map((p) => p.phase), ['discover', 'validate', 'backup', 'apply', 'verify', 'finished']);
    assert.deepEqual(progress.map((p) => p.seq), journal.map((t) => t.seq));
    progress.forEach((p, i) => {
      assert.deepEqual(Object.keys(p).sort(), progressKeys);
      assert.equal(p.component, 'dir');
      assert.equal(p.message, journal[i]!.message);
      assert.equal(p.level, journal[i]!.level);
      if (i > 0) assert.equal(p.seq, progress[i - 1].seq + 1, 'consecutive seqs');
    });
    const lastProgress = peer.messages.findLastIndex((m) => m.subject === 'updater_progress');
    assert.ok(lastProgress < peer.messages.findIndex((m) => m.subject === 'update_result'), 'update_result comes last');
  } finally {
    await w.close();
  }
});

test('perform_update to a broken release ends rolled_back with success false', async () => {
  const w = await world();
  try {
    const peer = await w.inject();
    peer.send('updater.perform_update', { component: 'dir', version: '1.2.0', dry_run: false });
    const { result, progress, journal } = await runSeenBy(w, peer);
    assert.equal(result.success, false);
    assert.equal(result.state, 'rolled_back');
    assert.match(result.message, /^Post-update checks failed, rolled back to v1\.0\.0/);
    assert.deepEqual(progress.map((p) => p.state), ['discover', 'validate', 'backup', 'apply', 'verify', 'rollback', 'rolled_back']);
    assert.deepEqual(progress.map((p) => p.phase), ['discover', 'validate', 'backup', 'apply', 'verify', 'rollback', 'finished']);
    assert.deepEqual(progress.map((p) => p.seq), journal.map((t) => t.seq));
  } finally {
    await w.close();
  }
});

test('a dry run ends validated', async () => {
  const w = await world();
  try {
    const peer = await w.inject();
    peer.send('updater.perform_update', { component: 'dir', version: '1.1.0', dry_run: true });
    const { result, progress } = await runSeenBy(w, peer);
    assert.deepEqual(progress.map((p) => p.state), ['discover', 'validate', 'validated']);
    assert.equal(result.success, true);
    assert.equal(result.state, 'validated');
    assert.equal(w.h.journal.getRunRow(result.run_id)!.dry_run, 1);
  } finally {
    await w.close();
  }
});

test('a second update while one runs gets error busy; an unknown component gets not_found', async () => {
  const w = await world({ stepDelayMs: 20 });
  try {
    const a = await w.inject();
    const b = await w.inject();
    a.send('updater.perform_update', { component: 'dir', version: '1.1.0' });
    await a.next((m) => m.subject === 'updater_progress');
    const busy = await b.request('updater.perform_update', { component: 'dir', version: '1.2.0' });
    assert.equal(busy.subject, 'error');
    assert.equal(busy.body.code, 'busy');
    assert.match(busy.body.message, /another update is running/);
    const legacyBusy = await a.request('updater.update', 'dunebugger-dir');
    assert.equal(legacyBusy.body.code, 'busy');
    const missing = await b.request('updater.perform_update', { component: 'nope' });
    assert.equal(missing.body.code, 'not_found');
    assert.match(missing.body.message, /nope/);

    const { result } = await runSeenBy(w, a);
    assert.equal(result.state, 'succeeded');
    // b became live with its first command: it sees the rest of the run and its result.
    await b.waitFor((ms) => ms.some((m) => m.subject === 'update_result'), 'update_result on b');
    assert.equal(b.progress().at(-1).state, 'succeeded');
    assert.equal(w.h.journal.listRuns().length, 1);
  } finally {
    await w.close();
  }
});

test('legacy updater.update accepts "dunebugger-dir" and "dir" and starts a normal run of dir', async () => {
  const w = await world();
  try {
    const peer = await w.inject();
    peer.send('updater.update', 'dunebugger-dir');
    const first = await runSeenBy(w, peer);
    const row = w.h.journal.getRunRow(first.result.run_id)!;
    assert.equal(row.component, 'dir');
    assert.equal(row.requested_version, null);
    assert.equal(row.dry_run, 0);
    assert.deepEqual(first.progress.map((p) => p.state).slice(0, 5), ['discover', 'validate', 'backup', 'apply', 'verify']);

    const again = await w.inject();
    again.send('updater.update', 'dir');
    const second = await runSeenBy(w, again);
    assert.equal(w.h.journal.getRunRow(second.result.run_id)!.component, 'dir');
    assert.notEqual(second.result.run_id, first.result.run_id);

    const unknown = await again.request('updater.update', 'dunebugger-nope');
    assert.equal(unknown.body.code, 'not_found');
    assert.match(unknown.body.message, /dunebugger-nope/);
  } finally {
    await w.close();
  }
});

test('subscribe replays the journal after after_seq, then goes on live without gap or duplicate', async () => {
  const w = await world();
  try {
    const first = await w.h.engine.startRun('dir', { version: '1.1.0' });
    await w.h.engine.waitForRun(first.runId);
    const afterFirst = w.h.journal.lastSeq();
    assert.equal(afterFirst, 6);

    const all = await w.inject();
    all.send('updater.subscribe', { after_seq: 0 });
    const fromThree = await w.inject();
    fromThree.send('updater.subscribe', { after_seq: 3 });
    const liveOnly = await w.inject();
    liveOnly.send('updater.subscribe', {});
    const beyond = await w.inject();
    beyond.send('updater.subscribe', { after_seq: 999 });
    const viaUrl = await w.inject('/ws?after_seq=2');
    for (const p of [all, fromThree, liveOnly, beyond, viaUrl]) await p.request('controller.system_info', undefined, 'system_info');
    assert.deepEqual(all.seqs(), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(fromThree.seqs(), [4, 5, 6]);
    assert.deepEqual(liveOnly.seqs(), []);
    assert.deepEqual(beyond.seqs(), [], 'an after_seq beyond the journal is taken as its end');
    assert.deepEqual(viaUrl.seqs(), [3, 4, 5, 6]);
    assert.equal(all.results().length, 0, 'update_result is not replayed');

    const second = await w.h.engine.startRun('dir', { version: '1.2.0' });
    await w.h.engine.waitForRun(second.runId);
    const last = w.h.journal.lastSeq();
    const range = (from: number) => Array.from({ length: last - from }, (_, i) => from + 1 + i);
    for (const p of [all, fromThree, liveOnly, beyond, viaUrl]) {
      await p.waitFor((ms) => ms.some((m) => m.subject === 'update_result'), 'update_result');
      assert.equal(p.seqs().at(-1), last);
      assert.equal(p.results().length, 1);
    }
    assert.deepEqual(all.seqs(), range(0));
    assert.deepEqual(fromThree.seqs(), range(3));
    assert.deepEqual(liveOnly.seqs(), range(afterFirst));
    assert.deepEqual(beyond.seqs(), range(afterFirst));
    assert.deepEqual(viaUrl.seqs(), range(2));
    assert.deepEqual(
      all.progress().map((p) => [p.seq, p.run_id, p.state]),
      w.h.journal.transitionsAfter(0).map((t) => [t.seq, t.runId, t.to]),
    );

    // A second subscribe below the cursor is a reset: replay from there again, then live.
    const before = all.seqs().length;
    all.send('updater.subscribe', { after_seq: 4 });
    await all.request('controller.system_info', undefined, 'system_info');
    assert.deepEqual(all.seqs().slice(before), range(4));

    const badUrl = await w.inject('/ws?after_seq=abc').then(
      () => null,
      (error: Error) => error,
    );
    assert.match(String(badUrl?.message), /400/);
  } finally {
    await w.close();
  }
});

test('sub-step progress goes out as transient updater_progress at the run\'s latest seq and is never replayed', async () => {
  const w = await world({ stepDelayMs: 10 });
  try {
    const peer = await w.inject();
    peer.send('updater.subscribe');
    await peer.request('controller.system_info', undefined, 'system_info');
    const off = w.h.engine.transitions.subscribe((t) => {
      if (t.to !== 'apply') return;
      setImmediate(() =>
        w.h.engine.progress.publish({ runId: t.runId, component: 'dir', phase: 'apply', message: 'writing files', percent: 50, bytes: 5, total: 10, at: new Date().toISOString() }),
      );
    });
    const { runId } = await w.h.engine.startRun('dir', { version: '1.1.0' });
    await peer.waitFor((ms) => ms.some((m) => m.subject === 'update_result'), 'update_result');
    off();
    const apply = w.h.journal.transitionsOf(runId).find((t) => t.to_state === 'apply')!;
    const transient = peer.messages.filter((m) => m.subject === 'updater_progress' && m.body.transient);
    assert.equal(transient.length, 1);
    assert.deepEqual(transient[0]!.body, {
      run_id: runId,
      component: 'dir',
      seq: apply.seq,
      phase: 'apply',
      state: 'apply',
      message: 'writing files',
      level: 'debug',
      progress: { percent: 50, bytes: 5, total: 10 },
      transient: true,
    });
    const states = peer.messages.filter((m) => m.subject === 'updater_progress').map((m) => (m.body.transient ? 'progress' : m.body.state));
    assert.deepEqual(states.slice(3, 6), ['apply', 'progress', 'verify']);

    const later = await w.inject('/ws?after_seq=0');
    await later.request('controller.system_info', undefined, 'system_info');
    assert.equal(later.messages.filter((m) => m.body?.transient).length, 0);
    assert.equal(later.seqs().length, 6);
  } finally {
    await w.close();
  }
});

test('app.close() closes the sockets with 1001 and ends their subscriptions; the core\'s close drops the engine subscriptions', async () => {
  const w = await world();
  const peer = await w.connect('?after_seq=0');
  assert.equal(w.h.core.app.feed.size, 1);
  assert.equal(w.h.engine.transitions.size, 1, 'one feed, however many sockets');
  const started = Date.now();
  await w.app.close();
  const { code } = await peer.closed;
  assert.equal(code, 1001);
  assert.ok(Date.now() - started < 2000);
  assert.equal(w.h.core.app.feed.size, 0);
  await w.h.core.close();
  assert.equal(w.h.engine.transitions.size, 0);
  assert.equal(w.h.engine.progress.size, 0);
  assert.equal(w.h.engine.results.size, 0);
  await w.close();
});

// ---------------------------------------------------------------------------------------------
// Real sockets

test('with a token: no token or a wrong one is refused with 401 at the upgrade; Bearer or ?token= works', async () => {
  const w = await world({ token: 's3cret' });
  try {
    const refused = async (query: string, headers: Record<string, string> = {}) => {
      const ws = new WebSocket(await w.url(query), { headers });
      return new Promise<{ status: number; body: string }>((resolve, reject) => {
        ws.once('open', () => reject(new Error('the upgrade was accepted')));
        ws.once('error', () => undefined);
        ws.once('unexpected-response', (_req, res) => {
          let body = '';
          res.on('data', (chunk: Buffer) => (body += chunk.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
      });
    };
    for (const [query, headers] of [
      ['', {}],
      ['', { authorization: 'Bearer wrong' }],
      ['?token=wrong', {}],
      ['', { authorization: 's3cret' }],
    ] as Array<[string, Record<string, string>]>) {
      const { status, body } = await refused(query, headers);
      assert.equal(status, 401, `${query} ${JSON.stringify(headers)}`);
      assert.equal(JSON.parse(body).error.code, 'unauthorized');
    }
    await assert.rejects(w.inject(), /401/);

    const bearer = await w.connect('', { headers: { authorization: 'Bearer s3cret' } });
    assert.equal((await bearer.request('controller.system_info', undefined, 'system_info')).subject, 'system_info');
    const query = await w.connect('?token=s3cret&after_seq=0');
    assert.equal((await query.request('controller.system_info', undefined, 'system_info')).subject, 'system_info');
    const injected = await w.inject('/ws', { authorization: 'Bearer s3cret' });
    assert.equal((await injected.request('controller.system_info', undefined, 'system_info')).subject, 'system_info');
  } finally {
    await w.close();
  }
});

test('a plain GET /ws (no Upgrade) answers 426 in the error shape; with a token, 401 comes first', async () => {
  for (const token of [undefined, 's3cret']) {
    const w = await world({ token });
    try {
      const plain = await w.app.inject({ method: 'GET', url: '/ws', headers: token ? { authorization: `Bearer ${token}` } : {} });
      assert.equal(plain.statusCode, 426);
      assert.equal(plain.headers.upgrade, 'websocket');
      assert.deepEqual(plain.json().error.code, 'upgrade_required');
      assert.match(plain.json().error.message, /^GET \/ws is the WebSocket API: connect with Upgrade: websocket/);
      if (token) assert.equal((await w.app.inject({ method: 'GET', url: '/ws' })).statusCode, 401);
    } finally {
      await w.close();
    }
  }
});

test('100 clients see every transition of two runs exactly once, in order; a client that reconnects with after_seq misses nothing', async () => {
  const w = await world({ stepDelayMs: 10 });
  try {
    // 80 clients before the runs: half subscribe by message, half by URL.
    const early = await Promise.all(
      Array.from({ length: 80 }, async (_, i) => {
        const peer = await w.connect(i % 2 === 0 ? '?after_seq=0' : '');
        if (i % 2 === 1) peer.send('updater.subscribe', { after_seq: 0 });
        await peer.request('controller.system_info', undefined, 'system_info');
        return peer;
      }),
    );
    const starter = early[0]!;
    const leaver = early[1]!;

    // Run 1 (good); 20 more clients join during it, replaying from 0.
    starter.send('updater.perform_update', { component: 'dir', version: '1.1.0' });
    await starter.next((m) => m.subject === 'updater_progress');
    const late = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        await sleep(i * 3);
        const peer = await w.connect(i % 2 === 0 ? '?after_seq=0' : '');
        if (i % 2 === 1) peer.send('updater.subscribe', { after_seq: 0 });
        return peer;
      }),
    );

    // One client leaves mid-run and comes back with the last seq it saw.
    await leaver.waitFor((ms) => ms.some((m) => m.body?.state === 'backup'), 'backup on the leaver');
    leaver.ws.close();
    await leaver.closed;
    const seenBefore = leaver.seqs();
    const lastSeen = seenBefore.at(-1)!;
    // Until the run goes on without it. On a loaded machine the leaver may read its backup
    // message only once the run has ended, having been sent all of it: then it missed nothing.
    while (w.h.journal.lastSeq() <= lastSeen && w.h.engine.activeRun() !== null) await sleep(2);
    const back = await w.connect(`?after_seq=${lastSeen}`);

    await starter.waitFor((ms) => ms.filter((m) => m.subject === 'update_result').length === 1, 'run 1 result');
    // Run 2 (broken: rolls back).
    starter.send('updater.perform_update', { component: 'dir', version: '1.2.0' });
    await starter.waitFor((ms) => ms.filter((m) => m.subject === 'update_result').length === 2, 'run 2 result');

    const journal = w.h.journal.transitionsAfter(0, 10_000);
    assert.equal(new Set(journal.map((t) => t.runId)).size, 2);
    assert.equal(journal.at(-1)!.to, 'rolled_back');
    const expected = journal.map((t) => [t.seq, t.runId, t.to]);
    const last = journal.at(-1)!.seq;
    const everyone = [...early.filter((p) => p !== leaver), ...late, back];
    await Promise.all(everyone.map((p) => p.waitFor((ms) => ms.some((m) => m.subject === 'update_result' && m.body.state === 'rolled_back'), 'run 2 result')));
    assert.equal(everyone.length, 100);

    for (const [i, peer] of [...early.filter((p) => p !== leaver), ...late].entries()) {
      assert.deepEqual(
        peer.progress().map((p) => [p.seq, p.run_id, p.state]),
        expected,
        `client ${i} got every transition once, in order`,
      );
      // Each update_result comes after its run's last transition.
      for (const r of peer.results()) {
        const resultAt = peer.messages.findIndex((m) => m.subject === 'update_result' && m.body.run_id === r.run_id);
        const endAt = peer.messages.findIndex((m) => m.subject === 'updater_progress' && m.body.run_id === r.run_id && m.body.phase === 'finished');
        assert.ok(endAt >= 0 && endAt < resultAt, `client ${i}: update_result of run ${r.run_id} after its end`);
      }
      assert.equal(peer.results().filter((r) => r.state === 'rolled_back').length, 1);
    }
    for (const peer of early.filter((p) => p !== leaver)) assert.equal(peer.results().length, 2);

    const combined = [...seenBefore, ...back.seqs()];
    assert.ok(back.seqs()[0]! === lastSeen + 1, 'the reconnected client resumes right after the last seq it saw');
    assert.deepEqual(combined, journal.map((t) => t.seq), 'no gap, no duplicate across the reconnection');
    assert.equal(combined.at(-1), last);
  } finally {
    await w.close();
  }
});

test('a long replay paced by a client that reads slowly, with live transitions and a result meanwhile: every seq once, in order', async () => {
  const w = await world({ ws: { maxBufferedBytes: 64 * 1024 } });
  try {
    w.h.journal.db.pragma('synchronous = OFF');
    const runId = w.h.journal.createRun({ component: 'dir', kind: 'dir', mode: 'update', requestedVersion: null, fromVersion: '1.0.0', dryRun: false, machineVersion: 1, snapshot: () => '{}' });
    const message = 'y'.repeat(1000);
    const commit = () => {
      const t = w.h.journal.commitTransition({ runId, to: 'apply', event: 'flood', message, level: 'info', snapshot: '{}', fromVersion: '1.0.0', toVersion: null, recoveries: 0 });
      w.h.engine.transitions.publish(t);
    };
    for (let i = 0; i < 10_000; i++) commit(); // ~10 MB of replay: more than the kernel's socket buffers hold

    const peer = await w.connect();
    peer.ws.pause(); // stops reading from the socket
    peer.send('updater.subscribe', { after_seq: 0 });
    const server = () => [...w.app.websocketServer.clients][0]!;
    for (let waited = 0; server().bufferedAmount === 0; waited += 5) {
      assert.ok(waited < 10_000, 'the replay never filled the socket');
      await sleep(5);
    }
    // The replay now waits for the client to drain: live transitions and a result come meanwhile.
    for (let i = 0; i < 50; i++) commit();
    const resultAfter = w.h.journal.lastSeq();
    w.h.engine.results.publish({ runId, component: 'dir', success: true, state: 'succeeded', message: 'done' });
    for (let i = 0; i < 50; i++) commit();
    peer.ws.resume();

    const last = w.h.journal.lastSeq();
    await peer.waitFor(() => peer.seqs().at(-1) === last && peer.results().length === 1, 'the last seq and the result', 20_000);
    assert.equal(peer.ws.readyState, WebSocket.OPEN, 'a slow reader is paced, not closed');
    assert.deepEqual(peer.seqs(), Array.from({ length: last }, (_, i) => i + 1));
    const resultAt = peer.messages.findIndex((m) => m.subject === 'update_result');
    const seqAt = peer.messages.findIndex((m) => m.body?.seq === resultAfter);
    assert.ok(seqAt >= 0 && seqAt < resultAt, 'the result is not sent before the transitions committed before it');
  } finally {
    await w.close();
  }
});

test('a client that does not read is closed with 1013; another client keeps receiving everything', async () => {
  const w = await world({ ws: { maxBufferedBytes: 256 * 1024 } });
  try {
    w.h.journal.db.pragma('synchronous = OFF'); // this test commits thousands of transitions
    const slow = await w.connect('?after_seq=0');
    const fast = await w.connect('?after_seq=0');
    await slow.request('controller.system_info', undefined, 'system_info');
    await fast.request('controller.system_info', undefined, 'system_info');
    slow.ws.pause(); // stops reading from the socket

    const runId = w.h.journal.createRun({ component: 'dir', kind: 'dir', mode: 'update', requestedVersion: null, fromVersion: '1.0.0', dryRun: false, machineVersion: 1, snapshot: () => '{}' });
    const message = 'x'.repeat(2000);
    const serverSockets = () => [...w.app.websocketServer.clients];
    let batches = 0;
    while (serverSockets().every((s) => s.readyState === WebSocket.OPEN)) {
      assert.ok(++batches < 1000, 'the slow client was never closed');
      for (let i = 0; i < 20; i++) {
        const t = w.h.journal.commitTransition({ runId, to: 'apply', event: 'flood', message, level: 'info', snapshot: '{}', fromVersion: '1.0.0', toVersion: null, recoveries: 0 });
        w.h.engine.transitions.publish(t);
      }
      await sleep(2);
    }
    const flooded = w.h.journal.lastSeq();
    slow.ws.resume();
    const closed = await slow.closed;
    assert.equal(closed.code, 1013);
    assert.equal(closed.reason, 'too slow');
    assert.ok(slow.seqs().length < flooded, 'the slow client did not get everything');

    await fast.waitFor((ms) => ms.at(-1)?.body?.seq === flooded, 'the fast client to catch up');
    assert.deepEqual(fast.seqs(), w.h.journal.transitionsAfter(0, 100_000).map((t) => t.seq));
    assert.equal(fast.ws.readyState, WebSocket.OPEN);
    assert.equal((await fast.request('controller.system_info', undefined, 'system_info')).subject, 'system_info');
  } finally {
    await w.close();
  }
});

test('ping/pong: a client that does not answer pings is terminated; one that does stays', async () => {
  const w = await world({ ws: { pingIntervalMs: 50 } });
  try {
    const mute = await w.connect('', { autoPong: false });
    const normal = await w.connect();
    const started = Date.now();
    const { code } = await mute.closed;
    assert.equal(code, 1006, 'terminated, no close frame');
    assert.ok(Date.now() - started < 2000);
    await sleep(200);
    assert.equal(normal.ws.readyState, WebSocket.OPEN);
    assert.equal((await normal.request('controller.system_info', undefined, 'system_info')).subject, 'system_info');
  } finally {
    await w.close();
  }
});
