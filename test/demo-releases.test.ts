/**
 * The demo's release tarballs are the same bytes at every start, so that the `.sha256` a run read
 * before a restart still holds for a download after it (recovery downloads again).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { gunzipSync, gzipSync } from 'node:zlib';
import { cleanup, tempDir } from './support/harness.js';
import { prepareDemoDir, startService, type ServiceProcess } from './support/service-process.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Every asset the demo's stand-in for GitHub serves, by name: its bytes. */
async function servedAssets(cwd: string): Promise<Map<string, Buffer>> {
  const port = readFileSync(join(cwd, 'data', 'demo', 'releases.port'), 'utf8').trim();
  const list = (await (await fetch(`http://127.0.0.1:${port}/repos/demo/sample-app/releases`)).json()) as Array<{ assets: Array<{ name: string; size: number; browser_download_url: string }> }>;
  const out = new Map<string, Buffer>();
  for (const asset of list.flatMap((r) => r.assets)) {
    const bytes = Buffer.from(await (await fetch(asset.browser_download_url)).arrayBuffer());
    assert.equal(bytes.length, asset.size);
    out.set(asset.name, bytes);
  }
  return out;
}

async function stop(s: ServiceProcess) {
  s.child.kill('SIGTERM');
  await s.exited;
}

test('the demo serves the same release tarballs and .sha256 files after a restart', async () => {
  const cwd = tempDir('updater-demo-');
  try {
    await prepareDemoDir(cwd);
    const first = await startService(cwd);
    const before = await servedAssets(cwd);
    await stop(first);
    await sleep(1100); // a tar entry's mtime has a resolution of 1 s
    const second = await startService(cwd);
    const after = await servedAssets(cwd);
    await stop(second);

    assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort());
    const tarballs = [...before.keys()].filter((n) => n.endsWith('.tar.gz'));
    assert.equal(tarballs.length, 3);
    for (const name of tarballs) {
      assert.ok(after.get(name)!.equals(before.get(name)!), `${name} changed across the restart`);
      assert.equal(after.get(`${name}.sha256`)!.toString(), before.get(`${name}.sha256`)!.toString(), `${name}.sha256 changed across the restart`);
      assert.equal(after.get(`${name}.sha256`)!.toString(), `${sha256(after.get(name)!)}  ${name}\n`, `${name}.sha256 is the tarball's`);
    }
  } finally {
    cleanup(cwd);
  }
});

test('the demo builds its tarballs deterministically, and serves the ones it kept', async () => {
  const { demoReleaseAssets } = await import('../src/demo/demo.js');
  const one = tempDir('updater-demo-');
  const two = tempDir('updater-demo-');
  try {
    const a = await demoReleaseAssets(one);
    await sleep(1100);
    const b = await demoReleaseAssets(two); // another directory: built again, not reused
    assert.deepEqual(
      b.map((x) => [x.name, x.sha256]),
      a.map((x) => [x.name, x.sha256]),
    );
    for (const [i, x] of a.entries()) {
      assert.ok(x.content.equals(b[i]!.content), `${x.name}: built twice, different bytes`);
      assert.equal(x.sha256, sha256(x.content));
      assert.equal(x.content[4]! | x.content[5]! | x.content[6]! | x.content[7]!, 0, 'no time stamp in the gzip header');
    }

    // What is kept is served as is at the next start, even if this zlib would compress it otherwise.
    const kept = readdirSync(join(one, 'releases')).filter((n) => n.startsWith('sample-app-1.1.0.'));
    assert.equal(kept.length, 1);
    const other = gzipSync(gunzipSync(readFileSync(join(one, 'releases', kept[0]!))), { level: 1 });
    writeFileSync(join(one, 'releases', kept[0]!), other);
    const again = await demoReleaseAssets(one);
    const v110 = again.find((x) => x.version === '1.1.0')!;
    assert.ok(v110.content.equals(other));
    assert.equal(v110.sha256, sha256(other));
    assert.deepEqual(readdirSync(join(one, 'releases')).filter((n) => n.endsWith('.tar.gz')).length, 3, 'one kept tarball per release');
  } finally {
    cleanup(one);
    cleanup(two);
  }
});
