/** What a dircopy run records, typed: its backup's details and its sub-steps. */
import { z } from 'zod';
import type { UpdateContext } from '../../../../machines/update-machine.js';
import type { StepContext } from '../../../../src/core/driver.js';
import { UpdateError } from '../../../../src/core/errors.js';
import { readRecord } from '../../../../src/core/records.js';
import { readSteps } from '../../../../src/kinds/steps.js';

const backupSchema = z.object({ target: z.string(), files: z.number().int() });
export type DircopyBackup = z.output<typeof backupSchema>;

export function backupOf(run: UpdateContext): DircopyBackup & { path: string } {
  if (!run.backup) throw new UpdateError('no_backup', 'the run has no backup to work from');
  return { ...readRecord(backupSchema, run.backup.details, `the backup details of run ${run.runId}`), path: run.backup.path };
}

const stepSchema = z.discriminatedUnion('step', [
  z.object({ step: z.literal('backup-dir'), path: z.string() }),
  z.object({ step: z.literal('stage'), from: z.string() }),
  z.object({ step: z.literal('old-aside'), to: z.string() }),
  z.object({ step: z.literal('new-in'), from: z.string() }),
  z.object({ step: z.literal('restore'), from: z.string() }),
]);
export type DircopyStep = z.output<typeof stepSchema>;

export function recordStep(ctx: StepContext, step: DircopyStep): Promise<void> {
  return ctx.step(step);
}

export function stepsTaken(ctx: StepContext, phase: 'backup' | 'apply'): DircopyStep[] {
  // A new kind has no sentences from an older updater to read.
  return readSteps(ctx.stepsTaken(phase), stepSchema, (old) => old, `run ${ctx.runId}`);
}
