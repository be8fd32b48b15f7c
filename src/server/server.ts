/**
 * The HTTP transport's listener: builds the app (app.ts: REST, /ws, /metrics, the dashboard) over
 * the application layer and listens at `server.host:port`. The composition root (src/main.ts)
 * starts it and closes it.
 */
import type { Logger } from 'pino';
import type { Application } from '../app/index.js';
import type { ServerConfig } from '../config/index.js';
import { buildApp } from './app.js';

export interface HttpTransport {
  url: string;
  /** Stops accepting, tells WebSockets 1001, and closes the connections clients hold (app.ts). */
  close(): Promise<void>;
}

export async function startHttp(application: Application, server: ServerConfig, logger: Logger): Promise<HttpTransport> {
  const app = await buildApp({
    application,
    token: server.token,
    allowedHosts: [...server.allowedHosts, ...listenName(server.host)],
    allowedOrigins: server.allowedOrigins,
    requestTimeoutMs: requestTimeoutOverride(logger),
    logger,
  });
  if (!server.token) {
    if (isLoopback(server.host)) logger.info({ host: server.host }, 'no server.token is set: the API is open, so it listens on loopback only (set server.token to listen beyond it safely)');
    else logger.warn({ host: server.host }, 'no server.token is set and server.host is not loopback: anyone who can reach this address can start updates');
  }
  try {
    const url = await app.listen({ host: server.host, port: server.port });
    return { url, close: () => app.close() };
  } catch (error) {
    await app.close();
    throw error;
  }
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/**
 * The address `server.host` names, as a Host header would (`[fe80::1]` for IPv6), when it is one
 * address: the operator chose it, so requests addressed to it are not misdirected. A wildcard
 * (`0.0.0.0`, `::`) names no host.
 */
function listenName(host: string): string[] {
  if (['0.0.0.0', '::', ''].includes(host)) return [];
  return [host.includes(':') ? `[${host}]` : host];
}

/** `UPDATER_REQUEST_TIMEOUT_MS`, for tests only: shortens the 30 s a request has to arrive whole. */
function requestTimeoutOverride(logger: Logger): number | undefined {
  const raw = process.env.UPDATER_REQUEST_TIMEOUT_MS;
  if (raw === undefined || raw === '') return undefined;
  const ms = Number(raw);
  if (!Number.isSafeInteger(ms) || ms < 100) {
    logger.warn({ UPDATER_REQUEST_TIMEOUT_MS: raw }, 'UPDATER_REQUEST_TIMEOUT_MS is not an integer >= 100: ignored');
    return undefined;
  }
  logger.warn({ requestTimeoutMs: ms }, `UPDATER_REQUEST_TIMEOUT_MS: requests must arrive whole within ${ms} ms (a setting for tests)`);
  return ms;
}
