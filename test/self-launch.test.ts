/**
 * The install root of the updater (docs/self-update.md): deploy/launch, the supervisor's command,
 * run as real processes against install roots holding small stand-in releases (a sh script as
 * bin/updater.mjs that verifies itself, crashes, exits 2, hangs or gives itself up, as a file in
 * its release says), driven like a supervisor does (start launch, wait for it to exit, start it
 * again); then `npm run package` and install.sh with the real build, and that build run by launch.
 * Every check is on what a user sees: files, symlinks, processes, exit codes, lines on stderr.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../src/paths.js';
import { cleanup, tempDir } from './support/harness.js';

const LAUNCH = join(PACKAGE_ROOT, 'deploy', 'launch');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, probe: () => T | undefined | false, ms = 15_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/**
 * A stand-in release: its bin/updater.mjs appends one line to ROOT/events.log (version, pid, the
 * environment launch gave it, its arguments), then does what releases/<v>/behaviour says:
 * serve (run until SIGTERM, exit 0), verify (remove the trial file, then serve), crash (exit 1),
 * exit:N, hang (ignore SIGTERM, run forever), abandon (set abandon in the trial file, exit 1),
 * term2 (serve, but exit 2 on SIGTERM).
 */
const STAND_IN = `#!/bin/sh
HERE=$(cd "$(dirname "$0")/.." && pwd -P)
V=$(cat "$HERE/VERSION")
R=$UPDATER_INSTALL_ROOT
echo "start $V pid=$$ trial=\${UPDATER_ON_TRIAL:-} root=$R args=$*" >>"$R/events.log"
serve() { trap "exit \${1:-0}" TERM; while :; do sleep 0.1; done; }
case $(cat "$HERE/behaviour") in
  serve) serve ;;
  verify) rm -f "$R/self-update.json"; serve ;;
  crash) exit 1 ;;
  exit:*) exit "$(cut -d: -f2 "$HERE/behaviour")" ;;
  hang) trap '' TERM; while :; do sleep 0.1; done ;;
  abandon) sed 's/"abandon": false/"abandon": true/' "$R/self-update.json" >"$R/t" && mv "$R/t" "$R/self-update.json"; exit 1 ;;
  term2) serve 2 ;;
esac
`;

interface Root {
  dir: string;
  release(version: string, behaviour: string): void;
  trial(fields?: Partial<Trial>): Trial;
  readTrial(): Trial | undefined;
  events(): { version: string; pid: number; trial: string; root: string; args: string }[];
  link(name: string): string | undefined;
  result(): { from: string; to: string; reason: string; at: number } | undefined;
  /** Live processes running a release of this root (zombies are not). */
  releaseProcesses(): number[];
}

interface Trial {
  from: string;
  to: string;
  starts: number;
  since: number;
  db: string;
  dbCopy: string | null;
  abandon: boolean;
}

function makeRoot(): Root {
  const dir = realpathSync(tempDir('updater-launch-'));
  copyFileSync(LAUNCH, join(dir, 'launch'));
  chmodSync(join(dir, 'launch'), 0o755);
  const root: Root = {
    dir,
    release(version, behaviour) {
      const rel = join(dir, 'releases', version);
      mkdirSync(join(rel, 'bin'), { recursive: true });
      writeFileSync(join(rel, 'bin', 'updater.mjs'), STAND_IN, { mode: 0o755 });
      writeFileSync(join(rel, 'VERSION'), `${version}\n`);
      writeFileSync(join(rel, 'behaviour'), behaviour);
    },
    // As the updater writes it: JSON.stringify(obj, null, 2) + "\n", current -> to, previous -> from.
    trial(fields = {}) {
      const t: Trial = { from: '9.2.0', to: '9.3.0', starts: 0, since: Math.floor(Date.now() / 1000), db: join(dir, 'data', 'updater.db'), dbCopy: null, abandon: false, ...fields };
      writeFileSync(join(dir, 'self-update.json'), `${JSON.stringify(t, null, 2)}\n`);
      pointAt(dir, 'previous', `releases/${t.from}`);
      pointAt(dir, 'current', `releases/${t.to}`);
      return t;
    },
    readTrial() {
      const p = join(dir, 'self-update.json');
      return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as Trial) : undefined;
    },
    events() {
      const p = join(dir, 'events.log');
      if (!existsSync(p)) return [];
      return readFileSync(p, 'utf8').trimEnd().split('\n').map((line) => {
        const m = /^start (\S+) pid=(\d+) trial=(\S*) root=(\S+) args=(.*)$/.exec(line);
        assert.ok(m, line);
        return { version: m[1]!, pid: Number(m[2]), trial: m[3]!, root: m[4]!, args: m[5]! };
      });
    },
    link(name) {
      try {
        return readlinkSync(join(dir, name));
      } catch {
        return undefined;
      }
    },
    result() {
      const p = join(dir, 'self-update.result');
      if (!existsSync(p)) return undefined;
      const text = readFileSync(p, 'utf8');
      assert.equal(text.split('\n').length, 2, 'the result is one line');
      return JSON.parse(text) as { from: string; to: string; reason: string; at: number };
    },
    releaseProcesses() {
      const pids: number[] = [];
      for (const entry of readdirSync('/proc')) {
        if (!/^\d+$/.test(entry)) continue;
        try {
          const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
          if (/\) Z /.test(stat)) continue;
          const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
          if (cmdline.includes(`${dir}/current/bin/updater.mjs`)) pids.push(Number(entry));
        } catch {
          // gone meanwhile
        }
      }
      return pids;
    },
  };
  return root;
}

