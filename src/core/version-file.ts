/**
 * A `VERSION` file, as the DuneBugger releases ship it (plain text, or the JSON their build writes,
 * with `full_version`, or `version` and `prerelease`): what an app component runs, and what any kind
 * that installs a tree may read. Anything that is not a version gives `version: null` and a reason:
 * no guess.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { unknownVersion as unknown, type Installed } from './installed.js';
import { parseVersion } from './versions.js';

/** A JSON field as DuneBugger's build writes it: the string "null" (any case), "" or a non-string means none. */
function field(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const text = value.trim();
  return text === '' || text.toLowerCase() === 'null' ? null : text;
}

/**
 * The version a JSON VERSION file declares, as DuneBugger's build writes it
 * (`{"version": "1.4.0", "prerelease": "null", "build_type": "release", "build_number": "17",
 * "commit": "ab12cd3", "full_version": "1.4.0"}`): `full_version` when present; otherwise
 * `version`, with `-<prerelease>` appended when `prerelease` is set. The other fields do not
 * make the version (a build number is not semver ordering).
 */
function versionFromJson(json: unknown): string | null {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return null;
  const obj = json as { full_version?: unknown; version?: unknown; prerelease?: unknown };
  const full = field(obj.full_version);
  if (full) return full;
  const version = field(obj.version);
  if (!version) return null;
  const prerelease = field(obj.prerelease)?.replace(/^-+/, '');
  return prerelease ? `${version}-${prerelease}` : version;
}

/**
 * Parses VERSION file content: plain text (its first line), or JSON (see `versionFromJson`).
 * Read the same way for what is installed, for a release's tree in apply and verify, and for a
 * backup's tree.
 */
export function versionFromFile(content: string): Installed {
  const text = content.replace(/^\uFEFF/, '').trim();
  if (!text) return unknown('the VERSION file is empty');
  if (text.startsWith('{')) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return unknown('the VERSION file looks like JSON but does not parse', text.slice(0, 80));
    }
    const candidate = versionFromJson(json);
    if (!candidate) return unknown('the VERSION file has neither "full_version" nor "version"', text.slice(0, 80));
    const version = parseVersion(candidate);
    return version ? { version, raw: candidate, reason: null } : unknown(`the VERSION file says "${candidate.slice(0, 40)}", which is not a version`, candidate);
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
