/**
 * Builds the HTTP application: schemas, the error shape, REST routes, /metrics, /ws, the
 * OpenAPI description and the dashboard. `server.ts` only listens and handles signals; tests
 * build this and use `app.inject` / `app.injectWS`.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify';
import swagger from '@fastify/swagger';
import { Ajv } from 'ajv';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { AppDeps } from './deps.js';
import { refusalOf, type CommandErrorCode } from '../app/index.js';
import { UPDATER_VERSION } from '../version.js';
import { apiRoutes, errorBody } from './routes.js';
import { sharedSchemas } from './rest-schemas.js';
import { createMetrics } from './metrics.js';
import { registerWebSocket } from './ws.js';
import { registerDashboard } from './dashboard.js';
import { refusal, type GuardPolicy, type Refusal } from './guard.js';

export type { AppDeps } from './deps.js';

/** The status of each refusal (a full disk answers 507, never 500). */
const STATUS: Record<CommandErrorCode, number> = { busy: 409, update_first: 409, not_found: 404, bad_request: 400, bad_body: 400, no_backup: 404, closed: 503, insufficient_storage: 507 };

/** A request (head and body) must arrive whole within this, or it is cut off with 408. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** On close, requests under way get this long to finish before every connection left is closed. */
export const CLOSE_DRAIN_MS = 2_000;

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const policy: GuardPolicy = { token: deps.token, allowedHosts: deps.allowedHosts ?? [], allowedOrigins: deps.allowedOrigins ?? [] };
  const requestTimeout = deps.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const app = Fastify({
    loggerInstance: deps.logger as unknown as FastifyBaseLogger,
    // A device's log is small: no line per request; failures are logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 64 * 1024,
    // A client that sends half a request and holds it must not hold a connection (or a stop) for
    // ever: Node cuts the request off with 408 (clientErrorHandler below) once it has not arrived
    // whole in time, looking every second (its default is every 30 s).
    requestTimeout,
    http: {
      requestTimeout,
      headersTimeout: requestTimeout,
      connectionsCheckingInterval: Math.min(1000, Math.max(100, Math.floor(requestTimeout / 2))),
      // A missing Host is the guard's to refuse, in the API's error shape (Node's own 400 has no body).
      requireHostHeader: false,
    },
    clientErrorHandler: clientError,
    // Requests that arrive while closing get the guard's 503 in the API's error shape instead.
    return503OnClosing: false,
    // What the router refuses before any route runs (a malformed %-escape, a path parameter over
    // 100 characters) gets the same error shape as everything else.
    frameworkErrors: (error, request, reply) => {
      // The browser checks come first here too (no route, so no hook, runs for these).
      const refused = refusal(policy, { method: request.method, headers: request.headers, protocol: request.protocol });
      if (refused) return void (reply as FastifyReply).status(refused.status).send(errorBody(refused.code, refused.message));
      const status = (error as { statusCode?: number }).statusCode ?? 400;
      void (reply as FastifyReply).status(status).send(errorBody(status === 414 ? 'uri_too_long' : 'bad_request', error.message));
    },
  });

  // Bodies are validated strictly (a number where a string belongs is a 400, not coerced);
  // query strings and path parameters are text, so there types are coerced.
  const strict = new Ajv({ coerceTypes: false, useDefaults: true, removeAdditional: false, allErrors: false });
  const coercing = new Ajv({ coerceTypes: 'array', useDefaults: true, removeAdditional: false, allErrors: false });
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? strict : coercing).compile(schema));

  for (const schema of sharedSchemas(deps.application.queries.kinds)) app.addSchema(schema);

  // Before every other hook (the WebSocket plugin's and the routes' token checks): Host, then Origin.
  let closing = false;
  app.addHook('onRequest', async (request, reply) => {
    const refused: Refusal | { status: 503; code: 'closed'; message: string } | null = closing
      ? { status: 503, code: 'closed', message: 'the updater is shutting down' }
      : refusal(policy, { method: request.method, headers: request.headers, protocol: request.protocol });
    if (!refused) return;
    if (request.headers.upgrade !== undefined) {
      // A refused WebSocket upgrade: the answer, then the connection is closed (no socket is left open).
      reply.header('connection', 'close');
      reply.raw.once('finish', () => (request.raw.socket as Socket | undefined)?.destroySoon());
    }
    return reply.status(refused.status).send(errorBody(refused.code, refused.message));
  });
  // Bodies are JSON or nothing: no text/plain (a browser sends that cross-site without asking first).
  app.removeContentTypeParser('text/plain');

  // On close: server.close() stops accepting and closes idle connections; requests under way get
  // CLOSE_DRAIN_MS to finish, then every connection left (a client holding half a request) is closed.
  let drain: NodeJS.Timeout | undefined;
  app.addHook('preClose', async () => {
    closing = true;
    drain = setTimeout(() => app.server.closeAllConnections(), CLOSE_DRAIN_MS);
    drain.unref();
  });
  app.addHook('onClose', async () => clearTimeout(drain));

  app.setErrorHandler((error, request, reply) => {
    const e = error as { validation?: unknown; statusCode?: number; code?: string; message: string };
    if (e.validation) return reply.status(400).send(errorBody('bad_request', e.message));
    if (e.statusCode === 413) return reply.status(413).send(errorBody('too_large', 'the request body is over 64 KiB'));
    if (e.statusCode === 415) return reply.status(415).send(errorBody('unsupported_media_type', 'send JSON (Content-Type: application/json)'));
    if (e.statusCode && e.statusCode < 500) return reply.status(e.statusCode).send(errorBody('bad_request', e.message));
    // The updater's refusals (busy, not_found…), and a write that failed for want of storage: 507.
    const refused = refusalOf(error);
    if (refused) return reply.status(STATUS[refused.code]).send(errorBody(refused.code, refused.message));
    request.log.error({ err: error }, 'request failed');
    return reply.status(500).send(errorBody('internal', 'internal error; see the updater log'));
  });
  app.setNotFoundHandler((request, reply) => reply.status(404).send(errorBody('not_found', `no route ${request.method} ${request.url.split('?')[0]}`)));

  await app.register(swagger, {
    openapi: {
      info: { title: 'dune-updater', version: UPDATER_VERSION, description: 'Durable updates of a device\'s containers and apps from GitHub releases.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  });

  await apiRoutes(app, deps);

  const metrics = createMetrics(deps.application);
  app.addHook('onClose', async () => metrics.stop());
  app.get('/metrics', { schema: { summary: 'Prometheus metrics', hide: false } }, async (_request, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  await registerWebSocket(app, deps);
  await registerDashboard(app);

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}

const CLIENT_ERRORS: Record<string, [number, string, string]> = {
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'request_timeout', 'the request did not arrive whole in time'],
  HPE_HEADER_OVERFLOW: [431, 'headers_too_large', 'the request head is over 16 KiB'],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: [413, 'too_large', 'the chunk extensions are too large'],
};

/**
 * What Node's HTTP parser refuses before any route exists for the request (a head over 16 KiB,
 * a request that does not arrive in time, malformed HTTP): a raw response in the API's error
 * shape, then the connection is closed. Nothing is written when a response has already begun.
 */
function clientError(this: FastifyInstance, error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, code, message] = CLIENT_ERRORS[error.code ?? ''] ?? [400, 'bad_request', 'malformed HTTP request'];
  this.log.debug({ err: error, status }, `refused a request at the HTTP level: ${message}`);
  // Node's own default does the same check (`_httpMessage` is the response in progress, if any).
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (socket.writable && !inFlight?.headersSent) {
    const body = JSON.stringify(errorBody(code, message));
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  }
  socket.destroySoon();
}
