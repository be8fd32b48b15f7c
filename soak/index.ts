/**
 * `npm run soak`: random kills (real crash children SIGKILLed at random moments, then recovered)
 * and a soak of the real service (many alternating good and bad updates of the embedded demo),
 * each written into its section of docs/reliability.md.
 *
 *   npm run soak               both parts
 *   npm run soak -- kills      random kills only   (KILLS, default 100; SOAK_SEED replays a schedule)
 *   npm run soak -- soak       soak only           (SOAK_RUNS updates, default 90: ~20 min)
 *   npm run soak -- measure    unkilled children: the durations the kill windows come from
 *
 * Everything runs sequentially (one child, one run at a time). Random kills need the test bed
 * (test/env/up.sh); the soak needs nothing but this machine.
 */
import { randomKills, measureWindows } from './random-kills.js';
import { soak } from './soak.js';
import { writeDocSection, minutes } from './docs.js';
import { intFromEnv, seedFromEnv } from './rng.js';

const parts = process.argv.slice(2);
const known = ['kills', 'soak', 'measure'];
const unknown = parts.filter((p) => !known.includes(p));
if (unknown.length) {
  console.error(`unknown part ${unknown.join(', ')}; known: ${known.join(', ')}`);
  process.exit(2);
}
const want = (p: string) => (parts.length ? parts.includes(p) : p !== 'measure');
let failed = false;

if (want('measure')) {
  await measureWindows(Number(process.env.MEASURE_TIMES ?? 3));
}

if (want('kills')) {
  const seed = seedFromEnv();
  const n = intFromEnv('KILLS', 100);
  const r = await randomKills(seed, n);
  writeDocSection('random-kills', r.markdown);
  const bad = r.results.filter((x) => !x.consistent).length;
  console.log(`\nrandom kills: seed ${seed}, ${n} runs in ${minutes(r.ms)}, ${n - bad} consistent, ${bad} not\n`);
  console.log(r.markdown);
  if (bad) failed = true;
}

if (want('soak')) {
  // 200 updates take ~44 min here (a bad one ~16 s: the demo's settle 3 s + health timeout 6 s
  // + rollback; a good one ~5 s plus its ~5 s restore), so the default is what fits in ~20 min.
  const updates = intFromEnv('SOAK_RUNS', 90);
  const r = await soak(updates);
  writeDocSection('soak', r.markdown);
  console.log(`\nsoak: ${updates} updates, ${r.runs.length} runs in ${minutes(r.ms)}, ${r.problems.length} problem(s)\n`);
  console.log(r.markdown);
  if (r.problems.length) failed = true;
}

process.exit(failed ? 1 : 0);
