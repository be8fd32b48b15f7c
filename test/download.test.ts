/**
 * The download of a release asset against a real local HTTP server: when the bytes received are
 * not the size the release announced, the message says which way they differ. The `.sha256` asset
 * is read as the real `sha256sum` writes it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { downloadTo, parseSha256File } from '../src/kinds/app/download.js';
import { KeptDownloads } from '../src/kinds/app/kept-download.js';
import { UpdateError } from '../src/core/errors.js';

/** A server that answers every request with `bytes` bytes (a complete, well-formed response). */
async function serving(bytes: number) {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(bytes) });
    res.end(Buffer.alloc(bytes, 7));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/asset.tar.gz`;
  return {
    url,
    close: () => {
      server.close();
      server.closeAllConnections();
    },
  };
}

async function refusal(served: number, announced: number): Promise<UpdateError> {
  const server = await serving(served);
  const dir = mkdtempSync(join(tmpdir(), 'download-'));
  try {
    const error = await downloadTo(server.url, join(dir, 'asset.tar.gz'), { maxBytes: 1 << 20, expectedBytes: announced }).then(
      () => assert.fail(`a download of ${served} bytes announced as ${announced} was accepted`),
      (e: unknown) => e,
    );
    assert.ok(error instanceof UpdateError, String(error));
    assert.equal(error.code, 'download_failed');
    assert.deepEqual(readdirSync(dir), [], 'the partial download is removed');
    return error;
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a download shorter than the release announced is "truncated", with both sizes', async () => {
  const e = await refusal(60, 100);
  assert.match(e.message, /^the download of http:\/\/127\.0\.0\.1:\d+\/asset\.tar\.gz is truncated: 60 of 100 bytes$/);
});

test('a download larger than the release announced says so, with both sizes (not "truncated")', async () => {
  const e = await refusal(150, 100);
  assert.doesNotMatch(e.message, /truncated/);
  assert.match(e.message, /^the download of http:\/\/127\.0\.0\.1:\d+\/asset\.tar\.gz is larger than announced \(150 bytes, expected 100\)$/);
});

test('a download of the announced size is accepted', async () => {
  const server = await serving(100);
  const dir = mkdtempSync(join(tmpdir(), 'download-'));
  try {
    const got = await downloadTo(server.url, join(dir, 'asset.tar.gz'), { maxBytes: 1 << 20, expectedBytes: 100 });
    assert.equal(got.bytes, 100);
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a .sha256 asset in sha256sum format is read: text and binary mode, ./paths, lists of several files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sha256sum-'));
  try {
    const name = 'dunebugger-1.4.0.tar.gz';
    writeFileSync(join(dir, name), 'the release');
    writeFileSync(join(dir, 'other.tar.gz'), 'another file');
    const digest = createHash('sha256').update('the release').digest('hex');
    // What the real tool prints, as a release pipeline publishes it.
    const text = execFileSync('sha256sum', [name], { cwd: dir, encoding: 'utf8' });
    assert.equal(text, `${digest}  ${name}\n`);
    assert.equal(parseSha256File(text, name), digest);
    const binary = execFileSync('sha256sum', ['--binary', name], { cwd: dir, encoding: 'utf8' });
    assert.equal(parseSha256File(binary, name), digest);
    const several = execFileSync('sha256sum', ['other.tar.gz', `./${name}`], { cwd: dir, encoding: 'utf8' });
    assert.equal(parseSha256File(several, name), digest, 'the line of this asset, not the first line');
    assert.equal(parseSha256File(`${digest.toUpperCase()}\r\n`, name), digest, 'a bare digest (CRLF, upper case) is accepted');
    assert.throws(
      () => parseSha256File(execFileSync('sha256sum', ['other.tar.gz'], { cwd: dir, encoding: 'utf8' }), name),
      (e: unknown) => e instanceof UpdateError && e.code === 'bad_release' && /the checksum file of dunebugger-1\.4\.0\.tar\.gz has no sha256 for it/.test(e.message),
    );
    assert.throws(() => parseSha256File('not a checksum\n', name), (e: unknown) => e instanceof UpdateError && e.code === 'bad_release');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('kept downloads: checked against the expected sha256, reused while it matches, downloaded again otherwise, one per component', async () => {
  const body = Buffer.from('release bytes '.repeat(1000));
  const digest = createHash('sha256').update(body).digest('hex');
  let served = 0;
  const server = createServer((_req, res) => {
    served++;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(body.length) });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/core-1.4.0.tar.gz`;
  const dataDir = mkdtempSync(join(tmpdir(), 'kept-'));
  try {
    const kept = new KeptDownloads(dataDir, 'core');
    const asset = { name: 'core-1.4.0.tar.gz', url, size: body.length };
    const options = { expected: digest, maxBytes: 1 << 20, token: null, signal: new AbortController().signal };
    // An older asset and a download cut by a crash are there from before.
    mkdirSync(kept.dir, { recursive: true });
    writeFileSync(join(kept.dir, 'core-1.3.0.tar.gz'), 'older');
    writeFileSync(join(kept.dir, 'core-1.4.0.tar.gz.partial'), 'cut');

    const first = await kept.obtain(asset, options);
    assert.deepEqual(first, { path: join(dataDir, 'downloads', 'core', 'core-1.4.0.tar.gz'), sha256: digest, bytes: body.length, reused: false });
    assert.equal(served, 1);
    assert.deepEqual(readdirSync(kept.dir), ['core-1.4.0.tar.gz'], 'only the newest is kept; the partial file is gone');

    const again = await kept.obtain(asset, options);
    assert.equal(again.reused, true);
    assert.equal(served, 1, 'a kept file that matches is not downloaded again');

    writeFileSync(first.path, Buffer.concat([body.subarray(0, -1), Buffer.from('X')])); // same size, other bytes
    const redone = await kept.obtain(asset, options);
    assert.equal(redone.reused, false);
    assert.equal(served, 2, 'a kept file that no longer matches is downloaded again');
    assert.ok(readFileSync(first.path).equals(body));

    await kept.obtain(asset, { ...options, expected: null });
    assert.equal(served, 3, 'without a checksum to match, nothing is reused');

    const wrong = await kept.obtain(asset, { ...options, expected: 'f'.repeat(64) }).then(
      () => assert.fail('a download that does not match was accepted'),
      (e: unknown) => e,
    );
    assert.ok(wrong instanceof UpdateError && wrong.code === 'bad_release' && /checksum mismatch for core-1\.4\.0\.tar\.gz/.test(wrong.message), String(wrong));
    assert.deepEqual(readdirSync(join(dataDir, 'downloads')), [], 'nothing is kept of a download that does not match');

    await kept.obtain(asset, options);
    kept.remove(asset.name);
    assert.deepEqual(readdirSync(join(dataDir, 'downloads')), [], 'removing the last one removes the component\'s folder');
  } finally {
    server.close();
    server.closeAllConnections();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
