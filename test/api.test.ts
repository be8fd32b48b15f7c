/** Every REST route of the contract and every error code, through app.inject on a real engine. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { apiWorld } from './support/api-harness.js';

const json = (body: unknown) => ({ headers: { 'content-type': 'application/json' }, payload: JSON.stringify(body) });

test('GET /healthz', async () => {
  const w = await apiWorld();
  try {
    const r = await w.app.inject('/healthz');
    assert.equal(r.statusCode, 200);
    assert.equal(r.json().status, 'ok');
    assert.match(r.json().version, /^\d+\.\d+\.\d+/);
  } finally {
    await w.close();
  }
});

test('GET /api/components before and after a check; POST /api/checks answers the update_check_result body', async () => {
  const w = await apiWorld();
  try {
    let list = (await w.app.inject('/api/components')).json();
    assert.equal(list.length, 1);
    assert.deepEqual(Object.keys(list[0]).sort(), ['active_run', 'current_version', 'kind', 'last_checked', 'latest_version', 'name', 'reason', 'release_notes', 'release_url', 'running', 'stale', 'update_available']);
    assert.equal(list[0].current_version, '1.0.0');
    assert.equal(list[0].last_checked, null);

    const check = await w.app.inject({ method: 'POST', url: '/api/checks' });
    assert.equal(check.statusCode, 200);
    assert.deepEqual(check.json().components.dir.latest, '1.2.0');
    assert.equal(check.json().components.dir.update_available, true);
    assert.equal(check.json().components.dir.release_notes, 'notes v1.2.0');

    list = (await w.app.inject('/api/components')).json();
    assert.equal(list[0].latest_version, '1.2.0');
    assert.equal(list[0].update_available, true);
    assert.ok(list[0].last_checked);

    assert.equal((await w.app.inject({ method: 'POST', url: '/api/checks', ...json({ component: 'dir' }) })).statusCode, 200);
    const unknown = await w.app.inject({ method: 'POST', url: '/api/checks', ...json({ component: 'nope' }) });
    assert.equal(unknown.statusCode, 404);
    assert.deepEqual(unknown.json(), { error: { code: 'not_found', message: 'no component named "nope"' } });
    const bad = await w.app.inject({ method: 'POST', url: '/api/checks', ...json({ component: 5 }) });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().error.code, 'bad_request');
  } finally {
    await w.close();
  }
});

test('POST updates: 202 with run_id, the run succeeds, GET /api/runs/:id tells the story', async () => {
  const w = await apiWorld();
  try {
    const r = await w.app.inject({ method: 'POST', url: '/api/components/dir/updates', ...json({ version: '1.1.0' }) });
    assert.equal(r.statusCode, 202);
    const { run_id } = r.json();
    assert.equal(typeof run_id, 'number');
    await w.h.engine.waitForRun(run_id);
    const run = (await w.app.inject(`/api/runs/${run_id}`)).json();
    assert.equal(run.state, 'succeeded');
    assert.equal(run.message, 'Updated dir to 1.1.0');
    assert.equal(run.from_version, '1.0.0');
    assert.equal(run.to_version, '1.1.0');
    assert.equal(run.dry_run, false);
    assert.deepEqual(run.transitions.map((t: { to: string }) => t.to), ['discover', 'validate', 'backup', 'apply', 'verify', 'succeeded']);
    for (const key of ['run_id', 'component', 'kind', 'from_version', 'to_version', 'dry_run', 'state', 'message', 'created_at', 'updated_at', 'transitions']) assert.ok(key in run, key);
    assert.equal(readFileSync(join(w.root, 'live', 'VERSION'), 'utf8'), '1.1.0\n');

    const list = (await w.app.inject('/api/runs?component=dir&limit=5')).json();
    assert.equal(list[0].run_id, run_id);
    assert.equal((await w.app.inject('/api/runs?component=other')).json().length, 0);
    assert.equal((await w.app.inject('/api/runs/999')).statusCode, 404);
    assert.equal((await w.app.inject('/api/runs/abc')).statusCode, 400);
    assert.equal((await w.app.inject('/api/runs?limit=0')).statusCode, 400);
    assert.equal((await w.app.inject('/api/runs?bogus=1')).statusCode, 400);
  } finally {
    await w.close();
  }
});

test('POST updates with no body updates to the latest; dry_run ends validated', async () => {
  const w = await apiWorld();
  try {
    const dry = await w.app.inject({ method: 'POST', url: '/api/components/dir/updates', ...json({ dry_run: true }) });
    assert.equal(dry.statusCode, 202);
    assert.equal((await w.h.engine.waitForRun(dry.json().run_id)).state, 'validated');
    const latest = await w.app.inject({ method: 'POST', url: '/api/components/dir/updates' });
    assert.equal(latest.statusCode, 202);
    const run = await w.h.engine.waitForRun(latest.json().run_id);
    // The latest offered by DirDriver's releases is 1.2.0, which is broken: rolled back.
    assert.equal(run.state, 'rolled_back');
  } finally {
    await w.close();
  }
});

test('POST updates errors: 404 unknown, 409 busy, 400 bad body of every kind', async () => {
  const w = await apiWorld({ stepDelayMs: 40 });
  try {
    const notFound = await w.app.inject({ method: 'POST', url: '/api/components/nope/updates', ...json({}) });
    assert.equal(notFound.statusCode, 404);
    assert.equal(notFound.json().error.code, 'not_found');
    const pathLike = await w.app.inject({ method: 'POST', url: '/api/components/..%2Fx/updates', ...json({}) });
    assert.equal(pathLike.statusCode, 400);
    assert.equal(pathLike.json().error.code, 'bad_request');

    for (const body of [{ version: 5 }, { dry_run: 'yes' }, { dry_run: 'true' }, { version: '' }, { version: '1.0.0; rm -rf /' }, { version: 'v'.repeat(65) }, { extra: 1 }]) {
      const r = await w.app.inject({ method: 'POST', url: '/api/components/dir/updates', ...json(body) });
      assert.equal(r.statusCode, 400, JSON.stringify(body));
      assert.equal(r.json().error.code, 'bad_request');
      assert.ok(r.json().error.message.length > 0);
    }
    // Not an object at all (JSON null included: only a request with no body means "the latest").
    for (const body of [[1, 2], 'x'.repeat(10), null, 5, true]) {
      for (const url of ['/api/components/dir/updates', '/api/components/dir/rollback', '/api/checks', '/api/updates']) {
        const r = await w.app.inject({ method: 'POST', url, ...json(body) });
        assert.equal(r.statusCode, 400, `${url} ${JSON.stringify(body)}`);
        assert.equal(r.json().error.code, 'bad_body');
      }
    }
    for (const url of ['/api/components/dir/updates', '/api/components/dir/rollback', '/api/checks', '/api/updates']) {
      const r = await w.app.inject({ method: 'POST', url, headers: { 'content-type': 'text/plain' }, payload: '{}' });
      assert.equal(r.statusCode, 415, url);
      assert.equal(r.json().error.code, 'unsupported_media_type');
    }
    const rollbackExtra = await w.app.inject({ method: 'POST', url: '/api/components/dir/rollback', ...json({ version: '1.0.0' }) });
    assert.equal(rollbackExtra.statusCode, 400, 'rollback takes no fields');
    const notJson = await w.app.inject({ method: 'POST', url: '/api/components/dir/updates', headers: { 'content-type': 'application/json' }, payload: '{not json' });
    assert.equal(notJson.statusCode, 400);
    assert.equal(notJson.json().error.code, 'bad_request');
    const huge = await w.app.inject({ method: 'POST', url: '/api/components/dir/updates', ...json({ version: 'x'.repeat(70_000) }) });
    assert.equal(huge.statusCode, 413);
    assert.equal(huge.json().error.code, 'too_large');
    assert.equal(w.h.journal.listRuns().length, 0, 'no bad request may start a run');

    const first = await w.app.inject({ method: 'POST', url: '/api/components/dir/updates', ...json({ version: '1.1.0' }) });
    assert.equal(first.statusCode, 202);
    const busy = await w.app.inject({ method: 'POST', url: '/api/components/dir/updates', ...json({ version: '1.1.0' }) });
    assert.equal(busy.statusCode, 409);
    assert.equal(busy.json().error.code, 'busy');
    assert.match(busy.json().error.message, /run \d+ of dir/);
    const active = (await w.app.inject('/api/components')).json()[0].active_run;
    assert.equal(active, first.json().run_id);
    await w.h.engine.waitForRun(first.json().run_id);
  } finally {
    await w.close();
  }
});

test('POST rollback restores the newest backup as its own run; without a backup it is 404', async () => {
  const w = await apiWorld();
  try {
    const none = await w.app.inject({ method: 'POST', url: '/api/components/dir/rollback' });
    assert.equal(none.statusCode, 404);
    assert.equal(none.json().error.code, 'no_backup');
    const up = await w.app.inject({ method: 'POST', url: '/api/components/dir/updates', ...json({ version: '1.1.0' }) });
    await w.h.engine.waitForRun(up.json().run_id);
    const rb = await w.app.inject({ method: 'POST', url: '/api/components/dir/rollback' });
    assert.equal(rb.statusCode, 202);
    const run = await w.h.engine.waitForRun(rb.json().run_id);
    assert.equal(run.state, 'rolled_back');
    assert.equal(run.message, 'Restored dir to v1.0.0 from backup');
    assert.equal(readFileSync(join(w.root, 'live', 'VERSION'), 'utf8'), '1.0.0\n');
    assert.equal((await w.app.inject({ method: 'POST', url: '/api/components/nope/rollback' })).statusCode, 404);
  } finally {
    await w.close();
  }
});

test('auth: with a token every mutation needs it (401 and no effect without it); reads stay open', async () => {
  const w = await apiWorld({ token: 's3cret' });
  try {
    const mutations = [
      { method: 'POST' as const, url: '/api/checks' },
      { method: 'POST' as const, url: '/api/updates' },
      { method: 'POST' as const, url: '/api/components/dir/updates' },
      { method: 'POST' as const, url: '/api/components/dir/rollback' },
    ];
    for (const m of mutations) {
      for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: 's3cret' }, { authorization: 'Basic czNjcmV0' }]) {
        const r = await w.app.inject({ ...m, headers });
        assert.equal(r.statusCode, 401, `${m.url} ${JSON.stringify(headers)}`);
        assert.equal(r.json().error.code, 'unauthorized');
      }
    }
    assert.equal(w.h.journal.listRuns().length, 0);
    assert.equal((await w.app.inject('/api/components')).json()[0].last_checked, null, 'the refused check did not run');
    const ok = await w.app.inject({ method: 'POST', url: '/api/components/dir/updates', headers: { authorization: 'Bearer s3cret', 'content-type': 'application/json' }, payload: '{"version":"1.1.0"}' });
    assert.equal(ok.statusCode, 202);
    await w.h.engine.waitForRun(ok.json().run_id);
    assert.equal((await w.app.inject('/api/runs')).statusCode, 200);
    assert.equal((await w.app.inject('/healthz')).statusCode, 200);
  } finally {
    await w.close();
  }
});

test('GET /metrics speaks Prometheus and counts runs from the journal', async () => {
  const w = await apiWorld();
  try {
    const up = await w.app.inject({ method: 'POST', url: '/api/components/dir/updates', ...json({ version: '1.1.0' }) });
    await w.h.engine.waitForRun(up.json().run_id);
    await w.app.inject({ method: 'POST', url: '/api/checks' });
    const r = await w.app.inject('/metrics');
    assert.equal(r.statusCode, 200);
    assert.match(r.headers['content-type'] as string, /text\/plain/);
    assert.match(r.body, /^updater_runs_total\{component="dir",result="succeeded"\} 1$/m);
    assert.match(r.body, /^updater_active_run 0$/m);
    assert.match(r.body, /^updater_updates_available 1$/m);
    assert.match(r.body, /^updater_last_check_timestamp_seconds \d{10}/m);
    assert.match(r.body, /^updater_phase_duration_seconds_count\{phase="apply"\} 1$/m);
    assert.match(r.body, /^updater_run_duration_seconds_count\{result="succeeded"\} 1$/m);
    assert.match(r.body, /^updater_process_resident_memory_bytes \d+/m);
  } finally {
    await w.close();
  }
});

test('/metrics: updater_active_run is 0 with no label when idle, 1 labelled with the component during a run; no empty label value anywhere', async () => {
  const w = await apiWorld({ stepDelayMs: 150 });
  try {
    const scrape = async () => (await w.app.inject('/metrics')).body;
    const activeRun = (body: string) => body.split('\n').filter((l) => l.startsWith('updater_active_run'));
    const idle = await scrape();
    assert.deepEqual(activeRun(idle), ['updater_active_run 0']);
    assert.doesNotMatch(idle, /=""/, 'no empty label value');

    const up = await w.app.inject({ method: 'POST', url: '/api/components/dir/updates', ...json({ version: '1.1.0' }) });
    const during = await scrape();
    assert.deepEqual(activeRun(during), ['updater_active_run{component="dir"} 1']);
    await w.h.engine.waitForRun(up.json().run_id);
    const after = await scrape();
    assert.deepEqual(activeRun(after), ['updater_active_run 0']);
    assert.doesNotMatch(after, /=""/, 'no empty label value');
  } finally {
    await w.close();
  }
});

test('GET /openapi.json describes every route with its schemas; GET / serves HTML; unknown routes 404 in the error shape', async () => {
  const w = await apiWorld();
  try {
    const doc = (await w.app.inject('/openapi.json')).json();
    assert.match(doc.openapi, /^3\./);
    for (const [path, method] of [['/healthz', 'get'], ['/api/components', 'get'], ['/api/checks', 'post'], ['/api/components/{name}/updates', 'post'], ['/api/components/{name}/rollback', 'post'], ['/api/updates', 'post'], ['/api/updates', 'get'], ['/api/runs', 'get'], ['/api/runs/{id}', 'get'], ['/metrics', 'get']] as const) {
      assert.ok(doc.paths[path]?.[method], `${method} ${path}`);
    }
    assert.ok(doc.paths['/api/components/{name}/updates'].post.requestBody);
    assert.ok(doc.paths['/api/components/{name}/updates'].post.responses['409']);
    const home = await w.app.inject('/');
    assert.equal(home.statusCode, 200);
    assert.match(home.headers['content-type'] as string, /text\/html/);
    const missing = await w.app.inject('/nope?x=1');
    assert.equal(missing.statusCode, 404);
    assert.deepEqual(missing.json(), { error: { code: 'not_found', message: 'no route GET /nope' } });
  } finally {
    await w.close();
  }
});
