/**
 * A compose project of the sample service on the real test bed, a fake GitHub offering its
 * releases, and a real engine with the container driver over a real SQLite file.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { pino } from 'pino';
import { openDatabase } from '../../src/journal/database.js';
import { Journal } from '../../src/journal/journal.js';
import { Engine } from '../../src/engine/engine.js';
import { GitHubClient } from '../../src/releases/github.js';
import { ReleaseDiscovery } from '../../src/releases/discovery.js';
import { ComponentDriver } from '../../src/drivers/component-driver.js';
import { ContainerDriver } from '../../src/kinds/container/container-driver.js';
import { DockerEngine } from '../../src/kinds/container/engine-api.js';
import { detectCompose } from '../../src/kinds/container/compose-cli.js';
import type { ContainerComponent } from '../../src/kinds/container/index.js';
import { startFakeGitHub, type FakeGitHub } from '../../src/demo/local-github.js';
import { cleanup, tempDir } from './harness.js';
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
  journal: Journal;
  engine: Engine;
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
  const db = openDatabase(join(options.journalDir ?? dir, 'updater.db'));
  const journal = new Journal(db);
  const logger = pino({ level: process.env.TEST_LOG ?? 'silent' });
  const client = new GitHubClient({ apiUrl: gh.apiUrl, rawUrl: gh.rawUrl, token: null, cache: journal.httpCache, logger });
  const discovery = new ReleaseDiscovery(client, { includePrerelease: false, updaterVersion: '0.1.0' });
  const component = {
    name: 'sample',
    kind: 'container',
    repo: 'o/sample',
    composeFile,
    service: 'sample',
    health: { url: `http://127.0.0.1:${port}/health`, timeoutSeconds: options.healthTimeoutSeconds ?? 8 },
    minFreeMB: 1,
  } as ContainerComponent;
  const docker = new DockerEngine();
  const kind = new ContainerDriver(component, { backupDir, backupRetention: options.retention ?? 3 }, docker);
  const driver = new ComponentDriver(component, kind, discovery);
  const engine = new Engine({ journal, components: [component], driverFor: () => driver, logger });
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
    journal,
    engine,
    docker,
    compose,
    containerImage,
    imageId: (ref) => docker.imageId(ref),
    async close() {
      await compose('down', '--remove-orphans', '-t', '1');
      db.close();
      await gh.close();
      cleanup(dir);
    },
  };
}
