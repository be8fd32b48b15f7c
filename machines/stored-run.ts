/**
 * A run as the journal keeps it for recovery, `{machineVersion, state, context}`, read across
 * updater versions. Pure: no I/O.
 *
 * The updater updates itself (the `self` kind), so a run can be journaled by one release and
 * recovered by another: the new release ends its own self-update run, and recovers whatever run an
 * older release left; after a failed trial the old release ends the run the new one was verifying.
 * As Mender keeps versioned state data, each stored run carries the version of its shape
 * (MACHINE_VERSION when it was written), and reading it takes it forward one version at a time
 * through `UPGRADES`. Only what cannot be read is refused: JSON that does not parse, a version
 * newer than this updater knows (it will not guess what a newer release meant), or a context that
 * lacks what recovery needs once read forward.
 */
import { MACHINE_VERSION, MAX_RECOVERIES, WORK_PHASES, type Phase, type UpdateContext } from './update-machine.js';

export interface StoredRun {
  machineVersion: number;
  state: Phase;
  context: UpdateContext;
}

type Json = Record<string, unknown>;

/**
 * `UPGRADES[n]` takes a context stored at version n to version n + 1. A released step is never
 * edited: a change of shape is a new version and a new step.
 */
export const UPGRADES: Readonly<Record<number, (context: Json) => Json>> = {
  // 1 → 2: a per-run recovery budget. Every run before it had the machine's fixed one.
  1: (context) => ({ ...context, maxRecoveries: MAX_RECOVERIES }),
};

/** The oldest version this updater reads (the first version of the machine). */
export const OLDEST_READABLE = 1;

export type ParsedRun = { ok: true; version: number; state: string; context: Json } | { ok: false; code: 'recovery_bad_snapshot'; reason: string };

/**
 * The stored JSON, unread beyond its envelope: its version (the snapshot's own, else the run row's
 * column), its state and its context as stored. Callers may look at the context (the backup's
 * path for a message) before it is read forward.
 */
export function parseStoredRun(text: string, rowVersion: number): ParsedRun {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, code: 'recovery_bad_snapshot', reason: 'its saved state is not JSON' };
  }
  if (!isObject(raw)) return { ok: false, code: 'recovery_bad_snapshot', reason: 'its saved state is not an object' };
  const version = raw.machineVersion ?? rowVersion;
  if (typeof version !== 'number' || !Number.isInteger(version) || version < OLDEST_READABLE) {
    return { ok: false, code: 'recovery_bad_snapshot', reason: `its saved state has no machine version this updater knows (${JSON.stringify(version)})` };
  }
  return { ok: true, version, state: typeof raw.state === 'string' ? raw.state : '', context: isObject(raw.context) ? raw.context : {} };
}

export type ReadRun = { ok: true; run: StoredRun; upgradedFrom: number | null } | { ok: false; code: 'recovery_version' | 'recovery_bad_snapshot'; reason: string };

/** Reads a parsed run forward to MACHINE_VERSION, or says why it cannot be read. */
export function upgradeStoredRun(parsed: Extract<ParsedRun, { ok: true }>): ReadRun {
  const { version } = parsed;
  if (version > MACHINE_VERSION) {
    return {
      ok: false,
      code: 'recovery_version',
      reason: `it was journaled by an updater whose machine version is ${version}; this one reads versions ${OLDEST_READABLE} to ${MACHINE_VERSION} and will not guess how to resume it`,
    };
  }
  let context = parsed.context;
  for (let v = version; v < MACHINE_VERSION; v++) {
    const step = UPGRADES[v];
    if (!step) return { ok: false, code: 'recovery_version', reason: `this updater has no way to read machine version ${v} forward` };
    context = step(context);
  }
  const missing = missingFields(context);
  if (missing.length) return { ok: false, code: 'recovery_bad_snapshot', reason: `its saved state lacks ${missing.join(', ')}` };
  return { ok: true, run: { machineVersion: MACHINE_VERSION, state: parsed.state as Phase, context: context as unknown as UpdateContext }, upgradedFrom: version === MACHINE_VERSION ? null : version };
}

/** Both steps: the stored text to a run of this machine version. */
export function readStoredRun(text: string, rowVersion: number): ReadRun {
  const parsed = parseStoredRun(text, rowVersion);
  return parsed.ok ? upgradeStoredRun(parsed) : parsed;
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const nullableString = (v: unknown) => v === null || typeof v === 'string';
const nullableObject = (v: unknown) => v === null || isObject(v);

/** What recovery needs of a context, by field: the names of those that are missing or of the wrong type. */
function missingFields(c: Json): string[] {
  const checks: Array<[string, (v: unknown) => boolean]> = [
    ['runId', (v) => typeof v === 'number'],
    ['component', (v) => typeof v === 'string'],
    ['kind', (v) => typeof v === 'string'],
    ['mode', (v) => v === 'update' || v === 'restore'],
    ['dryRun', (v) => typeof v === 'boolean'],
    ['requestedVersion', nullableString],
    ['fromVersion', nullableString],
    ['toVersion', nullableString],
    ['release', nullableObject],
    ['backup', nullableObject],
    ['phaseTimeoutsMs', (v) => isObject(v) && WORK_PHASES.every((p) => typeof v[p] === 'number')],
    ['recoveries', (v) => typeof v === 'number'],
    ['maxRecoveries', (v) => typeof v === 'number'],
    ['failure', nullableObject],
    ['rollbackError', nullableObject],
  ];
  return checks.filter(([key, ok]) => !ok(c[key])).map(([key]) => key);
}
