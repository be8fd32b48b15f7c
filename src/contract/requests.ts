/**
 * What clients send: the REST bodies, parameters and query strings, and the bodies of the inbound
 * messages (/ws today; the same subjects and bodies on every message transport). Each declared
 * once, as a zod schema. REST validates with the JSON Schema generated from these (Ajv, strict
 * bodies); message transports parse with `parseInbound`, whose sentences name the field:
 * `body.component: required string`, `body.version: must be at most 64 characters (got 65)`.
 */
import { z } from 'zod';
import { RESERVED_COMPONENT_NAMES } from '../config/schema.js';
import { componentNameLimits, rolloutIdLimits, stringProblem, versionLimits, type StringLimits } from './limits.js';

/** A string within `limits`; `messages.type` when not a string, `messages.empty` (if given) when empty. */
function limited(limits: StringLimits, messages: { type?: string; empty?: string } = {}) {
  const { type: _type, ...keywords } = limits;
  return z
    .string(messages.type === undefined ? undefined : { error: messages.type })
    .check((ctx) => {
      const problem = ctx.value === '' && messages.empty !== undefined ? messages.empty : stringProblem(limits, ctx.value);
      if (problem) ctx.issues.push({ code: 'custom', message: problem, input: ctx.value });
    })
    .meta(keywords);
}

export const componentName = limited(componentNameLimits);
export const version = limited(versionLimits);

// ------------------------------------------------------------------------------------- REST

/** `POST /api/checks`: none, or `{}` (every component), or one component. */
export const checkRequest = z.strictObject({ component: componentName.optional() });
export type CheckRequest = z.output<typeof checkRequest>;

/** `POST /api/components/:name/updates`: none or `{}` means the latest. */
export const updateRequest = z.strictObject({
  version: version.optional(),
  dry_run: z.boolean().optional(),
  rollout: limited(rolloutIdLimits)
    .optional()
    .meta({ description: 'A fleet rollout\'s id: at most one run per rollout and component; a repeat answers the run it started.' }),
});
export type UpdateRequest = z.output<typeof updateRequest>;

/** `POST /api/updates` (update all): no body, or `{}`. */
export const updateAllRequest = z.strictObject({}).meta({ description: 'none, or {}', maxProperties: 0 });

/** `POST /api/components/:name/rollback`: no body, or `{}`. */
export const rollbackRequest = z.strictObject({}).meta({ description: 'none, or {}', maxProperties: 0 });

export const componentParams = z.object({ name: componentName });
export const runParams = z.object({ id: z.int().min(1) });
export const runsQuery = z.strictObject({
  component: z.string().max(64).optional(),
  limit: z.int().min(1).max(1000).default(50),
});
export type RunsQuery = z.output<typeof runsQuery>;

// ------------------------------------------------------------------------ inbound messages

const objectOf = (fields: string) => (iss: { code: string }) => (iss.code === 'invalid_type' ? `must be an object {${fields}}` : undefined);
const seqMessage = 'must be an integer >= 0';

/** `updater.perform_update`. `null` counts as absent for the optional fields. */
export const performUpdateBody = z.strictObject(
  {
    component: limited(componentNameLimits, { type: 'required string', empty: 'required string' }),
    dry_run: z.boolean({ error: 'must be a boolean' }).nullish(),
    version: limited(versionLimits, { type: 'must be a non-empty string', empty: 'must be a non-empty string' }).nullish(),
    // A fleet rollout's id (NATS): the device starts at most one run per rollout and component, and
    // answers a repeated request with that run. Any transport may send it.
    rollout: limited(rolloutIdLimits, { type: 'must be a non-empty string', empty: 'must be a non-empty string' }).nullish(),
  },
  { error: objectOf('component, dry_run?, version?, rollout?') },
);

/** `updater.subscribe`: no body, or `{after_seq?}`. */
export const subscribeBody = z
  .strictObject(
    { after_seq: z.number({ error: seqMessage }).int({ error: seqMessage }).min(0, { error: seqMessage }).nullish() },
    { error: objectOf('after_seq?') },
  )
  .nullish();

