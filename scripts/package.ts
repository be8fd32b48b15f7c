/**
 * `npm run package -- --version V --out DIR [--no-build]`: the release asset of the updater itself,
 * DIR/dune-updater-V.tar.gz and DIR/dune-updater-V.tar.gz.sha256 (sha256sum's format). The tarball
 * holds one folder, dune-updater-V/, with everything the updater needs on this platform but Node:
 *   bin/updater.mjs, bin/check-node.cjs, dist/ (the build), migrations/, package.json (version V),
 *   VERSION (V), install.sh and launch (from deploy/), node_modules/ (the production closure).
 * `sh dune-updater-V/install.sh ROOT` installs it (deploy/install.sh; docs/self-update.md).
 * node_modules holds what package.json's dependencies load at run time: each dependency and its
 * own dependencies, except the tools a package runs only when it is installed (named in its
 * `install` script: better-sqlite3's prebuild-install); of better-sqlite3 only its loader (lib/),
 * its package.json and the compiled addon, as deploy/Dockerfile keeps it. The addon is the one
 * built for this machine's node and platform: package on the platform the release is for.
 * It builds first (scripts/build.ts) unless --no-build, which takes dist/ as it is when it is at
 * least as new as the sources. DIR is created when missing. Both files are written atomically
 * (temp file, fsync, rename).
 */
import { createReadStream, createWriteStream, existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, statSync, type Stats } from 'node:fs';
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, relative, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { createGzip } from 'node:zlib';
import semver from 'semver';
import tarStream from 'tar-stream';
import { PACKAGE_ROOT as ROOT } from '../src/paths.js';
import { fsyncDir, writeFileAtomic } from '../src/util/fs-atomic.js';
import { buildDist } from './build.js';

interface Entry {
  /** Path inside the top folder. */
  name: string;
  type: 'file' | 'directory' | 'symlink';
  mode: number;
  mtime: Date;
  /** A file's bytes, or where to read them. */
  data?: Buffer;
  source?: string;
  linkname?: string;
}

/** Of these packages only the listed paths are shipped. */
const KEEP_ONLY: Record<string, string[]> = {
  'better-sqlite3': ['package.json', 'lib', 'build/Release/better_sqlite3.node'],
};
/** Always executable in the release, whatever the checkout's modes. */
const EXECUTABLE = new Set(['bin/updater.mjs', 'launch', 'install.sh']);

const modeOf = (name: string, st: Stats) => (st.isDirectory() || EXECUTABLE.has(name) || st.mode & 0o111 ? 0o755 : 0o644);

/** Every file, directory and symlink under `source`, named under `name`, minus `skip` (names). */
function walk(source: string, name: string, skip: (name: string) => boolean = () => false): Entry[] {
  if (skip(name)) return [];
  const st = lstatSync(source);
  if (st.isSymbolicLink()) return [{ name, type: 'symlink', mode: 0o777, mtime: st.mtime, linkname: readlinkSync(source) }];
  if (st.isFile()) return [{ name, type: 'file', mode: modeOf(name, st), mtime: st.mtime, source }];
  if (!st.isDirectory()) return [];
  const out: Entry[] = [{ name, type: 'directory', mode: 0o755, mtime: st.mtime }];
  for (const child of readdirSync(source).sort()) out.push(...walk(join(source, child), `${name}/${child}`, skip));
  return out;
}

interface Manifest {
  name?: string;
  version?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  scripts?: Record<string, string>;
}
const readManifest = (dir: string) => JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;

/** Where node finds package `name` when it is required from a file in `from`. */
function resolvePackage(name: string, from: string): string | undefined {
  for (let dir = from; ; dir = resolve(dir, '..')) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (resolve(dir, '..') === dir) return undefined;
  }
}

/**
 * The packages the root's dependencies load at run time, as directories under ROOT/node_modules
 * (nested node_modules included): each dependency and its dependencies, recursively, except those
 * a package names in its `install` script (install-time tools). A missing optional one is skipped.
 */