function pointAt(dir: string, name: string, target: string): void {
  rmSync(join(dir, name), { force: true });
  symlinkSync(target, join(dir, name));
}

interface Launched {
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; stdout: string }>;
  /** Launch's own process is gone (its output may still be open, held by a release it left running). */
  gone: Promise<void>;
}

/** Starts ROOT/launch serve --config x, as the supervisor does. */
function launch(root: Root, env: Record<string, string> = {}, args = ['serve', '--config', '/etc/x.yaml']): Launched {
  const base = { ...process.env };
  delete base.UPDATER_ON_TRIAL;
  delete base.UPDATER_INSTALL_ROOT;
  const child = spawn(join(root.dir, 'launch'), args, { env: { ...base, UPDATER_TRIAL_STOP_SECONDS: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; stdout: string }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stderr, stdout })),
  );
  const gone = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return { child, stderr: () => stderr, exited, gone };
}

/** Starts launch and waits for it to exit (a release that exits at once). */
async function runOnce(root: Root, env: Record<string, string> = {}) {
  return launch(root, env).exited;
}

const lines = (stderr: string) => stderr.trimEnd().split('\n').filter(Boolean);

function withRoot(fn: (root: Root) => Promise<void>): [{ timeout: number }, () => Promise<void>] {
  return [{ timeout: 60_000 }, async () => {
    const root = makeRoot();
    try {
      await fn(root);
    } finally {
      for (const pid of root.releaseProcesses()) process.kill(pid, 'SIGKILL');
      cleanup(root.dir);
    }
  }];
}

test('no trial: launch becomes the release (one process), which gets UPDATER_INSTALL_ROOT and its arguments, and its exit code is launch\'s', ...withRoot(async (root) => {
  root.release('9.2.0', 'exit:7');
  pointAt(root.dir, 'current', 'releases/9.2.0');
  const l = launch(root, { UPDATER_ON_TRIAL: '1' });
  const r = await l.exited;
  assert.equal(r.code, 7);
  assert.equal(r.stderr, '', 'nothing to say without a trial');
  assert.deepEqual(root.events(), [{ version: '9.2.0', pid: l.child.pid, trial: '', root: root.dir, args: 'serve --config /etc/x.yaml' }], 'the release ran as launch\'s own process, not on trial');

  writeFileSync(join(root.dir, 'releases', '9.2.0', 'behaviour'), 'exit:2');
  assert.equal((await runOnce(root)).code, 2, 'exit 2 (bad config) passes through when there is no trial');
}));

