/** The Host and Origin rules of the open API (CONTRACT.md "Browsers"), as a pure function. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { refusal, type GuardPolicy } from '../src/server/guard.js';

describe('the Host and Origin rules (src/server/guard.ts)', () => {
  const open: GuardPolicy = { token: null, allowedHosts: [], allowedOrigins: [] };
  const check = (policy: GuardPolicy, method: string, headers: { host?: string; origin?: string; upgrade?: string }, protocol: 'http' | 'https' = 'http') =>
    refusal(policy, { method, headers, protocol })?.code ?? 'ok';

  test('with no token, Host must name the loopback (any port, any case) or an allowed host', () => {
    for (const host of ['127.0.0.1', '127.0.0.1:8080', 'localhost', 'LocalHost:80', '[::1]', '[::1]:8080']) assert.equal(check(open, 'GET', { host }), 'ok', host);
    for (const host of ['evil.example', 'evil.example:8080', '127.0.0.2', '127.0.0.1.evil.example', 'localhost.', 'localhost.evil', '::1', '[::2]:8080', '127.0.0.1@evil.example', 'a b', '', '10.0.0.1:8080']) {
      assert.equal(check(open, 'GET', { host }), 'misdirected_host', JSON.stringify(host));
    }
    assert.equal(check(open, 'GET', {}), 'misdirected_host', 'no Host at all');
    const allowed: GuardPolicy = { ...open, allowedHosts: ['dunebugger.local', '192.168.1.20:8080', '[fe80::1]'] };
    for (const host of ['dunebugger.local', 'DuneBugger.Local:8080', '192.168.1.20:8080', '[fe80::1]:1234']) assert.equal(check(allowed, 'POST', { host }), 'ok', host);
    for (const host of ['192.168.1.20', '192.168.1.20:8081', 'other.local', 'dunebugger.local.evil']) assert.equal(check(allowed, 'GET', { host }), 'misdirected_host', host);
    assert.equal(check({ ...open, token: 't' }, 'GET', { host: 'evil.example' }), 'ok', 'with a token, Host is not checked');
  });

  test('an Origin other than the own one or an allowed one refuses mutations and upgrades, never reads', () => {
    const host = '127.0.0.1:8080';
    for (const origin of ['http://evil.example', 'null', 'http://127.0.0.1:8081', 'https://127.0.0.1:8080', 'http://localhost:8080', 'http://127.0.0.1', 'file://', '', 'garbage']) {
      assert.equal(check(open, 'POST', { host, origin }), 'forbidden_origin', JSON.stringify(origin));
      assert.equal(check(open, 'GET', { host, origin, upgrade: 'websocket' }), 'forbidden_origin', `upgrade ${origin}`);
      assert.equal(check(open, 'GET', { host, origin }), 'ok', `a plain GET from ${origin}`);
      assert.equal(check({ ...open, token: 't' }, 'POST', { host, origin }), 'forbidden_origin', `with a token too: ${origin}`);
    }
    for (const [h, origin] of [
      [host, 'http://127.0.0.1:8080'],
      ['LOCALHOST:8080', 'http://localhost:8080'],
      ['localhost:80', 'http://localhost'],
      ['localhost', 'http://localhost:80'],
      ['[::1]:8080', 'http://[::1]:8080'],
    ] as const) {
      assert.equal(check(open, 'POST', { host: h, origin }), 'ok', `${origin} on Host ${h}`);
    }
    assert.equal(check(open, 'POST', { host: 'localhost:443', origin: 'https://localhost' }, 'https'), 'ok', 'https default port');
    assert.equal(check(open, 'POST', { host }), 'ok', 'no Origin (curl, the CLI)');
    const allowed: GuardPolicy = { ...open, allowedOrigins: ['https://console.example', 'http://192.168.1.20:3000'] };
    for (const origin of ['https://console.example', 'HTTPS://Console.Example:443', 'http://192.168.1.20:3000']) assert.equal(check(allowed, 'POST', { host, origin }), 'ok', origin);
    assert.equal(check(allowed, 'POST', { host, origin: 'http://console.example' }), 'forbidden_origin');
  });
});
