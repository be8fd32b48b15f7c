/**
 * The REST routes of the contract: an adapter over the application's commands and queries. Every
 * route declares its schemas (from src/contract/); errors have one shape.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppDeps } from './deps.js';
import {
  RUNNING_NOTE,
  checkRequest,
  componentParams,
  errorBody,
  fleetView,
  health,
  rollbackRequest,
  runParams,
  runStarted,
  runsQuery,
  updateAllRequest,
  updateAllStarted,
  updateBatch,
  updateRequest,
  type CheckRequest,
  type ErrorResponse,
  type FleetView,
  type UpdateBatch,
  type RunsQuery,
  type UpdateRequest,
} from '../contract/index.js';
import { tokenMatches, presentedToken } from './auth.js';
import { answer, errorResponses, ref, request } from './rest-schemas.js';

export { errorBody };

/** What `POST /api/updates` does, for the API description (docs/api.md). */
const UPDATE_ALL_NOTE =
  'Checks now, then updates every component whose check found an update, one run after another: the components marked ' +
  '`updateFirst` first, then the others, each group in config order. A run starts only once the one before it has ended ' +
  '`succeeded` (or `up_to_date`); the first that ends otherwise (`aborted`, `rolled_back`, `rollback_failed`) stops the batch, ' +
  'and the components after it are left as they are. Answers **202** once the first run exists, with its `run_id` and the ' +
  'components in order; **200** with `components: []` and `run_id: null` when nothing has an update; **409** `busy` while a run ' +
  'or another update of all is active; **507** when the journal cannot be written. While a batch goes on, other update and ' +
  'rollback requests get 409 `busy`. Its progress: `GET /api/updates`, and on `/ws` each run\'s messages and ' +
  '`update_batch` (each run it starts, then its end). A batch is held in memory: if the updater stops during one, the run ' +
  'under way is recovered on the next start as any run is, but the components after it are not started again (ask again).';

export async function apiRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const { commands, queries } = deps.application;

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
  const started = { 202: answer(runStarted) };

  app.get('/healthz', { schema: { summary: 'Liveness', response: { 200: answer(health) } } }, async () => queries.health());

  app.get('/api/components', {
    schema: { summary: 'Components with installed and latest versions', description: RUNNING_NOTE, response: { 200: { type: 'array', items: ref('Component') } } },
  }, async () => queries.components());

  app.post<{ Body: CheckRequest }>('/api/checks', {
    onRequest: requireToken,
    preValidation: objectBody,
    schema: {
      summary: 'Check GitHub for new releases now',
      body: request(checkRequest),
      response: { 200: ref('CheckResult'), ...errorResponses(400, 401, 403, 404, 415, 421) },
    },
  }, async (request) => commands.check(request.body.component));

  app.post<{ Params: { name: string }; Body: UpdateRequest }>('/api/components/:name/updates', {
    onRequest: requireToken,
    preValidation: objectBody,
    schema: {
      summary: 'Start an update run (latest, or a given version; dry_run stops after validate)',
      description:
        '**409** `update_first` while a component marked `updateFirst` (and listed before this one, when this one is marked too) has an update available: ' +
        '"Cannot update core before remote. Remote has an available update and must be updated first." A dry run is not refused by this rule.',
      params: request(componentParams),
      body: request(updateRequest),
      response: { ...started, ...errorResponses(400, 401, 403, 404, 409, 415, 421, 507) },
    },
  }, async (request, reply) => {
    const { runId } = await commands.startRun(request.params.name, { version: request.body.version ?? null, dryRun: request.body.dry_run ?? false, rollout: request.body.rollout ?? null });
    return reply.status(202).send({ run_id: runId });
  });

  app.post('/api/updates', {
    onRequest: requireToken,
    preValidation: objectBody,
    schema: {
      summary: 'Update all: every component with an update, one run after another',
      description: UPDATE_ALL_NOTE,
      body: request(updateAllRequest),
      response: { 200: answer(updateAllStarted), 202: answer(updateAllStarted), ...errorResponses(400, 401, 403, 409, 415, 421, 507) },
    },
  }, async (_request, reply) => {
    const started = await commands.updateAll();
    return reply.status(started.run_id === null ? 200 : 202).send(started);
  });

  app.get<{ Reply: UpdateBatch | ErrorResponse }>('/api/updates', {
    schema: {
      summary: 'The update of all components going on, else the last one',
      response: { 200: answer(updateBatch), ...errorResponses(404) },
    },
  }, async (_request, reply) => {
    const batch = queries.batch();
    if (!batch) return reply.status(404).send(errorBody('not_found', 'no update of all components since the updater started'));
    return batch;
  });

  app.post<{ Params: { name: string } }>('/api/components/:name/rollback', {
    onRequest: requireToken,
    preValidation: objectBody,
    schema: {
      summary: 'Restore the newest backup, as a run of its own',
      params: request(componentParams),
      body: request(rollbackRequest),
      response: { ...started, ...errorResponses(400, 401, 403, 404, 409, 415, 421, 507) },
    },
  }, async (request, reply) => {
    const { runId } = await commands.restore(request.params.name);
    return reply.status(202).send({ run_id: runId });
  });

  app.get<{ Reply: FleetView | ErrorResponse }>('/api/fleet', {
    schema: {
      summary: 'The fleet: every device and rollout on the NATS bus (when `nats` is configured)',
      description:
        'Read now from the JetStream KV buckets `dune_devices` (a device is `online` when it wrote its record within 120 s) and ' +
        '`dune_rollouts` (docs/fleet.md). **404** `not_found` when `nats` is not configured; **503** `unavailable` while the device ' +
        'is not connected to the bus, or the bus does not answer.',
      response: { 200: answer(fleetView), ...errorResponses(404, 503) },
    },
  }, async (_request, reply) => {
    const fleet = queries.fleet();
    if (!fleet) return reply.status(404).send(errorBody('not_found', 'nats is not configured'));
    try {
      return await fleet;
    } catch (error) {
      return reply.status(503).send(errorBody('unavailable', `cannot read the fleet: ${(error as Error).message}`));
    }
  });

  app.get<{ Querystring: RunsQuery }>('/api/runs', {
    schema: {
      summary: 'Runs, newest first',
      querystring: request(runsQuery),
      response: { 200: { type: 'array', items: ref('Run') }, ...errorResponses(400) },
    },
  }, async (request) => queries.runs(request.query));

  app.get<{ Params: { id: number } }>('/api/runs/:id', {
    schema: {
      summary: 'One run with all its transitions',
      params: request(runParams),
      response: { 200: ref('Run'), ...errorResponses(400, 404) },
    },
  }, async (request, reply) => {
    const run = queries.run(request.params.id);
    if (!run) return reply.status(404).send(errorBody('not_found', `no run ${request.params.id}`));
    return run;
  });
}
