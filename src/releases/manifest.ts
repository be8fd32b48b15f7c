/**
 * The optional `update-manifest.yaml` of a release, at `{rawUrl}/{repo}/{tag}/`. Absent → the
 * built-in defaults; present → its minimum updater version and the checks it names are used
 * by validate; malformed → the run aborts with the parse error (never a guess).
 *
 * Keys (snake_case, as the seed's):
 *   min_updater_version: "1.4.0"      # alias min_remote_version (the seed's name)
 *   min_free_mb: 800                  # raises the component's minFreeMB for this release
 *   requires_running: true            # the service must be running before the update
 * Unknown keys are ignored (a newer manifest may name checks this updater does not know).
 */
import { parseDocument } from 'yaml';
import { UpdateError } from '../core/errors.js';
import { compareVersions, parseVersion } from '../core/versions.js';

export const MANIFEST_FILE = 'update-manifest.yaml';

export interface Manifest {
  found: boolean;
  minUpdaterVersion: string | null;
  minFreeMB: number | null;
  requiresRunning: boolean | null;
  unknownKeys: string[];
}

export const DEFAULT_MANIFEST: Manifest = {
  found: false,
  minUpdaterVersion: null,
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

  const versionKey = m.min_updater_version !== undefined ? 'min_updater_version' : m.min_remote_version !== undefined ? 'min_remote_version' : null;
  let minUpdaterVersion: string | null = null;
  if (versionKey) {
    const raw = m[versionKey];
    minUpdaterVersion = parseVersion(typeof raw === 'number' ? String(raw) : (raw as string));
    if (!minUpdaterVersion) throw bad(`${versionKey} "${String(raw)}" is not a version`);
  }
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
    minUpdaterVersion,
    minFreeMB: num('min_free_mb'),
    requiresRunning: (requiresRunning as boolean | undefined) ?? null,
    unknownKeys: Object.keys(m).filter((k) => !KNOWN.has(k)),
  };
}

/** Aborts (`updater_too_old`) when the release needs a newer updater than this one. */
export function checkUpdaterVersion(manifest: Manifest, updaterVersion: string, where: string): void {
  if (!manifest.minUpdaterVersion) return;
  const mine = parseVersion(updaterVersion);
  if (!mine || compareVersions(mine, manifest.minUpdaterVersion) < 0) {
    throw new UpdateError(
      'updater_too_old',
      `Updater too old: ${where} needs updater ${manifest.minUpdaterVersion} or newer, this is ${updaterVersion}. Update the updater first.`,
    );
  }
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
