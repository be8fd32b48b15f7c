/**
 * A compose project of the sample service on the real test bed, a fake GitHub offering its
 * releases, and a real core (src/main.ts) with the container kind over a real SQLite file.
 * The sample images (test/env/up.sh): 1.0.0 good, 1.1.0 good with a HEALTHCHECK, 1.2.0 without
 * /health (404), 1.3.0 exits 3 at once.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Journal } from '../../src/journal/journal.js';
import type { Engine } from '../../src/engine/engine.js';
import { DockerEngine } from '../../src/kinds/container/engine-api.js';
import { detectCompose } from '../../src/kinds/container/compose-cli.js';
import type { ContainerComponent } from '../../src/kinds/container/index.js';
import { startFakeGitHub, type FakeGitHub } from '../../src/demo/local-github.js';
import { createCore, type Core } from '../../src/main.js';
import { cleanup, tempDir, testConfig, testLogger } from './harness.js';
import { freePort, run, type Bed } from './testbed.js';

export const SAMPLE_TAGS = ['v1.0.0', 'v1.1.0', 'v1.2.0', 'v1.3.0', 'v9.9.9'];

export interface ComposeExtras {
  /** The service's `restart:` policy (none by default), as DuneBugger's compose files set one. */
  restart?: 'no' | 'on-failure' | 'always' | 'unless-stopped';
  /** Mounts ./cgi-bin at /www/cgi-bin (the images' busybox httpd runs CGI from there). */
  cgi?: boolean;
}

export function composeText(registry: string, tag: string, port: number, extras: ComposeExtras = {}): string {
  return [
    '# The sample stack. Comments, order and quoting must survive an update.',
    'version: "2.4"',
    'services:',
    '  sample:   # updated by the updater',
    `    image: "${registry}/sample:${tag}"`,
    '    network_mode: host',
    '    init: true',
    ...(extras.restart ? [`    restart: ${extras.restart}`] : []),
    ...(extras.cgi ? ['    volumes:', '      - ./cgi-bin:/www/cgi-bin:ro'] : []),
    '    environment:',
    `      PORT: "${port}"`,
    '',
  ].join('\n');
}

/**
 * A CGI health route for every version of the sample image: 200 `{"status":"ok","version":…}` from
 * the image's /VERSION, except that `version` answers 503 (`starting`) for `seconds` after its
 * first health request (for ever without). Whole seconds, as busybox `date +%s` counts them.
 */
export function healthCgi(unavailable: { version: string; seconds?: number }): string {
  return [
    '#!/bin/sh',
    'v=$(cat /VERSION)',
    '[ -f /tmp/first-health ] || date +%s > /tmp/first-health',
    'age=$(( $(date +%s) - $(cat /tmp/first-health) ))',
    `if [ "$v" = "${unavailable.version}" ]${unavailable.seconds === undefined ? '' : ` && [ "$age" -lt ${unavailable.seconds} ]`}; then`,
    `  printf 'Status: 503 Service Unavailable\\r\\nContent-Type: application/json\\r\\n\\r\\n{"status":"starting","version":"%s"}\\n' "$v"`,
    'else',
    `  printf 'Content-Type: application/json\\r\\n\\r\\n{"status":"ok","version":"%s"}\\n' "$v"`,
    'fi',
    '',
  ].join('\n');
}

export interface ContainerWorld {
  dir: string;
  composeFile: string;
  backupDir: string;
  port: number;
  component: ContainerComponent;
  gh: FakeGitHub;
  core: Core;
  journal: Journal;
  engine: Engine;
  /** A Docker client of the test's own, to look at what the updater did. */
  docker: DockerEngine;
  compose: (...args: string[]) => Promise<{ code: number; stdout: string; stderr: string }>;
  containerImage(): Promise<string | null>;
  imageId(ref: string): Promise<string>;
  close(): Promise<void>;
}

export interface ContainerWorldOptions {
  retention?: number;
  healthTimeoutSeconds?: number;
  startTag?: string;
  journalDir?: string;
  /** The service's compose `restart:` policy. */
  restart?: ComposeExtras['restart'];
  /**
   * The health URL is a CGI route (/cgi-bin/health, see healthCgi) instead of the images' static
   * /health: `version` answers 503 for a while, or for ever.
   */
  unavailable?: { version: string; seconds?: number };
}

export async function containerWorld(bed: Bed, options: ContainerWorldOptions = {}): Promise<ContainerWorld> {
  process.env.DOCKER_HOST = bed.dockerHost;
  const dir = tempDir('updater-ct-');
  const port = await freePort();
  // The compose project is named after this directory: unique per world, so worlds never share containers.
  const composeDir = join(dir, `stack${basename(dir).replace(/[^a-z0-9]/gi, '').toLowerCase()}`);
  mkdirSync(composeDir);
  const composeFile = join(composeDir, 'docker-compose.yml');
  if (options.unavailable) {
    mkdirSync(join(composeDir, 'cgi-bin'));
    writeFileSync(join(composeDir, 'cgi-bin', 'health'), healthCgi(options.unavailable), { mode: 0o755 });
  }
  writeFileSync(composeFile, composeText(bed.registry, options.startTag ?? '1.0.0', port, { restart: options.restart, cgi: Boolean(options.unavailable) }));
  const backupDir = join(dir, 'backups');
  mkdirSync(backupDir);
  const tool = (await detectCompose())!;
  const compose = (...args: string[]) => run(tool[0]!, [...tool.slice(1), '-f', composeFile, ...args], bed.env, 120_000, composeDir);
  const up = await compose('up', '-d');
  if (up.code !== 0) throw new Error(`compose up failed: ${up.stderr}`);

  const gh = await startFakeGitHub();
  for (const tag of SAMPLE_TAGS) gh.addRelease('o/sample', { tag, body: `sample ${tag}` });
  const component = {
    name: 'sample',
    kind: 'container',
    repo: 'o/sample',
    composeFile,
    service: 'sample',
    health: { url: `http://127.0.0.1:${port}/${options.unavailable ? 'cgi-bin/health' : 'health'}`, timeoutSeconds: options.healthTimeoutSeconds ?? 8 },
    minFreeMB: 1,
  } as ContainerComponent;
  const core = createCore({
    config: testConfig({
      dataDir: dir,
      backupDir,
      backupRetention: options.retention ?? 3,
      github: { apiUrl: gh.apiUrl, rawUrl: gh.rawUrl, token: null },
      components: [component],
    }),
    logger: testLogger(),
    // The journal may live on a disk of its own (journalDir).
    ...(options.journalDir ? { databasePath: join(options.journalDir, 'updater.db') } : {}),
  });
  const docker = new DockerEngine();
  const containerImage = async () => {
    const id = (await compose('ps', '-q', 'sample')).stdout.trim();
    if (!id) return null;
    return (await docker.container(id))?.imageId ?? null;
  };
  return {
    dir,
    composeFile,
    backupDir,
    port,
    component,
    gh,
    core,
    journal: core.journal,
    engine: core.engine,
    docker,
    compose,
    containerImage,
    imageId: (ref) => docker.imageId(ref),
    async close() {
      await compose('down', '--remove-orphans', '-t', '1');
      await core.close();
      await gh.close();
      cleanup(dir);
    },
  };
}