test('a good trial: the new release runs as launch\'s child with UPDATER_ON_TRIAL=1, verifies itself at its 1st start, and a SIGTERM to launch stops it (exit 0)', ...withRoot(async (root) => {
  root.release('9.2.0', 'serve');
  root.release('9.3.0', 'verify');
  root.trial();
  const l = launch(root);
  const ev = await waitFor('the release to start', () => root.events()[0]);
  assert.equal(ev.version, '9.3.0');
  assert.equal(ev.trial, '1');
  assert.notEqual(ev.pid, l.child.pid, 'a child, not exec');
  await waitFor('the trial file to be removed (verified)', () => !existsSync(join(root.dir, 'self-update.json')));
  assert.equal(readFileSync(join(root.dir, 'launch.child'), 'utf8').trim(), String(ev.pid), 'launch.child holds the release\'s pid');
  assert.deepEqual(root.releaseProcesses(), [ev.pid]);
  await sleep(1500);
  assert.equal(l.child.exitCode, null, 'launch keeps running with its verified release');
  l.child.kill('SIGTERM');
  const r = await l.exited;
  assert.equal(r.code, 0);
  assert.ok(!existsSync(join(root.dir, 'launch.child')), 'launch.child removed');
  assert.ok(lines(r.stderr).includes('launch: self-update 9.2.0 -> 9.3.0 on trial: start 1 of 3, 120 s left to verify'), r.stderr);
  assert.equal(root.link('current'), 'releases/9.3.0');
  assert.equal(root.result(), undefined, 'no result: nothing was given up');
  assert.deepEqual(root.releaseProcesses(), []);
}));

test('a release that crashes at every start is given up at the 4th: current back at previous, the result written, the old release started without trial', ...withRoot(async (root) => {
  root.release('9.2.0', 'serve');
  root.release('9.3.0', 'crash');
  const trial = root.trial();
  for (const start of [1, 2, 3]) {
    const r = await runOnce(root);
    assert.equal(r.code, 1, `start ${start}: exit 1`);
    assert.equal(root.readTrial()?.starts, start, `start ${start} is counted`);
    assert.ok(lines(r.stderr).includes('launch: 9.3.0 exited with 1 while on trial'), r.stderr);
    assert.equal(root.link('current'), 'releases/9.3.0');
  }
  assert.deepEqual(root.readTrial(), { ...trial, starts: 3 }, 'the rest of the trial file as the updater wrote it');
  const l = launch(root);
  await waitFor('the old release', () => root.events().find((e) => e.version === '9.2.0'));
  const ev = root.events().at(-1)!;
  assert.deepEqual([ev.version, ev.trial, ev.pid], ['9.2.0', '', l.child.pid], 'the old release, without trial, exec\'d by launch');
  assert.equal(root.link('current'), 'releases/9.2.0');
  assert.equal(root.link('previous'), 'releases/9.2.0');
  assert.ok(!existsSync(join(root.dir, 'self-update.json')), 'the trial is over');
  const result = root.result()!;
  assert.deepEqual({ ...result, at: 0 }, { from: '9.2.0', to: '9.3.0', reason: 'it was started 4 times without verifying itself', at: 0 });
  assert.ok(Math.abs(result.at - Date.now() / 1000) < 10);
  assert.deepEqual(root.events().map((e) => `${e.version}${e.trial}`), ['9.3.01', '9.3.01', '9.3.01', '9.2.0']);
  assert.deepEqual(root.releaseProcesses(), [l.child.pid]);
  l.child.kill('SIGTERM');
  const r = await l.exited;
  assert.equal(r.code, 0);
  assert.deepEqual(lines(r.stderr), [
    'launch: giving up the self-update 9.2.0 -> 9.3.0: it was started 4 times without verifying itself',
    'launch: current -> releases/9.2.0',
    `launch: wrote ${root.dir}/self-update.result`,
    'launch: starting releases/9.2.0 without trial',
  ]);
}));

