/** GitHubClient against a fake GitHub over real HTTP, with the ETag cache in a real SQLite file. */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import got from 'got';
import { openDatabase, type Db } from '../src/journal/database.js';
import { HttpCacheTable } from '../src/journal/http-cache.js';
import { GitHubClient, type GitHubClientOptions } from '../src/releases/github.js';
import { ReleaseError } from '../src/releases/types.js';
import { startFakeGitHub, type FakeGitHub } from '../src/demo/local-github.js';

const REPO = 'acme/widget';

interface Setup {
  fake: FakeGitHub;
  db: Db;
  cache: HttpCacheTable;
  client(options?: Partial<GitHubClientOptions>): GitHubClient;
}

async function setup(t: TestContext): Promise<Setup> {
  const fake = await startFakeGitHub();
  const dir = mkdtempSync(join(tmpdir(), 'updater-github-'));
  const db = openDatabase(join(dir, 'updater.db'));
  const cache = new HttpCacheTable(db);
  t.after(async () => {
    db.close();
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const client = (options: Partial<GitHubClientOptions> = {}) =>
    new GitHubClient({ apiUrl: fake.apiUrl, rawUrl: fake.rawUrl, token: null, cache, backoffMs: 10, ...options });
  return { fake, db, cache, client };
}

/** A one-off server for answers the fake never gives (hostile bodies, odd links). */
async function serve(t: TestContext, handler: RequestListener): Promise<string> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function rejectsWith(promise: Promise<unknown>, code: string, message?: RegExp): Promise<ReleaseError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ReleaseError, `expected a ReleaseError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (message) assert.match(error.message, message);
    return error;
  }
  assert.fail(`expected a ReleaseError ${code}`);
}

const statuses = (fake: FakeGitHub) => fake.requests.map((r) => r.status);

test('listing maps GitHub fields and sends the API headers, without a token when none is set', async (t) => {
  const { fake, client } = await setup(t);
  fake.addRelease(REPO, {
    tag: 'v1.2.0',
    body: '## Changes\n- faster',
    publishedAt: '2026-03-01T10:00:00Z',
    assets: [{ name: 'widget-1.2.0.tar.gz', content: Buffer.alloc(1234, 7), contentType: 'application/gzip' }],
  });
  const listed = await client().listReleases(REPO);
  assert.equal(listed.stale, false);
  assert.equal(listed.reason, null);
  assert.equal(listed.value.length, 1);
  const [release] = listed.value;
  assert.deepEqual({ ...release!, assets: [] }, {
    tag: 'v1.2.0',
    name: 'v1.2.0',
    notes: '## Changes\n- faster',
    url: `${fake.url}/acme/widget/releases/tag/v1.2.0`,
    draft: false,
    prerelease: false,
    publishedAt: '2026-03-01T10:00:00Z',
    assets: [],
  });
  const [asset] = release!.assets;
  assert.equal(asset!.name, 'widget-1.2.0.tar.gz');
  assert.equal(asset!.size, 1234);
  assert.equal(asset!.contentType, 'application/gzip');
  assert.match(asset!.apiUrl, /\/repos\/acme\/widget\/releases\/assets\/\d+$/);
  const download = await got(asset!.url, { responseType: 'buffer' });
  assert.equal(download.headers['content-length'], '1234');
  assert.equal(download.body.length, 1234);

  const [seen] = fake.requests.filter((r) => r.path.startsWith('/repos/'));
  assert.equal(seen!.path, '/repos/acme/widget/releases?per_page=100');
  assert.equal(seen!.headers.accept, 'application/vnd.github+json');
  assert.equal(seen!.headers['x-github-api-version'], '2022-11-28');
  assert.equal(seen!.headers['user-agent'], 'dune-updater');
  assert.equal(seen!.headers.authorization, undefined);
});

test('drafts are kept, marked draft, and the list is newest first', async (t) => {
  const { fake, client } = await setup(t);
  fake.addRelease(REPO, { tag: 'v1.0.0', publishedAt: '2026-01-01T00:00:00Z' });
  fake.addRelease(REPO, { tag: 'v1.1.0-rc.1', prerelease: true, publishedAt: '2026-02-01T00:00:00Z' });
  fake.addRelease(REPO, { tag: 'v2.0.0', draft: true });
  const { value } = await client().listReleases(REPO);
  assert.deepEqual(value.map((r) => [r.tag, r.draft, r.prerelease, r.publishedAt]), [
    ['v2.0.0', true, false, null],
    ['v1.1.0-rc.1', false, true, '2026-02-01T00:00:00Z'],
    ['v1.0.0', false, false, '2026-01-01T00:00:00Z'],
  ]);
});

test('pagination follows Link rel="next", at most 3 pages', async (t) => {
  const { fake, client } = await setup(t);
  for (let i = 0; i < 250; i++) fake.addRelease(REPO, { tag: `v1.0.${i}` });
  const { value } = await client().listReleases(REPO);
  assert.equal(value.length, 250);
  assert.equal(value[0]!.tag, 'v1.0.249');
  assert.equal(value[249]!.tag, 'v1.0.0');
  assert.deepEqual(fake.requests.map((r) => r.path), [
    '/repos/acme/widget/releases?per_page=100',
    '/repos/acme/widget/releases?per_page=100&page=2',
    '/repos/acme/widget/releases?per_page=100&page=3',
  ]);

  for (let i = 250; i < 350; i++) fake.addRelease(REPO, { tag: `v1.0.${i}` });
  fake.resetRequests();
  const bounded = await client().listReleases(REPO);
  assert.equal(bounded.value.length, 300, 'the 4th page is not read');
  assert.equal(fake.requests.length, 3);
});

test('ETag: the second call sends If-None-Match, gets a 304 and returns the same result', async (t) => {
  const { fake, db, cache, client } = await setup(t);
  fake.addRelease(REPO, { tag: 'v1.0.0', assets: [{ name: 'a.tgz', content: 'x' }] });
  let now = Date.parse('2026-05-01T12:00:00Z');
  const github = client({ now: () => now });
  const first = await github.listReleases(REPO);
  now += 60_000;
  const second = await github.listReleases(REPO);
  assert.deepEqual(second.value, first.value);
  assert.equal(second.stale, false);
  assert.equal(second.fetchedAt, '2026-05-01T12:01:00.000Z', 'a 304 confirms the cached answer');
  assert.equal(fake.requests.length, 2);
  assert.deepEqual(statuses(fake), [200, 304]);
  assert.equal(fake.requests[0]!.headers['if-none-match'], undefined);
  assert.match(String(fake.requests[1]!.headers['if-none-match']), /^"[0-9a-f]+"$/);
  const url = `${fake.apiUrl}/repos/${REPO}/releases?per_page=100`;
  const row = () => db.prepare('SELECT etag, status, fetched_at FROM http_cache WHERE url = ?').get(url) as any;
  assert.equal(row().etag, fake.requests[1]!.headers['if-none-match']);
  assert.equal(row().status, 200);
  // The 304's confirmation is known at once, and written with the others of the same second.
  assert.equal(cache.get(url)!.fetchedAt, '2026-05-01T12:01:00.000Z');
  assert.equal(row().fetched_at, '2026-05-01T12:00:00.000Z');
  cache.flush();
  assert.equal(row().fetched_at, '2026-05-01T12:01:00.000Z');

  // A new release changes the body: a full 200 again.
  fake.addRelease(REPO, { tag: 'v1.1.0' });
  const third = await github.listReleases(REPO);
  assert.deepEqual(third.value.map((r) => r.tag), ['v1.1.0', 'v1.0.0']);
  assert.deepEqual(statuses(fake), [200, 304, 200]);
});

test('a 304 is answered from what was parsed, or after a restart from the database; a 404 forgets both', async (t) => {
  const { fake, db, client } = await setup(t);
  for (let i = 0; i < 150; i++) fake.addRelease(REPO, { tag: `v0.${i}.0` });
  const first = await client().listReleases(REPO);
  // A new client over the same database: the ETags and the bodies come from the journal.
  const restarted = client();
  fake.resetRequests();
  const again = await restarted.listReleases(REPO);
  assert.deepEqual(statuses(fake), [304, 304]);
  assert.deepEqual(again.value, first.value);
  fake.resetRequests();
  assert.deepEqual((await restarted.listReleases(REPO)).value, first.value);
  assert.deepEqual(statuses(fake), [304, 304]);
  // Gone from GitHub: not found, and nothing of it is kept to be sent again as an ETag.
  fake.repoMissing(REPO);
  await assert.rejects(restarted.listReleases(REPO), (e: unknown) => e instanceof ReleaseError && e.code === 'not_found');
  const firstPage = `${fake.apiUrl}/repos/${REPO}/releases?per_page=100`;
  assert.equal((db.prepare('SELECT count(*) AS n FROM http_cache WHERE url = ?').get(firstPage) as { n: number }).n, 0);
  fake.resetRequests();
  await assert.rejects(restarted.listReleases(REPO));
  assert.equal(fake.requests[0]!.headers['if-none-match'], undefined);
});

test('ETag over several pages: 304s still follow the pages remembered from the 200s', async (t) => {
  const { fake, client } = await setup(t);
  for (let i = 0; i < 150; i++) fake.addRelease(REPO, { tag: `v0.${i}.0` });
  const github = client();
  const first = await github.listReleases(REPO);
  fake.resetRequests();
  const second = await github.listReleases(REPO);
  assert.equal(second.value.length, 150);
  assert.deepEqual(second.value, first.value);
  assert.deepEqual(statuses(fake), [304, 304]);
});

test('primary rate limit (403, remaining 0): no request until the reset; the cache is served stale', async (t) => {
  const { fake, client } = await setup(t);
  fake.addRelease(REPO, { tag: 'v1.0.0' });
  fake.addRelease('acme/other', { tag: 'v3.0.0' });
  let now = Date.now();
  const github = client({ now: () => now });
  const cached = await github.listReleases(REPO);

  const until = new Date((Math.floor(now / 1000) + 1800) * 1000);
  fake.rateLimit({ until, kind: 'primary' });
  fake.resetRequests();
  const stale = await github.listReleases(REPO);
  assert.equal(stale.stale, true);
  assert.deepEqual(stale.value, cached.value);
  assert.equal(stale.fetchedAt, cached.fetchedAt);
  assert.equal(stale.reason, `rate limited until ${until.toISOString()}, showing the result from ${cached.fetchedAt}`);
  assert.deepEqual(statuses(fake), [403]);

  // Blocked for every repository of this client: not even a request.
  const error = await rejectsWith(github.listReleases('acme/other'), 'rate_limited', /^GitHub rate limit reached; not asking again until /);
  assert.equal(error.details.until, until.toISOString());
  assert.equal(error.message, `GitHub rate limit reached; not asking again until ${until.toISOString()}`);
  const again = await github.listReleases(REPO);
  assert.equal(again.stale, true);
  assert.equal(fake.requests.length, 1, 'no request while blocked');

  // After the reset, GitHub is asked again.
  fake.rateLimit(null);
  now = until.getTime() + 1000;
  const fresh = await github.listReleases('acme/other');
  assert.equal(fresh.stale, false);
  assert.deepEqual(fresh.value.map((r) => r.tag), ['v3.0.0']);
  assert.equal(fake.requests.length, 2);
});

test('secondary rate limit (429, Retry-After): rate_limited without a cache, then no request', async (t) => {
  const { fake, client } = await setup(t);
  fake.addRelease(REPO, { tag: 'v1.0.0' });
  const now = Date.now();
  const github = client({ now: () => now });
  fake.rateLimit({ until: new Date(Date.now() + 120_000), kind: 'retry-after' });
  const error = await rejectsWith(github.listReleases(REPO), 'rate_limited', /^GitHub rate limit reached; not asking again until \d{4}-\d\d-\d\dT/);
  const until = Date.parse(error.details.until!);
  assert.ok(until >= now + 119_000 && until <= now + 121_000, `until ${error.details.until} follows Retry-After`);
  assert.deepEqual(statuses(fake), [429]);
  assert.equal(fake.requests[0]!.headers['if-none-match'], undefined);

  await rejectsWith(github.releaseByTag(REPO, 'v1.0.0'), 'rate_limited');
  assert.equal(fake.requests.length, 1, 'no request while blocked');
});

test('a 403 without rate-limit headers is unauthorized, not a rate limit', async (t) => {
  const { fake, client } = await setup(t);
  fake.addRelease(REPO, { tag: 'v1.0.0' });
  const github = client();
  fake.failNext(1, 403);
  await rejectsWith(github.listReleases(REPO), 'unauthorized', /HTTP 403/);
  assert.equal(fake.requests.length, 1, '4xx is never retried');
  const after = await github.listReleases(REPO);
  assert.equal(after.value.length, 1, 'and it does not block the client');
});

test('500 then 200: succeeds after a retry', async (t) => {
  const { fake, client } = await setup(t);
  fake.addRelease(REPO, { tag: 'v1.0.0' });
  fake.failNext(1, 500);
  const result = await client().listReleases(REPO);
  assert.deepEqual(result.value.map((r) => r.tag), ['v1.0.0']);
  assert.deepEqual(statuses(fake), [500, 200]);
});

test('500 forever: bounded attempts, then unreachable, or the cache served stale', async (t) => {
  const { fake, client } = await setup(t);
  fake.addRelease(REPO, { tag: 'v1.0.0' });
  const github = client({ retries: 2 });
  fake.failNext(1000, 500);
  await rejectsWith(github.listReleases(REPO), 'unreachable', /^GitHub is unreachable \(HTTP 500\) after 3 attempts$/);
  assert.deepEqual(statuses(fake), [500, 500, 500]);

  fake.failNext(0, 500);
  const cached = await github.listReleases(REPO);
  fake.failNext(1000, 503);
  fake.resetRequests();
  const stale = await github.listReleases(REPO);
  assert.equal(stale.stale, true);
  assert.deepEqual(stale.value, cached.value);
  assert.equal(stale.reason, `GitHub is unreachable (HTTP 503) after 3 attempts, showing the result from ${cached.fetchedAt}`);
  assert.equal(fake.requests.length, 3);
});

test('once GitHub fails on page 1, later pages come from the cache without asking again', async (t) => {
  const { fake, client } = await setup(t);
  for (let i = 0; i < 150; i++) fake.addRelease(REPO, { tag: `v0.${i}.0` });
  const github = client();
  const cached = await github.listReleases(REPO);
  fake.failNext(1000, 502);
  fake.resetRequests();
  const stale = await github.listReleases(REPO);
  assert.equal(stale.stale, true);
  assert.deepEqual(stale.value, cached.value);
  assert.deepEqual(fake.requests.map((r) => r.path), Array(3).fill('/repos/acme/widget/releases?per_page=100'));
});

test('a hanging server: each attempt times out, the call ends, the cache is served stale', { timeout: 10_000 }, async (t) => {
  const { fake, client } = await setup(t);
  fake.addRelease(REPO, { tag: 'v1.0.0' });
  const github = client({ timeoutMs: 300, retries: 2, backoffMs: 200 });
  const cached = await github.listReleases(REPO);
  fake.hang(true);
  fake.resetRequests();
  const stale = await github.listReleases(REPO);
  assert.equal(stale.stale, true);
  assert.match(stale.reason!, /^GitHub is unreachable \(no answer within 300 ms\) after 3 attempts, showing the result from /);
  assert.deepEqual(stale.value, cached.value);
  assert.equal(fake.requests.length, 3);
  await rejectsWith(github.releaseByTag(REPO, 'v1.0.0'), 'unreachable', /no answer within 300 ms\) after 3 attempts/);
  assert.equal(fake.requests.length, 6);
});

test('connection refused: unreachable with the reason', async (t) => {
  const { client } = await setup(t);
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const github = client({ apiUrl: `http://127.0.0.1:${port}`, retries: 1 });
  await rejectsWith(
    github.listReleases(REPO),
    'unreachable',
    new RegExp(`^GitHub is unreachable \\(connect ECONNREFUSED 127\\.0\\.0\\.1:${port}\\) after 2 attempts$`),
  );
});

