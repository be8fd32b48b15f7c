/**
 * What is installed now: a container's version is the tag of its service's `image:` in the
 * compose file; an app's is its `VERSION` file (plain text, or JSON with `full_version` or
 * `version`). Anything that is not a plain version gives `version: null` and a reason: no guess.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { unknownVersion, type Installed } from '../core/installed.js';
import { parseVersion } from '../core/versions.js';

export interface ImageRef {
  /** Everything before the tag: `127.0.0.1:5001/sample`. */
  repository: string;
  tag: string | null;
  digest: string | null;
}

/** Splits `registry:port/name:tag@digest`. The tag is after the last `:` that follows the last `/`. */
export function parseImageRef(image: string): ImageRef {
  let rest = image.trim();
  let digest: string | null = null;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > slash) return { repository: rest.slice(0, colon), tag: rest.slice(colon + 1), digest };
  return { repository: rest, tag: null, digest };
}

const unknown = unknownVersion;

/** The version a compose service runs, from its `image:` tag. */
export function versionFromImage(image: unknown): Installed {
  if (typeof image !== 'string' || !image.trim()) return unknown('the service has no image');
  if (image.includes('$')) return unknown(`the image "${image}" is interpolated from a variable; its tag cannot be rewritten safely`, image);
  const ref = parseImageRef(image);
  if (ref.digest) return unknown(`the image is pinned by digest (${ref.digest.slice(0, 19)}…); it cannot be updated by tag`, image);
  if (!ref.tag) return unknown(`the image "${image}" has no tag (it runs "latest"), so its version is unknown`, image);
  if (ref.tag === 'latest') return unknown('the image tag is "latest", so the installed version is unknown', ref.tag);
  const version = parseVersion(ref.tag);
  if (!version) return unknown(`the image tag "${ref.tag}" is not a version`, ref.tag);
  return { version, raw: ref.tag, reason: null };
}

export function readComposeVersion(composeFile: string, service: string): Installed {
  let text: string;
  try {
    text = readFileSync(composeFile, 'utf8');
  } catch (error) {
    return unknown(`cannot read the compose file ${composeFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const doc = parseDocument(text);
  if (doc.errors.length > 0) return unknown(`the compose file ${composeFile} is not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
  const image = doc.getIn(['services', service, 'image']);
  if (!doc.hasIn(['services', service])) return unknown(`the compose file ${composeFile} has no service "${service}"`);
  return versionFromImage(image);
}

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

export function readAppVersion(installPath: string): Installed {
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