test('a release that hangs (and ignores SIGTERM) is stopped once UPDATER_TRIAL_SECONDS have passed, and given up', ...withRoot(async (root) => {
  root.release('9.2.0', 'serve');
  root.release('9.3.0', 'hang');
  root.trial();
  const t0 = Date.now();
  const l = launch(root, { UPDATER_TRIAL_SECONDS: '2' });
  const hung = await waitFor('the release on trial', () => root.events()[0]);
  assert.equal(hung.version, '9.3.0');
  const old = await waitFor('the old release', () => root.events().find((e) => e.version === '9.2.0'));
  const took = Date.now() - t0;
  assert.ok(took >= 2000 && took < 8000, `given up after the 2 s and the 1 s of stopping: ${took} ms`);
  assert.equal(old.pid, l.child.pid, 'launch became the old release');
  assert.equal(old.trial, '');
  assert.deepEqual(root.releaseProcesses(), [l.child.pid], 'the hung release is gone: exactly one release process');
  assert.equal(root.result()?.reason, 'it did not verify itself within 2 s');
  assert.equal(root.link('current'), 'releases/9.2.0');
  assert.ok(!existsSync(join(root.dir, 'launch.child')));
  l.child.kill('SIGTERM');
  const r = await l.exited;
  const said = lines(r.stderr);
  assert.ok(said.includes('launch: 9.3.0 has not verified itself within 2 s: stopping it'), r.stderr);
  assert.ok(said.includes(`launch: release process ${hung.pid} did not stop within 1 s of SIGTERM: SIGKILL`), r.stderr);
  assert.ok(said.includes('launch: giving up the self-update 9.2.0 -> 9.3.0: it did not verify itself within 2 s'), r.stderr);
}));

test('a trial whose deadline has passed is given up at the next start, before the new release runs', ...withRoot(async (root) => {
  root.release('9.2.0', 'exit:0');
  root.release('9.3.0', 'verify');
  root.trial({ since: Math.floor(Date.now() / 1000) - 121, starts: 1 });
  const r = await runOnce(root);
  assert.equal(r.code, 0);
  assert.deepEqual(root.events().map((e) => e.version), ['9.2.0']);
  assert.equal(root.result()?.reason, 'it did not verify itself within 120 s');
}));

test('a release that gives itself up (abandon) is given up at the next start', ...withRoot(async (root) => {
  root.release('9.2.0', 'exit:0');
  root.release('9.3.0', 'abandon');
  root.trial();
  assert.equal((await runOnce(root)).code, 1);
  assert.equal(root.readTrial()?.abandon, true);
  const r = await runOnce(root);
  assert.equal(r.code, 0, 'the old release\'s own exit');
  assert.deepEqual(root.events().map((e) => `${e.version}${e.trial}`), ['9.3.01', '9.2.0']);
  assert.equal(root.result()?.reason, 'it gave itself up');
  assert.ok(lines(r.stderr).includes('launch: giving up the self-update 9.2.0 -> 9.3.0: it gave itself up'), r.stderr);
}));

test('giving up puts the database copy back: the -wal and -shm of the new release are removed, the copy becomes the database', ...withRoot(async (root) => {
  root.release('9.2.0', 'exit:0');
  root.release('9.3.0', 'crash');
  const data = join(root.dir, 'data');
  mkdirSync(data);
  const db = join(data, 'updater.db');
  const copy = join(data, 'updater.db.pre-9.3.0');
  writeFileSync(db, 'migrated by 9.3.0');
  writeFileSync(`${db}-wal`, 'wal of 9.3.0');
  writeFileSync(`${db}-shm`, 'shm of 9.3.0');
  writeFileSync(copy, 'as 9.2.0 left it');
  root.trial({ db, dbCopy: copy, abandon: true });
  const r = await runOnce(root);
  assert.equal(r.code, 0);
  assert.equal(readFileSync(db, 'utf8'), 'as 9.2.0 left it');
  assert.deepEqual(readdirSync(data), ['updater.db'], 'no -wal, no -shm, no copy left');
  assert.ok(lines(r.stderr).includes(`launch: database ${db} put back from ${copy}`), r.stderr);
}));

test('a release on trial that exits 2 makes launch exit 1 (2 would stop systemd from restarting it), also when it exits 2 on SIGTERM', ...withRoot(async (root) => {
  root.release('9.2.0', 'serve');
  root.release('9.3.0', 'exit:2');
  root.trial();
  const r = await runOnce(root);
  assert.equal(r.code, 1);
  assert.ok(lines(r.stderr).includes('launch: 9.3.0 exited with 2 while on trial'), r.stderr);

  writeFileSync(join(root.dir, 'releases', '9.3.0', 'behaviour'), 'term2');
  const l = launch(root);
  const ev = await waitFor('the release on trial', () => root.events()[1]);
  l.child.kill('SIGTERM');
  const stopped = await l.exited;
  assert.equal(stopped.code, 1);
  assert.ok(lines(stopped.stderr).includes('launch: 9.3.0 stopped (exit 2) while on trial'), stopped.stderr);
  assert.ok(!root.releaseProcesses().includes(ev.pid), 'the release stopped with launch');
  assert.equal(root.readTrial()?.starts, 2, 'still on trial');
}));

