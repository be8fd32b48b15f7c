/** The version rules: the contract's table row by row, and the edge cases around it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decideUpdate, parseVersion } from '../src/core/versions.js';
import { pickLatest } from '../src/releases/select.js';
import { readVersionFile, versionFromFile } from '../src/core/version-file.js';
import { ComposeImagesCache, readComposeVersion, versionFromImage } from '../src/kinds/container/installed.js';
import { parseManifest, checkMinimumVersions, DEFAULT_MANIFEST } from '../src/releases/manifest.js';
import type { Release } from '../src/releases/types.js';
import { cleanup, tempDir } from './support/harness.js';

const rel = (tag: string, extra: Partial<Release> = {}): Release => ({ tag, name: tag, notes: `notes of ${tag}`, url: `https://example.invalid/${tag}`, draft: false, prerelease: false, publishedAt: null, assets: [], ...extra });

/** The contract's "Versions" table: release tag, installed, update available. */
const CONTRACT_TABLE: Array<[string, string, boolean]> = [
  ['v1.2.0', '1.1.0', true],
  ['v1.1.5', '1.1.5', false],
  ['v2.0.0', '1.9.9', true],
  ['v1.0.0-beta', '1.0.0', false],
  ['v1.1.0', '1.2.0', false],
];

for (const [tag, installed, expected] of CONTRACT_TABLE) {
  test(`contract table: release ${tag}, installed ${installed} → update available: ${expected}`, () => {
    const latest = parseVersion(tag);
    assert.ok(latest, `${tag} parses`);
    assert.equal(decideUpdate(parseVersion(installed), latest).updateAvailable, expected);
  });
}

test('parsing: leading v, missing minor/patch, build metadata, prereleases, garbage', () => {
  assert.equal(parseVersion('v1.2.3'), '1.2.3');
  assert.equal(parseVersion('V1.2.3'), '1.2.3');
  assert.equal(parseVersion('1.2'), '1.2.0');
  assert.equal(parseVersion('v2'), '2.0.0');
  assert.equal(parseVersion('1.2.3+build.5'), '1.2.3', 'build metadata is dropped: it does not order');
  assert.equal(parseVersion(' 1.2.3\n'), '1.2.3');
  assert.equal(parseVersion('1.0.0-rc.1'), '1.0.0-rc.1');
  for (const garbage of ['', 'latest', 'main', 'v', '1.2.3.4', '01.2.3', 'release-1.2', '1.2.x', '${TAG}', 'v1.2.3 ; rm -rf /']) {
    assert.equal(parseVersion(garbage), null, garbage);
  }
  // Build metadata does not order: same version, no update.
  assert.equal(decideUpdate('1.2.3', parseVersion('1.2.3+build.9')).updateAvailable, false);
  assert.equal(decideUpdate('1.2.0', parseVersion('1.2')).updateAvailable, false);
  assert.equal(decideUpdate('1.1.9', parseVersion('1.2')).updateAvailable, true);
});

test('an unknown installed version never produces an offer, and says why', () => {
  const d = decideUpdate(null, '9.9.9', 'the image tag is "latest", so the installed version is unknown');
  assert.equal(d.updateAvailable, false);
  assert.match(d.reason!, /latest/);
});

test('the latest is the highest semver, not the newest by date; drafts never; prereleases only when asked', () => {
  const releases = [
    rel('v1.10.0', { publishedAt: '2024-01-01T00:00:00Z' }),
    rel('v1.9.0', { publishedAt: '2025-06-01T00:00:00Z' }), // newer by date, lower version
    rel('v2.0.0', { draft: true }),
    rel('v1.11.0-rc.1', { prerelease: true }),
    rel('v1.12.0-beta'), // a prerelease by its tag even if not flagged
    rel('nightly'),
  ];
  assert.equal(pickLatest(releases, false)!.version, '1.10.0');
  assert.equal(pickLatest(releases, true)!.version, '1.12.0-beta');
  assert.equal(pickLatest([rel('v2.0.0', { draft: true })], true), null);
  assert.equal(pickLatest([], false), null);
});

