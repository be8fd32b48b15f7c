/**
 * A kind's sub-steps are typed records (`{step: 'pull', ref}`), journaled as JSON before each is
 * done. Reading them back goes through the kind's schema; a step journaled by an updater that
 * wrote sentences (`pull image`, `write /var/backups/x.yml`) is first turned into its record by
 * the kind's `legacy` map, so runs journaled before the change still recover.
 */
import type { z } from 'zod';
import type { StepRecord } from '../core/driver.js';
import { readRecord } from '../core/records.js';

export function readSteps<S extends StepRecord>(recorded: readonly StepRecord[], schema: z.ZodType<S>, legacy: (old: StepRecord) => StepRecord, what: string): S[] {
  return recorded.map((record) => {
    const parsed = schema.safeParse(record);
    return parsed.success ? parsed.data : readRecord(schema, legacy(record), `${what}: the journaled step "${record.step}"`);
  });
}
