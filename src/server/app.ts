/**
 * Builds the HTTP application: schemas, the error shape, REST routes, /metrics, /ws, the
 * OpenAPI description and the dashboard. `server.ts` only listens and handles signals; tests
 * build this and use `app.inject` / `app.injectWS`.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify';
import swagger from '@fastify/swagger';
import { Ajv } from 'ajv';
import type { Socket } from 'node:net';
import type { AppDeps } from './deps.js';
import { EngineError } from '../engine/engine.js';
import { UPDATER_VERSION } from '../version.js';
import { apiRoutes, errorBody } from './routes.js';
import { checkResultSchema, componentSchema, errorSchema, runSchema } from './schemas.js';
import { createMetrics } from './metrics.js';
import { registerWebSocket } from './ws.js';
import { registerDashboard } from './dashboard.js';
import { refusal, type Refusal } from './guard.js';

export type { AppDeps } from './deps.js';

const STATUS: Record<string, number> = { busy: 409, not_found: 404, bad_request: 400, no_backup: 404, closed: 503 };

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger as unknown as FastifyBaseLogger,
    // A device's log is small: no line per request; failures are logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 64 * 1024,
    // What the router refuses before any route runs (a malformed %-escape, a path parameter over
    // 100 characters) gets the same error shape as everything else.
    frameworkErrors: (error, _request, reply) => {
      const status = (error as { statusCode?: number }).statusCode ?? 400;
      void (reply as FastifyReply).status(status).send(errorBody(status === 414 ? 'uri_too_long' : 'bad_request', error.message));
    },
  });

  // Bodies are validated strictly (a number where a string belongs is a 400, not coerced);
  // query strings and path parameters are text, so there types are coerced.
  const strict = new Ajv({ coerceTypes: false, useDefaults: true, removeAdditional: false, allErrors: false });
  const coercing = new Ajv({ coerceTypes: 'array', useDefaults: true, removeAdditional: false, allErrors: false });
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? strict : coercing).compile(schema));

  for (const schema of [errorSchema, componentSchema, checkResultSchema, runSchema]) app.addSchema(schema);

  // Before every other hook (the WebSocket plugin's and the routes' token checks): Host, then Origin.
  const policy = { token: deps.token, allowedHosts: deps.allowedHosts ?? [], allowedOrigins: deps.allowedOrigins ?? [] };
  app.addHook('onRequest', async (request, reply) => {
    const refused: Refusal | null = refusal(policy, { method: request.method, headers: request.headers, protocol: request.protocol });
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

  app.setErrorHandler((error, request, reply) => {
    if (error instanceof EngineError) return reply.status(STATUS[error.code] ?? 400).send(errorBody(error.code, error.message));
    const e = error as { validation?: unknown; statusCode?: number; code?: string; message: string };
    if (e.validation) return reply.status(400).send(errorBody('bad_request', e.message));
    if (e.statusCode === 413) return reply.status(413).send(errorBody('too_large', 'the request body is over 64 KiB'));
    if (e.statusCode === 415) return reply.status(415).send(errorBody('unsupported_media_type', 'send JSON (Content-Type: application/json)'));
    if (e.statusCode && e.statusCode < 500) return reply.status(e.statusCode).send(errorBody('bad_request', e.message));
    request.log.error({ err: error }, 'request failed');
    return reply.status(500).send(errorBody('internal', 'internal error; see the updater log'));
  });
  app.setNotFoundHandler((request, reply) => reply.status(404).send(errorBody('not_found', `no route ${request.method} ${request.url.split('?')[0]}`)));

  await app.register(swagger, {
    openapi: {
      info: { title: 'dune-updater', version: UPDATER_VERSION, description: 'Durable updates of a device\'s containers and apps from GitHub releases.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
  });

  await apiRoutes(app, deps);

  const metrics = createMetrics(deps);
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
