/**
 * The embedded demo: with no configuration, `npm start` updates a real (tiny) app on this
 * machine, with no Docker, no systemd and no network. Under `<dataDir>/demo/`:
 * - `app/`: a Node HTTP server with a VERSION file and a /health route, installed at 1.0.0,
 *   run by the `command` service manager (start/stop/status shell commands, a pid file);
 * - a local stand-in for GitHub on 127.0.0.1 offering 1.1.0 (good), 1.2.0 (its health check
 *   fails: the update is rolled back) and 1.3.0-beta (a prerelease, not offered), each a real
 *   tarball with its .sha256, kept under `releases/` (see `demoReleaseAssets`); each release's
 *   `release_url` is its page on that stand-in.
 * Ports: 18090 (the app), 18089 (releases), 18091 (the hub, with UPDATER_DEMO_HUB=1) the first
 * time, then whatever `app.port`, `releases.port` and `hub.port` remember; a port that is taken
 * (another demo on this machine) is replaced by a free one, remembered, and the log says so.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { Logger } from 'pino';
import tar from 'tar-stream';
import type { Config } from '../config/index.js';
import type { AppComponent } from '../kinds/app/index.js';
import { createServiceManager, type CommandServiceManager } from '../services/service-manager.js';
import { writeFileAtomic } from '../util/fs-atomic.js';
import { startFakeGitHub } from './local-github.js';

const REPO = 'demo/sample-app';
const gzipped = promisify(gzip);

type Behaviour = 'good' | 'unhealthy';

export const DEMO_RELEASES: Array<{ version: string; behaviour: Behaviour; prerelease?: boolean; notes: string }> = [
  { version: '1.1.0', behaviour: 'good', notes: '### 1.1.0\n- A friendlier greeting.\n- Health route reports the version.' },
  { version: '1.2.0', behaviour: 'unhealthy', notes: '### 1.2.0\n- A new cache (its health check fails: watch the updater roll it back).' },
  { version: '1.3.0-beta.1', behaviour: 'good', prerelease: true, notes: '### 1.3.0-beta.1\n- A prerelease: offered only with includePrerelease.' },
];

function serverSource(behaviour: Behaviour): string {
  return `// sample-app: a tiny service the updater demo installs and updates.
import http from 'node:http';
import { readFileSync } from 'node:fs';
const version = readFileSync(new URL('./VERSION', import.meta.url), 'utf8').trim();
const healthy = ${behaviour === 'good'};
http.createServer((req, res) => {
  if (req.url === '/health') {
    res.writeHead(healthy ? 200 : 500, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ status: healthy ? 'ok' : 'failing', version }));
    return;
  }
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end('<h1>sample-app ' + version + '</h1>');
}).listen(Number(process.env.PORT), '127.0.0.1');
`;
}

function tree(version: string, behaviour: Behaviour): Record<string, string> {
  return {
    VERSION: `${version}\n`,
    'server.mjs': serverSource(behaviour),
    'README.txt': `sample-app ${version}: the updater's demo service.\n`,
  };
}

/** The time stamped on every entry of the demo's tarballs: fixed, so that the same tree is the same bytes. */
const DEMO_MTIME = new Date('2026-01-01T00:00:00Z');

