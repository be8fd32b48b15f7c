/** The REST routes of the contract. Every route declares its schemas; errors have one shape. */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppDeps } from './deps.js';
import { componentViews, RUNNING_NOTE } from './views.js';
import { toCheckResult } from '../releases/checker.js';
import { UPDATER_VERSION } from '../version.js';
import { tokenMatches, presentedToken } from './auth.js';
import { componentNameParams, componentNameSchema, errorResponses, ref, versionSchema } from './schemas.js';

export const errorBody = (code: string, message: string) => ({ error: { code, message } });

export async function apiRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const known = (name: string) => deps.components.some((c) => c.name === name);

  /**
   * Mutations need the token when one is configured. Checked in onRequest, before the body is
   * read or validated: without the token the answer is 401, whatever was sent.
   */
  const requireToken = async (request: FastifyRequest, reply: FastifyReply) => {
    if (!tokenMatches(deps.token, presentedToken(request))) {
      return reply.status(401).header('www-authenticate', 'Bearer').send(errorBody('unauthorized', 'a valid token is required: send Authorization: Bearer <token>'));
    }
  };
  /**
   * A mutation's body is a JSON object, or nothing at all, which means `{}` (so `POST …/updates`
   * with no body means "the latest"). JSON `null`, arrays and scalars are refused (400 `bad_body`):
   * `-d null` is not "no body". Other content types never get here (415, app.ts).
   */
  const objectBody = async (request: FastifyRequest, reply: FastifyReply) => {
    if (request.body === undefined) request.body = {};
    else if (typeof request.body !== 'object' || request.body === null || Array.isArray(request.body)) {
      return reply.status(400).send(errorBody('bad_body', `the body must be a JSON object (or absent), got ${request.body === null ? 'null' : Array.isArray(request.body) ? 'an array' : `a ${typeof request.body}`}`));
    }
  };

  app.get('/healthz', {
    schema: {
      summary: 'Liveness',
      response: {
        200: {
          type: 'object',
          required: ['status', 'version', 'journal'],
          properties: {
            status: { type: 'string' },
            version: { type: 'string' },
            recovering: { type: 'boolean' },
            journal: { type: 'string', enum: ['ok', 'unwritable'] },
            journal_error: { type: 'string', description: 'Why the journal cannot be written, naming its path (only when unwritable)' },
          },
        },
      },
    },
  }, async () => {
    // Still 200 when the journal cannot be written: the service is alive, and says what is wrong.
    const journal = deps.engine.journalHealth();
    return {
      status: 'ok',
      version: UPDATER_VERSION,
      recovering: deps.engine.isRecovering,
      journal: journal.writable ? 'ok' : 'unwritable',
      ...(journal.error ? { journal_error: journal.error } : {}),
    };
  });

  app.get('/api/components', {
    schema: { summary: 'Components with installed and latest versions', description: RUNNING_NOTE, response: { 200: { type: 'array', items: ref('Component') } } },
  }, async () => componentViews(deps.components, deps.checker, deps.engine, deps.running));

  app.post<{ Body: { component?: string } }>('/api/checks', {
    onRequest: requireToken,
    preValidation: objectBody,
    schema: {
      summary: 'Check GitHub for new releases now',
      body: { type: 'object', additionalProperties: false, properties: { component: componentNameSchema } },
      response: { 200: ref('CheckResult'), ...errorResponses(400, 401, 403, 404, 415, 421) },
    },
  }, async (request, reply) => {
    const only = request.body.component;
    if (only !== undefined && !known(only)) return reply.status(404).send(errorBody('not_found', `no component named "${only}"`));
    return toCheckResult(await deps.checker.check(only));
  });

  app.post<{ Params: { name: string }; Body: { version?: string; dry_run?: boolean } }>('/api/components/:name/updates', {
    onRequest: requireToken,
    preValidation: objectBody,
    schema: {
      summary: 'Start an update run (latest, or a given version; dry_run stops after validate)',
      params: componentNameParams,
      body: { type: 'object', additionalProperties: false, properties: { version: versionSchema, dry_run: { type: 'boolean' } } },
      response: { 202: { type: 'object', required: ['run_id'], properties: { run_id: { type: 'integer' } } }, ...errorResponses(400, 401, 403, 404, 409, 415, 421, 507) },
    },
  }, async (request, reply) => {
    const { runId } = await deps.engine.startRun(request.params.name, { version: request.body.version ?? null, dryRun: request.body.dry_run ?? false });
    return reply.status(202).send({ run_id: runId });
  });

  app.post<{ Params: { name: string } }>('/api/components/:name/rollback', {
    onRequest: requireToken,
    preValidation: objectBody,
    schema: {
      summary: 'Restore the newest backup, as a run of its own',
      params: componentNameParams,
      body: { type: 'object', additionalProperties: false, maxProperties: 0, description: 'none, or {}' },
      response: { 202: { type: 'object', required: ['run_id'], properties: { run_id: { type: 'integer' } } }, ...errorResponses(400, 401, 403, 404, 409, 415, 421, 507) },
    },
  }, async (request, reply) => {
    const { runId } = await deps.engine.startRun(request.params.name, { mode: 'restore' });
    return reply.status(202).send({ run_id: runId });
  });

  app.get<{ Querystring: { component?: string; limit?: number } }>('/api/runs', {
    schema: {
      summary: 'Runs, newest first',
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: { component: { type: 'string', maxLength: 64 }, limit: { type: 'integer', minimum: 1, maximum: 1000, default: 50 } },
      },
      response: { 200: { type: 'array', items: ref('Run') }, ...errorResponses(400) },
    },
  }, async (request) => deps.journal.listRuns({ component: request.query.component, limit: request.query.limit }));

  app.get<{ Params: { id: number } }>('/api/runs/:id', {
    schema: {
      summary: 'One run with all its transitions',
      params: { type: 'object', required: ['id'], properties: { id: { type: 'integer', minimum: 1 } } },
      response: { 200: ref('Run'), ...errorResponses(400, 404) },
    },
  }, async (request, reply) => {
    const run = deps.journal.getRun(request.params.id);
    if (!run) return reply.status(404).send(errorBody('not_found', `no run ${request.params.id}`));
    return run;
  });
}