test('container version from the image tag; digest, latest, no tag and ${VAR} are unknown with a reason', () => {
  assert.deepEqual(versionFromImage('127.0.0.1:5001/sample:1.0.0'), { version: '1.0.0', raw: '1.0.0', reason: null });
  assert.equal(versionFromImage('ghcr.io/o/scheduler:v1.2').version, '1.2.0');
  assert.match(versionFromImage('ghcr.io/o/s@sha256:' + 'a'.repeat(64)).reason!, /pinned by digest/);
  assert.match(versionFromImage('127.0.0.1:5001/sample').reason!, /no tag/);
  assert.match(versionFromImage('sample:latest').reason!, /"latest"/);
  assert.match(versionFromImage('sample:${TAG}').reason!, /interpolated/);
  assert.match(versionFromImage('sample:stable').reason!, /"stable" is not a version/);
  assert.match(versionFromImage('ghcr.io/o/s:1.2.3@sha256:abc').reason!, /pinned by digest/);
});

test('compose and VERSION files are read from disk', () => {
  const dir = tempDir();
  try {
    const compose = join(dir, 'docker-compose.yml');
    writeFileSync(compose, '# the stack\nservices:\n  web:\n    image: "127.0.0.1:5001/web:1.4.2"  # pinned\n  db:\n    image: postgres\n');
    assert.equal(readComposeVersion(compose, 'web').version, '1.4.2');
    assert.match(readComposeVersion(compose, 'db').reason!, /no tag/);
    assert.match(readComposeVersion(compose, 'nope').reason!, /no service "nope"/);
    assert.match(readComposeVersion(join(dir, 'missing.yml'), 'web').reason!, /ENOENT/);
    writeFileSync(compose, 'services: [\n');
    assert.match(readComposeVersion(compose, 'web').reason!, /not valid YAML/);

    const app = join(dir, 'core');
    mkdirSync(app);
    assert.match(readVersionFile(app).reason!, /no VERSION file/);
    writeFileSync(join(app, 'VERSION'), '1.0.0\n');
    assert.equal(readVersionFile(app).version, '1.0.0');
    assert.equal(versionFromFile('{"full_version": "v2.1.0", "version": "2.1"}').version, '2.1.0');
    assert.equal(versionFromFile('{"version": "2.1"}').version, '2.1.0');
    assert.match(versionFromFile('{"name": "x"}').reason!, /neither/);
    assert.match(versionFromFile('{broken').reason!, /does not parse/);
    assert.match(versionFromFile('dev build').reason!, /not a version/);
    assert.match(versionFromFile('  \n').reason!, /empty/);
  } finally {
    cleanup(dir);
  }
});

