/**
 * `preserve` on its own (src/kinds/app/preserve.ts), on real trees in a temp dir: which files the
 * globs match, what is carried into the new tree and how (`.new` beside a different release file,
 * none for the same bytes), what cannot be done, and that the installed tree is never written.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { UpdateError } from '../src/core/errors.js';
import { carryPreserved, isPreserved, keptSentence, matchingFiles, planPreserve } from '../src/kinds/app/preserve.js';

function trees(t: TestContext) {
  const base = mkdtempSync(join(tmpdir(), 'preserve-test-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const installed = join(base, 'installed');
  const release = join(base, 'release');
  mkdirSync(installed);
  mkdirSync(release);
  return { installed, release };
}

function put(root: string, rel: string, content: string, mode = 0o644): void {
  mkdirSync(dirname(join(root, rel)), { recursive: true });
  writeFileSync(join(root, rel), content);
  chmodSync(join(root, rel), mode);
}

/** Path, type, mode, mtime, content or link target of everything under `root`. */
function listing(root: string, withTimes = true): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(root, r));
      const mode = (st.mode & 0o7777).toString(8);
      const time = withTimes ? ` ${st.mtimeMs}` : '';
      if (st.isSymbolicLink()) out.push(`${r} -> ${readlinkSync(join(root, r))}`);
      else if (st.isDirectory()) {
        out.push(`${r}/ ${mode}`);
        walk(r);
      } else out.push(`${r} ${mode}${time} ${createHash('sha256').update(readFileSync(join(root, r))).digest('hex').slice(0, 12)}`);
    }
  };
  walk('');
  return out;
}

test('globs: relative to the tree, * and ? stay in one folder, ** crosses, dotfiles only when spelled, VERSION never', () => {
  const globs = ['app/config/*.conf'];
  assert.equal(isPreserved('app/config/dunebugger.conf', globs), true);
  assert.equal(isPreserved('app/config/sub/other.conf', globs), false, '* does not cross /');
  assert.equal(isPreserved('app/config/dunebugger.conf.new', globs), false);
  assert.equal(isPreserved('app/config/.hidden.conf', globs), false, 'a leading dot is not matched by *');
  assert.equal(isPreserved('app/config/.hidden.conf', ['app/config/.*.conf']), true);
  assert.equal(isPreserved('app/config/sub/other.conf', ['app/config/**']), true);
  assert.equal(isPreserved('app/config/a.ini', ['app/config/{a,b}.ini']), true);
  assert.equal(isPreserved('app/config/c.ini', ['app/config/{a,b}.ini']), false);
  assert.equal(isPreserved('VERSION', ['*', '**']), false, 'VERSION says what is installed: never kept');
  assert.equal(isPreserved('app/VERSION', ['**']), true, 'only the top-level VERSION is special');
});

test('a device-edited file is kept; the release\'s different one goes beside it as .new; the same bytes give no .new', (t) => {
  const { installed, release } = trees(t);
  put(installed, 'VERSION', '1.0.0\n');
  put(installed, 'app/config/dunebugger.conf', '[General]\nmode = edited on the device\n', 0o600);
  put(installed, 'app/config/same.conf', 'identical\n', 0o640);
  put(installed, 'app/config/only-here.conf', 'the release no longer ships it\n');
  put(installed, 'app/config/sub/deep.conf', 'not matched by *\n');
  put(installed, 'app/main.py', 'old code\n');
  utimesSync(join(installed, 'app/config/dunebugger.conf'), new Date('2025-03-04T05:06:07Z'), new Date('2025-03-04T05:06:07Z'));
  put(release, 'VERSION', '1.1.0\n');
  put(release, 'app/config/dunebugger.conf', '[General]\nmode = release default\n');
  put(release, 'app/config/same.conf', 'identical\n');
  put(release, 'app/config/sub/deep.conf', 'the release\'s\n');
  put(release, 'app/main.py', 'new code\n');
  const installedBefore = listing(installed);

  const plan = planPreserve(installed, release, ['app/config/*.conf']);
  assert.deepEqual(plan, [
    { path: 'app/config/dunebugger.conf', release: 'different' },
    { path: 'app/config/only-here.conf', release: 'absent' },
    { path: 'app/config/same.conf', release: 'same' },
  ]);
  carryPreserved(installed, release, plan);

  assert.equal(readFileSync(join(release, 'app/config/dunebugger.conf'), 'utf8'), '[General]\nmode = edited on the device\n');
  assert.equal(readFileSync(join(release, 'app/config/dunebugger.conf.new'), 'utf8'), '[General]\nmode = release default\n');
  assert.equal(statSync(join(release, 'app/config/dunebugger.conf')).mode & 0o7777, 0o600, 'the device file keeps its mode');
  assert.equal(statSync(join(release, 'app/config/dunebugger.conf')).mtime.toISOString(), '2025-03-04T05:06:07.000Z', 'and its times');
  assert.equal(statSync(join(release, 'app/config/same.conf')).mode & 0o7777, 0o640);
  assert.ok(!existsSync(join(release, 'app/config/same.conf.new')), 'identical bytes: no .new');
  assert.equal(readFileSync(join(release, 'app/config/only-here.conf'), 'utf8'), 'the release no longer ships it\n');
  assert.equal(readFileSync(join(release, 'app/config/sub/deep.conf'), 'utf8'), 'the release\'s\n', 'not matched: the release\'s');
  assert.equal(readFileSync(join(release, 'app/main.py'), 'utf8'), 'new code\n');
  assert.equal(readFileSync(join(release, 'VERSION'), 'utf8'), '1.1.0\n');
  assert.deepEqual(listing(installed), installedBefore, 'the installed tree is only read');
  assert.equal(keptSentence(plan), "kept app/config/dunebugger.conf (the release's is app/config/dunebugger.conf.new), app/config/only-here.conf, app/config/same.conf");
});

