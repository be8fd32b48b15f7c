/** Rewriting one service's image tag changes those bytes and nothing else. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ComposeFile } from '../src/kinds/container/compose-file.js';

const FILE = `# DuneBugger stack — edited by hand, keep my comments
version: "2.4"

services:
  scheduler:   # the scheduler
    image: "127.0.0.1:5001/scheduler:1.0.0"   # pinned on purpose
    network_mode: host
    environment:
      - PORT=8081
  remote:
    image: 'ghcr.io/marco-svitol/remote:v1.0'
    init: true
  plain: {image: registry.local:5000/team/plain:1.2.3, init: true}
  pinned:
    image: ghcr.io/o/p:2.0.0@sha256:${'a'.repeat(64)}
  latest:
    image: ghcr.io/o/l
  templated:
    image: ghcr.io/o/t:\${TAG}
x-anchor: &anchor
  image: ghcr.io/o/anchored:0.1.0
`;

function diffOnly(before: string, after: string): string[] {
  const a = before.split('\n');
  const b = after.split('\n');
  assert.equal(a.length, b.length, 'line count unchanged');
  return a.flatMap((line, i) => (line === b[i] ? [] : [`${line} => ${b[i]}`]));
}

test('double-quoted, single-quoted and flow-style images: only the tag changes', () => {
  const f = ComposeFile.parse('/x/docker-compose.yml', FILE);
  assert.deepEqual(diffOnly(FILE, f.withTag('scheduler', '1.2.0')), ['    image: "127.0.0.1:5001/scheduler:1.0.0"   # pinned on purpose =>     image: "127.0.0.1:5001/scheduler:1.2.0"   # pinned on purpose']);
  assert.deepEqual(diffOnly(FILE, f.withTag('remote', 'v1.1')), ["    image: 'ghcr.io/marco-svitol/remote:v1.0' =>     image: 'ghcr.io/marco-svitol/remote:v1.1'"]);
  assert.deepEqual(diffOnly(FILE, f.withTag('plain', '1.10.0')), ['  plain: {image: registry.local:5000/team/plain:1.2.3, init: true} =>   plain: {image: registry.local:5000/team/plain:1.10.0, init: true}']);
  // A registry port is not mistaken for the tag.
  assert.equal(ComposeFile.parse('/x', f.withTag('plain', '1.10.0')).image('plain').ref.repository, 'registry.local:5000/team/plain');
});

test('images that cannot be updated by tag are refused with the reason', () => {
  const f = ComposeFile.parse('/x/docker-compose.yml', FILE);
  assert.throws(() => f.withTag('latest', '1.0.0'), /no tag/);
  assert.throws(() => f.withTag('templated', '1.0.0'), /interpolated/);
  assert.throws(() => f.withTag('nope', '1.0.0'), (e: any) => e.code === 'compose_no_service');
  assert.throws(() => f.withTag('scheduler', '1.0.0; rm -rf /'), (e: any) => e.code === 'bad_tag');
  assert.throws(() => ComposeFile.parse('/x', 'services: [\n'), (e: any) => e.code === 'compose_invalid' && /line 2/.test(e.message));
  assert.throws(() => ComposeFile.parse('/x', 'services:\n  b:\n    build: .\n').image('b'), (e: any) => e.code === 'compose_no_image');
});

test('a tag pinned by digest is refused: a new tag would still run the old digest', () => {
  const f = ComposeFile.parse('/x/docker-compose.yml', FILE);
  assert.throws(() => f.withTag('pinned', '2.1.0'), (e: any) => e.code === 'compose_tag_unusable' && /pinned by digest/.test(e.message));
});
