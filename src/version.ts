import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from './paths.js';

/**
 * The updater's own version (checked against a manifest's min_updater_version, reported by
 * /healthz and `updater version`): its release's VERSION file when there is one (a package made
 * by `npm run package`, installed under ROOT/releases/<version>/; first line, trimmed), otherwise
 * package.json's version (a checkout).
 */
function readUpdaterVersion(): string {
  try {
    const line = readFileSync(join(PACKAGE_ROOT, 'VERSION'), 'utf8').split('\n')[0]!.trim();
    if (line) return line;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  return (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

export const UPDATER_VERSION: string = readUpdaterVersion();
