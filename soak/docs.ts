/** Writes one marked section of docs/reliability.md, leaving everything outside its markers alone. */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const RELIABILITY_DOC = fileURLToPath(new URL('../docs/reliability.md', import.meta.url));

export function writeDocSection(marker: string, body: string, file = RELIABILITY_DOC): void {
  const start = `<!-- ${marker}:start -->`;
  const end = `<!-- ${marker}:end -->`;
  const section = `${start}\n${body.trim()}\n${end}`;
  // Read just before writing: others may be editing other sections of the same file.
  const doc = readFileSync(file, 'utf8');
  const from = doc.indexOf(start);
  const to = doc.indexOf(end);
  const next = from >= 0 && to > from ? doc.slice(0, from) + section + doc.slice(to + end.length) : `${doc.trimEnd()}\n\n${section}\n`;
  writeFileSync(file, next);
}

export const table = (head: string[], rows: Array<Array<string | number>>): string =>
  [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');

export const today = () => new Date().toISOString().slice(0, 10);
export const minutes = (ms: number) => `${(ms / 60_000).toFixed(1)} min`;
