/**
 * Idle memory, as on a device: the build (bin/updater.mjs's flags and environment) with a
 * realistic configuration (one container and one app component, checks against a local stand-in
 * for GitHub) and 10 000 runs in the journal, its RSS 60 s after the boot check is done, no client
 * connected (V8's memory reducer has run by then). Side by side in one run, all started together:
 * - the service on Node 24 (this node), against a bare Node 24 process;
 * - the same build on Node 20, against a bare Node 20 process, when a Node 20 is on this machine
 *   (`which -a node`, /usr/bin/node): dist/ run directly (the launcher refuses Node 20), with a
 *   better-sqlite3 compiled for it once and cached under ~/.cache/dune-updater/bench;
 * - the floor under any HTTP service: a bare `node:http` server, imported from an ES module as
 *   the build does, on each node;
 * - as notes: where the memory is (file-backed pages of the node binary vs anonymous memory; V8's
 *   heap by space and, from a heap snapshot, by kind: a copy of each service with
 *   bench/memory-probe.mjs loaded, measured before it is probed), the service after a client has
 *   looked, with V8's --lite-mode, without the launcher's memory settings, and from the sources
 *   through tsx.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startFakeGitHub } from '../src/demo/local-github.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { buildDist } from '../scripts/build.js';
import { cleanup, tempDir, TSX_IMPORT } from '../test/support/harness.js';
import { freePort } from '../test/support/testbed.js';
import { boot, fillJournal, writeDevice, type Booted } from './boot.js';
import { findNode, packageFor } from './other-node.js';
import { fmt, verdict, type Section } from './util.js';

const LAUNCHER = join(PACKAGE_ROOT, 'bin', 'updater.mjs');
const PROBE = join(PACKAGE_ROOT, 'bench', 'memory-probe.mjs');
const RUNS = 10_000;
const GOAL_MB = 60;
/** bin/updater.mjs's own settings (its first line; test/launch.test.ts keeps the three launchers in step). */
const FLAGS = ['--max-semi-space-size=1'];
const ENV = { MALLOC_ARENA_MAX: '2' };

const mb = (kb: number) => kb / 1024;
/** VmRSS and its parts (kB in /proc/PID/status), in MB. */
function memory(pid: number): { rss: number; anon: number; file: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => mb(Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN));
  return { rss: field('VmRSS'), anon: field('RssAnon'), file: field('RssFile') + field('RssShmem') };
}

interface Variant {
  name: string;
  command: string[];
  env?: NodeJS.ProcessEnv;
  /** Written by bench/memory-probe.mjs on SIGUSR2. */
  probe?: string;
}

interface Measured {
  curve: Array<[number, number]>;
  at60: { rss: number; anon: number; file: number };
  probe?: Probe;
}

interface Probe {
  memoryUsage: NodeJS.MemoryUsage;
  heap: { total_heap_size: number; used_heap_size: number; malloced_memory: number };
  spaces: Array<{ space_name: string; space_size: number; space_used_size: number }>;
  modules: number;
  /** From the heap snapshot: MB by node type, and the big strings that are module sources. */
  snapshot?: { byType: Record<string, number>; bundleSources: number; nodeSources: number };
}

/** Sums a heap snapshot's nodes by type; sources are the strings that begin like a module. */
function readSnapshot(file: string): Probe['snapshot'] {
  const s = JSON.parse(readFileSync(file, 'utf8')) as { snapshot: { meta: { node_fields: string[]; node_types: [string[]] } }; nodes: number[]; strings: string[] };
  const fields = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const [ti, ni, si] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f)) as [number, number, number];
  const byType: Record<string, number> = {};
  let bundleSources = 0;
  let nodeSources = 0;
  for (let i = 0; i < s.nodes.length; i += fields.length) {
    const type = types[s.nodes[i + ti]!]!;
    const size = s.nodes[i + si]!;
    byType[type] = (byType[type] ?? 0) + size / 1048576;
    if (type !== 'string' || size < 4096) continue;
    const text = s.strings[s.nodes[i + ni]!]!;
    if (text.startsWith('import { createRequire as __updaterCreateRequire }')) bundleSources += size / 1048576;
    else if (/^('use strict';|\/\/ Copyright Joyent|"use strict";\nvar __defProp|\/\* eslint node-core)/.test(text)) nodeSources += size / 1048576;
  }
  return { byType, bundleSources, nodeSources };
}

/** RSS at 5, 15, 30 and 60 s after the boot check; at 60 s also its parts and, for a probed copy, V8's view. */
async function idle(b: Booted, v: Variant): Promise<Measured> {
  await b.checked;
  const pid = b.child.pid!;
  const curve: Array<[number, number]> = [];
  let at = 0;
  for (const t of [5, 15, 30, 60]) {
    await sleep((t - at) * 1000);
    at = t;
    curve.push([t, memory(pid).rss]);
  }
  const at60 = memory(pid);
  let probe: Probe | undefined;
  if (v.probe) {
    process.kill(pid, 'SIGUSR2');
    for (let i = 0; i < 300 && !existsSync(v.probe); i++) await sleep(100);
    if (existsSync(v.probe)) {
      probe = JSON.parse(readFileSync(v.probe, 'utf8')) as Probe;
      probe.snapshot = readSnapshot(`${v.probe}.heapsnapshot`);
    }
  }
  return { curve, at60, probe };
}