test('a JSON VERSION as DuneBugger builds it: "null" means none, full_version wins, else version and prerelease', () => {
  const real = (fields: Record<string, unknown>) =>
    versionFromFile(`${JSON.stringify({ version: '1.4.0', prerelease: 'null', build_type: 'release', build_number: '17', commit: 'ab12cd3', full_version: '1.4.0', ...fields }, null, 2)}\n`);
  assert.deepEqual(real({}), { version: '1.4.0', raw: '1.4.0', reason: null });
  assert.equal(real({ full_version: '1.4.1-rc.2' }).version, '1.4.1-rc.2', 'full_version wins over version');
  assert.equal(real({ full_version: 'null', prerelease: 'beta.1' }).version, '1.4.0-beta.1', '"null" full_version: version with its prerelease');
  assert.equal(real({ full_version: undefined, prerelease: 'beta.1' }).version, '1.4.0-beta.1');
  assert.equal(real({ full_version: undefined, prerelease: '-rc1' }).version, '1.4.0-rc1', 'a leading dash is not doubled');
  assert.equal(real({ full_version: undefined }).version, '1.4.0', 'prerelease "null" adds nothing');
  assert.equal(real({ full_version: undefined, prerelease: 'NULL' }).version, '1.4.0');
  assert.equal(real({ full_version: undefined, prerelease: null }).version, '1.4.0');
  assert.equal(real({ full_version: '', prerelease: '' }).version, '1.4.0', 'empty strings mean none too');
  assert.equal(real({ full_version: 'v1.5.0' }).version, '1.5.0');
  assert.match(real({ full_version: 'null', version: 'null' }).reason!, /neither "full_version" nor "version"/);
  assert.match(real({ full_version: 'nightly' }).reason!, /says "nightly", which is not a version/);
  assert.match(versionFromFile('{"version": ["1.4.0"]}').reason!, /neither/);
  assert.equal(versionFromFile('\uFEFF1.4.0\n').version, '1.4.0', 'a byte order mark is not part of the version');
  const dir = tempDir();
  try {
    writeFileSync(join(dir, 'VERSION'), JSON.stringify({ version: '1.4.0', prerelease: 'null', full_version: '1.4.0' }));
    assert.equal(readVersionFile(dir).version, '1.4.0', 'the installed-version reader reads the JSON form');
  } finally {
    cleanup(dir);
  }
});

test('manifest: keys, defaults, malformed → parse error', () => {
  const m = parseManifest('min_remote_version: 1.4\nmin_free_mb: 800\nrequires_running: true\nfuture_check: true\n', 'o/r v1.2.0');
  assert.equal(m.minRemoteVersion, '1.4.0');
  assert.equal(m.minUpdaterVersion, null, 'min_remote_version is not an alias of min_updater_version');
  assert.equal(m.minFreeMB, 800);
  assert.equal(m.requiresRunning, true);
  assert.deepEqual(m.unknownKeys, ['future_check']);
  const both = parseManifest('min_updater_version: "1.3"\nmin_remote_version: v1.2.0\n', 'x');
  assert.deepEqual([both.minUpdaterVersion, both.minRemoteVersion], ['1.3.0', '1.2.0']);
  assert.equal(parseManifest('', 'x').found, true);
  assert.throws(() => parseManifest('min_updater_version: [1,\n', 'o/r v1.2.0'), (e: any) => e.code === 'bad_manifest' && /update-manifest\.yaml of o\/r v1\.2\.0 is malformed: line \d+/.test(e.message));
  assert.throws(() => parseManifest('- a\n- b\n', 'x'), /not a mapping/);
  assert.throws(() => parseManifest('min_updater_version: soon\n', 'x'), /min_updater_version "soon" is not a version/);
  assert.throws(() => parseManifest('min_remote_version: [1]\n', 'x'), /min_remote_version \[1\] is not a version/);
  assert.throws(() => parseManifest('min_free_mb: lots\n', 'x'), /min_free_mb must be a number/);
});

