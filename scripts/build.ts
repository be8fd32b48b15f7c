/**
 * `npm run build`: what the updater runs in production, in dist/.
 * - dist/updater.js: the service and CLI as ES modules bundled by esbuild, run by plain node (no
 *   TypeScript transform at start: tsx alone cost ~33 MB of RSS and a few hundred ms). Code that
 *   only some runs need is split into dist/chunks/ and loaded when first used: dockerode (only
 *   with container components), the server (not for `status`, `runs`, `run`, `config check`).
 * - dist/dashboard/: the browser bundle (app.js) beside the page and its style.
 * Every JavaScript library is in the bundle, so they are devDependencies (inputs of the build,
 * like esbuild and tsx); only better-sqlite3 (a native addon) stays in node_modules, and it is
 * the one entry of package.json's dependencies: the production install (`npm ci --omit=dev`, the
 * image) holds it and nothing else. The build fails if the bundle would load any other package
 * from node_modules at run time. ssh2 and the gRPC modules, which dockerode loads but the updater
 * never uses, are replaced by stubs that throw (scripts/stubs/), and so is the on-the-fly bundler
 * of the dashboard (src/server/dashboard-bundle.ts, which needs esbuild): the build serves the
 * prebuilt dist/dashboard/app.js.
 * The build is written to a temporary directory and renamed into place, so an interrupted build
 * never leaves a half-written dist/. Figures: docs/performance.md ("Boot and idle").
 */
import { build, type Metafile, type Plugin } from 'esbuild';
import { readFileSync } from 'node:fs';
import { copyFile, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { isBuiltin } from 'node:module';
import { join, relative } from 'node:path';
import { PACKAGE_ROOT as ROOT } from '../src/paths.js';
import { bundleClient, DASHBOARD_SOURCES } from '../src/server/dashboard-bundle.js';

const OUT = join(ROOT, 'dist');
const STUBS = join(ROOT, 'scripts', 'stubs');

/**
 * got's argument checker, @sindresorhus/is, makes two `Intl.ListFormat`s when it is loaded, for
 * the wording of its error messages. The first Intl object a process makes pages in ICU's data:
 * 6 MB of RSS for the life of the process (measured: bare node 41.8 MB, with one ListFormat 47.9).
 * This makes them when a message is first worded. The build fails if the lines are not found, so a
 * new version of the package cannot silently bring the cost back.
 */
const lazyListFormat: Plugin = {
  name: 'lazy-list-format',
  setup(b) {
    b.onLoad({ filter: /[\\/]@sindresorhus[\\/]is[\\/]distribution[\\/]index\.js$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      const eager = /new Intl\.ListFormat\(/g;
      const found = source.match(eager)?.length ?? 0;
      if (found !== 2) throw new Error(`${args.path}: expected 2 \`new Intl.ListFormat(\` at module level, found ${found}; review the lazy-list-format plugin`);
      const lazy = 'const __lazyListFormat = (...args) => { let f; return { format: (list) => (f ??= new Intl.ListFormat(...args)).format(list) }; };\n';
      return { contents: lazy + source.replace(eager, '__lazyListFormat('), loader: 'js' };
    });
  },
};

/**
 * The on-the-fly bundler of the dashboard (for runs from the sources) is never called in the
 * build, which serves dist/dashboard/app.js; without this its chunk would import esbuild.
 */
const noDashboardBundler: Plugin = {
  name: 'no-dashboard-bundler',
  setup(b) {
    b.onResolve({ filter: /^\.\/dashboard-bundle\.js$/ }, () => ({ path: join(STUBS, 'dashboard-bundle.ts') }));
  },
};

/** What the production install holds: package.json's dependencies. */
export const RUNTIME_DEPENDENCIES: string[] = Object.keys(
  (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> }).dependencies ?? {},
).sort();
/** Required inside try/catch by ws and debug, which work without them; never installed. */
const OPTIONAL = ['bufferutil', 'utf-8-validate', 'supports-color'];

/** The packages (not node's own modules) the bundle imports from node_modules at run time. */
function externalPackages(meta: Metafile): string[] {
  const names = new Set<string>();
  for (const output of Object.values(meta.outputs)) {
    for (const i of output.imports) {
      if (!i.external || isBuiltin(i.path)) continue;
      names.add(i.path.startsWith('@') ? i.path.split('/').slice(0, 2).join('/') : i.path.split('/')[0]!);
    }
  }
  return [...names].sort();
}

export async function buildDist(out = OUT): Promise<{ files: Record<string, number>; external: string[] }> {
  const tmp = `${out}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: { updater: 'src/cli.ts' },
    outdir: tmp,
    chunkNames: 'chunks/[name]-[hash]',
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node24',
    external: ['better-sqlite3', 'esbuild', 'cpu-features'],
    alias: { ssh2: join(STUBS, 'ssh2.ts'), '@grpc/grpc-js': join(STUBS, 'grpc.ts'), '@grpc/proto-loader': join(STUBS, 'grpc.ts') },
    define: { __UPDATER_BUNDLE__: 'true' },
    plugins: [lazyListFormat, noDashboardBundler],
    // Whitespace and syntax only: identifiers keep their names, so stack traces stay readable.
    minifyWhitespace: true,
    minifySyntax: true,
    // The CommonJS packages in the bundle call require() for node's own modules.
    banner: { js: "import { createRequire as __updaterCreateRequire } from 'node:module'; const require = __updaterCreateRequire(import.meta.url);" },
    legalComments: 'linked',
    // ASCII (esbuild's default; other characters as \u escapes): V8 keeps a module's source in the
    // heap for its whole life, one byte a character when all are Latin-1 but two when any is not
    // (one "…" in a message did that): 2.4 MB of chunks held 5 MB of heap.
    charset: 'ascii',
    metafile: true,
    logLevel: 'warning',
  });
  const external = externalPackages(result.metafile);
  const stray = external.filter((name) => !RUNTIME_DEPENDENCIES.includes(name) && !OPTIONAL.includes(name));
  if (stray.length) {
    await rm(tmp, { recursive: true, force: true });
    throw new Error(`the build would load ${stray.join(', ')} from node_modules at run time, but the production install has only package.json's dependencies (${RUNTIME_DEPENDENCIES.join(', ')}): bundle it, or make it a dependency`);
  }
  await mkdir(join(tmp, 'dashboard'), { recursive: true });
  await writeFile(join(tmp, 'dashboard', 'app.js'), await bundleClient());
  for (const file of ['index.html', 'style.css']) await copyFile(join(DASHBOARD_SOURCES, file), join(tmp, 'dashboard', file));

  const old = `${out}.old-${process.pid}`;
  await rename(out, old).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
  await rename(tmp, out);
  await rm(old, { recursive: true, force: true });
  return { files: sizes(result.metafile, tmp, out), external };
}

function sizes(meta: Metafile, tmp: string, out: string): Record<string, number> {
  return Object.fromEntries(Object.entries(meta.outputs).map(([file, o]) => [relative(out, join(ROOT, file).replace(tmp, out)), o.bytes]));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const t0 = performance.now();
  const { files } = await buildDist();
  const main = Object.entries(files).filter(([f]) => f.endsWith('.js'));
  const kb = (n: number) => `${(n / 1024).toFixed(0)} KiB`;
  console.log(`built dist/ in ${(performance.now() - t0).toFixed(0)} ms: ${main.map(([f, n]) => `${f} ${kb(n)}`).join(', ')}`);
}