function bare(node: string): ChildProcess {
  return spawn(node, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
}

/** A node:http server doing nothing, imported from an ES module (as the build imports node's modules). */
function httpServer(node: string, dir: string): ChildProcess {
  const file = join(dir, 'http-server.mjs');
  writeFileSync(file, "import { createServer } from 'node:http';\ncreateServer((request, response) => response.end()).listen(0, '127.0.0.1');\n");
  return spawn(node, [...FLAGS, file], { stdio: 'ignore', env: { ...process.env, ...ENV } });
}

const curveText = (c: Array<[number, number]>) => c.map(([t, v]) => `${t} s ${fmt(v, 1)} MB`).join(', ');
const partsText = (m: { rss: number; anon: number; file: number }) => `${fmt(m.rss, 1)} MB = ${fmt(m.anon, 1)} MB anonymous + ${fmt(m.file, 1)} MB file-backed`;
function heapText(p: Probe | undefined): string {
  if (!p) return 'not read';
  const M = (n: number) => fmt(n / 1048576, 1);
  const spaces = p.spaces.filter((s) => s.space_size > 0).map((s) => `${s.space_name.replace(/_space$/, '')} ${M(s.space_used_size)}/${M(s.space_size)}`);
  const snap = p.snapshot;
  const kinds = snap ? Object.entries(snap.byType).filter(([, v]) => v >= 0.5).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${fmt(v, 1)}`).join(', ') : '';
  const snapText = snap ? `; the heap snapshot by kind (MB): ${kinds}, of the strings ${fmt(snap.bundleSources, 1)} MB are the bundle's sources and ${fmt(snap.nodeSources, 1)} MB node's own modules' sources` : '';
  return `V8 heap ${M(p.heap.used_heap_size)} MB used of ${M(p.heap.total_heap_size)} MB (${spaces.join(', ')}), V8 malloc ${M(p.heap.malloced_memory)} MB, external ${M(p.memoryUsage.external)} MB (array buffers ${M(p.memoryUsage.arrayBuffers)} MB); ${p.modules} of node's modules loaded${snapText}`;
}

export async function benchIdle(): Promise<Section> {
  await buildDist();
  const github = await startFakeGitHub();
  for (const repo of ['acme/web', 'acme/core']) {
    github.addRelease(repo, { tag: 'v1.0.0', body: 'first' });
    github.addRelease(repo, { tag: 'v1.1.0', body: 'second', assets: [{ name: 'core-1.1.0.tar.gz', content: 'x' }] });
  }
  const root = tempDir('updater-bench-idle-');
  const running: Booted[] = [];
  const bares: ChildProcess[] = [];
  try {
    const journal = join(root, 'journal');
    fillJournal(journal, RUNS);

    const node20 = findNode(20);
    const pkg20 = node20 ? packageFor(node20, join(root, 'package-node20')) : 'no Node 20 on this machine (which -a node, /usr/bin/node)';

    const variants: Variant[] = [
      { name: 'node24', command: [process.execPath, ...FLAGS, LAUNCHER, 'serve'], env: ENV },
      { name: 'node24-probe', command: [process.execPath, ...FLAGS, '--import', PROBE, LAUNCHER, 'serve'], env: ENV, probe: join(root, 'probe-node24.json') },
      { name: 'node24-lite', command: [process.execPath, ...FLAGS, '--lite-mode', LAUNCHER, 'serve'], env: ENV },
      { name: 'node24-no-flags', command: [process.execPath, join(PACKAGE_ROOT, 'dist', 'updater.js'), 'serve'] },
      { name: 'node24-tsx', command: [process.execPath, '--import', TSX_IMPORT, join(PACKAGE_ROOT, 'src', 'cli.ts'), 'serve'] },
    ];
    if (node20 && typeof pkg20 !== 'string') {
      const entry = join(pkg20.dir, 'dist', 'updater.js');
      variants.push({ name: 'node20', command: [node20, ...FLAGS, entry, 'serve'], env: ENV });
      variants.push({ name: 'node20-probe', command: [node20, ...FLAGS, '--import', PROBE, entry, 'serve'], env: ENV, probe: join(root, 'probe-node20.json') });
    }

    // All at once, each with its own device (configuration, journal copy, port).
    const devices = await Promise.all(variants.map(async (v) => {
      const dir = join(root, v.name);
      const port = await freePort();
      writeDevice(dir, github, port);
      cpSync(journal, join(dir, 'data'), { recursive: true });
      return { dir, port };
    }));
    bares.push(bare(process.execPath), httpServer(process.execPath, root));
    if (node20) bares.push(bare(node20), httpServer(node20, root));
    const booted = await Promise.all(variants.map((v, i) => boot(devices[i]!.dir, devices[i]!.port, v.command, { ...v.env, ...(v.probe ? { UPDATER_BENCH_MEMORY_OUT: v.probe } : {}) })));
    running.push(...booted);
    const measured = await Promise.all(variants.map((v, i) => idle(booted[i]!, v)));
    const by = (name: string) => measured[variants.findIndex((v) => v.name === name)];
    const [bare24, http24, bare20, http20] = bares.map((b) => memory(b.pid!));

    // After a client has looked (components, which asks Docker and so loads dockerode; the dashboard; 50 runs).
    const shipped = devices[0]!;
    for (const path of ['/api/components', '/', '/dashboard/app.js', '/api/runs?limit=50']) await (await fetch(`http://127.0.0.1:${shipped.port}${path}`)).arrayBuffer();
    await sleep(2000);
    const afterClient = memory(booted[0]!.child.pid!).rss;

    const n24 = by('node24')!;
    const n20 = by('node20');
    const v20 = node20 ? spawnSync(node20, ['--version'], { encoding: 'utf8' }).stdout.trim() : '';
    const rows: string[][] = [
      [`idle RSS, 60 s after the boot check (${process.version})`, `${fmt(n24.at60.rss, 1)} MB`, `${fmt(bare24!.rss, 1)} MB (bare node ${process.version})`, fmt(n24.at60.rss / bare24!.rss, 2), `≤ ${GOAL_MB} MB`, verdict(n24.at60.rss <= GOAL_MB)],
      [`a bare node:http server (${process.version})`, `${fmt(http24!.rss, 1)} MB`, `${fmt(bare24!.rss, 1)} MB (bare node ${process.version})`, fmt(http24!.rss / bare24!.rss, 2), '-', '-'],
    ];
    if (n20 && bare20 && http20) {
      rows.push([`the same build on ${v20}`, `${fmt(n20.at60.rss, 1)} MB`, `${fmt(bare20.rss, 1)} MB (bare node ${v20})`, fmt(n20.at60.rss / bare20.rss, 2), '-', '-']);
      rows.push([`a bare node:http server (${v20})`, `${fmt(http20.rss, 1)} MB`, `${fmt(bare20.rss, 1)} MB (bare node ${v20})`, fmt(http20.rss / bare20.rss, 2), '-', '-']);
      rows.push([`the service above bare node: ${process.version} vs ${v20}`, `${fmt(n24.at60.rss - bare24!.rss, 1)} MB`, `${fmt(n20.at60.rss - bare20.rss, 1)} MB (${v20})`, fmt((n24.at60.rss - bare24!.rss) / (n20.at60.rss - bare20.rss), 2), '-', '-']);
    }
    const notes = [
      `The service: the build (dist/, \`npm run build\`) with bin/updater.mjs's settings (\`${FLAGS.join(' ')}\`, \`MALLOC_ARENA_MAX=2\`), configured with one container and one app component, checks on (the boot check asks a local stand-in for GitHub), ${RUNS.toLocaleString('en')} runs in the journal; RSS is VmRSS 60 s after the log says \`boot check done\`. All variants below ran at the same time, each with its own copy of the device; load average at the end: ${loadavg().map((x) => x.toFixed(1)).join(' ')} (2 cores).`,
      `${process.version}: ${curveText(n24.curve)}. At 60 s: ${partsText(n24.at60)}; bare node: ${partsText(bare24!)}; bare node:http server: ${partsText(http24!)}.`,
      `${process.version}, a copy with bench/memory-probe.mjs loaded (${fmt(by('node24-probe')!.at60.rss, 1)} MB at 60 s): ${heapText(by('node24-probe')!.probe)}.`,
    ];
    if (n20 && bare20) {
      notes.push(
        `${v20} (${node20}; dist/updater.js run directly, as the launcher refuses Node 20, with better-sqlite3 compiled for it): ${curveText(n20.curve)}. At 60 s: ${partsText(n20.at60)}; bare node: ${partsText(bare20)}; bare node:http server: ${partsText(http20!)}.`,
        `${v20}, probed copy (${fmt(by('node20-probe')!.at60.rss, 1)} MB): ${heapText(by('node20-probe')!.probe)}.`,
      );
    } else {
      notes.push(`Node 20: not measured: ${typeof pkg20 === 'string' ? pkg20 : 'unavailable'}.`);
    }
    notes.push(
      `After a client has looked (GET /api/components, which asks Docker and so loads dockerode, the dashboard, 50 runs): ${fmt(afterClient, 1)} MB.`,
      `With V8's \`--lite-mode\` added (no optimizing or baseline compilers, no feedback vectors up front; not adopted: it costs CPU on every check): ${curveText(by('node24-lite')!.curve)}; at 60 s ${partsText(by('node24-lite')!.at60)}.`,
      `Without the launcher's settings (plain \`node dist/updater.js\`): ${curveText(by('node24-no-flags')!.curve)}.`,
      `From the sources through tsx (as before the build existed): ${curveText(by('node24-tsx')!.curve)}.`,
    );
    return { title: `Idle memory: the service 60 s after its boot check, ${RUNS.toLocaleString('en')} runs in the journal`, rows, notes };
  } finally {
    await Promise.all(running.map((b) => b.stop()));
    for (const b of bares) b.kill();
    await github.close();
    cleanup(root);
  }
}