/** The uncompressed tar of a release: entries in a fixed order, fixed mtime, mode and owner (0:0, no names). */
async function tarOf(version: string, behaviour: Behaviour): Promise<Buffer> {
  const pack = tar.pack();
  const top = `sample-app-${version}`;
  const stamp = { mtime: DEMO_MTIME, uid: 0, gid: 0, uname: '', gname: '' };
  pack.entry({ name: `${top}/`, type: 'directory', mode: 0o755, ...stamp });
  for (const [name, body] of Object.entries(tree(version, behaviour))) pack.entry({ name: `${top}/${name}`, type: 'file', mode: 0o644, ...stamp }, body);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export interface DemoReleaseAsset {
  version: string;
  prerelease: boolean;
  notes: string;
  /** `sample-app-<version>.tar.gz` */
  name: string;
  content: Buffer;
  sha256: string;
}

/**
 * The demo's release tarballs, the same bytes at every start. A run that downloads again after a
 * restart (recovery) checks the download against the `.sha256` published before the restart, so
 * the bytes must not change: the tar is built deterministically (above; Node's gzip writes no
 * time stamp), and the gzipped file is kept in `<demoDir>/releases/`, named after the tar's own
 * digest, and served from there at the next start (whatever another zlib would make of the same
 * tar). A change of the demo's code is a new digest, hence a new tarball; the older one is removed.
 */
export async function demoReleaseAssets(demoDir: string): Promise<DemoReleaseAsset[]> {
  const store = join(demoDir, 'releases');
  mkdirSync(store, { recursive: true });
  const assets: DemoReleaseAsset[] = [];
  for (const r of DEMO_RELEASES) {
    const name = `sample-app-${r.version}.tar.gz`;
    const raw = await tarOf(r.version, r.behaviour);
    const key = createHash('sha256').update(raw).digest('hex').slice(0, 16);
    const kept = `sample-app-${r.version}.${key}.tar.gz`;
    let content: Buffer;
    if (existsSync(join(store, kept))) {
      content = readFileSync(join(store, kept));
    } else {
      content = await gzipped(raw, { level: 9 });
      for (const old of readdirSync(store)) {
        if (old !== kept && old.startsWith(`sample-app-${r.version}.`) && old.endsWith('.tar.gz')) rmSync(join(store, old), { force: true });
      }
      writeFileAtomic(join(store, kept), content);
    }
    assets.push({ version: r.version, prerelease: r.prerelease ?? false, notes: r.notes, name, content, sha256: createHash('sha256').update(content).digest('hex') });
  }
  return assets;
}

/** Whether 127.0.0.1:`port` can be listened on now. */
function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** A port that is free now, from the system. */
function anyFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * A port for one of the demo's parts, remembered in `file` across restarts (so URLs stay the
 * same), `fallback` the first time. When that port is taken (another demo, another program), a free
 * one is taken instead, remembered and logged: the demo must neither fail to start nor talk to
 * someone else's server (the sample app's old version, restarted by a rollback, would otherwise
 * die of EADDRINUSE and the rollback end `rollback_failed`). `ours`: the part already runs on the
 * remembered port (the sample app left running), which is then kept.
 */
async function demoPort(file: string, fallback: number, what: string, logger: Logger, ours = false): Promise<number> {
  let remembered: number | null = null;
  if (existsSync(file)) {
    const n = Number(readFileSync(file, 'utf8').trim());
    if (Number.isInteger(n) && n > 0 && n < 65536) remembered = n;
  }
  const wanted = remembered ?? fallback;
  if (ours || (await canListen(wanted))) {
    if (remembered === null) writeFileSync(file, `${wanted}\n`);
    return wanted;
  }
  const port = await anyFreePort();
  writeFileSync(file, `${port}\n`);
  logger.warn({ taken: wanted, port, file }, `demo: port ${wanted} is taken (another demo, or another program); ${what} uses port ${port} instead (remembered in ${file})`);
  return port;
}

const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

/**
 * The demo's `command` service: `argv` started in `cwd` in the background, its pid in `pidFile`;
 * stopped by that pid (waiting up to 5 s for it to end, then the pid file goes); running while that
 * pid lives and is not a zombie. Where nothing reaps orphans promptly (a container whose PID 1 is
 * not an init, some sandboxes), an app that has exited stays a zombie for a while, and `kill -0`
 * alone calls it running: verify could not see that a release's app died, and stop would wait
 * for the reaper (docs/reliability.md, "A release that fails at once fails fast").
 */
export function pidFileService(o: { cwd: string; env: Record<string, string>; argv: string[]; pidFile: string; logFile: string }): CommandServiceManager {
  const pid = q(o.pidFile);
  const env = Object.entries(o.env).map(([k, v]) => `${k}=${q(v)} `).join('');
  const alive = `kill -0 "$p" 2>/dev/null && ! grep -qs '^State:[[:space:]]*Z' /proc/"$p"/status`;
  return {
    manager: 'command',
    start: `cd ${q(o.cwd)} && ${env}nohup ${o.argv.map(q).join(' ')} >> ${q(o.logFile)} 2>&1 < /dev/null & echo $! > ${pid}`,
    stop: `if [ -f ${pid} ]; then p=$(cat ${pid}); kill "$p" 2>/dev/null; i=0; while ${alive} && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; rm -f ${pid}; fi`,
    status: `[ -f ${pid} ] && p=$(cat ${pid}) && ${alive}`,
  };
}

/** The demo hub's name and the demo device's group (UPDATER_DEMO_HUB=1). */
export const DEMO_HUB = { hub: 'dunebugger', group: 'demo-device' } as const;

export interface Demo {
  config: Config;
  component: AppComponent;
  releasesUrl: string;
  stop(): Promise<void>;
}