/**
 * A supervisor as the unit is: restart launch whenever it exits, except on exit 2
 * (RestartPreventExitStatus=2), until `done` says so; the exit codes it saw.
 */
async function supervise(root: Root, done: () => boolean, env: Record<string, string> = {}): Promise<{ codes: (number | null)[]; running: Launched | undefined }> {
  const codes: (number | null)[] = [];
  for (let i = 0; i < 10; i++) {
    const l = launch(root, env);
    let r: Awaited<Launched['exited']> | undefined;
    void l.exited.then((x) => (r = x));
    const until = Date.now() + 15_000;
    while (!r) {
      if (done()) return { codes, running: l };
      if (Date.now() > until) throw new Error('launch neither exited nor got done in 15 s');
      await sleep(50);
    }
    codes.push(r.code);
    if (r.code === 2) return { codes, running: undefined };
  }
  throw new Error(`still restarting after 10 starts: ${codes.join(' ')}`);
}

test('under a supervisor that does not restart on exit 2, a new release that exits 2 at every start is still given up at the 4th start', ...withRoot(async (root) => {
  root.release('9.2.0', 'serve');
  root.release('9.3.0', 'exit:2');
  root.trial();
  const { codes, running } = await supervise(root, () => root.events().some((e) => e.version === '9.2.0'));
  assert.deepEqual(codes, [1, 1, 1], 'launch turned each 2 into 1, so the supervisor kept restarting it');
  assert.ok(running, 'the old release runs');
  assert.deepEqual(root.events().map((e) => `${e.version}${e.trial}`), ['9.3.01', '9.3.01', '9.3.01', '9.2.0']);
  assert.equal(root.link('current'), 'releases/9.2.0');
  assert.equal(root.result()?.reason, 'it was started 4 times without verifying itself');
  running.child.kill('SIGTERM');
  assert.equal((await running.exited).code, 0);
}));

test('launch killed (SIGKILL) during a trial: the release it left running is stopped at the next start; exactly one release runs afterwards', ...withRoot(async (root) => {
  root.release('9.2.0', 'serve');
  root.release('9.3.0', 'serve');
  root.trial();
  const first = launch(root);
  const orphan = await waitFor('the release on trial', () => root.events()[0]);
  first.child.kill('SIGKILL');
  await first.gone;
  await sleep(300);
  assert.deepEqual(root.releaseProcesses(), [orphan.pid], 'the release outlived launch');
  assert.equal(readFileSync(join(root.dir, 'launch.child'), 'utf8').trim(), String(orphan.pid));

  const second = launch(root);
  const next = await waitFor('the next start of the release', () => root.events()[1]);
  assert.equal(next.version, '9.3.0');
  await waitFor('the orphan to be gone', () => !root.releaseProcesses().includes(orphan.pid));
  assert.deepEqual(root.releaseProcesses(), [next.pid], 'exactly one release process');
  assert.equal(readFileSync(join(root.dir, 'launch.child'), 'utf8').trim(), String(next.pid));
  assert.equal(root.readTrial()?.starts, 2);
  second.child.kill('SIGTERM');
  const r = await second.exited;
  assert.equal(r.code, 0, 'asked to stop: the release\'s own exit code');
  assert.ok(lines(r.stderr).includes(`launch: stopping release process ${orphan.pid}, left running by a launch that was killed`), r.stderr);
  assert.deepEqual(root.releaseProcesses(), []);
}));

