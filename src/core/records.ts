/**
 * Reading back what was written as JSON: a run's context keeps the release facts and the backup
 * details as opaque JSON (they are journaled, and a run may be recovered by a later updater), and
 * the journal keeps a phase's sub-steps as JSON records. Whoever wrote a record reads it back
 * through its schema, so a record that is not what it should be is a clear error, never a value
 * of the wrong shape used as if it were right.
 */
import type { z } from 'zod';
import { UpdateError } from './errors.js';

/** `value` checked by `schema`; else an `internal` UpdateError naming `what` and the first problem. */
export function readRecord<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const where = issue?.path.length ? ` at ${issue.path.join('.')}` : '';
  throw new UpdateError('internal', `${what} cannot be read${where}: ${issue?.message ?? 'unexpected shape'} (${JSON.stringify(value)?.slice(0, 200)})`);
}
