/**
 * The device on a NATS that requires TLS with client certificates (`nats.tls`), against a real
 * nats-server (`--tlsverify`) and certificates made here with openssl: with its CA, certificate and
 * key the device connects and answers.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { Writable } from 'node:stream';
import { join } from 'node:path';
import { pino } from 'pino';
import { connect } from 'nats';
import { cleanup, openComponents, tempDir } from './support/harness.js';
import { natsServerMissing, startNatsServer, type NatsServer } from './support/nats-server.js';
import { startNats } from '../src/nats/adapter.js';
import { requestSubject } from '../src/contract/index.js';
import type { NatsConfig } from '../src/config/index.js';

const missing = natsServerMissing();
const skip = missing && process.env.CI !== 'true' ? missing : false;
const dir = tempDir('updater-nats-tls-');
const pem = (name: string) => join(dir, name);
let server: NatsServer;

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

/** A CA, and a certificate with its key signed by it for `cn` (with 127.0.0.1 as its address). */
function certificate(name: string, cn: string, extension: string): void {
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}-key.pem`, '-subj', `/CN=${cn}`, '-out', `${name}.csr`);
  const ext = pem(`${name}.ext`);
  execFileSync('sh', ['-c', `printf '%s\\n' '${extension}' > '${ext}'`]);
  openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-days', '2', '-out', `${name}.pem`, '-extfile', ext);
}

before(async () => {
  if (skip) return;
  if (missing) assert.fail(missing);
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=dune test CA');
  certificate('server', '127.0.0.1', 'subjectAltName=IP:127.0.0.1,DNS:localhost');
  certificate('device', 'dev-tls', 'extendedKeyUsage=clientAuth');
  server = await startNatsServer({ args: ['--tls', '--tlscert', pem('server.pem'), '--tlskey', pem('server-key.pem'), '--tlscacert', pem('ca.pem'), '--tlsverify'] });
});
after(async () => {
  await server?.close();
  cleanup(dir);
});

async function device(config: NatsConfig) {
  const root = tempDir('updater-nats-tls-device-');
  const h = openComponents(root, [{ name: 'core' }]);
  let log = '';
  const logger = pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _e, done) => ((log += String(chunk)), done()) }));
  const nats = startNats(h.core.app, config, logger, { link: { reconnectWaitMs: 200, retryDelayMs: 100, maxRetryDelayMs: 500 }, timeoutMs: 2000 });
  return {
    nats,
    log: () => log,
    async close() {
      await h.core.close([nats.close()]);
      cleanup(root);
    },
  };
}

const waitUntil = async (what: string, ok: () => boolean, ms = 15_000) => {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

test('with its CA, certificate and key the device connects over TLS and answers', { skip }, async () => {
  const url = `tls://127.0.0.1:${server.port}`;
  const d = await device({ servers: [url], device: 'dev-tls', tls: { ca: pem('ca.pem'), cert: pem('device.pem'), key: pem('device-key.pem') } });
  let nc: Awaited<ReturnType<typeof connect>> | null = null;
  try {
    nc = await connect({ servers: url, tls: { caFile: pem('ca.pem'), certFile: pem('device.pem'), keyFile: pem('device-key.pem') } });
    await waitUntil('the device connected', () => d.nats.link.status === 'connected');
    const reply = (await nc.request(requestSubject('dev-tls', 'controller.system_info'), new Uint8Array(), { timeout: 10_000 })).json<{ subject: string; body: { system_info: { dunebugger_components: Array<{ name: string }> } } }>();
    assert.equal(reply.subject, 'system_info');
    assert.deepEqual(reply.body.system_info.dunebugger_components.map((c) => c.name), ['core']);
  } finally {
    await nc?.close();
    await d.close();
  }
});