test('the token is sent as a Bearer header when set, and a wrong one is unauthorized', async (t) => {
  const { fake, client } = await setup(t);
  fake.addRelease(REPO, { tag: 'v1.0.0' });
  fake.requireToken('s3cret');
  const result = await client({ token: 's3cret' }).listReleases(REPO);
  assert.equal(result.value.length, 1);
  assert.equal(fake.requests[0]!.headers.authorization, 'Bearer s3cret');
  await rejectsWith(client({ token: 'wrong' }).listReleases(REPO), 'unauthorized', /refused the configured token/);
  await rejectsWith(client({ token: null }).listReleases(REPO), 'unauthorized', /asks for a token/);
  assert.equal(fake.requests[2]!.headers.authorization, undefined);
});

test('a missing repository is not_found; a missing tag is null', async (t) => {
  const { fake, client } = await setup(t);
  fake.repoMissing('acme/gone');
  await rejectsWith(client().listReleases('acme/gone'), 'not_found', /^repository acme\/gone not found on GitHub \(or no access\)$/);
  assert.equal(await client().releaseByTag(REPO, 'v9.9.9'), null);
  await rejectsWith(client().listReleases('not a repo'), 'not_found');
});

test('releaseByVersion tries v{version}, then {version}', async (t) => {
  const { fake, client } = await setup(t);
  fake.addRelease(REPO, { tag: 'v1.2.0', assets: [{ name: 'w.tgz', content: 'abc' }] });
  fake.addRelease(REPO, { tag: '2.0.0' });
  fake.addRelease(REPO, { tag: 'v3.0.0', draft: true });
  const github = client();

  const v = await github.releaseByVersion(REPO, '1.2.0');
  assert.equal(v!.value.tag, 'v1.2.0');
  assert.equal(v!.value.assets[0]!.size, 3);
  assert.deepEqual(fake.requests.map((r) => r.path), ['/repos/acme/widget/releases/tags/v1.2.0']);

  fake.resetRequests();
  const bare = await github.releaseByVersion(REPO, '2.0.0');
  assert.equal(bare!.value.tag, '2.0.0');
  assert.deepEqual(fake.requests.map((r) => [r.path, r.status]), [
    ['/repos/acme/widget/releases/tags/v2.0.0', 404],
    ['/repos/acme/widget/releases/tags/2.0.0', 200],
  ]);

  assert.equal(await github.releaseByVersion(REPO, '3.0.0'), null, 'a draft is not found by tag');
  assert.equal(await github.releaseByVersion(REPO, '4.0.0'), null);

  // Tag lookups are cached and revalidated too.
  fake.resetRequests();
  const again = await github.releaseByVersion(REPO, '1.2.0');
  assert.deepEqual(again!.value, v!.value);
  assert.deepEqual(statuses(fake), [304]);
});

