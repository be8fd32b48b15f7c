/** Runs the updater's release pipeline once (download → sha256 → safe extract) and reports time and peak RSS. */
import { mkdirSync } from 'node:fs';
import { downloadTo } from '../src/kinds/app/download.js';
import { extractTarGz } from '../src/kinds/app/extract.js';

const [url, file, dest, expected] = process.argv.slice(2) as [string, string, string, string];
mkdirSync(dest, { recursive: true });
const t0 = performance.now();
// As the app driver does it: extraction into staging overlaps the download; the sha256 is checked at the end.
const got = await downloadTo(url, file, { maxBytes: 2 * 1024 ** 3, consume: (stream) => extractTarGz(stream, `${dest}/x`, { limits: { maxBytes: 8 * 1024 ** 3 } }) });
if (got.sha256 !== expected) throw new Error(`sha256 mismatch: ${got.sha256} != ${expected}`);
const out = got.consumed;
const ms = performance.now() - t0;
console.log(JSON.stringify({ ms, maxRssMB: process.resourceUsage().maxRSS / 1024, entries: out.entries, bytes: out.bytes }));
