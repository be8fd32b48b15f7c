/**
 * The dashboard's browser code (src/server/dashboard/client.ts and its modules) as one minified
 * ES module, by esbuild. `npm run build` writes it to dist/dashboard/app.js; running from the
 * sources (tsx), src/server/dashboard.ts calls this at the first request instead.
 */
import { join } from 'node:path';
import { build } from 'esbuild';
import { PACKAGE_ROOT } from '../paths.js';

export const DASHBOARD_SOURCES = join(PACKAGE_ROOT, 'src', 'server', 'dashboard');

export async function bundleClient(dir = DASHBOARD_SOURCES): Promise<string> {
  const result = await build({
    entryPoints: [join(dir, 'client.ts')],
    tsconfig: join(dir, 'tsconfig.json'),
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: ['es2020'],
    minify: true,
    charset: 'utf8',
    legalComments: 'none',
    logLevel: 'silent',
  });
  const out = result.outputFiles[0];
  if (!out) throw new Error('esbuild produced no output');
  return out.text;
}