/** `updater.update`'s bodies that mean every component (the frontend's button sends `"manual_confirmation"`). */
export const UPDATE_ALL_WORDS: readonly string[] = RESERVED_COMPONENT_NAMES;

/** `updater.update`: a component name, the seed's form (`"core"`, or `"dunebugger-core"`), or `"all"`. */
export const updateBody = z
  .string({ error: 'must be a component name (string), e.g. "core", or "all"' })
  .min(1, { error: 'must be a component name (string), e.g. "core", or "all"' })
  .meta({
    description:
      'a component name, `"core"`, or the seed\'s `"dunebugger-core"` (the prefix is dropped when `core` is configured); `"all"` or `"manual_confirmation"`: update every component that has an update, as `POST /api/updates`',
  });

/** Every inbound subject and its body (`undefined`: the body is ignored). */
export const inbound = {
  'updater.check_updates': undefined,
  'updater.perform_update': performUpdateBody,
  'updater.update': updateBody,
  'updater.subscribe': subscribeBody,
  'controller.system_info': undefined,
} as const;

export type InboundSubject = keyof typeof inbound;

/** An inbound message once its body is parsed. */
export type Inbound =
  | { subject: 'updater.check_updates' }
  | { subject: 'updater.perform_update'; component: string; dryRun: boolean; version: string | null; rollout: string | null }
  | { subject: 'updater.update'; name: string; all: false }
  | { subject: 'updater.update'; all: true }
  | { subject: 'updater.subscribe'; afterSeq: number | undefined }
  | { subject: 'controller.system_info' };

export type Parsed = { ok: true; message: Inbound } | { ok: false; code: 'unknown_subject' | 'bad_body'; message: string };

const isSubject = (subject: string): subject is InboundSubject => Object.hasOwn(inbound, subject);

/**
 * Parses an inbound message's body by its subject. The refusal names the field and what is wrong
 * with it (the first problem, fields in their declared order; an unknown field first).
 */
export function parseInbound(subject: string, body: unknown): Parsed {
  if (!isSubject(subject)) return { ok: false, code: 'unknown_subject', message: `unknown subject "${subject}"` };
  const schema = inbound[subject];
  if (schema === undefined) return { ok: true, message: { subject } as Inbound };
  const parsed = schema.safeParse(body);
  if (!parsed.success) return { ok: false, code: 'bad_body', message: `${subject}: ${firstProblem(schema, parsed.error.issues)}` };
  switch (subject) {
    case 'updater.perform_update': {
      const b = parsed.data as z.output<typeof performUpdateBody>;
      return { ok: true, message: { subject, component: b.component, dryRun: b.dry_run === true, version: b.version ?? null, rollout: b.rollout ?? null } };
    }
    case 'updater.update': {
      const name = parsed.data as string;
      return { ok: true, message: UPDATE_ALL_WORDS.includes(name) ? { subject, all: true } : { subject, name, all: false } };
    }
    default: {
      const b = parsed.data as z.output<typeof subscribeBody>;
      return { ok: true, message: { subject: 'updater.subscribe', afterSeq: b?.after_seq ?? undefined } };
    }
  }
}

/** `body.<field>: <why>`, for the issue a person should fix first. */
function firstProblem(schema: z.ZodType, issues: z.core.$ZodIssue[]): string {
  const fields = fieldsOf(schema);
  const rank = (i: z.core.$ZodIssue) => (i.path.length === 0 ? (i.code === 'unrecognized_keys' ? 1 : 0) : 2 + Math.max(0, fields.indexOf(String(i.path[0]))));
  const issue = [...issues].sort((a, b) => rank(a) - rank(b))[0]!;
  if (issue.code === 'unrecognized_keys') return `body.${issue.keys[0]}: unknown field (allowed: ${fields.join(', ')})`;
  return `${['body', ...issue.path.map(String)].join('.')}: ${issue.message}`;
}

function fieldsOf(schema: z.ZodType): string[] {
  let s: z.ZodType = schema;
  while (s instanceof z.ZodOptional || s instanceof z.ZodNullable) s = s.unwrap() as z.ZodType;
  return s instanceof z.ZodObject ? Object.keys(s.shape) : [];
}
