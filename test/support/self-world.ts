/**
 * A world for the `self` kind: real packaged releases of the updater (`npm run package`'s
 * packageRelease, from this checkout's build), installed with their own install.sh into an install
 * root, run by the real `ROOT/launch` under a real supervisor (a plain restart loop on this
 * machine, or the test bed's systemd with Restart=always), its releases served by the local
 * GitHub stand-in. Tests and the bench drive it through the REST API, as a user would.
 *
 * Releases: 9.1.0 (installed), 9.2.0 (good) and 9.3.0 in one of its variants:
 * - `good`: a good release;
 * - `broken`: bin/updater.mjs exits 1 at once;
 * - `hang`: bin/updater.mjs starts and never does anything (never verifies itself);
 * - `bad-migration`: the real updater with two more migrations after its own (N): N+1 creates a
 *   table (committed), N+2 fails; the release stops at start (journal error) after changing the
 *   schema: the old release can read the journal again only because launch puts the copy back.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { packageRelease } from '../../scripts/package.js';
import { startFakeGitHub, type FakeGitHub } from '../../src/demo/local-github.js';
import { freePort, run, type Bed } from './testbed.js';
import { tempDir } from './harness.js';

export type Variant = 'good' | 'broken' | 'hang' | 'bad-migration';
export const REPO = 'dune/updater';
const asset = (v: string) => `dune-updater-${v}.tar.gz`;

/** Builds (once per directory) the tarballs: 9.1.0, 9.2.0, and 9.3.0 in each variant. */
export async function packageSelfReleases(dir: string): Promise<(version: string, variant?: Variant) => string> {
  const path = (version: string, variant: Variant = 'good') => join(dir, variant, asset(version));
  if (!existsSync(path('9.3.0', 'bad-migration'))) {
    mkdirSync(join(dir, 'good'), { recursive: true });
    for (const v of ['9.1.0', '9.2.0', '9.3.0']) await packageRelease({ version: v, out: join(dir, 'good'), build: !existsSync(join(import.meta.dirname, '..', '..', 'dist', 'updater.js')) });
    const variants: Array<[Variant, (top: string) => void]> = [
      ['broken', (top) => writeFileSync(join(top, 'bin', 'updater.mjs'), '#!/usr/bin/env node\nconsole.error("updater 9.3.0: cannot start");\nprocess.exit(1);\n', { mode: 0o755 })],
      ['hang', (top) => writeFileSync(join(top, 'bin', 'updater.mjs'), '#!/usr/bin/env node\nconsole.error("updater 9.3.0: starting");\nsetInterval(() => {}, 1 << 30);\n', { mode: 0o755 })],
      [
        'bad-migration',
        (top) => {
          // The two migrations after the release's own: the first changes the schema, the second fails.
          const n = readdirSync(join(top, 'migrations')).filter((f) => f.endsWith('.sql')).length;
          const name = (i: number, what: string) => `${String(i).padStart(3, '0')}_${what}.sql`;
          writeFileSync(join(top, 'migrations', name(n + 1, 'trial_table')), 'CREATE TABLE trial_table (x INTEGER);\n');
          writeFileSync(join(top, 'migrations', name(n + 2, 'broken')), 'INSERT INTO no_such_table VALUES (1);\n');
        },
      ],
    ];
    for (const [variant, change] of variants) {
      const work = join(dir, `work-${variant}`);
      rmSync(work, { recursive: true, force: true });
      mkdirSync(work, { recursive: true });
      untar(path('9.3.0'), work);
      change(join(work, 'dune-updater-9.3.0'));
      mkdirSync(join(dir, variant), { recursive: true });
      const out = path('9.3.0', variant);
      const tar = spawnSync('tar', ['-C', work, '-czf', out, 'dune-updater-9.3.0']);
      if (tar.status !== 0) throw new Error(`tar: ${String(tar.stderr)}`);
      rmSync(work, { recursive: true, force: true });
    }
  }
  return path;
}

