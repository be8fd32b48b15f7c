/**
 * Update all and the `updateFirst` rule, on a real core (createCore, SQLite, DirDrivers making real
 * file changes): through the commands, through REST (app.inject on the real HTTP app) and through
 * `/ws` (a real socket).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { WebSocket } from 'ws';
import { buildApp } from '../src/server/app.js';
import { CommandError } from '../src/app/index.js';
import type { OutboundMessage, UpdateBatch } from '../src/contract/index.js';
import type { ReleaseSource } from '../src/releases/discovery.js';
import { cleanup, offers110, openComponents, tempDir, testLogger, type ComponentsHarness, type DirSpec } from './support/harness.js';

const REFUSAL = 'Cannot update core before remote. Remote has an available update and must be updated first.';

/** Offers nothing newer than what is installed (1.0.0). */
const offersNothing: ReleaseSource = {
  ...offers110,
  async listReleases(repo) {
    const all = await offers110.listReleases(repo);
    return { ...all, value: all.value.filter((r) => r.tag === 'v1.0.0') };
  },
};

interface World extends ComponentsHarness {
  /** Every `update_batch` the feed sent to a live subscriber, in order. */
  batches: UpdateBatch[];
  /** Resolves with the batch once it has ended. */
  ended(): Promise<UpdateBatch>;
  app?: FastifyInstance;
}

async function world(specs: DirSpec[], options: { stepDelayMs?: number; source?: ReleaseSource; http?: boolean } = {}): Promise<World> {
  const root = tempDir('updater-all-');
  const h = openComponents(root, specs, options);
  const batches: UpdateBatch[] = [];
  h.core.app.feed
    .subscribe({
      subjects: new Set<OutboundMessage['subject']>(['update_batch']),
      send: (m) => {
        if (m.subject === 'update_batch') batches.push(m.body);
        return true;
      },
    })
    .live();
  const app = options.http ? await buildApp({ application: h.core.app, token: null, logger: testLogger() }) : undefined;
  return {
    ...h,
    app,
    batches,
    async ended() {
      for (let i = 0; i < 500; i++) {
        const b = h.core.app.queries.batch();
        if (b && b.state !== 'running') return b;
        await sleep(20);
      }
      throw new Error(`the batch did not end: ${JSON.stringify(h.core.app.queries.batch())}`);
    },
    async close() {
      await h.core.close(app ? [app.close()] : []);
      cleanup(root);
    },
  };
}