test('a give-up cut off in the middle (current already back, the result written) is finished at the next start, the result kept as written', ...withRoot(async (root) => {
  root.release('9.2.0', 'exit:0');
  root.release('9.3.0', 'verify');
  const data = join(root.dir, 'data');
  mkdirSync(data);
  const db = join(data, 'updater.db');
  const copy = join(data, 'updater.db.copy');
  writeFileSync(db, 'new');
  writeFileSync(copy, 'old');
  // launch was killed after `current` was switched and the result written, before the database and the trial file.
  const trial = root.trial({ starts: 4, since: Math.floor(Date.now() / 1000) - 30, db, dbCopy: copy });
  pointAt(root.dir, 'current', 'releases/9.2.0');
  const written = `{"from":"9.2.0","to":"9.3.0","reason":"it was started 4 times without verifying itself","at":${trial.since + 20}}\n`;
  writeFileSync(join(root.dir, 'self-update.result'), written);
  const r = await runOnce(root);
  assert.equal(r.code, 0);
  assert.deepEqual(root.events().map((e) => `${e.version}${e.trial}`), ['9.2.0'], 'the new release did not run again');
  assert.equal(root.link('current'), 'releases/9.2.0');
  assert.equal(readFileSync(db, 'utf8'), 'old');
  assert.equal(readFileSync(join(root.dir, 'self-update.result'), 'utf8'), written, 'the result as first written');
  assert.ok(!existsSync(join(root.dir, 'self-update.json')));
  assert.ok(lines(r.stderr).includes('launch: current already points at releases/9.2.0'), r.stderr);

  // Cut off right after the symlink, without a previous (it falls back to releases/<from>).
  root.trial({ abandon: true });
  rmSync(join(root.dir, 'previous'));
  const again = await runOnce(root);
  assert.equal(again.code, 0);
  assert.equal(root.link('current'), 'releases/9.2.0', 'releases/<from> when there is no previous');
  assert.equal(root.result()?.reason, 'it gave itself up', 'a result of a later trial replaces the old one');
}));

test('UPDATER_NODE runs the release with that node and --max-semi-space-size=1', ...withRoot(async (root) => {
  root.release('9.2.0', 'exit:0');
  pointAt(root.dir, 'current', 'releases/9.2.0');
  const fakeNode = join(root.dir, 'fake-node');
  writeFileSync(fakeNode, `#!/bin/sh\necho "node $*" >>"${root.dir}/node.log"\nshift\nexec "$@"\n`, { mode: 0o755 });
  const r = await runOnce(root, { UPDATER_NODE: fakeNode });
  assert.equal(r.code, 0);
  assert.equal(readFileSync(join(root.dir, 'node.log'), 'utf8'), `node --max-semi-space-size=1 ${root.dir}/current/bin/updater.mjs serve --config /etc/x.yaml\n`);
  assert.deepEqual(root.events().map((e) => e.version), ['9.2.0']);
}));

// ---- npm run package, install.sh, and the real build through launch ----

const npm = (args: string[], cwd = PACKAGE_ROOT) => spawnSync('npm', args, { cwd, encoding: 'utf8', env: { ...process.env, npm_config_update_notifier: 'false' }, timeout: 180_000 });
const sh = (args: string[], cwd?: string) => spawnSync('sh', args, { cwd, encoding: 'utf8', timeout: 60_000 });

/** Every path under dir with its type, mode and mtime (symlinks: their target). */
function snapshot(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(dir, rel)).sort()) {
    const p = join(rel, name);
    const st = lstatSync(join(dir, p));
    if (st.isSymbolicLink()) out.push(`${p} -> ${readlinkSync(join(dir, p))} ${st.mtimeMs}`);
    else if (st.isDirectory()) out.push(`${p}/ ${st.mode.toString(8)} ${st.mtimeMs}`, ...snapshot(dir, p));
    else out.push(`${p} ${st.mode.toString(8)} ${st.mtimeMs}`);
  }
  return out;
}

