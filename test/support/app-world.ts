/**
 * An app on the real systemd of the test bed: a tiny Python HTTP service installed under the
 * bed's apps directory (the same path inside the systemd container), its unit, an optional venv,
 * a fake GitHub offering release tarballs, and a real core (src/main.ts) with the app kind.
 * Releases come in a top-level folder with a plain VERSION, or shaped like the real DuneBugger
 * core (`layout: 'core'`: no top-level folder, app/config/dunebugger.conf, a JSON VERSION).
 * With `manager: 'command'` the same app runs on this machine instead, started, stopped and asked
 * by shell commands with a pid file, as the embedded demo runs its app (src/demo/demo.ts).
 */
import { chmodSync, mkdirSync, readFileSync, writeFileSync, readdirSync, lstatSync, readlinkSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, relative } from 'node:path';
import { execFileSync } from 'node:child_process';
import type { Journal } from '../../src/journal/journal.js';
import type { Engine } from '../../src/engine/engine.js';
import type { AppComponent } from '../../src/kinds/app/index.js';
import type { ServiceManagerConfig } from '../../src/services/service-manager.js';
import { startFakeGitHub, type FakeAssetSpec, type FakeGitHub } from '../../src/demo/local-github.js';
import { pidFileService } from '../../src/demo/demo.js';
import { createCore, type Core } from '../../src/main.js';
import { testConfig, testLogger } from './harness.js';
import { freePort, run, type Bed } from './testbed.js';

/**
 * What a release's app does: `good`; `unhealthy`: /health answers 500; `exit`: the process exits 3
 * at once, before it listens; `unavailable`: /health answers 503 (`starting`) for the release's
 * `unavailableSeconds` after the process started (for ever without), then 200.
 */
export type Behaviour = 'good' | 'unhealthy' | 'exit' | 'unavailable';

/** app.py: serves /health with the VERSION; BEHAVIOUR tweaks it per release. */
export function appPy(behaviour: Behaviour, unavailableSeconds?: number): string {
  const until = behaviour !== 'unavailable' ? '0' : unavailableSeconds === undefined ? "float('inf')" : `time.monotonic() + ${unavailableSeconds}`;
  return `import http.server, json, os, sys, time
HERE = os.path.dirname(os.path.abspath(__file__))
VERSION = open(os.path.join(HERE, 'VERSION')).read().strip()
UNAVAILABLE_UNTIL = ${until}
${behaviour === 'exit' ? 'sys.exit(3)\n' : ''}class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if time.monotonic() < UNAVAILABLE_UNTIL:
            body = json.dumps({'status': 'starting', 'version': VERSION}).encode()
            self.send_response(503)
            self.send_header('content-type', 'application/json')
            self.send_header('content-length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        ok = ${behaviour === 'unhealthy' ? 'False' : 'True'}
        body = json.dumps({'status': 'ok' if ok else 'broken', 'version': VERSION}).encode()
        self.send_response(200 if ok else 500)
        self.send_header('content-type', 'application/json')
        self.send_header('content-length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()
`;
}

/**
 * app/main.py of the core layout: as appPy, but run from `app/` with the JSON VERSION at the
 * install root (read as DuneBugger's build writes it) and the device's app/config/dunebugger.conf,
 * whose text /health shows as `conf`.
 */
export function corePy(behaviour: 'good' | 'unhealthy' | 'exit'): string {
  return `import http.server, json, os, sys
HERE = os.path.dirname(os.path.abspath(__file__))
META = json.load(open(os.path.join(HERE, '..', 'VERSION')))
VERSION = META['full_version'] if META.get('full_version') not in (None, '', 'null') else META['version']
try:
    CONF = open(os.path.join(HERE, 'config', 'dunebugger.conf')).read()
except OSError:
    CONF = None
${behaviour === 'exit' ? 'sys.exit(3)\n' : ''}class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = ${behaviour === 'unhealthy' ? 'False' : 'True'}
        body = json.dumps({'status': 'ok' if ok else 'broken', 'version': VERSION, 'conf': CONF}).encode()
        self.send_response(200 if ok else 500)
        self.send_header('content-type', 'application/json')
        self.send_header('content-length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()
`;
}

/** app/config/dunebugger.conf as a release ships it unless a spec says otherwise. */
export const RELEASE_CONF = '[General]\nmode = factory\nlanguage = en\n';

