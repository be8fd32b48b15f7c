/**
 * The optional `update-manifest.yaml` of a release, at `{rawUrl}/{repo}/{tag}/`. Absent → the
 * built-in defaults; present → its minimum updater version and the checks it names are used
 * by validate; malformed → the run aborts with the parse error (never a guess).
 *
 * Keys (snake_case, as the seed's):
 *   min_updater_version: "1.4.0"      # this updater's own version must be at least this
 *   min_remote_version: "1.2.0"       # the installed version of the `remote` component (see below)
 *   min_free_mb: 800                  # raises the component's minFreeMB for this release
 *   requires_running: true            # the service must be running before the update
 * Unknown keys are ignored (a newer manifest may name checks this updater does not know).
 *
 * `min_remote_version` is compared with the installed version of the component that
 * `manifest.remoteComponent` names (default `remote`), or with this updater's own version when
 * there is no such component (the seed's updater was part of dunebugger-remote). Both minimums
 * are checked when both are set.
 */
import { parseDocument } from 'yaml';
import { UpdateError } from '../core/errors.js';
import type { Installed } from '../core/installed.js';
import { compareVersions, parseVersion } from '../core/versions.js';

export const MANIFEST_FILE = 'update-manifest.yaml';

export interface Manifest {
  found: boolean;
  minUpdaterVersion: string | null;
  minRemoteVersion: string | null;
  minFreeMB: number | null;
  requiresRunning: boolean | null;
  unknownKeys: string[];
}

export const DEFAULT_MANIFEST: Manifest = {
  found: false,
  minUpdaterVersion: null,
  minRemoteVersion: null,
  minFreeMB: null,
  requiresRunning: null,
  unknownKeys: [],
};

const KNOWN = new Set(['min_updater_version', 'min_remote_version', 'min_free_mb', 'requires_running']);

export function parseManifest(text: string, where: string): Manifest {
  const bad = (why: string) => new UpdateError('bad_manifest', `${MANIFEST_FILE} of ${where} is malformed: ${why}`);
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const pos = e.linePos?.[0];
    throw bad(`${pos ? `line ${pos.line}, column ${pos.col}: ` : ''}${e.message.split('\n')[0]}`);
  }
  const data = doc.toJS() as unknown;
  if (data === null || data === undefined) return { ...DEFAULT_MANIFEST, found: true };
  if (typeof data !== 'object' || Array.isArray(data)) throw bad('the top level is not a mapping');
  const m = data as Record<string, unknown>;

  const version = (key: string): string | null => {
    const raw = m[key];
    if (raw === undefined || raw === null) return null;
    const parsed = parseVersion(typeof raw === 'number' ? String(raw) : typeof raw === 'string' ? raw : null);
    if (!parsed) throw bad(`${key} ${JSON.stringify(raw)} is not a version`);
    return parsed;
  };
  const num = (key: string): number | null => {
    const v = m[key];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw bad(`${key} must be a number >= 0, got ${JSON.stringify(v)}`);
    return v;
  };
  const requiresRunning = m.requires_running;
  if (requiresRunning !== undefined && requiresRunning !== null && typeof requiresRunning !== 'boolean') {
    throw bad(`requires_running must be true or false, got ${JSON.stringify(requiresRunning)}`);
  }
  return {
    found: true,
    minUpdaterVersion: version('min_updater_version'),
    minRemoteVersion: version('min_remote_version'),
    minFreeMB: num('min_free_mb'),
    requiresRunning: (requiresRunning as boolean | undefined) ?? null,
    unknownKeys: Object.keys(m).filter((k) => !KNOWN.has(k)),
  };
}

/** What `min_remote_version` is compared with. */
export type RemoteVersion =
  /** The installed version of the component that `manifest.remoteComponent` names. */
  | { component: string; installed: Installed }
  /** There is no such component: this updater's own version stands for it. */
  | { component: null; version: string };

/**
 * Aborts when the release needs a newer updater (`updater_too_old`: "Updater too old: needs 1.4.0,
 * has 1.3.0") or a newer remote (`remote_too_old`: "Remote too old: needs 1.2.0, has 1.1.0", or
 * "has an unknown version (REASON)" when the remote's version cannot be read). Both minimums are
 * checked; when both fail, the message has both sentences, the updater's first.
 */
export function checkMinimumVersions(manifest: Manifest, updaterVersion: string, remote: RemoteVersion): void {
  const failures: Array<{ code: 'updater_too_old' | 'remote_too_old'; sentence: string }> = [];
  if (manifest.minUpdaterVersion) {
    const has = tooOld(manifest.minUpdaterVersion, { version: parseVersion(updaterVersion), raw: updaterVersion, reason: 'this updater\'s own version is not a version' });
    if (has !== null) failures.push({ code: 'updater_too_old', sentence: `Updater too old: needs ${manifest.minUpdaterVersion}, has ${has}` });
  }
  if (manifest.minRemoteVersion) {
    const installed: Installed = remote.component === null ? { version: parseVersion(remote.version), raw: remote.version, reason: 'this updater\'s own version is not a version' } : remote.installed;
    const has = tooOld(manifest.minRemoteVersion, installed);
    if (has !== null) failures.push({ code: 'remote_too_old', sentence: `Remote too old: needs ${manifest.minRemoteVersion}, has ${has}` });
  }
  if (failures.length > 0) throw new UpdateError(failures[0]!.code, failures.map((f) => f.sentence).join('; '));
}

/** Null when `installed` meets `minimum`; else what it has, as the sentence says it. */
function tooOld(minimum: string, installed: Installed): string | null {
  if (!installed.version) return `an unknown version (${installed.reason ?? 'it cannot be read'})`;
  return compareVersions(installed.version, minimum) < 0 ? installed.version : null;
}

export interface RawSource {
  fetchRaw(repo: string, ref: string, path: string): Promise<string | null>;
}

/** Fetches and parses the manifest of a release tag; a 404 gives the defaults. */
export async function fetchManifest(source: RawSource, repo: string, tag: string): Promise<Manifest> {
  const text = await source.fetchRaw(repo, tag, MANIFEST_FILE);
  if (text === null) return DEFAULT_MANIFEST;
  return parseManifest(text, `${repo} ${tag}`);
}
