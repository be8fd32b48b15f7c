/**
 * Release extraction and tree backups: normal archives (built with tar-stream and with the real
 * `tar`), a hostile corpus that must be refused with nothing written outside the staging
 * directory, and archiveTree → restoreTree round trips.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  accessSync,
  chmodSync,
  constants,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { UpdateError } from '../src/core/errors.js';
import { extractTarGz, versionTextInArchive, type ExtractLimits } from '../src/kinds/app/extract.js';
import { archiveTree, restoreTree } from '../src/kinds/app/tree-archive.js';

type Item = Parameters<tar.Pack['entry']>[0] & { data?: string | Buffer };

/** A .tar.gz of `items`, built with tar-stream (any header, hostile ones included). */
async function tarGz(items: Item[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of pack) chunks.push(chunk as Buffer);
  })();
  for (const { data, ...header } of items) {
    await new Promise<void>((resolve, reject) => pack.entry(header, data ?? '', (e) => (e ? reject(e) : resolve())));
  }
  pack.finalize();
  await collected;
  return gzipSync(Buffer.concat(chunks));
}

/** A temp dir holding `dest` (missing), a `sentinel` dir next to it, and the archive path. */
function world(t: TestContext) {
  const base = mkdtempSync(join(tmpdir(), 'extract-test-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const sentinel = join(base, 'sentinel');
  mkdirSync(sentinel);
  writeFileSync(join(sentinel, 'keep'), 'keep');
  return { base, dest: join(base, 'dest'), sentinel, archive: join(base, 'release.tar.gz'), sentinelBefore: listing(sentinel) };
}

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** Relative path, type, mode, content hash or link target of everything under `root`. */
function listing(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const p = join(root, r);
      const st = lstatSync(p);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out.push(`${r} -> ${readlinkSync(p)}`);
      else if (st.isDirectory()) {
        out.push(`${r}/ ${mode}`);
        walk(r);
      } else if (st.isFile()) out.push(`${r} ${mode} ${sha(readFileSync(p))}`);
      else out.push(`${r} (special)`);
    }
  };
  walk('');
  return out;
}

