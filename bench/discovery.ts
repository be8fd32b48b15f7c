/**
 * Discovery: 50 components checked against the local fake GitHub, cold (empty cache) and warm
 * (every answer a 304), each against its bare baseline measured in the same run: 50 plain
 * GETs of the same URLs with got (cold) and with If-None-Match (warm), same concurrency.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import got from 'got';
import pLimit from 'p-limit';
import { pino } from 'pino';
import { startFakeGitHub } from '../src/demo/local-github.js';
import { cleanup, tempDir } from '../test/support/harness.js';
import { openDatabase } from '../src/journal/database.js';
import { Journal } from '../src/journal/journal.js';
import { GitHubClient } from '../src/releases/github.js';
import { UpdateChecker } from '../src/releases/checker.js';
import { readInstalled } from '../src/kinds/index.js';
import type { ComponentConfig } from '../src/config/index.js';
import { fmt, time, verdict, type Section } from './util.js';

const N = 50;
const CONCURRENCY = 8;

export async function benchDiscovery(): Promise<Section> {
  const dir = tempDir('updater-bench-');
  const gh = await startFakeGitHub();
  try {
    const components: ComponentConfig[] = [];
    for (let i = 0; i < N; i++) {
      const repo = `bench/c${i}`;
      for (let v = 0; v < 20; v++) gh.addRelease(repo, { tag: `v1.${v}.0`, body: `Release notes for 1.${v}.0\n`.repeat(20), assets: [{ name: `c${i}-1.${v}.0.tar.gz`, content: 'x' }] });
      const path = join(dir, `c${i}`);
      mkdirSync(path);
      writeFileSync(join(path, 'VERSION'), '1.0.0\n');
      components.push({ name: `c${i}`, kind: 'app', repo, installPath: path } as unknown as ComponentConfig);
    }
    const db = openDatabase(join(dir, 'updater.db'));
    const journal = new Journal(db);
    const client = new GitHubClient({ apiUrl: gh.apiUrl, rawUrl: gh.rawUrl, token: null, cache: journal.httpCache, logger: pino({ level: 'silent' }) });
    const checker = new UpdateChecker({ config: { components, includePrerelease: false, checkIntervalHours: 0 }, store: journal.components, source: client, readInstalled, logger: pino({ level: 'silent' }), concurrency: CONCURRENCY });

    const urls = components.map((c) => `${gh.apiUrl}/repos/${c.repo}/releases?per_page=100`);
    const limit = pLimit(CONCURRENCY);
    const etags = new Map<string, string>();
    const bareCold = await time(() => Promise.all(urls.map((u) => limit(async () => {
      const r = await got(u, { retry: { limit: 0 } });
      etags.set(u, String(r.headers.etag));
    }))));
    const cold = await time(() => checker.check());
    const bareWarm = await time(() => Promise.all(urls.map((u) => limit(() => got(u, { retry: { limit: 0 }, headers: { 'if-none-match': etags.get(u)! } })))));
    gh.resetRequests();
    const warm = await time(() => checker.check());
    const warm304 = gh.requests.filter((r) => r.status === 304).length;
    db.close();
    return {
      title: `Discovery: ${N} components, local fake GitHub, ${CONCURRENCY} at a time`,
      rows: [
        ['check, cold (empty cache)', `${fmt(cold.ms)} ms`, `${fmt(bareCold.ms)} ms (bare GETs)`, fmt(cold.ms / bareCold.ms, 2), '-', '-'],
        ['check, warm (all 304)', `${fmt(warm.ms)} ms`, `${fmt(bareWarm.ms)} ms (bare conditional GETs)`, fmt(warm.ms / bareWarm.ms, 2), '≤ 2000 ms', verdict(warm.ms <= 2000)],
      ],
      notes: [`warm check: ${warm304} of ${gh.requests.length} requests answered 304`],
    };
  } finally {
    await gh.close();
    cleanup(dir);
  }
}