test('a kept file whose folder the release does not ship: the folders are made with the device\'s modes', (t) => {
  const { installed, release } = trees(t);
  put(installed, 'app/config/local/site.conf', 'site\n');
  chmodSync(join(installed, 'app/config/local'), 0o750);
  chmodSync(join(installed, 'app/config'), 0o711);
  put(release, 'app/main.py', 'code\n');
  const plan = planPreserve(installed, release, ['app/config/**']);
  assert.deepEqual(plan, [{ path: 'app/config/local/site.conf', release: 'absent' }]);
  carryPreserved(installed, release, plan);
  assert.equal(readFileSync(join(release, 'app/config/local/site.conf'), 'utf8'), 'site\n');
  assert.equal(statSync(join(release, 'app/config')).mode & 0o7777, 0o711);
  assert.equal(statSync(join(release, 'app/config/local')).mode & 0o7777, 0o750);
});

test('symlinks are kept as links; a release .new already there is replaced; nothing matched, nothing done', (t) => {
  const { installed, release } = trees(t);
  mkdirSync(join(installed, 'app/config'), { recursive: true });
  symlinkSync('/etc/dunebugger/site.conf', join(installed, 'app/config/site.conf'));
  put(release, 'app/config/site.conf', 'a file in the release\n');
  put(release, 'app/config/site.conf.new', 'an old .new shipped by the release\n');
  const plan = planPreserve(installed, release, ['app/config/*.conf']);
  assert.deepEqual(plan, [{ path: 'app/config/site.conf', release: 'different' }]);
  carryPreserved(installed, release, plan);
  assert.equal(readlinkSync(join(release, 'app/config/site.conf')), '/etc/dunebugger/site.conf');
  assert.equal(readFileSync(join(release, 'app/config/site.conf.new'), 'utf8'), 'a file in the release\n');
  assert.deepEqual(planPreserve(installed, release, ['nothing/*.conf']), []);
  assert.equal(keptSentence([]), null);
});

test('what cannot be done is refused before anything is written: a folder at a kept file, a file where a folder is needed', (t) => {
  const { installed, release } = trees(t);
  put(installed, 'app/config/dunebugger.conf', 'device\n');
  mkdirSync(join(release, 'app/config/dunebugger.conf'), { recursive: true });
  const refused = (pattern: RegExp) => (e: unknown) => e instanceof UpdateError && e.code === 'bad_release' && pattern.test(e.message);
  assert.throws(() => planPreserve(installed, release, ['app/config/*.conf']), refused(/cannot keep the device's files \(preserve\): the release has a folder at app\/config\/dunebugger\.conf/));
  rmSync(join(release, 'app'), { recursive: true });
  put(release, 'app', 'a file where the device has a folder\n');
  assert.throws(() => planPreserve(installed, release, ['app/config/*.conf']), refused(/the release has a file at app, where the installed app\/config\/dunebugger\.conf needs a folder/));
  rmSync(join(release, 'app'));
  symlinkSync('/tmp', join(release, 'app'));
  assert.throws(() => planPreserve(installed, release, ['app/config/*.conf']), refused(/the release has a symlink at app/));
});

test('matching walks regular files and links only, never through a symlinked folder; many kept files are counted', (t) => {
  const { installed } = trees(t);
  put(installed, 'real/a.conf', 'a\n');
  symlinkSync('real', join(installed, 'linked'));
  assert.deepEqual(matchingFiles(installed, ['**/*.conf']), ['real/a.conf']);
  assert.deepEqual(matchingFiles(installed, ['linked']), ['linked'], 'the link itself can be kept');
  const many = Array.from({ length: 12 }, (_, i) => ({ path: `c/${String(i).padStart(2, '0')}.conf`, release: 'absent' as const }));
  assert.match(keptSentence(many)!, /^kept c\/00\.conf, .*c\/09\.conf and 2 more$/);
});
