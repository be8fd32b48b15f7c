/**
 * Builds the HTTP application (routes, error handler); `server.ts` only listens and handles
 * signals. Tests build this and use `app.inject`, no port opened.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Engine } from '../engine/engine.js';
import { EngineError } from '../engine/engine.js';
import type { Journal } from '../journal/journal.js';
import { UPDATER_VERSION } from '../version.js';

export interface AppDeps {
  engine: Engine;
  journal: Journal;
  logger: Logger;
}

const errorBody = (code: string, message: string) => ({ error: { code, message } });

const STATUS: Record<string, number> = { busy: 409, not_found: 404, bad_request: 400, no_backup: 404, closed: 503 };

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger as unknown as FastifyBaseLogger,
    // A device's log is small: no line per request; failures are logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 64 * 1024,
  });

  app.setErrorHandler((error, _request, reply) => {
    if (error instanceof EngineError) return reply.status(STATUS[error.code] ?? 400).send(errorBody(error.code, error.message));
    const e = error as { validation?: unknown; statusCode?: number; message: string };
    if (e.validation) return reply.status(400).send(errorBody('bad_request', e.message));
    if (e.statusCode && e.statusCode < 500) return reply.status(e.statusCode).send(errorBody('bad_request', e.message));
    deps.logger.error({ err: error }, 'request failed');
    return reply.status(500).send(errorBody('internal', 'internal error; see the updater log'));
  });
  app.setNotFoundHandler((request, reply) => reply.status(404).send(errorBody('not_found', `no route ${request.method} ${request.url}`)));

  app.get('/healthz', async () => ({ status: 'ok', version: UPDATER_VERSION, recovering: deps.engine.isRecovering }));

  app.get<{ Querystring: { component?: string; limit?: number } }>(
    '/api/runs',
    {
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { component: { type: 'string', maxLength: 64 }, limit: { type: 'integer', minimum: 1, maximum: 1000 } },
        },
      },
    },
    async (request) => deps.journal.listRuns({ component: request.query.component, limit: request.query.limit ?? 50 }),
  );

  app.get<{ Params: { id: number } }>(
    '/api/runs/:id',
    { schema: { params: { type: 'object', properties: { id: { type: 'integer', minimum: 1 } }, required: ['id'] } } },
    async (request, reply) => {
      const run = deps.journal.getRun(request.params.id);
      if (!run) return reply.status(404).send(errorBody('not_found', `no run ${request.params.id}`));
      return run;
    },
  );

  return app;
}
