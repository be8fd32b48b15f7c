/** The free-disk check of validate (src/kinds/backups.ts), on this machine's real file systems. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { freeMB, requireFreeSpace } from '../src/kinds/backups.js';
import { cleanup, tempDir } from './support/harness.js';

test('parts on one disk add up; the message names the path, what is free and each part', () => {
  const dir = tempDir();
  try {
    const free = Math.floor(freeMB(dir));
    // Each part fits alone, the two together do not, by 1 GB either way (other writers come and go).
    const half = Math.ceil(free / 2) + 512;
    assert.ok(free > 4096, `this test needs a few GB free in ${dir}`);
    requireFreeSpace([{ what: 'the download', path: join(dir, 'downloads'), mb: half }], 0, 'core 1.1.0');
    assert.throws(
      () => requireFreeSpace([{ what: 'the download', path: join(dir, 'downloads'), mb: half }, { what: 'the backup', path: dir, mb: half }], 0, 'core 1.1.0'),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, 'disk_full');
        assert.match(e.message, new RegExp(`^not enough free disk for core 1\\.1\\.0: \\d+ MB free at ${join(dir, 'downloads')}, ${2 * half} MB needed \\(the download ${half} MB, the backup ${half} MB\\)$`));
        return true;
      },
    );
  } finally {
    cleanup(dir);
  }
});

test('minFreeMB is the floor of the first part\'s disk; a path not made yet is measured at its nearest parent', () => {
  const dir = tempDir();
  try {
    const missing = join(dir, 'not', 'yet');
    requireFreeSpace([{ what: 'the new tree', path: missing, mb: 1 }], 1, 'core 1.1.0');
    const floor = Math.ceil(freeMB(dir)) + 1000;
    assert.throws(() => requireFreeSpace([{ what: 'the new tree', path: missing, mb: 1 }], floor, 'core 1.1.0'), new RegExp(`MB needed \\(the new tree 1 MB; minFreeMB ${floor}\\)$`));
    // A part of no known size (a container's new image) is covered by the floor alone, and not listed.
    assert.throws(() => requireFreeSpace([{ what: 'the new image', path: dir, mb: 0 }], floor, 'web 1.1.0'), new RegExp(`not enough free disk for web 1\\.1\\.0: \\d+ MB free at ${dir}, ${floor} MB needed \\(minFreeMB ${floor}\\)$`));
  } finally {
    cleanup(dir);
  }
});
