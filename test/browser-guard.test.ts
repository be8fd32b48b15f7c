/**
 * The open (no-token) API against browsers, on the real service (`updater serve`, the demo):
 * DNS rebinding (a foreign Host → 421), cross-site requests and cross-site WebSocket hijacking
 * (a foreign Origin → 403, the upgrade refused at the HTTP level), bodies that are not a JSON
 * object (415, 400 `bad_body`), strings over the REST limits on /ws, and the error shape of what
 * Node's HTTP parser refuses itself (431). Then the same attacks from a page in a real Chromium.
 * CONTRACT.md "Browsers, full disks and stops"; docs/security.md.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import WebSocket from 'ws';
import type { Browser } from 'playwright-core';
import { chromiumSkip, launchChromium } from './support/chromium.js';
import { cleanup, tempDir } from './support/harness.js';
import { prepareDemoDir, startService, type ServiceProcess } from './support/service-process.js';
import { errorCode, openRaw, parseResponse, send, within } from './support/raw-http.js';

const portOf = (s: ServiceProcess) => Number(new URL(s.url).port);

async function stop(s: ServiceProcess | undefined) {
  if (s && s.child.exitCode === null && s.child.signalCode === null) {
    s.child.kill('SIGTERM');
    await s.exited;
  }
}

const runs = async (s: ServiceProcess) => (await send(`${s.url}/api/runs`)).body;

// ------------------------------------------------------------------------ on the real service

describe('the open API refuses browsers that are not its own (real service, demo)', { timeout: 120_000 }, () => {
  let cwd = '';
  let s: ServiceProcess | undefined;
  let port = 0;
  const app = () => s!;

  before(async () => {
    cwd = tempDir('updater-guard-');
    await prepareDemoDir(cwd);
    s = await startService(cwd);
    port = portOf(s);
  });
  after(async () => {
    await stop(s);
    if (cwd) cleanup(cwd);
  });

  it('a foreign Host (DNS rebinding) gets 421 misdirected_host on reads and mutations; the loopback names pass', async () => {
    for (const [method, path] of [['GET', '/api/components'], ['GET', '/api/runs'], ['GET', '/'], ['GET', '/healthz'], ['POST', '/api/checks'], ['POST', '/api/components/sample-app/updates']] as const) {
      for (const host of ['evil.example', `evil.example:${port}`, `192.168.1.20:${port}`]) {
        const r = await send(`${app().url}${path}`, { method, headers: { host } });
        assert.equal(r.status, 421, `${method} ${path} Host ${host}: ${r.body}`);
        assert.equal(errorCode(r.body), 'misdirected_host');
        assert.match(r.headers['content-type'] as string, /^application\/json/);
      }
    }
    // Also where the router refuses the URL itself (a path parameter over 100 characters, a bad %-escape).
    for (const path of [`/api/runs/${'1'.repeat(150)}`, '/api/components/%zz/updates']) {
      const r = await send(`${app().url}${path}`, { headers: { host: 'evil.example' } });
      assert.equal(r.status, 421, `${path}: ${r.body}`);
    }
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'LOCALHOST', `[::1]:${port}`]) {
      assert.equal((await send(`${app().url}/api/components`, { headers: { host } })).status, 200, host);
    }
    assert.equal(await runs(app()), '[]', 'the refused POSTs started nothing');
  });

  it('a foreign Origin (and "null") gets 403 forbidden_origin on update, rollback and checks, and starts nothing', async () => {
    const mutations = ['/api/components/sample-app/updates', '/api/components/sample-app/rollback', '/api/checks', '/api/updates'];
    for (const origin of ['http://evil.example', 'null', `http://127.0.0.1:${port + 1}`, `https://127.0.0.1:${port}`, `http://localhost:${port}`]) {
      for (const path of mutations) {
        for (const body of [undefined, '{"dry_run":true}']) {
          const headers: Record<string, string> = { origin, ...(body ? { 'content-type': 'application/json' } : {}) };
          const r = await send(`${app().url}${path}`, { method: 'POST', headers, body });
          assert.equal(r.status, 403, `POST ${path} Origin ${origin}: ${r.body}`);
          assert.equal(errorCode(r.body), 'forbidden_origin');
        }
      }
    }
    assert.equal(await runs(app()), '[]', 'no run was created');
  });

  it('its own origin is accepted (default port normalised), and requests without Origin are unaffected', async () => {
    const own = await send(`${app().url}/api/checks`, { method: 'POST', headers: { origin: `http://127.0.0.1:${port}` } });
    assert.equal(own.status, 200, own.body);
    const byName = await send(`${app().url}/api/checks`, { method: 'POST', headers: { host: `LocalHost:${port}`, origin: `http://localhost:${port}` } });
    assert.equal(byName.status, 200, byName.body);
    const defaultPort = await send(`${app().url}/api/checks`, { method: 'POST', headers: { host: 'localhost:80', origin: 'http://localhost' } });
    assert.equal(defaultPort.status, 200, defaultPort.body);
    const dry = await send(`${app().url}/api/components/sample-app/updates`, { method: 'POST', headers: { origin: `http://127.0.0.1:${port}`, 'content-type': 'application/json' }, body: '{"dry_run":true}' });
    assert.equal(dry.status, 202, dry.body);
    const runId = (JSON.parse(dry.body) as { run_id: number }).run_id;
    for (let i = 0; i < 100 && !(JSON.parse((await send(`${app().url}/api/runs/${runId}`)).body) as { result: string | null }).result; i++) await new Promise((r) => setTimeout(r, 100));
    const noOrigin = await send(`${app().url}/api/checks`, { method: 'POST' });
    assert.equal(noOrigin.status, 200, 'curl, the CLI and scripts send no Origin');
  });

  it('a mutation body must be a JSON object: text/plain → 415, null, arrays and scalars → 400 bad_body, nothing started', async () => {
    const post = (path: string, contentType: string | undefined, body: string | undefined) =>
      send(`${app().url}${path}`, { method: 'POST', headers: contentType ? { 'content-type': contentType } : {}, body });
    const before = await runs(app());
    for (const path of ['/api/components/sample-app/updates', '/api/components/sample-app/rollback', '/api/checks', '/api/updates']) {
      for (const [type, body] of [['text/plain', '{"dry_run":true}'], ['text/plain;charset=UTF-8', ''], ['application/x-www-form-urlencoded', 'dry_run=true'], ['multipart/form-data; boundary=x', '--x--']] as const) {
        const r = await post(path, type, body);
        assert.equal(r.status, 415, `${path} ${type}: ${r.body}`);
        assert.equal(errorCode(r.body), 'unsupported_media_type');
      }
      for (const body of ['null', '[]', '[{"dry_run":true}]', '5', '"sample-app"', 'true']) {
        const r = await post(path, 'application/json', body);
        assert.equal(r.status, 400, `${path} ${body}: ${r.body}`);
        assert.equal(errorCode(r.body), 'bad_body');
      }
    }
    assert.equal(await runs(app()), before, 'no run was created');
  });

  it('a WebSocket with a foreign Origin is refused at the upgrade: HTTP 403 forbidden_origin, and the server closes the connection', async () => {
    const wsUrl = `${app().url.replace('http', 'ws')}/ws`;
    for (const origin of ['http://evil.example', 'null', `http://127.0.0.1:${port + 1}`]) {
      const outcome = await new Promise<{ status?: number; body?: string; opened: boolean }>((resolve) => {
        const ws = new WebSocket(wsUrl, { origin });
        ws.on('open', () => {
          ws.terminate();
          resolve({ opened: true });
        });
        ws.on('unexpected-response', (req, res) => {
          let body = '';
          res.on('data', (b: Buffer) => (body += b));
          res.on('end', () => {
            req.destroy();
            resolve({ status: res.statusCode, body, opened: false });
          });
        });
        ws.on('error', () => resolve({ opened: false }));
      });
      assert.equal(outcome.opened, false, `Origin ${origin}: the socket opened`);
      assert.equal(outcome.status, 403, `Origin ${origin}`);
      assert.equal(errorCode(outcome.body!), 'forbidden_origin');
    }
    // The same on a raw socket that does not hang up itself: the server must close it.
    const upgrade = (origin: string) =>
      `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: ${origin}\r\n\r\n`;
    const raw = await openRaw(port, upgrade('http://evil.example'));
    try {
      assert.ok(await within(raw.closed, 3000), `the server did not close the refused connection; it sent ${JSON.stringify(raw.received().slice(0, 200))}`);
      const r = parseResponse(raw.received());
      assert.equal(r.status, 403);
      assert.equal(errorCode(r.body), 'forbidden_origin');
    } finally {
      raw.socket.destroy();
    }
    const foreignHost = await openRaw(port, upgrade(`http://127.0.0.1:${port}`).replace(`Host: 127.0.0.1:${port}`, 'Host: evil.example'));
    try {
      assert.ok(await within(foreignHost.closed, 3000), 'the server did not close the misdirected upgrade');
      assert.equal(parseResponse(foreignHost.received()).status, 421);
    } finally {
      foreignHost.socket.destroy();
    }
  });

  it('a WebSocket from its own origin is accepted and answers', async () => {
    const ws = new WebSocket(`${app().url.replace('http', 'ws')}/ws`, { origin: `http://127.0.0.1:${port}` });
    try {
      await new Promise<void>((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      const reply = new Promise<{ subject: string }>((resolve) => ws.once('message', (d) => resolve(JSON.parse(d.toString()) as { subject: string })));
      ws.send(JSON.stringify({ subject: 'controller.system_info' }));
      assert.equal((await reply).subject, 'system_info');
    } finally {
      ws.terminate();
    }
  });

  it('/ws strings obey the REST limits: a 65-character or control-character version, a path-like name → error bad_body, socket open, nothing stored', async () => {
    const before = await runs(app());
    const ws = new WebSocket(`${app().url.replace('http', 'ws')}/ws`);
    const messages: Array<{ subject: string; body: { code?: string; message?: string } }> = [];
    let wake: () => void = () => undefined;
    ws.on('message', (d) => {
      messages.push(JSON.parse(d.toString()) as (typeof messages)[number]);
      wake();
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const next = async (frame: unknown) => {
      const n = messages.length;
      const arrived = new Promise<void>((resolve) => (wake = () => messages.length > n && resolve()));
      ws.send(JSON.stringify(frame));
      assert.ok(await within(arrived, 5000), `no answer to ${JSON.stringify(frame).slice(0, 100)}`);
      return messages[n]!;
    };
    try {
      const hostile: unknown[] = [
        { subject: 'updater.perform_update', body: { component: 'sample-app', version: '1'.repeat(65) } },
        { subject: 'updater.perform_update', body: { component: 'sample-app', version: `v${'1'.repeat(64)}` } },
        { subject: 'updater.perform_update', body: { component: 'sample-app', version: '1.2.0\u0000' } },
        { subject: 'updater.perform_update', body: { component: 'sample-app', version: '1.2.0\n\u001b[31mred' } },
        { subject: 'updater.perform_update', body: { component: 'sample-app', version: '1.2.0 ; rm -rf /' } },
        { subject: 'updater.perform_update', body: { component: 'sample-app', version: 'x'.repeat(60 * 1024) } },
        { subject: 'updater.perform_update', body: { component: '../sample-app', version: '1.2.0' } },
        { subject: 'updater.perform_update', body: { component: 'a'.repeat(64) } },
        { subject: 'updater.perform_update', body: { component: 'Sample-App' } },
        { subject: 'updater.update', body: 'sample-app\u0000' },
        { subject: 'updater.update', body: 'x'.repeat(1000) },
      ];
      for (const frame of hostile) {
        const reply = await next(frame);
        assert.equal(reply.subject, 'error', JSON.stringify(reply).slice(0, 200));
        assert.equal(reply.body.code, 'bad_body', `${JSON.stringify(frame).slice(0, 100)} → ${JSON.stringify(reply).slice(0, 200)}`);
      }
      assert.equal(ws.readyState, WebSocket.OPEN, 'the socket stays open');
      assert.equal((await next({ subject: 'controller.system_info' })).subject, 'system_info', 'and still answers');
      assert.equal(await runs(app()), before, 'nothing reached the journal');
    } finally {
      ws.terminate();
    }
  });

  it("errors of Node's own HTTP parser and of the router have the contract's shape: 431, 414, 413", async () => {
    const big = await openRaw(port, `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`);
    try {
      assert.ok(await within(big.closed, 5000), 'the server closes the connection after a 431');
      const r = parseResponse(big.received());
      assert.equal(r.status, 431, big.received().slice(0, 200));
      assert.match(r.headers['content-type'] as string, /^application\/json/);
      assert.equal(errorCode(r.body), 'headers_too_large');
    } finally {
      big.socket.destroy();
    }
    const long = await send(`${app().url}/api/runs/${'1'.repeat(150)}`);
    assert.equal(long.status, 414, long.body);
    assert.equal(errorCode(long.body), 'uri_too_long');
    const huge = await send(`${app().url}/api/components/sample-app/updates`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ version: 'x'.repeat(70 * 1024) }) });
    assert.equal(huge.status, 413, huge.body);
    assert.equal(errorCode(huge.body), 'too_large');
  });
});

describe('server.allowedHosts, server.allowedOrigins, and a token (real service, demo)', { timeout: 120_000 }, () => {
  let cwd = '';
  let s: ServiceProcess | undefined;

  before(async () => {
    cwd = tempDir('updater-guard-allowed-');
    await prepareDemoDir(cwd);
    s = await startService(cwd, { UPDATER_SERVER__ALLOWED_HOSTS: '[dunebugger.local]', UPDATER_SERVER__ALLOWED_ORIGINS: '[https://console.example]' });
  });
  after(async () => {
    await stop(s);
    if (cwd) cleanup(cwd);
  });

  it('an allowed host is served (a device hostname), others still get 421', async () => {
    const port = portOf(s!);
    assert.equal((await send(`${s!.url}/api/components`, { headers: { host: `dunebugger.local:${port}` } })).status, 200);
    assert.equal((await send(`${s!.url}/api/checks`, { method: 'POST', headers: { host: `DUNEBUGGER.local:${port}`, origin: `http://dunebugger.local:${port}` } })).status, 200, 'its own origin under that name');
    const other = await send(`${s!.url}/api/components`, { headers: { host: `other.local:${port}` } });
    assert.equal(other.status, 421);
    assert.equal(errorCode(other.body), 'misdirected_host');
  });

  it('an allowed origin may mutate and open /ws, others still get 403', async () => {
    assert.equal((await send(`${s!.url}/api/checks`, { method: 'POST', headers: { origin: 'https://console.example' } })).status, 200);
    const evil = await send(`${s!.url}/api/checks`, { method: 'POST', headers: { origin: 'http://console.example' } });
    assert.equal(evil.status, 403);
    const ws = new WebSocket(`${s!.url.replace('http', 'ws')}/ws`, { origin: 'https://console.example' });
    try {
      await new Promise<void>((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
    } finally {
      ws.terminate();
    }
  });
});

describe('with server.token set (real service, demo)', { timeout: 120_000 }, () => {
  let cwd = '';
  let s: ServiceProcess | undefined;

  before(async () => {
    cwd = tempDir('updater-guard-token-');
    await prepareDemoDir(cwd);
    s = await startService(cwd, { UPDATER_SERVER__TOKEN: 's3cret' });
  });
  after(async () => {
    await stop(s);
    if (cwd) cleanup(cwd);
  });

  it('Host is not checked, Origin still is, before the token (403 before 401), and the body after it (401 before 415)', async () => {
    assert.equal((await send(`${s!.url}/api/components`, { headers: { host: 'updater.example' } })).status, 200);
    const foreign = await send(`${s!.url}/api/checks`, { method: 'POST', headers: { origin: 'http://evil.example', authorization: 'Bearer s3cret' } });
    assert.equal(foreign.status, 403, 'even with the right token');
    const noToken = await send(`${s!.url}/api/checks`, { method: 'POST', headers: { origin: 'http://evil.example' } });
    assert.equal(noToken.status, 403, 'Origin is checked before the token');
    const plain = await send(`${s!.url}/api/checks`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' });
    assert.equal(plain.status, 401, 'the token is checked before the body');
    const plainWithToken = await send(`${s!.url}/api/checks`, { method: 'POST', headers: { 'content-type': 'text/plain', authorization: 'Bearer s3cret' }, body: 'x' });
    assert.equal(plainWithToken.status, 415);
    const ok = await send(`${s!.url}/api/checks`, { method: 'POST', headers: { host: 'updater.example', authorization: 'Bearer s3cret' } });
    assert.equal(ok.status, 200);
  });
});

// -------------------------------------------------------------------------- in a real browser

describe('a page from another origin, in Chromium, cannot drive the open API', { skip: chromiumSkip, timeout: 180_000 }, () => {
  let cwd = '';
  let s: ServiceProcess | undefined;
  let evil: Server | undefined;
  let evilUrl = '';
  let browser: Browser | undefined;

  before(async () => {
    cwd = tempDir('updater-guard-browser-');
    await prepareDemoDir(cwd);
    s = await startService(cwd);
    const target = s.url;
    // The attacker's site: another port of the loopback, so another origin.
    evil = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<!doctype html><title>cute cats</title><form id=f method=POST action="${target}/api/components/sample-app/rollback" enctype=text/plain target=sink><input name=x value=y></form><iframe name=sink></iframe>`);
    });
    await new Promise<void>((resolve) => evil!.listen(0, '127.0.0.1', resolve));
    evilUrl = `http://localhost:${(evil.address() as { port: number }).port}/`;
    // rebind.example plays a name whose DNS answer was rebound to the device's loopback.
    browser = await launchChromium(['MAP rebind.example 127.0.0.1']);
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await new Promise((resolve) => (evil ? evil.close(resolve) : resolve(undefined)));
    await stop(s);
    if (cwd) cleanup(cwd);
  });

  it("no-cors POSTs, a text/plain form and a WebSocket from the attacker's page start nothing, and the socket never opens", async () => {
    const page = await browser!.newPage();
    try {
      await page.goto(evilUrl);
      const api = s!.url;
      const attack = `(async () => {
        const out = {};
        const post = async (path, init) => {
          try { await fetch(${JSON.stringify(api)} + path, { method: 'POST', mode: 'no-cors', ...init }); return 'sent'; } catch (e) { return 'failed: ' + e.message; }
        };
        out.update = await post('/api/components/sample-app/updates', {});
        out.updateText = await post('/api/components/sample-app/updates', { body: '{"dry_run":true}' });
        out.rollback = await post('/api/components/sample-app/rollback', { body: 'x' });
        out.checks = await post('/api/checks', {});
        out.ws = await new Promise((resolve) => {
          const ws = new WebSocket(${JSON.stringify(api.replace('http', 'ws') + '/ws')});
          ws.onopen = () => {
            ws.send(JSON.stringify({ subject: 'updater.perform_update', body: { component: 'sample-app' } }));
            resolve('open');
          };
          ws.onerror = () => resolve('error');
          ws.onclose = (e) => resolve('closed ' + e.code);
          setTimeout(() => resolve('pending ' + ws.readyState), 5000);
        });
        document.getElementById('f').submit();
        return out;
      })()`;
      const out = await page.evaluate<Record<string, string>>(attack);
      assert.equal(out.ws, 'error', `the cross-site WebSocket must not open: ${JSON.stringify(out)}`);
      await new Promise((r) => setTimeout(r, 1500)); // the form post, and any run, would be under way by now
      assert.equal(await runs(s!), '[]', `no run may start: ${JSON.stringify(out)}`);
    } finally {
      await page.close();
    }
  });

  it('a page under a rebound name (DNS rebinding) gets 421 from the service and reads nothing', async () => {
    const page = await browser!.newPage();
    try {
      const port = portOf(s!);
      for (const path of ['/', '/api/components']) {
        const res = await page.goto(`http://rebind.example:${port}${path}`);
        assert.equal(res?.status(), 421, path);
        assert.equal(errorCode(await res.text()), 'misdirected_host');
      }
    } finally {
      await page.close();
    }
  });
});
