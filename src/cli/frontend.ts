/**
 * `updater frontend SUBJECT [BODY]`: plays the DuneBugger web frontend, with the client library
 * the frontend uses (`@azure/web-pubsub-client`): joins the device's group on the hub, sends
 * `{subject, body, connectionId}` there as dunebugger-fe does, and prints what the device answers
 * (its messages with `source: "controller"`), one JSON line each. It waits `--wait` seconds
 * (default 3), or, for `updater.update`, until the run's (or every run's) final `log` line.
 *
 * The hub: the configuration's `webpubsub` (signing a frontend token with its connection string),
 * or the demo's local hub (`UPDATER_DEMO_HUB=1 npm start`, data/demo/webpubsub.json).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WebPubSubClient, WebPubSubJsonReliableProtocol } from '@azure/web-pubsub-client';
import type { Config } from '../config/index.js';
import { parseConnectionString } from '../util/connection-string.js';
import { redact, signClientUrl } from '../webpubsub/token.js';
import { EXIT } from './exit-codes.js';

interface HubInfo {
  connectionString: string;
  hub: string;
  group: string;
}

function hubOf(config: Config): HubInfo | string {
  const w = config.webpubsub;
  if (w?.connectionString && w.hub) return { connectionString: w.connectionString, hub: w.hub, group: w.group };
  if (w?.url) return 'webpubsub.url holds the device\'s own token: the frontend needs the connection string (webpubsub.connectionString) to sign one of its own';
  const demo = join(config.dataDir, 'demo', 'webpubsub.json');
  if (existsSync(demo)) return JSON.parse(readFileSync(demo, 'utf8')) as HubInfo;
  return 'no hub: configure webpubsub (docs/frontend.md), or run the demo with its local hub (UPDATER_DEMO_HUB=1 npm start)';
}

export async function playFrontend(config: Config, subject: string, rawBody: string | undefined, waitSeconds: number): Promise<number> {
  const hub = hubOf(config);
  if (typeof hub === 'string') {
    console.error(hub);
    return EXIT.usage;
  }
  const connection = parseConnectionString(hub.connectionString);
  if ('problem' in connection) {
    console.error(`the connection string ${connection.problem}`);
    return EXIT.usage;
  }
  let body: unknown = rawBody ?? null;
  if (rawBody !== undefined) {
    try {
      body = JSON.parse(rawBody);
    } catch {
      body = rawBody; // a bare word: "core", "manual_confirmation"
    }
  }
  // Signed as the device signs its own, with the frontend's user id.
  const url = () => signClientUrl({ connection, hub: hub.hub, group: hub.group, userId: 'frontend-cli' });
  const client = new WebPubSubClient({ getClientAccessUrl: url }, { protocol: WebPubSubJsonReliableProtocol(), messageRetryOptions: { maxRetries: 0 } });
  const updating = subject === 'updater.update';
  let finalLogs = 0;
  let expected = updating && (body === 'all' || body === 'manual_confirmation') ? Infinity : 1;
  let done: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (done = resolve));
  client.on('group-message', (e) => {
    const d = e.message.data as { subject?: string; body?: { success?: boolean; message?: string; components?: unknown[] } ; source?: string };
    if (!d || typeof d !== 'object' || d.source !== 'controller') return;
    console.log(JSON.stringify({ subject: d.subject, body: d.body }));
    if (!updating) return;
    if (d.subject === 'update_batch' && Array.isArray(d.body?.components)) expected = Math.max(1, d.body.components.length);
    // The run's final line, or a refusal (success false, nothing started).
    if (d.subject === 'log' && (d.body?.success === false || !/^(Updating|Restoring) /.test(d.body?.message ?? ''))) {
      if (d.body?.success === false || ++finalLogs >= expected) done();
    }
  });
  try {
    await client.start({ abortSignal: AbortSignal.timeout(15_000) });
    await client.joinGroup(hub.group, { abortSignal: AbortSignal.timeout(10_000) });
    await client.sendToGroup(hub.group, { subject, body, connectionId: 'frontend-cli' }, 'json', { noEcho: true, abortSignal: AbortSignal.timeout(10_000) });
    const limit = updating ? Math.max(waitSeconds, 600) : waitSeconds;
    await Promise.race([finished, new Promise((r) => setTimeout(r, limit * 1000).unref())]);
    return 0;
  } catch (error) {
    console.error(`the hub: ${redact((error as Error).message)}`);
    return EXIT.failure;
  } finally {
    client.stop();
  }
}