test('fetchRaw: text, null when missing, bad_response above 1 MiB', async (t) => {
  const { fake, client } = await setup(t);
  fake.setRaw(REPO, 'v1.2.0', 'update-manifest.yaml', 'version: 1.2.0\n');
  fake.setRaw(REPO, 'main', 'big.txt', 'x'.repeat(1024 * 1024 + 1));
  const github = client({ token: 't0ken' });
  assert.equal(await github.fetchRaw(REPO, 'v1.2.0', 'update-manifest.yaml'), 'version: 1.2.0\n');
  assert.equal(fake.requests[0]!.path, '/raw/acme/widget/v1.2.0/update-manifest.yaml');
  assert.equal(await github.fetchRaw(REPO, 'v1.2.0', 'missing.yaml'), null);
  await rejectsWith(github.fetchRaw(REPO, 'main', 'big.txt'), 'bad_response', /larger than 1048576 bytes/);
  await rejectsWith(github.fetchRaw(REPO, 'main', '../../etc/passwd'), 'not_found');
});

test('hostile answers: bad shapes are bad_response and never cached', async (t) => {
  const { db, client } = await setup(t);
  const bodies: Record<string, string> = {
    '/repos/a/object/releases': '{"message":"hello"}',
    '/repos/a/html/releases': '<html>captive portal</html>',
    '/repos/a/numbers/releases': '[1, 2, 3]',
    '/repos/a/notag/releases': '[{"name": "x"}]',
    '/repos/a/assets/releases': JSON.stringify([{ tag_name: 'v1', assets: [{ name: '../evil', browser_download_url: 'http://x/y', url: 'http://x/z', size: 1 }, { name: 'ok.tgz', browser_download_url: 'javascript:alert(1)', url: 'http://x/z', size: 1 }, { name: 'good.tgz', browser_download_url: 'https://x/good.tgz', url: 'https://x/a/1', size: 5, content_type: 'application/gzip' }] }]),
  };
  const api = await serve(t, (req, res) => {
    const body = bodies[new URL(req.url!, 'http://x').pathname];
    res.writeHead(body ? 200 : 404, { 'content-type': 'application/json', etag: '"e"' });
    res.end(body ?? '{}');
  });
  const github = client({ apiUrl: api });
  await rejectsWith(github.listReleases('a/object'), 'bad_response', /not a list/);
  await rejectsWith(github.listReleases('a/html'), 'bad_response', /not JSON/);
  await rejectsWith(github.listReleases('a/numbers'), 'bad_response', /tag_name/);
  await rejectsWith(github.listReleases('a/notag'), 'bad_response', /tag_name/);
  assert.equal((db.prepare('SELECT count(*) AS n FROM http_cache').get() as any).n, 0);
  const { value } = await github.listReleases('a/assets');
  assert.deepEqual(value[0]!.assets, [{ name: 'good.tgz', url: 'https://x/good.tgz', apiUrl: 'https://x/a/1', size: 5, contentType: 'application/gzip' }]);
});

test('an endless answer without Content-Length is cut off at the cap', async (t) => {
  const { client } = await setup(t);
  const raw = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    const chunk = Buffer.alloc(64 * 1024, 120);
    const write = () => {
      while (!res.destroyed && res.write(chunk));
      if (!res.destroyed) res.once('drain', write);
    };
    write();
  });
  await rejectsWith(client({ rawUrl: raw }).fetchRaw(REPO, 'main', 'manifest.yaml'), 'bad_response', /larger than 1048576 bytes/);
});

test('a next-page link to another host is not followed (the token would go with it)', async (t) => {
  const { client } = await setup(t);
  const seen: string[] = [];
  const api = await serve(t, (req, res) => {
    seen.push(String(req.headers.authorization));
    res.writeHead(200, { 'content-type': 'application/json', link: '<http://127.0.0.2:9/steal?page=2>; rel="next"' });
    res.end('[{"tag_name": "v1.0.0"}]');
  });
  await rejectsWith(client({ apiUrl: api, token: 'abc' }).listReleases(REPO), 'bad_response', /next-page link points outside/);
  assert.deepEqual(seen, ['Bearer abc']);
});
