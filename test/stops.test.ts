/**
 * Stops (CONTRACT.md "Browsers, full disks and stops"), on the real service: SIGTERM ends it
 * within 10 s whatever its clients hold open (half a request head, half a body, an idle
 * keep-alive connection, a WebSocket, which gets 1001), and a request that does not arrive
 * whole in time is cut off with 408 in the contract's error shape.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { cleanup, tempDir } from './support/harness.js';
import { prepareDemoDir, startService, type ServiceProcess } from './support/service-process.js';
import { errorCode, openRaw, parseResponse, send, within, type RawConnection } from './support/raw-http.js';
import { apiWorld } from './support/api-harness.js';
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../src/server/app.js';

const portOf = (s: ServiceProcess) => Number(new URL(s.url).port);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function kill(s: ServiceProcess) {
  if (s.child.exitCode === null && s.child.signalCode === null) {
    s.child.kill('SIGKILL');
    await s.exited;
  }
}

test('SIGTERM ends the service within 10 s although clients hold half a head, half a body, an idle connection and a WebSocket (1001)', { timeout: 60_000 }, async (t) => {
  const cwd = tempDir('updater-stops-');
  await prepareDemoDir(cwd);
  const s = await startService(cwd);
  const raws: RawConnection[] = [];
  try {
    const port = portOf(s);
    raws.push(await openRaw(port, `GET /api/components HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Slow: `));
    raws.push(await openRaw(port, `POST /api/checks HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: 64\r\n\r\n{"comp`));
    const idle = await openRaw(port, `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: keep-alive\r\n\r\n`);
    raws.push(idle);
    for (let i = 0; i < 50 && !idle.received().includes('"status":"ok"'); i++) await sleep(50);
    assert.match(idle.received(), /^HTTP\/1\.1 200/, 'the keep-alive connection was answered and stays open');

    const ws = new WebSocket(`${s.url.replace('http', 'ws')}/ws`);
    const wsClosed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    await sleep(300); // the server has read what the raw clients sent

    const t0 = Date.now();
    s.child.kill('SIGTERM');
    const exitedInTime = await within(s.exited, 15_000);
    const took = Date.now() - t0;
    t.diagnostic(`stopped ${took} ms after SIGTERM`);
    assert.ok(exitedInTime, `still running 15 s after SIGTERM:\n${s.output().slice(-2000)}`);
    assert.ok(took < 10_000, `took ${took} ms to stop`);
    assert.equal((await s.exited).code, 0, s.output().slice(-2000));
    assert.equal(await wsClosed, 1001, 'the WebSocket is told "going away"');
    for (const [i, raw] of raws.entries()) assert.ok(raw.isClosed() || (await within(raw.closed, 1000)), `raw connection ${i} was not closed`);
  } finally {
    for (const raw of raws) raw.socket.destroy();
    await kill(s);
    cleanup(cwd);
  }
});

test('a request that does not arrive whole in time (stalled body, stalled head) is cut off with 408 in the error shape, and starts nothing', { timeout: 60_000 }, async () => {
  const cwd = tempDir('updater-stops-408-');
  await prepareDemoDir(cwd);
  // For tests only: the 30 s default is shortened (the next test proves the default).
  const s = await startService(cwd, { UPDATER_REQUEST_TIMEOUT_MS: '1500' });
  const raws: RawConnection[] = [];
  const ws = new WebSocket(`${s.url.replace('http', 'ws')}/ws`);
  try {
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const opened = Date.now();
    const port = portOf(s);
    const body = await openRaw(port, `POST /api/components/sample-app/updates HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{"version":`);
    const head = await openRaw(port, `POST /api/checks HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-`);
    raws.push(body, head);
    for (const [what, raw] of [['a stalled body', body], ['a stalled head', head]] as const) {
      assert.ok(await within(raw.closed, 10_000), `${what} was not cut off within 10 s (${JSON.stringify(raw.received().slice(0, 200))})`);
      const r = parseResponse(raw.received());
      assert.equal(r.status, 408, `${what}: ${raw.received().slice(0, 300)}`);
      assert.match(r.headers['content-type'] as string, /^application\/json/);
      assert.equal(errorCode(r.body), 'request_timeout');
    }
    assert.equal((await send(`${s.url}/api/runs`)).body, '[]', 'no run was started');
    assert.equal((await send(`${s.url}/healthz`)).status, 200, 'the service still answers');
    // A WebSocket is not a request that has to arrive: open for more than twice the timeout, it still answers.
    await sleep(Math.max(0, 3500 - (Date.now() - opened)));
    assert.equal(ws.readyState, WebSocket.OPEN, 'the WebSocket was closed by the request timeout');
    const reply = new Promise<string>((resolve) => ws.once('message', (d) => resolve((JSON.parse(d.toString()) as { subject: string }).subject)));
    ws.send(JSON.stringify({ subject: 'controller.system_info' }));
    assert.ok(await within(reply, 5000), 'the WebSocket no longer answers');
  } finally {
    ws.terminate();
    for (const raw of raws) raw.socket.destroy();
    s.child.kill('SIGTERM');
    await within(s.exited, 10_000);
    await kill(s);
    cleanup(cwd);
  }
});

test('by default a request must arrive whole within 30 s (head and body)', async () => {
  assert.equal(DEFAULT_REQUEST_TIMEOUT_MS, 30_000);
  const w = await apiWorld();
  try {
    await w.app.ready();
    assert.equal(w.app.server.requestTimeout, 30_000);
    assert.equal(w.app.server.headersTimeout, 30_000);
  } finally {
    await w.close();
  }
});