test('manifest minimums: the updater\'s own version, the remote\'s installed one, both, and an unreadable remote', () => {
  const manifest = (text: string) => parseManifest(text, 'o/r v1.2.0');
  const self = { component: null, version: '0.1.0' } as const;
  const remoteAt = (version: string | null, reason: string | null = null) => ({ component: 'remote', installed: { version, raw: version, reason } });
  const fails = (fn: () => void, code: string, message: string) =>
    assert.throws(fn, (e: any) => {
      assert.equal(e.code, code);
      assert.equal(e.message, message);
      return true;
    });

  // min_updater_version: this updater's own version.
  fails(() => checkMinimumVersions(manifest('min_updater_version: 99.0.0'), '0.1.0', self), 'updater_too_old', 'Updater too old: needs 99.0.0, has 0.1.0');
  checkMinimumVersions(manifest('min_updater_version: 0.1.0'), '0.1.0', self);
  checkMinimumVersions(DEFAULT_MANIFEST, '0.1.0', remoteAt(null, 'no VERSION file'));
  // min_remote_version: the remote component's installed version...
  fails(() => checkMinimumVersions(manifest('min_remote_version: 1.2.0'), '9.9.9', remoteAt('1.1.0')), 'remote_too_old', 'Remote too old: needs 1.2.0, has 1.1.0');
  fails(() => checkMinimumVersions(manifest('min_remote_version: 1.2.0'), '9.9.9', remoteAt('1.2.0-beta.1')), 'remote_too_old', 'Remote too old: needs 1.2.0, has 1.2.0-beta.1');
  checkMinimumVersions(manifest('min_remote_version: 1.2.0'), '0.1.0', remoteAt('1.2.0'));
  checkMinimumVersions(manifest('min_remote_version: 1.2.0'), '0.1.0', remoteAt('2.0.0'));
  fails(
    () => checkMinimumVersions(manifest('min_remote_version: 1.2.0'), '9.9.9', remoteAt(null, 'the image tag "latest" is not a version')),
    'remote_too_old',
    'Remote too old: needs 1.2.0, has an unknown version (the image tag "latest" is not a version)',
  );
  // ... or, with no such component, the updater's own version.
  fails(() => checkMinimumVersions(manifest('min_remote_version: 1.2.0'), '0.1.0', self), 'remote_too_old', 'Remote too old: needs 1.2.0, has 0.1.0');
  checkMinimumVersions(manifest('min_remote_version: 0.1.0'), '0.1.0', self);
  // Both are checked: each alone fails, and both failing say both.
  const both = manifest('min_updater_version: 0.5.0\nmin_remote_version: 1.2.0');
  checkMinimumVersions(both, '0.5.0', remoteAt('1.2.0'));
  fails(() => checkMinimumVersions(both, '0.4.0', remoteAt('1.2.0')), 'updater_too_old', 'Updater too old: needs 0.5.0, has 0.4.0');
  fails(() => checkMinimumVersions(both, '0.5.0', remoteAt('1.1.0')), 'remote_too_old', 'Remote too old: needs 1.2.0, has 1.1.0');
  fails(() => checkMinimumVersions(both, '0.4.0', remoteAt('1.1.0')), 'updater_too_old', 'Updater too old: needs 0.5.0, has 0.4.0; Remote too old: needs 1.2.0, has 1.1.0');
});

test('a compose file is parsed once while it is unchanged, and read again as soon as it changes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'updater-compose-'));
  try {
    const file = join(dir, 'docker-compose.yml');
    const compose = (tags: string[]) => `services:\n${tags.map((t, i) => `  s${i}:\n    image: registry/s${i}:${t}\n`).join('')}`;
    writeFileSync(file, compose(['1.0.0', '1.0.0', '1.0.0']));
    const cache = new ComposeImagesCache();
    for (let round = 0; round < 3; round++) for (const s of ['s0', 's1', 's2']) assert.equal(cache.version(file, s).version, '1.0.0');
    assert.equal(cache.version(file, 'nope').reason, `the compose file ${file} has no service "nope"`);
    assert.equal(cache.parses, 1, 'one parse for every service, every round');

    // Edited in place, same size: seen at once.
    writeFileSync(file, compose(['1.0.1', '1.0.0', '1.0.0']));
    assert.equal(cache.version(file, 's0').version, '1.0.1');
    // Replaced by a rename, as the updater writes it: seen at once.
    writeFileSync(join(dir, 'next.yml'), compose(['1.0.1', '2.0.0', '1.0.0']));
    renameSync(join(dir, 'next.yml'), file);
    assert.equal(cache.version(file, 's1').version, '2.0.0');
    assert.equal(cache.parses, 3);
    writeFileSync(file, 'services: [\n');
    assert.match(cache.version(file, 's0').reason!, /is not valid YAML/);
    rmSync(file);
    assert.match(cache.version(file, 's0').reason!, /cannot read the compose file .*: ENOENT/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
