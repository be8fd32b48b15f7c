/** `GET /`: the dashboard. Until the dashboard's own issue lands, a small page that points at the API. */
import type { FastifyInstance } from 'fastify';
import { UPDATER_VERSION } from '../version.js';

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>dune-updater</title></head>
<body><h1>dune-updater ${UPDATER_VERSION}</h1>
<p>The dashboard is not built yet. The API: <a href="/api/components">/api/components</a>,
<a href="/api/runs">/api/runs</a>, <a href="/openapi.json">/openapi.json</a>, <a href="/metrics">/metrics</a>, WebSocket <code>/ws</code>.</p>
</body></html>`;

export async function registerDashboard(app: FastifyInstance): Promise<void> {
  app.get('/', { schema: { hide: true } }, async (_request, reply) => reply.type('text/html; charset=utf-8').send(PAGE));
}