/** True when something (even a dangling symlink) is at `path`. */
function present(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function cli(args: string[]): string {
  const r = spawnSync('tar', args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `tar ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function refusal(pattern: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof UpdateError, `not an UpdateError: ${String(error)}`);
    assert.equal(error.code, 'bad_release');
    assert.match(error.message, pattern);
    return true;
  };
}

// --- normal archives -------------------------------------------------------------------------

test('a normal release is extracted: top folder stripped, modes, symlinks and hard links kept', async (t) => {
  const w = world(t);
  const items: Item[] = [
    { name: 'app-1.2.0/', type: 'directory', mode: 0o755 },
    { name: 'app-1.2.0/VERSION', mode: 0o644, data: '1.2.0\n' },
    { name: 'app-1.2.0/app.py', mode: 0o755, data: '#!/usr/bin/env python3\nprint("hi")\n' },
    { name: 'app-1.2.0/shared.cfg', mode: 0o664, data: 'group=writable\n' },
    { name: 'app-1.2.0/sub/dir/file', mode: 0o600, data: 'deep' }, // no explicit dirs for sub, sub/dir
    { name: 'app-1.2.0/current', type: 'symlink', linkname: 'sub/dir' },
    { name: 'app-1.2.0/sub/dir/version', type: 'symlink', linkname: '../../VERSION' },
    { name: 'app-1.2.0/app-copy.py', type: 'link', linkname: 'app-1.2.0/app.py' },
  ];
  const progress: Array<[number, number]> = [];
  const result = await extractTarGz(Readable.from([await tarGz(items)]), w.dest, { onProgress: (e, b) => progress.push([e, b]) });

  const root = join(w.dest, 'app-1.2.0');
  assert.equal(result.root, root);
  assert.equal(result.entries, items.length);
  assert.equal(result.bytes, 6 + 35 + 15 + 4);
  assert.deepEqual(progress.at(-1), [items.length, result.bytes]);
  assert.equal(readFileSync(join(root, 'VERSION'), 'utf8'), '1.2.0\n');
  assert.equal(statSync(join(root, 'app.py')).mode & 0o7777, 0o755);
  accessSync(join(root, 'app.py'), constants.X_OK);
  assert.equal(statSync(join(root, 'shared.cfg')).mode & 0o7777, 0o664, 'the mode is kept, not masked by the umask');
  assert.equal(statSync(join(root, 'sub/dir/file')).mode & 0o7777, 0o600);
  assert.equal(statSync(join(root, 'sub')).mode & 0o7777, 0o755, 'implicit directories are 0755');
  assert.equal(readlinkSync(join(root, 'current')), 'sub/dir');
  assert.equal(readFileSync(join(root, 'current/file'), 'utf8'), 'deep');
  assert.equal(readFileSync(join(root, 'sub/dir/version'), 'utf8'), '1.2.0\n');
  assert.equal(statSync(join(root, 'app-copy.py')).ino, statSync(join(root, 'app.py')).ino, 'a real hard link');
});

test('a flat archive (no top-level folder) is extracted into dest itself', async (t) => {
  const w = world(t);
  writeFileSync(w.archive, await tarGz([{ name: 'VERSION', data: '2.0.0\n' }, { name: 'lib/', type: 'directory' }, { name: 'lib/x.py', data: 'x' }]));
  const result = await extractTarGz(w.archive, w.dest);
  assert.equal(result.root, w.dest);
  assert.deepEqual(readdirSync(w.dest).sort(), ['VERSION', 'lib']);
});

test('an archive made by the real tar (`tar -C dir -czf out .`) is extracted identically', async (t) => {
  const w = world(t);
  const src = join(w.base, 'src');
  const app = join(src, 'app-2.0.0');
  mkdirSync(join(app, 'bin'), { recursive: true });
  mkdirSync(join(app, 'empty'));
  writeFileSync(join(app, 'VERSION'), '2.0.0\n');
  writeFileSync(join(app, 'bin/run.sh'), '#!/bin/sh\necho run\n', { mode: 0o755 });
  chmodSync(join(app, 'bin/run.sh'), 0o755);
  linkSync(join(app, 'bin/run.sh'), join(app, 'bin/start.sh'));
  symlinkSync('bin/run.sh', join(app, 'run'));
  cli(['-C', src, '-czf', w.archive, '.']);

  const result = await extractTarGz(w.archive, w.dest);
  assert.equal(result.root, join(w.dest, 'app-2.0.0'));
  assert.deepEqual(listing(result.root), listing(app));
  assert.equal(statSync(join(result.root, 'bin/start.sh')).ino, statSync(join(result.root, 'bin/run.sh')).ino);
});

/** A tree shaped like a real DuneBugger core release: no top-level folder. */
function coreRelease(dir: string): void {
  mkdirSync(join(dir, 'app/config'), { recursive: true });
  writeFileSync(join(dir, 'app/main.py'), 'print("dunebugger")\n');
  writeFileSync(join(dir, 'app/config/dunebugger.conf'), '[General]\nmode = release\n');
  writeFileSync(join(dir, 'requirements.txt'), '');
  writeFileSync(join(dir, 'VERSION'), '{"version": "1.4.0", "prerelease": "null", "full_version": "1.4.0"}\n');
  writeFileSync(join(dir, 'CHANGELOG.md'), '# 1.4.0\n');
  writeFileSync(join(dir, 'ReadMe.md'), '# DuneBugger\n');
}

for (const [how, args] of [
  ['tar -C dir -czf out .', ['.']],
  ['tar -C dir -czf out app requirements.txt VERSION CHANGELOG.md ReadMe.md', ['app', 'requirements.txt', 'VERSION', 'CHANGELOG.md', 'ReadMe.md']],
] as const) {
  test(`a release without a top-level folder, as the real core ships it (${how}), is extracted as it is`, async (t) => {
    const w = world(t);
    const src = join(w.base, 'src');
    coreRelease(src);
    cli(['-C', src, '-czf', w.archive, ...args]);
    const result = await extractTarGz(w.archive, w.dest);
    assert.equal(result.root, w.dest, 'nothing is stripped: app/ is one of several entries at the root');
    assert.deepEqual(listing(result.root), listing(src));
  });
}

test('the layout rule: one directory and nothing else at the root is the release folder; anything beside it keeps the root', async (t) => {
  const w = world(t);
  // Only app/ at the root: taken as the release's folder, like `dunebugger-1.4.0/`.
  writeFileSync(w.archive, await tarGz([{ name: 'app/', type: 'directory' }, { name: 'app/VERSION', data: '1.4.0\n' }]));
  assert.equal((await extractTarGz(w.archive, w.dest)).root, join(w.dest, 'app'));
  // One folder and one file: the root is the tree.
  const dest2 = join(w.base, 'dest2');
  writeFileSync(w.archive, await tarGz([{ name: 'app/', type: 'directory' }, { name: 'VERSION', data: '1.4.0\n' }]));
  assert.equal((await extractTarGz(w.archive, dest2)).root, dest2);
  // One file alone: the root is the tree.
  const dest3 = join(w.base, 'dest3');
  writeFileSync(w.archive, await tarGz([{ name: './VERSION', data: '1.4.0\n' }]));
  assert.equal((await extractTarGz(w.archive, dest3)).root, dest3);
});

test('the VERSION an archive installs is read without unpacking it, by the same layout rule', async (t) => {
  const w = world(t);
  const src = join(w.base, 'src');
  coreRelease(src);
  cli(['-C', src, '-czf', w.archive, '.']);
  assert.match((await versionTextInArchive(w.archive))!, /"full_version": "1.4.0"/, 'the core layout: VERSION at the root');
  writeFileSync(w.archive, await tarGz([{ name: 'app-1.2.0/', type: 'directory' }, { name: 'app-1.2.0/VERSION', data: '1.2.0\n' }, { name: 'app-1.2.0/x/VERSION', data: '9.9.9\n' }]));
  assert.equal(await versionTextInArchive(w.archive), '1.2.0\n', 'one folder: its VERSION');
  assert.equal(await versionTextInArchive(w.archive, { stripSingleTopLevel: false }), null, 'a backup is not stripped: no VERSION at its root');
  writeFileSync(w.archive, await tarGz([{ name: 'app/', type: 'directory' }, { name: 'app/VERSION', data: '1.2.0\n' }, { name: 'ReadMe.md', data: '#' }]));
  assert.equal(await versionTextInArchive(w.archive), null, 'a folder and a file: the root is the tree, and it has no VERSION');
  writeFileSync(w.archive, await tarGz([{ name: 'VERSION', type: 'symlink', linkname: 'meta/VERSION' }, { name: 'meta/VERSION', data: '1.2.0\n' }]));
  assert.equal(await versionTextInArchive(w.archive), undefined, 'a linked VERSION cannot be told without unpacking');
  writeFileSync(w.archive, (await tarGz([{ name: 'VERSION', data: '1.2.0\n' }])).subarray(0, 20));
  await assert.rejects(versionTextInArchive(w.archive), refusal(/the release archive is truncated or corrupt/));
});

test('a setuid/setgid file is extracted without those bits', async (t) => {
  const w = world(t);
  writeFileSync(w.archive, await tarGz([{ name: 'su', mode: 0o6755, data: '#!/bin/sh\n' }, { name: 'sticky/', type: 'directory', mode: 0o1777 }]));
  const result = await extractTarGz(w.archive, w.dest);
  assert.equal(result.root, w.dest, 'a file beside the folder: nothing stripped');
  assert.equal(statSync(join(w.dest, 'su')).mode & 0o7777, 0o755);
  assert.equal(statSync(join(w.dest, 'sticky')).mode & 0o7777, 0o777);
});

// --- hostile archives ------------------------------------------------------------------------

const unique = `evil-${process.pid}-${randomBytes(4).toString('hex')}`;

interface Hostile {
  title: string;
  items: (w: { base: string }) => Item[];
  message: RegExp;
  /** Paths the attack aims at: none may exist afterwards. */
  targets?: (w: { base: string; dest: string }) => string[];
  limits?: Partial<ExtractLimits>;
}

const hostile: Hostile[] = [
  {
    title: 'a name with ..',
    items: () => [{ name: '../evil', data: 'x' }],
    message: /entry "\.\.\/evil" leaves the install directory/,
    targets: (w) => [join(w.base, 'evil')],
  },
  {
    title: 'a name with .. after normalization',
    items: () => [{ name: 'a/../../evil', data: 'x' }],
    message: /entry "a\/\.\.\/\.\.\/evil" leaves the install directory/,
    targets: (w) => [join(w.base, 'evil'), join(w.dest, 'a')],
  },
  {
    title: 'an absolute name',
    items: (w) => [{ name: `${w.base}/abs/evil`, data: 'x' }],
    message: /entry ".*\/abs\/evil" has an absolute name/,
    targets: (w) => [join(w.base, 'abs')],
  },
  {
    title: 'a Windows name with backslashes',
    items: () => [{ name: '..\\evil', data: 'x' }],
    message: /entry "\.\.\\\\evil" has a backslash/,
  },
  {
    title: 'a Windows drive letter',
    items: () => [{ name: 'C:/evil', data: 'x' }],
    message: /entry "C:\/evil" has a Windows drive letter/,
  },
  {
    title: 'a NUL byte in the name (pax path)',
    items: () => [{ name: 'ok', pax: { path: 'ok\u0000/../../evil' }, data: 'x' }],
    message: /entry "ok\\u0000\/\.\.\/\.\.\/evil" has a NUL byte/,
  },
  {
    title: 'an empty name',
    items: () => [{ name: '', data: 'x' }],
    message: /entry "" has an empty name/,
  },
  {
    title: 'a symlink out of dest, then a file through it',
    items: () => [
      { name: 'l', type: 'symlink', linkname: '../../outside' },
      { name: 'l/x', data: 'x' },
    ],
    message: /entry "l" is a symlink to "\.\.\/\.\.\/outside", which leaves the install directory/,
    targets: (w) => [join(w.base, '..', 'outside', 'x'), join(w.dest, 'l')],
  },
  {
    title: 'an absolute symlink (to /etc), then a file through it',
    items: () => [
      { name: 'l', type: 'symlink', linkname: '/etc' },
      { name: `l/${unique}`, data: 'x' },
    ],
    message: /entry "l" is a symlink to an absolute path \("\/etc"\)/,
    targets: () => [join('/etc', unique)],
  },
  {
    title: 'a file written through an (inside) symlink',
    items: () => [
      { name: 'sub/', type: 'directory' },
      { name: 'l', type: 'symlink', linkname: 'sub' },
      { name: 'l/x', data: 'x' },
    ],
    message: /entry "l\/x" passes through the symlink "l"/,
    targets: (w) => [join(w.dest, 'sub', 'x')],
  },
  {
    title: 'chained symlinks: a -> . then b -> a/.. (escapes only through a)',
    items: () => [
      { name: 'a', type: 'symlink', linkname: '.' },
      { name: 'b', type: 'symlink', linkname: 'a/..' },
      { name: 'b/evil', data: 'x' },
    ],
    message: /entry "b" is a symlink to "a\/\.\.", which goes back up after a folder name/,
    targets: (w) => [join(w.base, 'evil'), join(w.dest, 'b')],
  },
  {
    title: 'chained symlinks: d/up -> .. then d/up2 -> up/.. (dest/..)',
    items: () => [
      { name: 'd/', type: 'directory' },
      { name: 'd/up', type: 'symlink', linkname: '..' },
      { name: 'd/up2', type: 'symlink', linkname: 'up/..' },
      { name: 'd/up2/evil', data: 'x' },
    ],
    message: /entry "d\/up2" is a symlink to "up\/\.\.", which goes back up after a folder name/,
    targets: (w) => [join(w.base, 'evil'), join(w.dest, 'd', 'up2')],
  },
  {
    title: 'a symlink out of the single top-level folder',
    items: () => [
      { name: 'app/', type: 'directory' },
      { name: 'app/up', type: 'symlink', linkname: '..' },
    ],
    message: /entry "app\/up" is a symlink that points outside the release folder "app"/,
  },
  {
    title: 'a symlink that climbs out of the top folder and back in by its name',
    items: () => [
      { name: 'app-1.2.0/', type: 'directory' },
      { name: 'app-1.2.0/VERSION', data: '1.2.0\n' },
      { name: 'app-1.2.0/v', type: 'symlink', linkname: '../app-1.2.0/VERSION' },
    ],
    message: /entry "app-1\.2\.0\/v" is a symlink that points outside the release folder "app-1\.2\.0"/,
  },
  {
    title: 'a name too long for the file system',
    items: () => [{ name: `${'n'.repeat(300)}`, data: 'x' }],
    message: /entry "n{200}…" has a name too long for this file system/, // long names are shortened in messages
  },
  {
    title: 'a hard link out of dest',
    items: () => [{ name: 'h', type: 'link', linkname: '../../etc/passwd' }],
    message: /entry "h" is a hard link to "\.\.\/\.\.\/etc\/passwd", which leaves the install directory/,
    targets: (w) => [join(w.dest, 'h')],
  },
  {
    title: 'a hard link to an absolute path',
    items: () => [{ name: 'h', type: 'link', linkname: '/etc/passwd' }],
    message: /entry "h" is a hard link to "\/etc\/passwd", which has an absolute name/,
    targets: (w) => [join(w.dest, 'h')],
  },
  {
    title: 'a hard link to a symlink',
    items: () => [
      { name: 'f', data: 'x' },
      { name: 's', type: 'symlink', linkname: 'f' },
      { name: 'h', type: 'link', linkname: 's' },
    ],
    message: /entry "h" is a hard link to "s", which is not a file extracted before it/,
    targets: (w) => [join(w.dest, 'h')],
  },
  {
    title: 'a character device',
    items: () => [{ name: 'null', type: 'character-device', devmajor: 1, devminor: 3 }],
    message: /entry "null" is a character device/,
    targets: (w) => [join(w.dest, 'null')],
  },
  {
    title: 'a block device',
    items: () => [{ name: 'sda', type: 'block-device', devmajor: 8, devminor: 0 }],
    message: /entry "sda" is a block device/,
    targets: (w) => [join(w.dest, 'sda')],
  },
  {
    title: 'a fifo',
    items: () => [{ name: 'pipe', type: 'fifo' }],
    message: /entry "pipe" is a fifo/,
    targets: (w) => [join(w.dest, 'pipe')],
  },
  {
    title: 'an entry over maxEntryBytes (refused from its header, before any data)',
    items: () => [{ name: 'big', data: Buffer.alloc(4096, 1) }],
    limits: { maxEntryBytes: 1024 },
    message: /entry "big" is 4096 bytes, over the limit of 1024 bytes for one file/,
    targets: (w) => [join(w.dest, 'big')],
  },
  {
    title: 'too many entries',
    items: () => Array.from({ length: 60 }, (_, i) => ({ name: `f${i}`, data: 'x' })),
    limits: { maxEntries: 50 },
    message: /has more than 50 entries \(entry "f50" is number 51\)/,
    targets: (w) => [join(w.dest, 'f50')],
  },
  {
    title: 'a total size over maxBytes',
    items: () => [0, 1, 2].map((i) => ({ name: `f${i}`, data: Buffer.alloc(4096, i) })),
    limits: { maxBytes: 10_000 },
    message: /entry "f2" takes the unpacked size over the limit of 10000 bytes/,
  },
  {
    title: 'a file replacing a directory',
    items: () => [
      { name: 'x/', type: 'directory' },
      { name: 'x', data: 'x' },
    ],
    message: /entry "x" would replace a directory with a file/,
  },
  {
    title: 'a directory replacing a file',
    items: () => [
      { name: 'y', data: 'y' },
      { name: 'y/', type: 'directory' },
    ],
    message: /entry "y\/" would replace a file with a directory/,
  },
  {
    title: 'a file under a file',
    items: () => [
      { name: 'y', data: 'y' },
      { name: 'y/z', data: 'z' },
    ],
    message: /entry "y\/z" needs "y" to be a folder/,
  },
];

for (const c of hostile) {
  test(`refused: ${c.title}`, async (t) => {
    const w = world(t);
    writeFileSync(w.archive, await tarGz(c.items(w)));
    const passwd = statSync('/etc/passwd');
    await assert.rejects(extractTarGz(w.archive, w.dest, { limits: c.limits }), refusal(new RegExp(`^the release archive (is unsafe: )?.*${c.message.source}`)));
    assert.deepEqual(readdirSync(w.base).sort(), ['dest', 'release.tar.gz', 'sentinel'], 'nothing new beside dest');
    assert.deepEqual(listing(w.sentinel), w.sentinelBefore, 'the sentinel beside dest is unchanged');
    for (const target of c.targets?.(w) ?? []) assert.ok(!present(target), `${target} was created`);
    assert.equal(statSync('/etc/passwd').nlink, passwd.nlink, '/etc/passwd gained no hard link');
  });
}

test('refused with nothing outside dest, even when restoring: a file through an outward symlink', async (t) => {
  // Restores accept symlinks that point anywhere, but nothing is ever written through one.
  const w = world(t);
  const outside = join(w.base, 'outside');
  mkdirSync(outside);
  writeFileSync(
    w.archive,
    await tarGz([
      { name: 'venv/', type: 'directory' },
      { name: 'venv/python', type: 'symlink', linkname: '/usr/bin/python3' },
      { name: 'l', type: 'symlink', linkname: outside },
      { name: 'l/x', data: 'x' },
    ]),
  );
  await assert.rejects(restoreTree(w.archive, w.dest), refusal(/^the backup archive is unsafe: entry "l\/x" passes through the symlink "l"/));
  assert.deepEqual(readdirSync(outside), []);
  assert.equal(readlinkSync(join(w.dest, 'venv/python')), '/usr/bin/python3');
});

for (const c of [
  { title: 'a truncated gzip (cut in half)', bytes: async () => (await big()).subarray(0, (await big()).length >> 1) },
  { title: 'garbage bytes (not gzip)', bytes: async () => randomBytes(4096) },
  { title: 'a gzip of garbage (not tar)', bytes: async () => gzipSync(randomBytes(4096)) },
  { title: 'a tar cut in half inside a whole gzip', bytes: async () => gzipSync(bigTar.subarray(0, bigTar.length >> 1)) },
]) {
  test(`refused as truncated or corrupt: ${c.title}`, async (t) => {
    const w = world(t);
    writeFileSync(w.archive, await c.bytes());
    await assert.rejects(extractTarGz(w.archive, w.dest), refusal(/^the release archive is truncated or corrupt \(.+\)$/));
    assert.deepEqual(readdirSync(w.base).sort(), ['dest', 'release.tar.gz', 'sentinel']);
  });
}

/** A valid tar of incompressible data (so cutting the gzip in half cuts the data). */
const bigTar = await (async () => {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of pack) chunks.push(chunk as Buffer);
  })();
  pack.entry({ name: 'app/', type: 'directory' });
  pack.entry({ name: 'app/blob' }, randomBytes(256 * 1024));
  pack.finalize();
  await collected;
  return Buffer.concat(chunks);
})();
let bigGz: Buffer | null = null;
async function big(): Promise<Buffer> {
  return (bigGz ??= gzipSync(bigTar));
}

test('the abort signal stops an extraction', async (t) => {
  const w = world(t);
  writeFileSync(w.archive, await tarGz(Array.from({ length: 250 }, (_, i) => ({ name: `f${i}`, data: 'x' }))));
  const ac = new AbortController();
  const onProgress = (entries: number) => entries >= 100 && ac.abort();
  await assert.rejects(extractTarGz(w.archive, w.dest, { signal: ac.signal, onProgress }), { name: 'AbortError' });
  assert.ok(present(join(w.dest, 'f99')) && !present(join(w.dest, 'f249')), 'stopped on the way');
  await assert.rejects(extractTarGz(w.archive, join(w.base, 'dest2'), { signal: AbortSignal.abort() }), { name: 'AbortError' });
});

// --- archiveTree / restoreTree ---------------------------------------------------------------

/** A tree with files of several modes, empty dirs, symlinks (relative, absolute, dangling), a long name. */
function sampleTree(dir: string): void {
  mkdirSync(join(dir, 'bin'), { recursive: true });
  mkdirSync(join(dir, 'data/empty'), { recursive: true });
  mkdirSync(join(dir, 'data/deeper/empty2'), { recursive: true });
  mkdirSync(join(dir, 'private'), { mode: 0o750 });
  chmodSync(join(dir, 'private'), 0o750);
  writeFileSync(join(dir, 'VERSION'), '1.1.0\n');
  writeFileSync(join(dir, 'bin/run.sh'), '#!/bin/sh\n');
  chmodSync(join(dir, 'bin/run.sh'), 0o755);
  writeFileSync(join(dir, 'private/secret'), 'token');
  chmodSync(join(dir, 'private/secret'), 0o600);
  writeFileSync(join(dir, 'empty-file'), '');
  writeFileSync(join(dir, 'big.bin'), randomBytes(1024 * 1024 + 123));
  writeFileSync(join(dir, `${'n'.repeat(120)}.txt`), 'a name longer than 100 bytes');
  symlinkSync('bin/run.sh', join(dir, 'run'));
  symlinkSync('/usr/bin/python3', join(dir, 'python'));
  symlinkSync('nowhere', join(dir, 'dangling'));
}

test('archiveTree + restoreTree round trip: identical tree, no .partial left, readable by tar', async (t) => {
  const w = world(t);
  const src = join(w.base, 'src');
  sampleTree(src);
  const out = join(w.base, 'backups', 'core.20260113_143022.tar.gz');
  mkdirSync(join(w.base, 'backups'));

  const packed = await archiveTree(src, out);
  assert.deepEqual(readdirSync(join(w.base, 'backups')), ['core.20260113_143022.tar.gz'], 'the final file only, no .partial');
  assert.equal(packed.entries, listing(src).length);
  assert.equal(packed.bytes, 6 + 10 + 5 + 0 + 1024 * 1024 + 123 + 28);

  const names = cli(['-tzf', out]).trim().split('\n').map((n) => n.replace(/\/$/, '')).sort();
  assert.deepEqual(names, listing(src).map((l) => l.split(/\/? /)[0]!).sort());

  const restored = await restoreTree(out, w.dest);
  assert.equal(restored.root, w.dest);
  assert.equal(restored.entries, packed.entries);
  assert.equal(restored.bytes, packed.bytes);
  assert.deepEqual(listing(w.dest), listing(src));
});

test('restoreTree keeps a single top-level folder (no stripping)', async (t) => {
  const w = world(t);
  const src = join(w.base, 'src');
  mkdirSync(join(src, 'only'), { recursive: true });
  writeFileSync(join(src, 'only/file'), 'x');
  const out = join(w.base, 'tree.tar.gz');
  await archiveTree(src, out);
  const restored = await restoreTree(out, w.dest);
  assert.equal(restored.root, w.dest);
  assert.deepEqual(listing(w.dest), listing(src));
});

test('archiveTree removes the partial file when aborted or failing', async (t) => {
  const w = world(t);
  const src = join(w.base, 'src');
  mkdirSync(src);
  writeFileSync(join(src, 'blob'), randomBytes(32 * 1024 * 1024));
  const out = join(w.base, 'backups', 'core.tar.gz');
  mkdirSync(join(w.base, 'backups'));

  await assert.rejects(archiveTree(src, out, { signal: AbortSignal.abort() }), { name: 'AbortError' });
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 20);
  await assert.rejects(archiveTree(src, out, { signal: ac.signal }), { name: 'AbortError' });
  assert.deepEqual(readdirSync(join(w.base, 'backups')), []);

  await assert.rejects(archiveTree(join(w.base, 'missing'), out), { code: 'ENOENT' });
  assert.deepEqual(readdirSync(join(w.base, 'backups')), []);
  assert.ok(!existsSync(`${out}.partial`));
});