export async function startDemo(base: Config, logger: Logger): Promise<Demo> {
  const dir = join(base.dataDir, 'demo');
  const app = join(dir, 'app');
  mkdirSync(dir, { recursive: true });
  if (!existsSync(join(app, 'VERSION'))) {
    mkdirSync(app, { recursive: true });
    for (const [name, body] of Object.entries(tree('1.0.0', 'good'))) writeFileSync(join(app, name), body);
  }

  const gh = await startFakeGitHub({ port: await demoPort(join(dir, 'releases.port'), 18089, 'the stand-in for GitHub', logger) });
  for (const a of await demoReleaseAssets(dir)) {
    gh.addRelease(REPO, {
      tag: `v${a.version}`,
      prerelease: a.prerelease,
      body: a.notes,
      assets: [
        { name: a.name, content: a.content },
        { name: `${a.name}.sha256`, content: `${a.sha256}  ${a.name}\n` },
      ],
    });
  }

  const pid = join(dir, 'app.pid');
  const log = join(dir, 'app.log');
  const sampleApp = (port: number): AppComponent => ({
    name: 'sample-app',
    kind: 'app',
    repo: REPO,
    updateFirst: false,
    installPath: app,
    asset: 'sample-app-{version}.tar.gz',
    service: pidFileService({ cwd: app, env: { PORT: String(port) }, argv: [process.execPath, 'server.mjs'], pidFile: pid, logFile: log }),
    health: { url: `http://127.0.0.1:${port}/health`, timeoutSeconds: 6 },
    minFreeMB: 0,
    settleSeconds: 3,
    maxDownloadMB: 16,
  });
  // The status command does not depend on the port: an app left running (a killed updater) keeps its port.
  const running = (await createServiceManager(sampleApp(0).service).status()).active;
  const port = await demoPort(join(dir, 'app.port'), 18090, 'the sample app', logger, running);
  const component = sampleApp(port);
  const manager = createServiceManager(component.service);
  if (running) {
    logger.info({ url: `http://127.0.0.1:${port}/`, port }, `demo: sample-app already runs on port ${port}`);
  } else {
    await manager.start();
    logger.info({ url: `http://127.0.0.1:${port}/`, port }, `demo: started sample-app on port ${port}`);
  }
  logger.info({ releases: `${gh.apiUrl}/repos/${REPO}/releases` }, `demo: serving sample-app releases 1.1.0 (good), 1.2.0 (fails its health check), 1.3.0-beta.1 (prerelease) from ${gh.url}`);

  // UPDATER_DEMO_HUB=1: a local stand-in for the Azure Web PubSub hub, which the updater joins as
  // the DuneBugger frontend's devices do; `updater frontend SUBJECT [BODY]` plays the frontend
  // (docs/frontend.md). Its connection string is local and made up, kept in demo/webpubsub.json.
  let hub: { close(): Promise<void> } | null = null;
  let webpubsub = base.webpubsub;
  if (process.env.UPDATER_DEMO_HUB === '1' && !webpubsub) {
    const { startLocalWebPubSub } = await import('./local-webpubsub.js');
    const local = await startLocalWebPubSub({ hub: DEMO_HUB.hub, accessKey: randomBytes(24).toString('base64url'), port: await demoPort(join(dir, 'hub.port'), 18091, 'the stand-in for the Web PubSub hub', logger) });
    hub = local;
    webpubsub = { connectionString: local.connectionString, hub: DEMO_HUB.hub, group: DEMO_HUB.group, controller: true };
    writeFileSync(join(dir, 'webpubsub.json'), `${JSON.stringify({ connectionString: local.connectionString, hub: DEMO_HUB.hub, group: DEMO_HUB.group })}\n`, { mode: 0o600 });
    logger.info({ hub: `${local.endpoint}/client/hubs/${DEMO_HUB.hub}`, group: DEMO_HUB.group }, `demo: a local Web PubSub hub; play the frontend with \`npm run updater -- frontend controller.heartbeat\``);
  }

  const config: Config = {
    ...base,
    github: { ...base.github, apiUrl: gh.apiUrl, rawUrl: gh.rawUrl, token: null },
    ...(webpubsub ? { webpubsub } : {}),
    components: [component],
  };
  return {
    config,
    component,
    releasesUrl: gh.apiUrl,
    async stop() {
      await hub?.close();
      await gh.close();
      // The demo app belongs to the demo: stop it with the updater so nothing is left running.
      await manager.stop().catch(() => undefined);
    },
  };
}
