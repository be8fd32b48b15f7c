/**
 * Another node on this machine (Node 20, where it is installed) to run the same build beside this
 * one in the benches: found on PATH or at the usual places, with this package copied for it and a
 * better-sqlite3 compiled for it (cached under ~/.cache/dune-updater/bench).
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { PACKAGE_ROOT } from '../src/paths.js';

const CACHE = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'dune-updater', 'bench');

/** A node of that major version on this machine, other than this one. */
export function findNode(major: number): string | undefined {
  const found = spawnSync('which', ['-a', 'node'], { encoding: 'utf8' }).stdout.split('\n');
  const seen = new Set<string>();
  for (const candidate of [...found, '/usr/bin/node', '/usr/local/bin/node']) {
    if (!candidate || !existsSync(candidate)) continue;
    const real = realpathSync(candidate);
    if (seen.has(real)) continue;
    seen.add(real);
    const version = spawnSync(real, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim();
    if (Number(version.split('.')[0]) === major) return real;
  }
  return undefined;
}

/**
 * This package runnable by another node: bin, dist, migrations and package.json copied, and a
 * node_modules holding better-sqlite3 (the one runtime dependency) compiled for that node, cached
 * (node-gyp against the node's own headers, about 70 s the first time). A string says why not.
 */
export function packageFor(node: string, dir: string): string | { dir: string } {
  const version = (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies['better-sqlite3']!;
  const abi = spawnSync(node, ['-p', 'process.versions.modules'], { encoding: 'utf8' }).stdout.trim();
  const modules = join(CACHE, `better-sqlite3-${version}-abi${abi}`);
  const addon = join(modules, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node');
  if (!existsSync(addon)) {
    const nodedir = resolve(dirname(node), '..');
    if (!existsSync(join(nodedir, 'include', 'node', 'common.gypi'))) return `no node headers at ${nodedir}/include/node to compile better-sqlite3 for ${node}`;
    rmSync(modules, { recursive: true, force: true });
    mkdirSync(modules, { recursive: true });
    writeFileSync(join(modules, 'package.json'), '{"private": true}\n');
    process.stderr.write(`bench: compiling better-sqlite3 ${version} for ${node} into ${modules} (once; about 70 s)…\n`);
    const r = spawnSync('npm', ['install', '--no-save', '--no-package-lock', '--no-audit', '--no-fund', `better-sqlite3@${version}`], {
      cwd: modules,
      env: { ...process.env, PATH: [dirname(node), process.env.PATH].join(delimiter), npm_config_nodedir: nodedir },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    if (r.status !== 0 || !existsSync(addon)) return `better-sqlite3 ${version} did not compile for ${node}`;
  }
  for (const part of ['bin', 'dist', 'migrations', 'package.json']) cpSync(join(PACKAGE_ROOT, part), join(dir, part), { recursive: true });
  symlinkSync(join(modules, 'node_modules'), join(dir, 'node_modules'));
  return { dir };
}
