/**
 * `GET /`: the dashboard (docs/dashboard.md). Its sources are in ./dashboard/: index.html,
 * style.css, and client.ts (with its modules). The build (`npm run build`) bundles the browser
 * code into dist/dashboard/ beside copies of the page and the style, and the service serves those
 * files; run from the sources (tsx), esbuild bundles client.ts at the first request instead. The
 * result is kept in memory for the life of the process. Everything is served from here (no CDN,
 * no external fonts), so the page works on a device with no internet.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BUNDLED, PACKAGE_ROOT } from '../paths.js';
import { UPDATER_VERSION } from '../version.js';
import { errorBody } from './routes.js';

/** Where the page, the style and the browser bundle are read from. */
const FILES = BUNDLED ? join(PACKAGE_ROOT, 'dist', 'dashboard') : join(PACKAGE_ROOT, 'src', 'server', 'dashboard');

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

function asset(body: string, type: string): Asset {
  const buf = Buffer.from(body, 'utf8');
  return { body: buf, type, etag: `"${createHash('sha256').update(buf).digest('base64url').slice(0, 22)}"` };
}

const loaders: Record<string, () => Promise<Asset>> = {
  page: async () => asset((await readFile(join(FILES, 'index.html'), 'utf8')).replaceAll('%VERSION%', UPDATER_VERSION), 'text/html; charset=utf-8'),
  style: async () => asset(await readFile(join(FILES, 'style.css'), 'utf8'), 'text/css; charset=utf-8'),
  script: async () =>
    asset(BUNDLED ? await readFile(join(FILES, 'app.js'), 'utf8') : await (await import('./dashboard-bundle.js')).bundleClient(), 'text/javascript; charset=utf-8'),
};

/** Built once per process; a failed build is forgotten, so the next request tries again. */
const cache = new Map<string, Promise<Asset>>();
function load(name: string): Promise<Asset> {
  let pending = cache.get(name);
  if (!pending) {
    pending = loaders[name]!();
    cache.set(name, pending);
    pending.catch(() => cache.delete(name));
  }
  return pending;
}

/** The page only talks to its own origin (REST and /ws); nothing inline, nothing from elsewhere. */
const CSP = "default-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

export async function registerDashboard(app: FastifyInstance): Promise<void> {
  const serve = (name: string) => async (request: FastifyRequest, reply: FastifyReply) => {
    let file: Asset;
    try {
      file = await load(name);
    } catch (error) {
      request.log.error({ err: error }, `dashboard: cannot build ${name}: ${(error as Error).message}`);
      return reply.status(500).send(errorBody('internal', `the dashboard's ${name} could not be built; see the updater log`));
    }
    reply.header('etag', file.etag).header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff');
    if (name === 'page') reply.header('content-security-policy', CSP).header('referrer-policy', 'no-referrer');
    if (request.headers['if-none-match'] === file.etag) return reply.status(304).send();
    return reply.type(file.type).send(file.body);
  };
  const hidden = { schema: { hide: true } };
  app.get('/', hidden, serve('page'));
  app.get('/dashboard/style.css', hidden, serve('style'));
  app.get('/dashboard/app.js', hidden, serve('script'));
}