test('npm run package writes the tarball with one top folder and a .sha256 that sha256sum -c accepts; install.sh installs it, twice changes nothing, and launch runs the real build', async () => {
  const dir = realpathSync(tempDir('updater-package-'));
  try {
    const out = join(dir, 'out');
    mkdirSync(out);
    const bad = npm(['run', 'package', '--silent', '--', '--version', 'v9.1', '--out', out]);
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /--version "v9\.1" is not a semantic version like 1\.2\.3/);

    const made = npm(['run', 'package', '--silent', '--', '--version', '9.1.0', '--out', out]);
    assert.equal(made.status, 0, made.stderr);
    assert.match(made.stdout, /^wrote .*\/out\/dune-updater-9\.1\.0\.tar\.gz \(\d+ files, [\d.]+ MiB\) and its \.sha256 \([0-9a-f]{64}\)/);
    assert.deepEqual(readdirSync(out).sort(), ['dune-updater-9.1.0.tar.gz', 'dune-updater-9.1.0.tar.gz.sha256']);
    assert.match(readFileSync(join(out, 'dune-updater-9.1.0.tar.gz.sha256'), 'utf8'), /^[0-9a-f]{64} {2}dune-updater-9\.1\.0\.tar\.gz\n$/);
    const check = spawnSync('sha256sum', ['-c', 'dune-updater-9.1.0.tar.gz.sha256'], { cwd: out, encoding: 'utf8' });
    assert.equal(check.stdout, 'dune-updater-9.1.0.tar.gz: OK\n');

    // The listing, as `tar tzvf` shows it.
    const listing = spawnSync('tar', ['tzvf', join(out, 'dune-updater-9.1.0.tar.gz')], { encoding: 'utf8' }).stdout.trimEnd().split('\n');
    const entries = new Map(listing.map((l) => {
      const f = l.split(/\s+/);
      return [f[5]!.replace(/\/$/, ''), f[0]!];
    }));
    assert.ok([...entries.keys()].every((n) => n === 'dune-updater-9.1.0' || n.startsWith('dune-updater-9.1.0/')), 'one top folder');
    const top = (n: string) => entries.get(`dune-updater-9.1.0/${n}`);
    for (const f of ['bin/updater.mjs', 'launch', 'install.sh']) assert.equal(top(f), '-rwxr-xr-x', `${f} is executable`);
    for (const f of ['bin/check-node.cjs', 'package.json', 'VERSION', 'dist/dashboard/index.html', 'migrations/001_init.sql']) assert.equal(top(f), '-rw-r--r--', f);
    assert.deepEqual([...entries.keys()].filter((n) => /^dune-updater-9\.1\.0\/[^/]+$/.test(n)).map((n) => n.split('/')[1]).sort(),
      ['VERSION', 'bin', 'dist', 'install.sh', 'launch', 'migrations', 'node_modules', 'package.json']);
    const modules = [...entries.keys()].filter((n) => /^dune-updater-9\.1\.0\/node_modules\/[^/]+$/.test(n)).map((n) => n.split('/')[2]).sort();
    assert.deepEqual(modules, ['better-sqlite3', 'bindings', 'file-uri-to-path'], 'better-sqlite3 and what it loads, not its install-time prebuild-install');
    const sqlite = [...entries.keys()].filter((n) => n.startsWith('dune-updater-9.1.0/node_modules/better-sqlite3/')).map((n) => n.slice('dune-updater-9.1.0/node_modules/better-sqlite3/'.length));
    assert.ok(sqlite.every((n) => ['package.json', 'lib', 'build', 'build/Release', 'build/Release/better_sqlite3.node'].includes(n) || n.startsWith('lib/')), sqlite.join(' '));
    assert.ok(sqlite.includes('build/Release/better_sqlite3.node'));

    const x = join(dir, 'x');
    mkdirSync(x);
    assert.equal(spawnSync('tar', ['xzf', join(out, 'dune-updater-9.1.0.tar.gz'), '-C', x]).status, 0);
    const rel = join(x, 'dune-updater-9.1.0');
    assert.equal(readFileSync(join(rel, 'VERSION'), 'utf8'), '9.1.0\n');
    assert.equal((JSON.parse(readFileSync(join(rel, 'package.json'), 'utf8')) as { version: string }).version, '9.1.0');
    assert.equal(readFileSync(join(rel, 'launch'), 'utf8'), readFileSync(LAUNCH, 'utf8'));

    // install.sh into a fresh root.
    const root = join(dir, 'opt', 'dune-updater');
    const first = sh([join(rel, 'install.sh'), root]);
    assert.equal(first.status, 0, first.stderr);
    assert.equal(first.stdout, [
      'install.sh: installed releases/9.1.0',
      'install.sh: current -> releases/9.1.0',
      'install.sh: wrote launch (launch-version 1)',
      `install.sh: the supervisor's command: ${root}/launch serve --config /etc/dune-updater/updater.yaml`,
      ''].join('\n'));
    assert.deepEqual(readdirSync(root).sort(), ['current', 'launch', 'releases']);
    assert.deepEqual(readdirSync(join(root, 'releases')), ['9.1.0']);
    assert.equal(readlinkSync(join(root, 'current')), 'releases/9.1.0');
    assert.equal(statSync(join(root, 'launch')).mode & 0o777, 0o755);
    assert.equal(statSync(join(root, 'releases', '9.1.0', 'bin', 'updater.mjs')).mode & 0o777, 0o755);

    const before = snapshot(root);
    await sleep(20);
    const second = sh([join(rel, 'install.sh'), root]);
    assert.equal(second.status, 0, second.stderr);
    assert.deepEqual(snapshot(root), before, 'the second run changed nothing (same files, symlinks, mtimes)');
    assert.match(second.stdout, /^install\.sh: releases\/9\.1\.0 is already installed: kept\ninstall\.sh: current already points at releases\/9\.1\.0\ninstall\.sh: launch is up to date \(launch-version 1\)\n/);

    // The real build, run by launch (exec: no trial), reports its release's VERSION.
    const env = { ...process.env };
    delete env.UPDATER_ON_TRIAL;
    const version = spawnSync(join(root, 'launch'), ['version'], { encoding: 'utf8', env });
    assert.deepEqual([version.status, version.stdout, version.stderr], [0, '9.1.0\n', '']);
    // Its better-sqlite3 loads from the release's own node_modules.
    const db = spawnSync(process.execPath, ['-e', "const D = require('better-sqlite3'); console.log(require.resolve('better-sqlite3'), new D(':memory:').prepare('select 1 AS one').get().one)"], { cwd: join(root, 'current'), encoding: 'utf8' });
    assert.equal(db.stdout, `${join(root, 'releases', '9.1.0', 'node_modules', 'better-sqlite3', 'lib', 'index.js')} 1\n`, db.stderr);

    // A second version (dist/ as built above): previous is the first, launch is kept.
    const next = npm(['run', 'package', '--silent', '--', '--version', '9.2.0', '--out', out, '--no-build']);
    assert.equal(next.status, 0, next.stderr);
    assert.equal(spawnSync('tar', ['xzf', join(out, 'dune-updater-9.2.0.tar.gz'), '-C', x]).status, 0);
    const upgrade = sh([join(x, 'dune-updater-9.2.0', 'install.sh'), root]);
    assert.equal(upgrade.status, 0, upgrade.stderr);
    assert.match(upgrade.stdout, /^install\.sh: installed releases\/9\.2\.0\ninstall\.sh: previous -> releases\/9\.1\.0\ninstall\.sh: current -> releases\/9\.2\.0\ninstall\.sh: launch is up to date \(launch-version 1\)\n/);
    assert.deepEqual([readlinkSync(join(root, 'current')), readlinkSync(join(root, 'previous'))], ['releases/9.2.0', 'releases/9.1.0']);
    assert.equal(spawnSync(join(root, 'launch'), ['--show-version'], { encoding: 'utf8', env }).stdout, '9.2.0\n');

    // While a self-update is on trial install.sh refuses, and changes nothing.
    writeFileSync(join(root, 'self-update.json'), '{}\n');
    const during = snapshot(root);
    const refused = sh([join(rel, 'install.sh'), root]);
    assert.equal(refused.status, 1);
    assert.equal(refused.stdout, '');
    assert.match(refused.stderr, /^install\.sh: a self-update of the updater is on trial in .*\(.*\/self-update\.json\): nothing was installed; run this again once it has ended/);
    assert.deepEqual(snapshot(root), during);
    rmSync(join(root, 'self-update.json'));

    // A release with a newer launch replaces it.
    const newer = readFileSync(join(rel, 'launch'), 'utf8').replace('# launch-version: 1', '# launch-version: 2');
    writeFileSync(join(rel, 'launch'), newer);
    const replaced = sh([join(rel, 'install.sh'), root]);
    assert.equal(replaced.status, 0, replaced.stderr);
    assert.match(replaced.stdout, /^install\.sh: releases\/9\.1\.0 is already installed: kept\ninstall\.sh: previous -> releases\/9\.2\.0\ninstall\.sh: current -> releases\/9\.1\.0\ninstall\.sh: wrote launch \(launch-version 2, was 1\)\n/);
    assert.equal(readFileSync(join(root, 'launch'), 'utf8'), newer);
    assert.equal(statSync(join(root, 'launch')).mode & 0o777, 0o755);
  } finally {
    cleanup(dir);
  }
});