export function runtimeClosure(root = ROOT): string[] {
  const found = new Set<string>();
  const visit = (dir: string, manifest: Manifest, installOnly: string) => {
    const optional = manifest.optionalDependencies ?? {};
    for (const name of Object.keys({ ...manifest.dependencies, ...optional })) {
      if (installOnly && new RegExp(`(^|[^\\w@/-])${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}($|[^\\w/-])`).test(installOnly)) continue;
      const at = resolvePackage(name, dir);
      if (!at) {
        if (name in optional) continue;
        throw new Error(`${name}, a dependency of ${manifest.name ?? dir}, is not installed under ${root}/node_modules: run \`npm ci\` first`);
      }
      if (found.has(at)) continue;
      found.add(at);
      const own = readManifest(at);
      visit(at, own, own.scripts?.install ?? '');
    }
  };
  visit(root, readManifest(root), '');
  return [...found].map((dir) => relative(root, dir)).sort();
}

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** What goes into the tarball, under dune-updater-V/. */
export function releaseEntries(version: string, root = ROOT): Entry[] {
  const now = new Date();
  const pkg = { ...(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Record<string, unknown>), version };
  const entries: Entry[] = [
    { name: 'bin', type: 'directory', mode: 0o755, mtime: now },
    ...['updater.mjs', 'check-node.cjs'].flatMap((f) => walk(join(root, 'bin', f), `bin/${f}`)),
    ...walk(join(root, 'dist'), 'dist'),
    ...walk(join(root, 'migrations'), 'migrations'),
    { name: 'package.json', type: 'file', mode: 0o644, mtime: now, data: Buffer.from(`${JSON.stringify(pkg, null, 2)}\n`) },
    { name: 'VERSION', type: 'file', mode: 0o644, mtime: now, data: Buffer.from(`${version}\n`) },
    ...walk(join(root, 'deploy', 'install.sh'), 'install.sh'),
    ...walk(join(root, 'deploy', 'launch'), 'launch'),
    { name: 'node_modules', type: 'directory', mode: 0o755, mtime: now },
  ];
  const closure = runtimeClosure(root);
  // Parent folders of nested packages (node_modules/a/node_modules) are entries of their own.
  const dirs = new Set<string>(['node_modules']);
  for (const pkgDir of closure) {
    const parts = pkgDir.split('/');
    for (let i = 2; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (!dirs.has(d)) {
        dirs.add(d);
        entries.push({ name: d, type: 'directory', mode: 0o755, mtime: now });
      }
    }
    const name = pkgDir.slice(pkgDir.lastIndexOf('node_modules/') + 'node_modules/'.length);
    const keep = KEEP_ONLY[name];
    const inPackage = (entry: string) => entry.slice(pkgDir.length + 1);
    const skip = (entry: string) => {
      const rel = inPackage(entry);
      if (rel === '') return false;
      // Nested packages are entries of the closure themselves; the others are not shipped.
      if (rel === 'node_modules' || rel.startsWith('node_modules/') || rel.includes('/node_modules/')) return true;
      if (!keep) return false;
      // A kept path, or a folder on the way to one.
      return !keep.some((k) => rel === k || rel.startsWith(`${k}/`) || k.startsWith(`${rel}/`));
    };
    entries.push(...walk(join(root, pkgDir), pkgDir, skip));
  }
  for (const required of ['bin/updater.mjs', 'dist/updater.js', 'migrations', 'install.sh', 'launch', ...(closure.includes('node_modules/better-sqlite3') ? ['node_modules/better-sqlite3/build/Release/better_sqlite3.node'] : [])]) {
    if (!entries.some((e) => e.name === required)) throw new Error(`the release would have no ${required}`);
  }
  return entries;
}

async function writeTarball(path: string, top: string, entries: Entry[]): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  // Opened before anything streams: a folder that cannot be written fails here, as one error.
  const out = createWriteStream(tmp, { fd: openSync(tmp, 'wx', 0o644) });
  const pack = tarStream.pack();
  const written = pipeline(pack, createGzip({ level: 9 }), out);
  try {
    pack.entry({ name: top, type: 'directory', mode: 0o755, mtime: new Date(), uid: 0, gid: 0, uname: 'root', gname: 'root' });
    for (const e of entries) {
      const header = { name: `${top}/${e.name}`, mode: e.mode, mtime: e.mtime, uid: 0, gid: 0, uname: 'root', gname: 'root' };
      if (e.type === 'directory') pack.entry({ ...header, type: 'directory' });
      else if (e.type === 'symlink') pack.entry({ ...header, type: 'symlink', linkname: e.linkname });
      else {
        const data = e.data ?? readFileSync(e.source!);
        await new Promise<void>((done, fail) => pack.entry({ ...header, type: 'file', size: data.length }, data, (error) => (error ? fail(error) : done())));
      }
    }
    pack.finalize();
    await written;
    const fd = openSync(tmp, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
    fsyncDir(resolve(path, '..'));
  } catch (error) {
    pack.destroy();
    await written.catch(() => {});
    rmSync(tmp, { force: true });
    throw error;
  }
}

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export async function packageRelease(options: { version: string; out: string; build?: boolean }): Promise<{ tarball: string; sha256: string; files: number }> {
  const { version } = options;
  if (semver.valid(version) !== version) {
    throw new Error(`--version ${JSON.stringify(version)} is not a semantic version like 1.2.3 or 1.3.0-rc.1 (without a leading v)`);
  }
  if (options.build !== false) await buildDist();
  else {
    const built = join(ROOT, 'dist', 'updater.js');
    if (!existsSync(built)) throw new Error(`--no-build, but there is no build (${built}): run \`npm run build\` first`);
    const sources = Math.max(...['src', 'machines', 'scripts'].map((d) => newest(join(ROOT, d))));
    if (sources > statSync(built).mtimeMs) throw new Error('--no-build, but dist/ is older than the sources: run `npm run build` first, or package without --no-build');
  }
  const out = resolve(options.out);
  mkdirSync(out, { recursive: true });
  const top = `dune-updater-${version}`;
  const tarball = join(out, `${top}.tar.gz`);
  const entries = releaseEntries(version);
  await writeTarball(tarball, top, entries);
  const hex = await sha256(tarball);
  writeFileAtomic(`${tarball}.sha256`, `${hex}  ${top}.tar.gz\n`, { mode: 0o644 });
  return { tarball, sha256: hex, files: entries.filter((e) => e.type === 'file').length };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const usage = 'usage: npm run package -- --version V --out DIR [--no-build]';
  let args;
  try {
    args = parseArgs({ options: { version: { type: 'string' }, out: { type: 'string' }, 'no-build': { type: 'boolean' } }, strict: true }).values;
  } catch (error) {
    console.error(`${(error as Error).message}\n${usage}`);
    process.exit(2);
  }
  if (!args.version || !args.out) {
    console.error(usage);
    process.exit(2);
  }
  try {
    const t0 = performance.now();
    const { tarball, sha256: hex, files } = await packageRelease({ version: args.version, out: args.out, build: !args['no-build'] });
    const mb = (statSync(tarball).size / 1024 / 1024).toFixed(1);
    console.log(`wrote ${tarball} (${files} files, ${mb} MiB) and its .sha256 (${hex}) in ${(performance.now() - t0).toFixed(0)} ms`);
  } catch (error) {
    console.error(`npm run package: ${(error as Error).message}`);
    process.exit(1);
  }
}
