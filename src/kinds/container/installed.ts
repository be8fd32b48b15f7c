/**
 * What a container component runs: the tag of its service's `image:` in the compose file.
 * Anything that is not a plain version gives `version: null` and a reason: no guess.
 *
 * A device's compose file names several services, each a component, and a check reads every
 * component's version: parsing the same file once per component was most of a warm check's CPU
 * (docs/performance.md, "Check CPU"). So what a compose file names is kept per path while the file
 * is unchanged (same inode, size, mtime and ctime: the updater's own writes replace the file, and
 * an edit changes its mtime), and read again as soon as it changes. What is kept is small: the
 * version of each service, or why the file cannot be read.
 */
import { readFileSync, statSync } from 'node:fs';
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

/** What a compose file names: each service's version (from its `image:`), or why the file cannot be used. */
type ComposeImages = { versions: Map<string, Installed> } | { problem: string };

const cannotRead = (composeFile: string, error: unknown) =>
  `cannot read the compose file ${composeFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`;

function parseImages(composeFile: string, text: string): ComposeImages {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) return { problem: `the compose file ${composeFile} is not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}` };
  const versions = new Map<string, Installed>();
  const services = doc.get('services');
  if (services && typeof services === 'object' && 'items' in services && Array.isArray(services.items)) {
    for (const pair of services.items as Array<{ key: unknown }>) {
      const name = (pair.key as { value?: unknown } | null)?.value ?? pair.key;
      if (typeof name === 'string') versions.set(name, versionFromImage(doc.getIn(['services', name, 'image'])));
    }
  }
  return { versions };
}

/** Compose files by path, each with the identity of the file it was read from. */
export class ComposeImagesCache {
  private readonly files = new Map<string, { stamp: string; found: ComposeImages }>();
  /** How many times a compose file was read and parsed (for tests and the bench). */
  parses = 0;

  constructor(private readonly maxFiles = 32) {}

  /** The version `service` runs per `composeFile`, parsing the file only when it changed since last asked. */
  version(composeFile: string, service: string): Installed {
    let stamp: string;
    try {
      const st = statSync(composeFile);
      stamp = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
    } catch (error) {
      this.files.delete(composeFile);
      return unknown(cannotRead(composeFile, error));
    }
    let entry = this.files.get(composeFile);
    if (entry?.stamp !== stamp) {
      let found: ComposeImages;
      try {
        this.parses++;
        found = parseImages(composeFile, readFileSync(composeFile, 'utf8'));
      } catch (error) {
        return unknown(cannotRead(composeFile, error));
      }
      entry = { stamp, found };
      this.files.delete(composeFile);
      if (this.files.size >= this.maxFiles) this.files.delete(this.files.keys().next().value!);
      this.files.set(composeFile, entry);
    }
    if ('problem' in entry.found) return unknown(entry.found.problem);
    const found = entry.found.versions.get(service);
    return found ? { ...found } : unknown(`the compose file ${composeFile} has no service "${service}"`);
  }
}

/** The one cache of the process: it is only a memo, checked against the file at every read. */
export const composeImages = new ComposeImagesCache();

/** The version a compose service runs (what the compose file names now). */
export function readComposeVersion(composeFile: string, service: string): Installed {
  return composeImages.version(composeFile, service);
}