/** A VERSION file as DuneBugger's build writes it. */
export function jsonVersion(version: string): string {
  return `${JSON.stringify({ version, prerelease: 'null', build_type: 'release', build_number: '17', commit: 'ab12cd3', full_version: version }, null, 2)}\n`;
}

/** The entries at the root of a core-layout release (no top-level folder). */
export const CORE_ROOT = ['app', 'requirements.txt', 'VERSION', 'CHANGELOG.md', 'ReadMe.md'];

export interface ReleaseSpec {
  version: string;
  behaviour?: Behaviour;
  /** With behaviour `unavailable`: how long /health answers 503 after the start (default: for ever). */
  unavailableSeconds?: number;
  /**
   * `folder` (the default): the tree in a `sample-app-<version>/` folder, a plain VERSION.
   * `core`: as the real DuneBugger core ships it: no top-level folder; app/ (main.py,
   * config/dunebugger.conf), requirements.txt, a JSON VERSION, CHANGELOG.md, ReadMe.md.
   */
  layout?: 'folder' | 'core';
  /** core layout: the release's app/config/dunebugger.conf (default RELEASE_CONF); null: not shipped. */
  conf?: string | null;
  requirements?: string;
  /** Publish a .sha256 (true: correct; 'wrong': a wrong one). */
  sha256?: boolean | 'wrong';
  asset?: Partial<FakeAssetSpec>;
  /** Replace the tarball entirely (hostile archives). */
  tarball?: Buffer;
}

/** Makes `dir` hold the app at `version`. */
export function writeTree(dir: string, spec: ReleaseSpec): void {
  mkdirSync(join(dir, 'lib'), { recursive: true });
  writeFileSync(join(dir, 'VERSION'), `${spec.version}\n`);
  writeFileSync(join(dir, 'app.py'), appPy(spec.behaviour ?? 'good', spec.unavailableSeconds));
  chmodSync(join(dir, 'app.py'), 0o755);
  writeFileSync(join(dir, 'lib', 'data.txt'), `data of ${spec.version}\n`);
  if (spec.requirements !== undefined) writeFileSync(join(dir, 'requirements.txt'), spec.requirements);
}

/** Makes `dir` hold the app at `version` in the core layout. */
export function writeCoreTree(dir: string, spec: ReleaseSpec): void {
  mkdirSync(join(dir, 'app', 'config'), { recursive: true });
  const behaviour = spec.behaviour ?? 'good';
  if (behaviour === 'unavailable') throw new Error('the core layout has no `unavailable` behaviour: use the folder layout');
  writeFileSync(join(dir, 'app', 'main.py'), corePy(behaviour));
  chmodSync(join(dir, 'app', 'main.py'), 0o755);
  if (spec.conf !== null) writeFileSync(join(dir, 'app', 'config', 'dunebugger.conf'), spec.conf ?? RELEASE_CONF);
  writeFileSync(join(dir, 'requirements.txt'), spec.requirements ?? '# nothing needed\n');
  writeFileSync(join(dir, 'VERSION'), jsonVersion(spec.version));
  writeFileSync(join(dir, 'CHANGELOG.md'), `# Changelog\n\n## ${spec.version}\n- a release for the tests\n`);
  writeFileSync(join(dir, 'ReadMe.md'), '# DuneBugger core\n');
}

export function tarball(spec: ReleaseSpec, work: string): Buffer {
  if (spec.layout === 'core') {
    // The real tar, entries named at the root: no top-level folder.
    const dir = join(work, `core-${spec.version}`);
    writeCoreTree(dir, spec);
    return execFileSync('tar', ['-C', dir, '-czf', '-', ...CORE_ROOT]);
  }
  const top = join(work, `sample-app-${spec.version}`);
  writeTree(top, spec);
  return execFileSync('tar', ['-C', work, '-czf', '-', `sample-app-${spec.version}`]);
}

/** A stable digest of a directory tree: paths, types, modes, contents, link targets. */
export function treeHash(dir: string): string {
  const h = createHash('sha256');
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = lstatSync(p);
      h.update(`${relative(dir, p)}|${st.mode.toString(8)}|`);
      if (st.isSymbolicLink()) h.update(`->${readlinkSync(p)}`);
      else if (st.isDirectory()) walk(p);
      else h.update(readFileSync(p));
      h.update('\n');
    }
  };
  walk(dir);
  return h.digest('hex');
}

