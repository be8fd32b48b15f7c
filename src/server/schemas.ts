/**
 * JSON schemas shared by the routes and the generated OpenAPI description, and the string limits
 * every transport applies (REST through these schemas, /ws through `stringProblem`).
 */
import { COMPONENT_NAME_PATTERN } from '../config/schema.js';
import { kindNames } from '../kinds/index.js';

export const errorSchema = {
  $id: 'Error',
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string' }, message: { type: 'string' } },
    },
  },
} as const;

const nullableString = { type: ['string', 'null'] } as const;

export const componentSchema = {
  $id: 'Component',
  type: 'object',
  required: ['name', 'kind', 'current_version', 'latest_version', 'update_available', 'last_checked', 'release_notes', 'release_url', 'running', 'active_run'],
  properties: {
    name: { type: 'string' },
    kind: { type: 'string', enum: kindNames() },
    current_version: nullableString,
    latest_version: nullableString,
    update_available: { type: 'boolean' },
    last_checked: nullableString,
    release_notes: nullableString,
    release_url: nullableString,
    running: { type: ['boolean', 'null'] },
    active_run: { type: ['integer', 'null'] },
    reason: nullableString,
    stale: { type: 'boolean' },
  },
} as const;

export const checkResultSchema = {
  $id: 'CheckResult',
  type: 'object',
  required: ['components'],
  properties: {
    components: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        required: ['current', 'latest', 'update_available', 'release_notes', 'release_url'],
        properties: {
          current: nullableString,
          latest: nullableString,
          update_available: { type: 'boolean' },
          release_notes: nullableString,
          release_url: nullableString,
          last_checked: nullableString,
          reason: { type: 'string' },
          stale: { type: 'boolean' },
        },
      },
    },
  },
} as const;

const transitionSchema = {
  type: 'object',
  required: ['seq', 'from', 'to', 'event', 'at', 'message'],
  properties: {
    seq: { type: 'integer' },
    from: nullableString,
    to: { type: 'string' },
    event: { type: 'string' },
    at: { type: 'string' },
    message: { type: 'string' },
    level: { type: 'string', enum: ['info', 'warn', 'error'] },
  },
} as const;

export const runSchema = {
  $id: 'Run',
  type: 'object',
  required: ['run_id', 'component', 'kind', 'from_version', 'to_version', 'dry_run', 'state', 'message', 'created_at', 'updated_at'],
  properties: {
    run_id: { type: 'integer' },
    component: { type: 'string' },
    kind: { type: 'string' },
    mode: { type: 'string', enum: ['update', 'restore'] },
    from_version: nullableString,
    to_version: nullableString,
    dry_run: { type: 'boolean' },
    state: { type: 'string' },
    result: nullableString,
    message: nullableString,
    error: { type: ['object', 'null'], properties: { code: { type: 'string' }, message: { type: 'string' } } },
    recoveries: { type: 'integer' },
    created_at: { type: 'string' },
    updated_at: { type: 'string' },
    finished_at: nullableString,
    transitions: { type: 'array', items: transitionSchema },
  },
} as const;

/** A string field's limits, as JSON Schema states them. */
export interface StringLimits {
  readonly type: 'string';
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly pattern: string;
}

/** A component name, as in the config: 1 to 63 of a-z, 0-9, `-`, `_`. */
export const componentNameSchema = { type: 'string', pattern: COMPONENT_NAME_PATTERN.source } as const satisfies StringLimits;

/** A release version as a client may ask for it: `1.2.0`, `v1.2.0-rc.1+build.5`; at most 64 characters. */
export const versionSchema = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[vV]?[0-9A-Za-z.+-]+$' } as const satisfies StringLimits;

const compiled = new Map<string, RegExp>();

/**
 * Why `value` breaks `limits` (the sentence a client is sent), or null when it does not: the
 * same rules Ajv applies to REST bodies and parameters, for transports without a JSON schema
 * validator (/ws). Lengths count characters (code points), as JSON Schema does.
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

export const componentNameParams = {
  type: 'object',
  required: ['name'],
  properties: { name: componentNameSchema },
} as const;

export const ref = (id: string) => ({ $ref: `${id}#` });
export const errorResponses = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, ref('Error')]));
