/** Web PubSub: the configuration (secrets never echoed), the signed client URL, the redaction of log text. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { loadConfig, ConfigError } from '../src/config/index.js';
import { redact, signClientUrl, TOKEN_LIFETIME_SECONDS } from '../src/webpubsub/token.js';
import { parseConnectionString } from '../src/util/connection-string.js';

const KEY = 'S3cretAccessKey+/=0123456789abcdef';
const load = (webpubsub: unknown) => loadConfig({ env: { UPDATER_WEBPUBSUB: JSON.stringify(webpubsub) } });
const issues = (webpubsub: unknown): string => {
  try {
    load(webpubsub);
  } catch (e) {
    if (e instanceof ConfigError) return e.message;
    throw e;
  }
  return '';
};

test('webpubsub: a connection string with its hub and group loads; controller defaults to true; env keys one by one', () => {
  const c = load({ connectionString: `Endpoint=https://x.webpubsub.azure.com;AccessKey=${KEY};Version=1.0;`, hub: 'dunebugger', group: 'my-device' }).config.webpubsub;
  assert.deepEqual(c, { connectionString: `Endpoint=https://x.webpubsub.azure.com;AccessKey=${KEY};Version=1.0;`, hub: 'dunebugger', group: 'my-device', controller: true });
  const one = loadConfig({ env: { UPDATER_WEBPUBSUB__CONNECTIONSTRING: `Endpoint=https://x.webpubsub.azure.com;AccessKey=${KEY};`, UPDATER_WEBPUBSUB__HUB: 'dunebugger', UPDATER_WEBPUBSUB__GROUP: 'dev-7', UPDATER_WEBPUBSUB__CONTROLLER: 'false' } }).config.webpubsub;
  assert.equal(one?.group, 'dev-7');
  assert.equal(one?.controller, false);
  assert.equal(loadConfig({ env: {} }).config.webpubsub, undefined);
});

test('webpubsub: every mistake is named, and no message repeats the key or the token', () => {
  const cases: Array<[unknown, RegExp]> = [
    [{ connectionString: `Endpoint=https://x;AccessKey=${KEY};oops`, hub: "h", group: "g" }, /webpubsub\.connectionString.*Key=value/],
    [{ connectionString: `Endpoint=https://x;Version=1.0;`, hub: 'h', group: 'g' }, /has no AccessKey=/],
    [{ connectionString: `AccessKey=${KEY}`, hub: 'h', group: 'g' }, /has no Endpoint=/],
    [{ connectionString: `Endpoint=ftp://x;AccessKey=${KEY}`, hub: 'h', group: 'g' }, /not http\(s\)/],
    [{ connectionString: `Endpoint=https://x;AccessKey=${KEY}`, group: 'g' }, /webpubsub\.hub: is required with connectionString/],
    [{ url: `https://x/client/hubs/h?access_token=${KEY}`, group: 'g' }, /webpubsub\.url.*: must be a client access URL/],
    [{ url: `wss://x/client/hubs/h?access_token=${KEY}`, hub: 'h', group: 'g' }, /webpubsub\.hub.*: goes with connectionString/],
    [{ group: 'g' }, /set exactly one of url and connectionString/],
    [{ connectionString: `Endpoint=https://x;AccessKey=${KEY}`, hub: 'h' }, /webpubsub\.group/],
    [{ connectionString: `Endpoint=https://x;AccessKey=${KEY}`, hub: 'h', group: 'g', token: KEY }, /unknown key "token"/],
    [{ connectionString: 42, hub: 'h', group: 'g' }, /expected a string \(a connection string\)/],
  ];
  for (const [input, pattern] of cases) {
    const message = issues(input);
    assert.match(message, pattern, JSON.stringify(input));
    assert.ok(!message.includes(KEY), `the key is in: ${message}`);
  }
});

test('the signed client URL: HS256 with the AccessKey, the audience Azure checks, the group\'s two roles only, at most an hour', async () => {
  const connection = parseConnectionString(`Endpoint=https://name.webpubsub.azure.com;AccessKey=${KEY};Version=1.0;`);
  assert.ok(!('problem' in connection));
  const url = new URL(await signClientUrl({ connection, hub: 'dunebugger', group: 'dev-1', userId: 'dev-1' }));
  assert.equal(`${url.protocol}//${url.host}${url.pathname}`, 'wss://name.webpubsub.azure.com/client/hubs/dunebugger');
  const token = url.searchParams.get('access_token')!;
  assert.equal(decodeProtectedHeader(token).alg, 'HS256');
  const { payload } = await jwtVerify(token, new TextEncoder().encode(KEY), { audience: 'https://name.webpubsub.azure.com/client/hubs/dunebugger' });
  assert.equal(payload.sub, 'dev-1');
  assert.deepEqual(payload.role, ['webpubsub.joinLeaveGroup.dev-1', 'webpubsub.sendToGroup.dev-1']);
  assert.ok(payload.exp! - payload.iat! <= 3600 && TOKEN_LIFETIME_SECONDS <= 3600);
  await assert.rejects(jwtVerify(token, new TextEncoder().encode('another key')));
  // An http endpoint (a local hub) becomes ws://; a Port= in the string is kept.
  const local = parseConnectionString(`Endpoint=http://127.0.0.1;Port=8099;AccessKey=${KEY};Version=1.0;`);
  assert.ok(!('problem' in local));
  const localUrl = await signClientUrl({ connection: local, hub: 'h', group: 'g', userId: 'u' });
  assert.match(localUrl, /^ws:\/\/127\.0\.0\.1:8099\/client\/hubs\/h\?access_token=/);
  assert.equal(decodeJwt(new URL(localUrl).searchParams.get('access_token')!).aud, 'http://127.0.0.1:8099/client/hubs/h');
});

test('redact takes tokens, keys and JWTs out of any text', async () => {
  const connection = parseConnectionString(`Endpoint=https://n.webpubsub.azure.com;AccessKey=${KEY}`);
  assert.ok(!('problem' in connection));
  const url = await signClientUrl({ connection, hub: 'h', group: 'g', userId: 'u' });
  const jwt = new URL(url).searchParams.get('access_token')!;
  const text = redact(`connect ${url}&awps_connection_id=c&awps_reconnection_token=RT123; Endpoint=x;AccessKey=${KEY}; bare ${jwt}`);
  for (const secret of [KEY, jwt, 'RT123']) assert.ok(!text.includes(secret), text);
  assert.match(text, /access_token=\[redacted\]/);
});
