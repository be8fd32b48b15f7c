/**
 * A compose project of the sample service on the real test bed, a fake GitHub offering its
 * releases, and a real core (src/main.ts) with the container kind over a real SQLite file.
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

export function composeText(registry: string, tag: string, port: number): string {
  return [
    '# The sample stack. Comments, order and quoting must survive an update.',
    'version: "2.4"',
    'services:',
    '  sample:   # updated by the updater',
    `    image: "${registry}/sample:${tag}"`,
    '    network_mode: host',
    '    init: true',
    '    environment:',
    `      PORT: "${port}"`,
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

export async function containerWorld(bed: Bed, options: { retention?: number; healthTimeoutSeconds?: number; startTag?: string; journalDir?: string } = {}): Promise<ContainerWorld> {
  process.env.DOCKER_HOST = bed.dockerHost;
  const dir = tempDir('updater-ct-');
  const port = await freePort();
  // The compose project is named after this directory: unique per world, so worlds never share containers.
  const composeDir = join(dir, `stack${basename(dir).replace(/[^a-z0-9]/gi, '').toLowerCase()}`);
  mkdirSync(composeDir);
  const composeFile = join(composeDir, 'docker-compose.yml');
  writeFileSync(composeFile, composeText(bed.registry, options.startTag ?? '1.0.0', port));
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
    health: { url: `http://127.0.0.1:${port}/health`, timeoutSeconds: options.healthTimeoutSeconds ?? 8 },
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