const refusal = async (work: Promise<unknown>): Promise<CommandError> => {
  try {
    await work;
  } catch (error) {
    assert.ok(error instanceof CommandError, `expected a CommandError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected a refusal');
};

test('update all: every component with an update, the updateFirst one first, one run after another', async () => {
  const w = await world([{ name: 'core' }, { name: 'remote', updateFirst: true }], { stepDelayMs: 5 });
  try {
    const started = await w.core.app.commands.updateAll();
    assert.deepEqual(started.components, ['remote', 'core']);
    assert.equal(started.message, 'Updating remote from 1.0.0 to 1.1.0');
    assert.equal(w.core.journal.getRun(started.run_id!)!.component, 'remote', 'the first run is of the updateFirst component');
    assert.equal(w.core.journal.listRuns({ component: 'core' }).length, 0, 'core waits for remote to end');

    const batch = await w.ended();
    assert.equal(batch.state, 'succeeded');
    assert.equal(batch.message, 'Updated 2 components: remote to 1.1.0, core to 1.1.0');
    assert.deepEqual(batch.runs.map((r) => [r.component, r.from_version, r.to_version, r.result]), [
      ['remote', '1.0.0', '1.1.0', 'succeeded'],
      ['core', '1.0.0', '1.1.0', 'succeeded'],
    ]);
    assert.equal(w.installed('remote'), '1.1.0');
    assert.equal(w.installed('core'), '1.1.0');
    // One after another: every transition of remote's run comes before the first of core's.
    const [remoteRun, coreRun] = batch.runs.map((r) => w.core.journal.transitionsOf(r.run_id));
    assert.ok(remoteRun!.at(-1)!.seq < coreRun![0]!.seq, 'core started only after remote ended');
    // What a live client heard of the batch: each run as it started, then the end.
    assert.deepEqual(w.batches.map((b) => [b.state, b.message]), [
      ['running', 'Updating remote from 1.0.0 to 1.1.0'],
      ['running', 'Updating core from 1.0.0 to 1.1.0'],
      ['succeeded', 'Updated 2 components: remote to 1.1.0, core to 1.1.0'],
    ]);
    assert.equal(w.batches.every((b) => b.batch_id === started.batch_id), true);
  } finally {
    await w.close();
  }
});

test('update all stops at the first run that does not succeed; the next component is left untouched', async () => {
  const w = await world([{ name: 'remote', updateFirst: true, broken: true }, { name: 'core' }, { name: 'scheduler' }]);
  try {
    const started = await w.core.app.commands.updateAll();
    assert.deepEqual(started.components, ['remote', 'core', 'scheduler']);
    const batch = await w.ended();
    assert.equal(batch.state, 'stopped');
    assert.equal(batch.message, 'Stopped at remote (rolled back); not updated: core and scheduler');
    assert.deepEqual(batch.runs.map((r) => [r.component, r.result]), [['remote', 'rolled_back']]);
    assert.equal(w.installed('remote'), '1.0.0', 'rolled back');
    assert.equal(w.installed('core'), '1.0.0');
    assert.equal(w.installed('scheduler'), '1.0.0');
    assert.deepEqual(w.core.journal.listRuns().map((r) => r.component), ['remote'], 'no run of core or scheduler');
  } finally {
    await w.close();
  }
});

test('update all with nothing to update starts no run and says so', async () => {
  const w = await world([{ name: 'core' }, { name: 'remote', updateFirst: true }], { source: offersNothing });
  try {
    const started = await w.core.app.commands.updateAll();
    assert.deepEqual(started, { batch_id: started.batch_id, components: [], run_id: null, message: 'Nothing to update: no component has an update available' });
    assert.equal(w.core.journal.listRuns().length, 0);
    assert.equal(w.core.app.queries.batch()!.state, 'succeeded');
    assert.ok((await w.core.app.queries.components()).every((c) => c.last_checked !== null), 'it checked first');
  } finally {
    await w.close();
  }
});

test('busy: update all while a run is active; any start while a batch goes on', async () => {
  const w = await world([{ name: 'core' }, { name: 'remote' }], { stepDelayMs: 30 });
  try {
    const single = await w.core.app.commands.startRun('core', { version: '1.1.0' });
    const busy = await refusal(w.core.app.commands.updateAll());
    assert.equal(busy.code, 'busy');
    assert.match(busy.message, /another update is running: run \d+ of core/);
    await w.core.engine.waitForRun(single.runId);

    const started = await w.core.app.commands.updateAll();
    assert.deepEqual(started.components, ['remote']);
    for (const work of [w.core.app.commands.updateAll(), w.core.app.commands.startRun('core', { version: '1.0.0' }), w.core.app.commands.restore('core')]) {
      const e = await refusal(work);
      assert.equal(e.code, 'busy');
    }
    const batch = await w.ended();
    assert.equal(batch.state, 'succeeded');
    assert.equal(w.core.journal.listRuns().length, 2, 'nothing else started');
  } finally {
    await w.close();
  }
});

test('no other run slips in while a batch is being planned, or between two of its runs', async () => {
  const slow: ReleaseSource = {
    ...offers110,
    async listReleases(repo) {
      await sleep(150);
      return offers110.listReleases(repo);
    },
  };
  const w = await world([{ name: 'core' }, { name: 'remote' }], { source: slow });
  const { commands } = w.core.app;
  try {
    const gap: Array<Promise<unknown>> = [];
    const settled = (work: Promise<unknown>) => work.then(() => 'started', (error: unknown) => error);
    // Told of core's end once no run is active any more, before the batch starts remote's.
    w.core.engine.results.subscribe((r) => {
      if (r.component === 'core') gap.push(settled(commands.startRun('remote', { version: '1.0.0', dryRun: true })), settled(commands.restore('core')));
    });
    const started = commands.updateAll();
    const planning = await refusal(commands.startRun('core'));
    assert.deepEqual([planning.code, planning.message], ['busy', 'an update of all components is starting']);
    assert.deepEqual((await started).components, ['core', 'remote']);
    const batch = await w.ended();
    assert.equal(batch.state, 'succeeded');
    assert.equal(gap.length, 2);
    for (const work of gap) {
      const e = await work;
      assert.ok(e instanceof CommandError, `refused, not ${String(e)}`);
      assert.equal(e.code, 'busy');
      assert.match(e.message, /^an update of all components is under way: run \d+ of core \(1 of 2\)$/);
    }
    assert.equal(w.core.journal.listRuns().length, 2);
  } finally {
    await w.close();
  }
});

test('updateFirst: another component alone is refused while it has an update; a dry run and a rollback are not', async () => {
  const w = await world([{ name: 'core' }, { name: 'remote', updateFirst: true }, { name: 'scheduler', updateFirst: true }]);
  const { commands } = w.core.app;
  try {
    // Before any check nothing is known to be available: core may go (and leaves a backup).
    await w.core.engine.waitForRun((await commands.startRun('core', { version: '1.1.0' })).runId);
    await commands.check();

    const refused = await refusal(commands.startRun('core', { version: '1.0.0' }));
    assert.equal(refused.code, 'update_first');
    assert.equal(refused.message, REFUSAL);
    // Two updateFirst components: the later one waits for the earlier, never the other way round.
    const second = await refusal(commands.startRun('scheduler'));
    assert.equal(second.message, 'Cannot update scheduler before remote. Remote has an available update and must be updated first.');
    assert.equal(w.core.journal.listRuns().length, 1, 'nothing started');

    const dry = await w.core.engine.waitForRun((await commands.startRun('core', { version: '1.0.0', dryRun: true })).runId);
    assert.equal(dry.state, 'validated');
    const restore = await w.core.engine.waitForRun((await commands.restore('core')).runId);
    assert.equal(restore.state, 'rolled_back');
    assert.equal(w.installed('core'), '1.0.0');

    // Once remote is current, scheduler may go, and then core.
    await w.core.engine.waitForRun((await commands.startRun('remote')).runId);
    assert.equal(w.installed('remote'), '1.1.0');
    assert.equal((await refusal(commands.startRun('core'))).message, 'Cannot update core before scheduler. Scheduler has an available update and must be updated first.');
    await w.core.engine.waitForRun((await commands.startRun('scheduler')).runId);
    const core = await w.core.engine.waitForRun((await commands.startRun('core')).runId);
    assert.equal(core.state, 'succeeded');
  } finally {
    await w.close();
  }
});

// ------------------------------------------------------------------------------------------ REST

const json = (body: unknown) => ({ headers: { 'content-type': 'application/json' }, payload: JSON.stringify(body) });

test('REST: POST /api/updates answers 202 with the plan and the first run; GET /api/updates follows it', async () => {
  const w = await world([{ name: 'core' }, { name: 'remote', updateFirst: true }], { http: true, stepDelayMs: 20 });
  const app = w.app!;
  try {
    const none = await app.inject('/api/updates');
    assert.equal(none.statusCode, 404);
    assert.equal(none.json().error.code, 'not_found');
    for (const body of [{ all: true }, { dry_run: true }]) {
      const bad = await app.inject({ method: 'POST', url: '/api/updates', ...json(body) });
      assert.equal(bad.statusCode, 400, JSON.stringify(body));
      assert.equal(bad.json().error.code, 'bad_request');
    }
    const notObject = await app.inject({ method: 'POST', url: '/api/updates', ...json(null) });
    assert.equal(notObject.statusCode, 400);
    assert.equal(notObject.json().error.code, 'bad_body');

    const r = await app.inject({ method: 'POST', url: '/api/updates', ...json({}) });
    assert.equal(r.statusCode, 202);
    const started = r.json();
    assert.deepEqual(Object.keys(started).sort(), ['batch_id', 'components', 'message', 'run_id']);
    assert.deepEqual(started.components, ['remote', 'core']);
    assert.equal(typeof started.run_id, 'number');

    const again = await app.inject({ method: 'POST', url: '/api/updates' });
    assert.equal(again.statusCode, 409);
    assert.equal(again.json().error.code, 'busy');
    const running = (await app.inject('/api/updates')).json();
    assert.equal(running.state, 'running');
    assert.equal(running.batch_id, started.batch_id);

    await w.ended();
    const done = (await app.inject('/api/updates')).json();
    assert.equal(done.state, 'succeeded');
    assert.deepEqual(done.runs.map((x: { component: string; result: string }) => [x.component, x.result]), [['remote', 'succeeded'], ['core', 'succeeded']]);
    assert.ok(done.finished_at);

    const nothing = await app.inject({ method: 'POST', url: '/api/updates' });
    assert.equal(nothing.statusCode, 200);
    assert.deepEqual(nothing.json().components, []);
    assert.equal(nothing.json().run_id, null);
    assert.equal(w.core.journal.listRuns().length, 2);

    const doc = (await app.inject('/openapi.json')).json();
    assert.ok(doc.paths['/api/updates'].post.responses['202']);
    assert.ok(doc.paths['/api/updates'].get);
  } finally {
    await w.close();
  }
});

test('REST: 409 update_first with the sentence; a dry run and a rollback pass; busy while a run is active', async () => {
  const w = await world([{ name: 'core' }, { name: 'remote', updateFirst: true }], { http: true, stepDelayMs: 20 });
  const app = w.app!;
  try {
    const first = await app.inject({ method: 'POST', url: '/api/components/core/updates', ...json({ version: '1.1.0' }) });
    assert.equal(first.statusCode, 202, 'before any check nothing is known to be available');
    await w.core.engine.waitForRun(first.json().run_id);
    assert.equal((await app.inject({ method: 'POST', url: '/api/checks' })).statusCode, 200);

    const refused = await app.inject({ method: 'POST', url: '/api/components/core/updates', ...json({}) });
    assert.equal(refused.statusCode, 409);
    assert.deepEqual(refused.json(), { error: { code: 'update_first', message: REFUSAL } });
    const dry = await app.inject({ method: 'POST', url: '/api/components/core/updates', ...json({ dry_run: true }) });
    assert.equal(dry.statusCode, 202);
    await w.core.engine.waitForRun(dry.json().run_id);
    const rollback = await app.inject({ method: 'POST', url: '/api/components/core/rollback' });
    assert.equal(rollback.statusCode, 202);

    const busy = await app.inject({ method: 'POST', url: '/api/updates' });
    assert.equal(busy.statusCode, 409);
    assert.equal(busy.json().error.code, 'busy');
    await w.core.engine.waitForRun(rollback.json().run_id);
    assert.equal(w.installed('core'), '1.0.0');
  } finally {
    await w.close();
  }
});

// ------------------------------------------------------------------------------------------- /ws

interface Envelope {
  subject: string;
  body: any;
}

async function connect(app: FastifyInstance): Promise<{ messages: Envelope[]; send(subject: string, body?: unknown): void; until(done: (m: Envelope[]) => boolean): Promise<void>; close(): void }> {
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  const ws = new WebSocket(`${address.replace(/^http/, 'ws')}/ws`);
  const messages: Envelope[] = [];
  ws.on('message', (data) => messages.push(JSON.parse(data.toString()) as Envelope));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return {
    messages,
    send: (subject, body) => ws.send(JSON.stringify({ subject, body })),
    async until(done) {
      for (let i = 0; i < 500 && !done(messages); i++) await sleep(20);
      assert.ok(done(messages), `timed out; last messages: ${JSON.stringify(messages.slice(-4))}`);
    },
    close: () => ws.terminate(),
  };
}

test('/ws: updater.update "all" updates every component; "manual_confirmation" with nothing left says so; update_first is an error', async () => {
  const w = await world([{ name: 'core' }, { name: 'remote', updateFirst: true }], { http: true });
  const peer = await connect(w.app!);
  try {
    peer.send('updater.check_updates');
    await peer.until((ms) => ms.some((m) => m.subject === 'update_check_result'));
    for (const [subject, body] of [['updater.perform_update', { component: 'core' }], ['updater.update', 'core'], ['updater.update', 'dunebugger-core']] as const) {
      const from = peer.messages.length;
      peer.send(subject, body);
      await peer.until((ms) => ms.slice(from).some((m) => m.subject === 'error'));
      assert.deepEqual(peer.messages.slice(from).find((m) => m.subject === 'error')!.body, { code: 'update_first', message: REFUSAL }, `${subject} ${JSON.stringify(body)}`);
    }
    assert.equal(w.core.journal.listRuns().length, 0);

    peer.send('updater.update', 'all');
    await peer.until((ms) => ms.some((m) => m.subject === 'update_batch' && m.body.state !== 'running'));
    const batch = peer.messages.filter((m) => m.subject === 'update_batch').map((m) => m.body as UpdateBatch);
    assert.deepEqual(batch.map((b) => b.message), ['Updating remote from 1.0.0 to 1.1.0', 'Updating core from 1.0.0 to 1.1.0', 'Updated 2 components: remote to 1.1.0, core to 1.1.0']);
    // Every run's own messages reached the client, remote's before core's.
    const results = peer.messages.filter((m) => m.subject === 'update_result').map((m) => [m.body.component, m.body.state]);
    assert.deepEqual(results, [['remote', 'succeeded'], ['core', 'succeeded']]);
    // In order: each run announced before its first transition, and core's only after remote's end.
    const order = peer.messages
      .filter((m) => m.subject === 'update_batch' || (m.subject === 'updater_progress' && !m.body.transient))
      .map((m) => (m.subject === 'update_batch' ? `batch:${m.body.runs.at(-1)?.component}:${m.body.state}` : `${m.body.component}:${m.body.state}`));
    assert.deepEqual(
      order.filter((x) => /^batch|discover|succeeded/.test(x)),
      ['batch:remote:running', 'remote:discover', 'remote:succeeded', 'batch:core:running', 'core:discover', 'core:succeeded', 'batch:core:succeeded'],
    );

    const from = peer.messages.length;
    peer.send('updater.update', 'manual_confirmation');
    await peer.until((ms) => ms.slice(from).some((m) => m.subject === 'update_batch'));
    const nothing = peer.messages.slice(from).find((m) => m.subject === 'update_batch')!.body as UpdateBatch;
    assert.deepEqual([nothing.state, nothing.components, nothing.message], ['succeeded', [], 'Nothing to update: no component has an update available']);
    assert.equal(w.core.journal.listRuns().length, 2);
  } finally {
    peer.close();
    await w.close();
  }
});

test('/ws: update all while a run is active is an error busy', async () => {
  const w = await world([{ name: 'core' }], { http: true, stepDelayMs: 30 });
  const peer = await connect(w.app!);
  try {
    const run = await w.core.app.commands.startRun('core', { version: '1.1.0' });
    peer.send('updater.update', 'all');
    await peer.until((ms) => ms.some((m) => m.subject === 'error'));
    assert.equal(peer.messages.find((m) => m.subject === 'error')!.body.code, 'busy');
    await w.core.engine.waitForRun(run.runId);
    assert.equal(w.core.journal.listRuns().length, 1);
  } finally {
    peer.close();
    await w.close();
  }
});
