import { readFileSync } from 'node:fs';

/** The updater's own version, from package.json (checked against a manifest's min_updater_version). */
export const UPDATER_VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
