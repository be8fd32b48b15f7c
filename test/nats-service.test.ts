/** `updater serve` (the demo) with `nats` configured: the transport is started and stopped with the service. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'nats';
import { cleanup, tempDir } from './support/harness.js';
import { startNatsServer } from './support/nats-server.js';
import { prepareDemoDir, startService, waitFor } from './support/service-process.js';
import { DEVICES_BUCKET, requestSubject, type DeviceRecord } from '../src/contract/index.js';

test('the demo on the bus: /healthz nats connected, its record in dune_devices, it answers; SIGTERM stops it promptly; the token is never logged', async () => {
  const TOKEN = 'svc-' + 'T0k'.repeat(10);
  const bus = await startNatsServer({ args: ['--auth', TOKEN] });
  const dir = tempDir('updater-nats-svc-');
  await prepareDemoDir(dir);
  const svc = await startService(dir, { UPDATER_NATS: JSON.stringify({ servers: [bus.url], device: 'demo-1', token: TOKEN }) });
  const nc = await connect({ servers: bus.url, token: TOKEN });
  try {
    await waitFor('/healthz nats connected', async () => ((await (await fetch(`${svc.url}/healthz`)).json()) as { nats?: string }).nats === 'connected', 20_000);
    const kv = await nc.jetstream().views.kv(DEVICES_BUCKET, { bindOnly: true });
    const record = await waitFor('the record', async () => (await kv.get('demo-1'))?.json<DeviceRecord>(), 20_000);
    assert.equal(record.device, 'demo-1');
    assert.equal(record.system_info.device_id, 'demo-1');
    assert.deepEqual(record.system_info.dunebugger_components.map((c) => c.name), ['sample-app']);
    const reply = (await nc.request(requestSubject('demo-1', 'controller.system_info'), new Uint8Array(), { timeout: 10_000 })).json<{ subject: string }>();
    assert.equal(reply.subject, 'system_info');
    const started = Date.now();
    svc.child.kill('SIGTERM');
    const exit = await svc.exited;
    assert.equal(exit.code, 0);
    assert.ok(Date.now() - started < 10_000, 'stopped promptly');
    assert.ok(!svc.output().includes(TOKEN), 'the token is in the log');
  } finally {
    await nc.close();
    if (svc.child.exitCode === null) svc.child.kill('SIGKILL');
    await bus.close();
    cleanup(dir);
  }
});
