/**
 * The embedded demo as a new user meets it: its ports, a second demo or a busy port, the release
 * pages its links point at, and what its download progress says.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { startDemo } from '../src/demo/demo.js';
import { createCore } from '../src/main.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { cleanup, tempDir, testConfig } from './support/harness.js';

/** A server of someone else's on a port: it answers 404 to everything. */
async function squatter(): Promise<{ server: Server; port: number }> {
  const server = createServer((_req, res) => {
    res.writeHead(404);
    res.end('not the demo');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

function capturingLogger() {
  const messages: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) messages.push((JSON.parse(l) as { msg: string }).msg);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), messages };
}

const portOf = (url: string) => Number(new URL(url).port);

/** The sample app's /health body, once it answers (it is started in the background). */
async function health(url: string): Promise<unknown> {
  for (const deadline = Date.now() + 10_000; ; await sleep(100)) {
    try {
      return await (await fetch(url)).json();
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
  }
}

test('remembered ports taken by someone else: the demo takes free ones, says so, and a bad release still rolls back', async () => {
  const dataDir = tempDir('updater-demo-');
  const app = await squatter();
  const releases = await squatter();
  mkdirSync(join(dataDir, 'demo'), { recursive: true });
  writeFileSync(join(dataDir, 'demo', 'app.port'), `${app.port}\n`);
  writeFileSync(join(dataDir, 'demo', 'releases.port'), `${releases.port}\n`);
  const { logger, messages } = capturingLogger();
  const demo = await startDemo(testConfig({ dataDir, components: [] }), logger);
  try {
    const appPort = Number(readFileSync(join(dataDir, 'demo', 'app.port'), 'utf8'));
    assert.notEqual(appPort, app.port);
    assert.equal(portOf(demo.component.health!.url), appPort, 'the health URL is the new port');
    assert.ok(messages.includes(`demo: port ${app.port} is taken (another demo, or another program); the sample app uses port ${appPort} instead (remembered in ${join(dataDir, 'demo', 'app.port')})`), messages.join('\n'));
    assert.ok(messages.includes(`demo: started sample-app on port ${appPort}`), messages.join('\n'));
    const releasesPort = Number(readFileSync(join(dataDir, 'demo', 'releases.port'), 'utf8'));
    assert.notEqual(releasesPort, releases.port);
    assert.equal(portOf(demo.releasesUrl), releasesPort);
    assert.deepEqual(await health(demo.component.health!.url), { status: 'ok', version: '1.0.0' });

    const core = createCore({ config: demo.config, logger: pino({ level: 'silent' }) });
    try {
      // The case that went wrong: the old version, restarted by the rollback, could not bind its port.
      const bad = await core.engine.waitForRun((await core.engine.startRun('sample-app', { version: '1.2.0' })).runId);
      assert.equal(bad.state, 'rolled_back', bad.message!);
      assert.deepEqual(await health(demo.component.health!.url), { status: 'ok', version: '1.0.0' });

      const progress: string[] = [];
      core.engine.progress.subscribe((p) => progress.push(p.message));
      const good = await core.engine.waitForRun((await core.engine.startRun('sample-app', { version: '1.1.0' })).runId);
      assert.equal(good.state, 'succeeded', good.message!);
      // The demo's tarball is under 1 KiB: its progress is in bytes, not "0.0 of 0.0 MiB".
      const downloading = progress.filter((m) => m.startsWith('Downloading '));
      assert.ok(downloading.length > 0, JSON.stringify(progress));
      for (const m of downloading) assert.match(m, /^Downloading sample-app-1\.1\.0\.tar\.gz: \d+ of \d+ bytes$/);

      // release_url: the release's page on the demo's own stand-in for GitHub, which answers it.
      const check = await core.app.commands.check();
      const url = check.components['sample-app']!.release_url!;
      assert.equal(url, `${demo.releasesUrl}/demo/sample-app/releases/tag/v1.2.0`);
      const page = await fetch(url);
      assert.equal(page.status, 200);
      assert.match(page.headers.get('content-type')!, /^text\/html/);
      const html = await page.text();
      assert.match(html, /<h1>v1\.2\.0<\/h1>/);
      assert.match(html, /its health check fails/);
      assert.ok(html.includes(`href="${demo.releasesUrl}/download/demo/sample-app/v1.2.0/sample-app-1.2.0.tar.gz"`), html);
      assert.equal((await fetch(`${demo.releasesUrl}/demo/sample-app/releases/tag/v9.9.9`)).status, 404);
    } finally {
      await core.close();
    }
  } finally {
    await demo.stop();
    app.server.close();
    releases.server.close();
    cleanup(dataDir);
  }
});

test('a second start while the sample app still runs keeps its port (the app is the one using it)', async () => {
  const dataDir = tempDir('updater-demo-');
  const first = await startDemo(testConfig({ dataDir, components: [] }), pino({ level: 'silent' }));
  let second: Awaited<ReturnType<typeof startDemo>> | null = null;
  try {
    const port = portOf(first.component.health!.url);
    const { logger, messages } = capturingLogger();
    // As after a SIGKILLed updater: the app it started is still running when the next one starts.
    second = await startDemo(testConfig({ dataDir, components: [] }), logger);
    assert.equal(portOf(second.component.health!.url), port);
    assert.equal(Number(readFileSync(join(dataDir, 'demo', 'app.port'), 'utf8')), port);
    assert.ok(messages.includes(`demo: sample-app already runs on port ${port}`), messages.join('\n'));
    assert.deepEqual(await health(second.component.health!.url), { status: 'ok', version: '1.0.0' });
  } finally {
    await second?.stop();
    await first.stop();
    cleanup(dataDir);
  }
});