export interface AppWorld {
  base: string;
  installPath: string;
  backupDir: string;
  dataDir: string;
  /** The systemd unit (systemd worlds); the pid file's name stem for command worlds. */
  unit: string;
  port: number;
  component: AppComponent;
  gh: FakeGitHub;
  core: Core;
  journal: Journal;
  engine: Engine;
  systemctl: (...args: string[]) => Promise<{ code: number; stdout: string; stderr: string }>;
  /** Whether the app runs, as its service manager says (systemd: is-active; command: the status command). */
  running(): Promise<boolean>;
  health(): Promise<{ status: number; body: unknown }>;
  close(): Promise<void>;
}

export interface AppWorldOptions {
  /** A venv of its own for requirements.txt (true), or the path of one made by `sharedVenv`. */
  venv?: boolean | string;
  healthTimeoutSeconds?: number;
  journalDir?: string;
  /** The layout of the installed 1.0.0 (and so of the unit's ExecStart); default `folder`. */
  layout?: 'folder' | 'core';
  /** The component's `preserve` globs. */
  preserve?: string[];
  /** How the app is run: a systemd unit in the bed's container (default), or shell commands here, as the demo does. */
  manager?: 'systemd' | 'command';
  /** The unit's `Restart=` (default `no`), with `RestartSec=` `restartSec` (default 1) and no start limit in reach. */
  restart?: 'no' | 'on-failure' | 'always';
  restartSec?: number;
  /** The component's settleSeconds (default 1). */
  settleSeconds?: number;
}

let counter = 0;

/** The Python that runs the app on this machine (command worlds): an absolute path, as a start command should use. */
let hostPython: string | null = null;
const python = () => (hostPython ??= execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim());

