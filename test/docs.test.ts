/** The generated references must match the code: regenerate with `npm run docs`. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { API_FILE, REFERENCE_FILE, apiReference, configReference } from '../scripts/gen-docs.js';

test('docs/configuration-reference.md is generated from the current config schema', () => {
  assert.equal(readFileSync(REFERENCE_FILE, 'utf8'), configReference(), 'out of date: run npm run docs');
});

test('docs/api.md is generated from the current route schemas', async () => {
  assert.equal(readFileSync(API_FILE, 'utf8'), await apiReference(), 'out of date: run npm run docs');
});
