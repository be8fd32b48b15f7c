/**
 * The string limits every transport applies to what a client sends (CONTRACT.md "Strings on every
 * transport obey the REST limits"): declared once here, stated as JSON Schema for REST and checked
 * by `stringProblem` for the message transports (/ws, and the next ones), with the same sentences.
 */
import { COMPONENT_NAME_PATTERN } from '../config/schema.js';

/** A string field's limits, as JSON Schema states them. */
export interface StringLimits {
  readonly type: 'string';
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly pattern: string;
}

/** A component name, as in the config: 1 to 63 of a-z, 0-9, `-`, `_`. */
export const componentNameLimits = { type: 'string', pattern: COMPONENT_NAME_PATTERN.source } as const satisfies StringLimits;

/** A release version as a client may ask for it: `1.2.0`, `v1.2.0-rc.1+build.5`; at most 64 characters. */
export const versionLimits = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[vV]?[0-9A-Za-z.+-]+$' } as const satisfies StringLimits;
/** A fleet rollout's id (`r-20261202-1234-ab12`): it names a NATS KV key and a journal row. */
export const rolloutIdLimits = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' } as const satisfies StringLimits;

const compiled = new Map<string, RegExp>();

/**
 * Why `value` breaks `limits` (the sentence a client is sent), or null when it does not: the
 * same rules Ajv applies to REST bodies and parameters. Lengths count characters (code points),
 * as JSON Schema does.
 */
export function stringProblem(limits: StringLimits, value: string): string | null {
  const length = [...value].length;
  if (limits.minLength !== undefined && length < limits.minLength) return `must be at least ${limits.minLength} character${limits.minLength === 1 ? '' : 's'}`;
  if (limits.maxLength !== undefined && length > limits.maxLength) return `must be at most ${limits.maxLength} characters (got ${length})`;
  let pattern = compiled.get(limits.pattern);
  if (!pattern) compiled.set(limits.pattern, (pattern = new RegExp(limits.pattern, 'u')));
  if (!pattern.test(value)) return `must match ${limits.pattern}`;
  return null;
}