export async function appWorld(bed: Bed, releases: ReleaseSpec[], options: AppWorldOptions = {}): Promise<AppWorld> {
  process.env.DOCKER_HOST = bed.dockerHost;
  const id = `${process.pid}-${++counter}`;
  const base = join(bed.appsDir, `app-${id}`);
  const installPath = join(base, 'app');
  const backupDir = join(base, 'backups');
  const dataDir = join(base, 'data');
  const work = join(base, 'work');
  for (const d of [installPath, backupDir, dataDir, work]) mkdirSync(d, { recursive: true });
  if (options.layout === 'core') writeCoreTree(installPath, { version: '1.0.0' });
  else writeTree(installPath, { version: '1.0.0' });
  const main = options.layout === 'core' ? `${installPath}/app/main.py` : `${installPath}/app.py`;
  const port = await freePort();
  const unit = `sample-app-${id}`;
  const dexec = (...args: string[]) => run('docker', ['exec', bed.systemd, ...args], bed.env);
  const manager = options.manager ?? 'systemd';
  let service: ServiceManagerConfig;
  if (manager === 'systemd') {
    const unitFile = join(base, `${unit}.service`);
    const restart = options.restart ?? 'no';
    const limits = restart === 'no' ? '' : 'StartLimitIntervalSec=600\nStartLimitBurst=1000\n';
    const restartLines = restart === 'no' ? 'Restart=no\n' : `Restart=${restart}\nRestartSec=${options.restartSec ?? 1}\n`;
    writeFileSync(unitFile, `[Unit]\nDescription=sample app ${id}\n${limits}[Service]\nType=simple\nEnvironment=PORT=${port}\nExecStart=/usr/bin/python3 ${main}\n${restartLines}[Install]\nWantedBy=multi-user.target\n`);
    await dexec('cp', unitFile, `/etc/systemd/system/${unit}.service`);
    await dexec('systemctl', 'daemon-reload');
    const started = await dexec('systemctl', 'start', unit);
    if (started.code !== 0) throw new Error(`cannot start ${unit}: ${started.stderr}`);
    service = { manager: 'systemd', unit, systemctl: ['docker', 'exec', bed.systemd, 'systemctl'] };
  } else {
    // The demo's commands (src/demo/demo.ts), with Python for Node.
    service = pidFileService({ cwd: installPath, env: { PORT: String(port) }, argv: [python(), options.layout === 'core' ? 'app/main.py' : 'app.py'], pidFile: join(base, `${unit}.pid`), logFile: join(base, `${unit}.log`) });
  }
  const commands = service.manager === 'command' ? service : null;
  if (commands) {
    const started = await run('sh', ['-c', commands.start]);
    if (started.code !== 0) throw new Error(`cannot start the app: ${started.stderr}`);
  }
  let venv: string | undefined = typeof options.venv === 'string' ? options.venv : undefined;
  if (options.venv === true) {
    venv = join(base, 'venv');
    const v = await dexec('python3', '-m', 'venv', venv);
    if (v.code !== 0) throw new Error(`venv: ${v.stderr}`);
  }

  const gh = await startFakeGitHub();
  for (const spec of releases) {
    const content = spec.tarball ?? tarball(spec, work);
    const name = `sample-app-${spec.version}.tar.gz`;
    const assets: FakeAssetSpec[] = [{ name, content, ...spec.asset }];
    if (spec.sha256) {
      const digest = spec.sha256 === 'wrong' ? 'f'.repeat(64) : createHash('sha256').update(content).digest('hex');
      assets.push({ name: `${name}.sha256`, content: `${digest}  ${name}\n` });
    }
    gh.addRelease('o/sample-app', { tag: `v${spec.version}`, assets });
  }

  const component: AppComponent = {
    name: 'sample-app',
    kind: 'app',
    repo: 'o/sample-app',
    updateFirst: false,
    installPath,
    asset: 'sample-app-{version}.tar.gz',
    service,
    health: { url: `http://127.0.0.1:${port}/health`, timeoutSeconds: options.healthTimeoutSeconds ?? 10 },
    minFreeMB: 1,
    settleSeconds: options.settleSeconds ?? 1,
    maxDownloadMB: 64,
    ...(venv ? { venv, pipInstall: ['docker', 'exec', bed.systemd, join(venv, 'bin', 'pip'), 'install', '--no-index'] } : {}),
    ...(options.preserve ? { preserve: options.preserve } : {}),
  };
  // The journal may live on a disk of its own (journalDir); downloads stay in dataDir.
  const core = createCore({
    config: testConfig({ dataDir, backupDir, github: { apiUrl: gh.apiUrl, rawUrl: gh.rawUrl, token: null }, components: [component] }),
    logger: testLogger(),
    ...(options.journalDir ? { databasePath: join(options.journalDir, 'updater.db') } : {}),
  });
  const health = async () => {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/health`);
      return { status: r.status, body: await r.json() };
    } catch (error) {
      return { status: 0, body: String(error) };
    }
  };
  const running = async () => (commands ? (await run('sh', ['-c', commands.status])).code === 0 : (await dexec('systemctl', 'is-active', unit)).stdout.trim() === 'active');
  return {
    base,
    installPath,
    backupDir,
    dataDir,
    unit,
    port,
    component,
    gh,
    core,
    journal: core.journal,
    engine: core.engine,
    systemctl: (...args) => dexec('systemctl', ...args),
    running,
    health,
    async close() {
      if (commands) {
        await run('sh', ['-c', commands.stop]);
      } else {
        await dexec('systemctl', 'stop', unit);
        await dexec('rm', '-f', `/etc/systemd/system/${unit}.service`);
        await dexec('systemctl', 'daemon-reload');
        await dexec('systemctl', 'reset-failed');
      }
      await core.close();
      await gh.close();
      await run('rm', ['-rf', base]);
    },
  };
}

/**
 * One venv in the bed's apps directory for the worlds of a test file (making one takes seconds);
 * `remove` deletes it. pip installs nothing into it: the releases' requirements.txt are empty.
 */
export async function sharedVenv(bed: Bed): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = join(bed.appsDir, `venv-${process.pid}-${++counter}`);
  const v = await run('docker', ['exec', bed.systemd, 'python3', '-m', 'venv', path], bed.env);
  if (v.code !== 0) throw new Error(`venv: ${v.stderr}`);
  return { path, remove: async () => void (await run('rm', ['-rf', path])) };
}

/** What is beside the install path (staging, old, failed trees) and in the downloads dir (`sample-app/<asset>` for a kept download). */
export function leftovers(w: AppWorld): string[] {
  const beside = readdirSync(w.base).filter((n) => /^app\./.test(n));
  const downloads = (() => {
    try {
      return readdirSync(join(w.dataDir, 'downloads'), { recursive: true, encoding: 'utf8' }).sort();
    } catch {
      return [];
    }
  })();
  return [...beside, ...downloads];
}

