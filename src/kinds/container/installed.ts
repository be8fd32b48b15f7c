/**
 * What a container component runs: the tag of its service's `image:` in the compose file.
 * Anything that is not a plain version gives `version: null` and a reason: no guess.
 */
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { unknownVersion, type Installed } from '../../core/installed.js';
import { parseVersion } from '../../core/versions.js';

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

/** The version a compose service runs (what the compose file names now). */
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
