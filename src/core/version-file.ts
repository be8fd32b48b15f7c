/**
 * A `VERSION` file, as the DuneBugger releases ship it (plain text, or JSON with `full_version` or
 * `version`): what an app component runs, and what any kind that installs a tree may read. Anything
 * that is not a plain version gives `version: null` and a reason: no guess.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { unknownVersion as unknown, type Installed } from './installed.js';
import { parseVersion } from './versions.js';

/** Parses VERSION file content: plain text, or JSON with `full_version` or `version`. */
export function versionFromFile(content: string): Installed {
  const text = content.trim();
  if (!text) return unknown('the VERSION file is empty');
  if (text.startsWith('{')) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return unknown('the VERSION file looks like JSON but does not parse', text.slice(0, 80));
    }
    const obj = json as { full_version?: unknown; version?: unknown };
    const candidate = typeof obj.full_version === 'string' ? obj.full_version : typeof obj.version === 'string' ? obj.version : null;
    if (!candidate) return unknown('the VERSION file has neither "full_version" nor "version"', text.slice(0, 80));
    const version = parseVersion(candidate);
    return version ? { version, raw: candidate, reason: null } : unknown(`the VERSION file says "${candidate}", which is not a version`, candidate);
  }
  const first = text.split('\n')[0]!.trim();
  const version = parseVersion(first);
  return version ? { version, raw: first, reason: null } : unknown(`the VERSION file says "${first.slice(0, 40)}", which is not a version`, first);
}

/** The version in `dir/VERSION`. */
export function readVersionFile(installPath: string): Installed {
  const file = join(installPath, 'VERSION');
  let content: string;
  try {
    content = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return unknown(code === 'ENOENT' ? `no VERSION file in ${installPath}` : `cannot read ${file}: ${code ?? (error as Error).message}`);
  }
  return versionFromFile(content);
}
