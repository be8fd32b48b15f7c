/** Sizes in progress messages: a small download reads in bytes or KiB, never "0.0 of 0.0 MiB". */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatProgress, formatSize } from '../src/util/sizes.js';

test('formatSize: the unit that fits, one decimal above bytes', () => {
  assert.equal(formatSize(0), '0 bytes');
  assert.equal(formatSize(1), '1 byte');
  assert.equal(formatSize(616), '616 bytes');
  assert.equal(formatSize(1023), '1023 bytes');
  assert.equal(formatSize(1024), '1.0 KiB');
  assert.equal(formatSize(12_600), '12.3 KiB');
  assert.equal(formatSize(1024 ** 2), '1.0 MiB');
  assert.equal(formatSize(1.5 * 1024 ** 2), '1.5 MiB');
  assert.equal(formatSize(3 * 1024 ** 3), '3.0 GiB');
});

test('formatProgress: both figures in the unit of the whole', () => {
  assert.equal(formatProgress(0, 616), '0 of 616 bytes');
  assert.equal(formatProgress(616, 616), '616 of 616 bytes');
  assert.equal(formatProgress(400, 1200), '0.4 of 1.2 KiB');
  assert.equal(formatProgress(1.5 * 1024 ** 2, 12.3 * 1024 ** 2), '1.5 of 12.3 MiB');
  assert.equal(formatProgress(512 * 1024, 2 * 1024 ** 3), '0.0 of 2.0 GiB');
  // No known total: what was done, alone.
  assert.equal(formatProgress(616, null), '616 bytes');
  assert.equal(formatProgress(2048, 0), '2.0 KiB');
});