function untar(tarball: string, into: string): void {
  const r = spawnSync('tar', ['-C', into, '-xzf', tarball]);
  if (r.status !== 0) throw new Error(`tar -x ${tarball}: ${String(r.stderr)}`);
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

export interface SelfWorldOptions {
  /** Where the tarballs are (packageSelfReleases). */
  releasesDir: string;
  variant?: Variant;
  supervisor: 'loop' | 'systemd';
  bed?: Bed;
  /** Environment of the supervised processes (fault points, launch's trial limits). */
  env?: Record<string, string>;
}

export interface RunBody {
  run_id: number;
  state: string;
  result: string | null;
  message: string | null;
  recoveries: number;
  error: { code: string; message: string } | null;
  transitions?: Array<{ from: string | null; to: string; event: string; message: string }>;
}

export interface SelfWorld {
  root: string;
  dataDir: string;
  url: string;
  github: FakeGitHub;
  /** GET path of the updater's API, or null while nothing answers. */
  get<T>(path: string): Promise<T | null>;
  /** POST an update to `version`; the run's id. */
  update(version: string): Promise<number>;
  /** Polls the run until it has a result (the updater may restart meanwhile). */
  waitRun(runId: number, timeoutMs?: number): Promise<RunBody>;
  /** Polls /healthz until it answers this version (and the journal is ok). */
  waitVersion(version: string, timeoutMs?: number): Promise<void>;
  /** The pids of updater processes (node running a release of this root). */
  releaseProcesses(): number[];
  link(name: 'current' | 'previous'): string | null;
  /** The launch and release lines the supervised processes printed (loop only). */
  output(): string;
  close(): Promise<void>;
}

let worlds = 0;

export async function selfWorld(o: SelfWorldOptions): Promise<SelfWorld> {
  const id = `${process.pid}-${++worlds}`;
  const base = o.supervisor === 'systemd' ? join(o.bed!.appsDir, `self-${id}`) : tempDir('updater-self-');
  const root = join(base, 'root');
  const dataDir = join(base, 'data');
  mkdirSync(root, { recursive: true });
  mkdirSync(dataDir, { recursive: true });
  const tarball = (v: string, variant?: Variant) => join(o.releasesDir, variant ?? 'good', asset(v));
  // Installed as a device would be: the release's own install.sh.
  const unpacked = join(base, 'unpacked');
  mkdirSync(unpacked, { recursive: true });
  untar(tarball('9.1.0'), unpacked);
  const install = spawnSync('sh', [join(unpacked, 'dune-updater-9.1.0', 'install.sh'), root], { encoding: 'utf8' });
  if (install.status !== 0) throw new Error(`install.sh: ${install.stderr}`);
  rmSync(unpacked, { recursive: true, force: true });

  const github = await startFakeGitHub();
  for (const [v, variant] of [['9.2.0', 'good'], ['9.3.0', o.variant ?? 'good']] as const) {
    const file = tarball(v, variant);
    github.addRelease(REPO, { tag: `v${v}`, assets: [{ name: asset(v), content: readFileSync(file) }, { name: `${asset(v)}.sha256`, content: `${sha256(file)}  ${asset(v)}\n` }] });
  }
  const port = await freePort();
  const config = join(base, 'updater.yaml');
  writeFileSync(
    config,
    [
      `server: {port: ${port}}`,
      `dataDir: ${dataDir}`,
      'checkIntervalHours: 0',
      `github: {apiUrl: ${github.apiUrl}, rawUrl: ${github.rawUrl}}`,
      'components:',
      `  - {name: updater, kind: self, repo: ${REPO}, installRoot: ${root}, minFreeMB: 0}`,
      '',
    ].join('\n'),
  );
  const url = `http://127.0.0.1:${port}`;
  const env = { UPDATER_LOG_LEVEL: 'info', UPDATER_TRIAL_STOP_SECONDS: '3', ...o.env };

  let loop: ChildProcess | null = null;
  let out = '';
  const unit = `updater-self-${id}`;
  const dexec = (...args: string[]) => run('docker', ['exec', o.bed!.systemd, ...args], o.bed!.env);
  if (o.supervisor === 'loop') {
    // A plain restart loop: what any supervisor does, started in a process group of its own.
    loop = spawn('sh', ['-c', `while :; do "${root}/launch" serve --config "${config}"; sleep 0.2; done`], { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    loop.stdout!.on('data', (b) => (out += b));
    loop.stderr!.on('data', (b) => (out += b));
  } else {
    // The test bed's systemd, as deploy/updater.service has it: Restart=always, no start limit.
    const node = join(o.bed!.appsDir, 'node24', 'bin', 'node');
    if (!existsSync(node)) {
      mkdirSync(dirname(node), { recursive: true });
      copyFileSync(process.execPath, `${node}.tmp`);
      spawnSync('chmod', ['755', `${node}.tmp`]);
      spawnSync('mv', [`${node}.tmp`, node]);
    }
    const envLines = Object.entries({ ...env, PATH: `${dirname(node)}:/usr/local/bin:/usr/bin:/bin` })
      .map(([k, v]) => `Environment=${k}=${v}`)
      .join('\n');
    const unitFile = join(base, `${unit}.service`);
    writeFileSync(unitFile, `[Unit]\nDescription=dune-updater self-update test ${id}\nStartLimitIntervalSec=0\n[Service]\nType=simple\n${envLines}\nExecStart=${root}/launch serve --config ${config}\nRestart=always\nRestartSec=0.2\nRestartPreventExitStatus=2\nTimeoutStopSec=20\n[Install]\nWantedBy=multi-user.target\n`);
    await dexec('cp', unitFile, `/etc/systemd/system/${unit}.service`);
    await dexec('systemctl', 'daemon-reload');
    const started = await dexec('systemctl', 'start', unit);
    if (started.code !== 0) throw new Error(`cannot start ${unit}: ${started.stderr}`);
  }

  const get = async <T>(path: string): Promise<T | null> => {
    try {
      const res = await fetch(`${url}${path}`, { signal: AbortSignal.timeout(3000) });
      return res.ok ? ((await res.json()) as T) : null;
    } catch {
      return null;
    }
  };
  const world: SelfWorld = {
    root,
    dataDir,
    url,
    github,
    get,
    async update(version) {
      const deadline = Date.now() + 30_000;
      for (;;) {
        let sent = false;
        try {
          const res = await fetch(`${url}/api/components/updater/updates`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ version }) });
          sent = true;
          const body = (await res.json()) as { run_id?: number; message?: string };
          if (res.status === 202 && body.run_id) return body.run_id;
          throw new Error(`POST updates answered ${res.status}: ${JSON.stringify(body)}`);
        } catch (error) {
          const refused = /ECONNREFUSED/.test(String((error as { cause?: unknown }).cause ?? error));
          if (!sent && !refused) {
            // The request reached the updater, which died before answering (a crash test): the
            // run may exist. Ask the journal, once the updater answers again, instead of asking twice.
            const end = Date.now() + 30_000;
            while (Date.now() < end) {
              const runs = await get<Array<{ run_id: number }>>('/api/runs?limit=1');
              if (runs) {
                if (runs[0]) return runs[0].run_id;
                break;
              }
              await sleep(200);
            }
          }
          if (Date.now() > deadline || !(refused || /recovered/.test(String(error)))) throw error;
          await sleep(200);
        }
      }
    },
    async waitRun(runId, timeoutMs = 120_000) {
      const deadline = Date.now() + timeoutMs;
      let last: RunBody | null = null;
      for (;;) {
        last = (await get<RunBody>(`/api/runs/${runId}`)) ?? last;
        if (last?.result) return last;
        if (Date.now() > deadline) throw new Error(`run ${runId} did not end within ${timeoutMs} ms (last seen: ${JSON.stringify(last)})\n${world.output().slice(-4000)}`);
        await sleep(200);
      }
    },
    async waitVersion(version, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      let last: unknown = null;
      for (;;) {
        const h = await get<{ version: string; journal: string; recovering: boolean }>('/healthz');
        if (h) last = h;
        if (h?.version === version && h.journal === 'ok' && !h.recovering) return;
        if (Date.now() > deadline) throw new Error(`the updater did not answer as ${version} within ${timeoutMs} ms (last: ${JSON.stringify(last)})\n${world.output().slice(-4000)}`);
        await sleep(200);
      }
    },
    releaseProcesses() {
      const pids: number[] = [];
      for (const name of readdirSync('/proc')) {
        if (!/^\d+$/.test(name)) continue;
        let cmd: string;
        try {
          cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ');
        } catch {
          continue;
        }
        if (/\bnode\b/.test(cmd) && cmd.includes(`${root}/`) && cmd.includes('updater.mjs')) pids.push(Number(name));
      }
      return pids;
    },
    link(name) {
      try {
        return readlinkSync(join(root, name));
      } catch {
        return null;
      }
    },
    output: () => out,
    async close() {
      if (loop) {
        try {
          process.kill(-loop.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      } else {
        await dexec('systemctl', 'stop', unit);
        await dexec('rm', '-f', `/etc/systemd/system/${unit}.service`);
        await dexec('systemctl', 'daemon-reload');
      }
      // Whatever release process is left (an orphan of a killed launch, a stopped loop's child).
      for (const pid of world.releaseProcesses()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      await github.close();
      rmSync(base, { recursive: true, force: true });
    },
  };
  return world;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
