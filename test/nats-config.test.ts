/** NATS: the configuration (one way to authenticate, paths made absolute, secrets never echoed). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadConfig, ConfigError } from '../src/config/index.js';

const PASSWORD = 'pa55-W0rd-' + 'Q'.repeat(20);
const TOKEN = 'tok-' + 'Z'.repeat(30);
const load = (nats: unknown, cwd = process.cwd()) => loadConfig({ env: { UPDATER_NATS: JSON.stringify(nats) }, cwd });
const issues = (nats: unknown): string => {
  try {
    load(nats);
  } catch (e) {
    if (e instanceof ConfigError) return e.message;
    throw e;
  }
  return '';
};

test('nats: absent is off; servers and device load; credentials and TLS paths become absolute; env keys one by one', () => {
  assert.equal(loadConfig({ env: {} }).config.nats, undefined);
  assert.deepEqual(load({ servers: ['nats://127.0.0.1:4222'], device: 'dev-03' }).config.nats, { servers: ['nats://127.0.0.1:4222'], device: 'dev-03' });
  const cwd = '/srv/updater';
  const c = load({ servers: ['tls://bus.example:4222', 'nats://10.0.0.2:4222'], device: 'dev_7', credentials: 'keys/dev.creds', tls: { ca: 'ca.pem', cert: '/etc/dev.pem', key: 'dev.key' } }, cwd).config.nats;
  assert.deepEqual(c, {
    servers: ['tls://bus.example:4222', 'nats://10.0.0.2:4222'],
    device: 'dev_7',
    credentials: join(cwd, 'keys/dev.creds'),
    tls: { ca: join(cwd, 'ca.pem'), cert: '/etc/dev.pem', key: join(cwd, 'dev.key') },
  });
  const env = loadConfig({ env: { UPDATER_NATS__SERVERS: '[nats://127.0.0.1:4333]', UPDATER_NATS__DEVICE: 'dev-9', UPDATER_NATS__USER: 'dev-9', UPDATER_NATS__PASSWORD: '12345' } }).config.nats;
  // A password of digits stays the string it was written as.
  assert.deepEqual(env, { servers: ['nats://127.0.0.1:4333'], device: 'dev-9', user: 'dev-9', password: '12345' });
  assert.equal(load({ servers: ['nats://h:4222'], device: 'd', token: TOKEN }).config.nats?.token, TOKEN);
  assert.equal(load({ servers: ['nats://h:4222'], device: 'd', credentials: null }).config.nats?.credentials, null);
});

test('nats: every mistake is named, and no message repeats a password, token or a URL\'s user:password', () => {
  const s = { servers: ['nats://127.0.0.1:4222'], device: 'dev-1' };
  const cases: Array<[unknown, RegExp]> = [
    [{ device: 'dev-1' }, /nats\.servers(?: \(from UPDATER_NATS\))?: required/],
    [{ ...s, servers: [] }, /nats\.servers(?: \(from UPDATER_NATS\))?: must list at least one server/],
    [{ ...s, servers: 'nats://127.0.0.1:4222' }, /nats\.servers(?: \(from UPDATER_NATS\))?: expected a list of nats:\/\/ or tls:\/\/ URLs/],
    [{ ...s, servers: ['http://127.0.0.1:4222'] }, /nats\.servers\[0\](?: \(from UPDATER_NATS\))?: expected a nats:\/\/ or tls:\/\/ URL .*got "http:\/\/127\.0\.0\.1:4222"/],
    [{ ...s, servers: [`nats://me:${PASSWORD}@h:4222/x`] }, /nats\.servers\[0\](?: \(from UPDATER_NATS\))?: expected a nats:\/\/ or tls:\/\/ URL .*\[redacted\]@/],
    [{ servers: s.servers }, /nats\.device(?: \(from UPDATER_NATS\))?: required/],
    [{ ...s, device: 'dev.03' }, /nats\.device(?: \(from UPDATER_NATS\))?: must be a device name/],
    [{ ...s, device: 'a b' }, /nats\.device(?: \(from UPDATER_NATS\))?: must be a device name/],
    [{ ...s, user: 'u' }, /nats\.password(?: \(from UPDATER_NATS\))?: is required with user/],
    [{ ...s, password: PASSWORD }, /nats\.user(?: \(from UPDATER_NATS\))?: is required with password/],
    [{ ...s, user: 'u', password: PASSWORD, token: TOKEN }, /set one way to authenticate, not user\/password and token/],
    [{ ...s, credentials: 'a.creds', token: TOKEN }, /set one way to authenticate, not credentials and token/],
    [{ ...s, password: 42, user: 'u' }, /nats\.password(?: \(from UPDATER_NATS\))?: expected a string \(a password\)/],
    [{ ...s, token: '' }, /nats\.token(?: \(from UPDATER_NATS\))?: must not be empty \(expected a token\)/],
    [{ ...s, tls: { cert: 'c.pem' } }, /nats\.tls(?: \(from UPDATER_NATS\))?: set cert and key together/],
    [{ ...s, tls: { ca: 'ca.pem', verify: false } }, /nats\.tls\.verify(?: \(from UPDATER_NATS\))?: unknown key "verify"/],
    [{ ...s, pasword: PASSWORD }, /unknown key "pasword" \(did you mean "password"\?\)/],
  ];
  for (const [input, pattern] of cases) {
    const message = issues(input);
    assert.match(message, pattern, JSON.stringify(input));
    for (const secret of [PASSWORD, TOKEN]) assert.ok(!message.includes(secret), `a secret is in: ${message}`);
  }
});
