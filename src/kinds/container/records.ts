/**
 * What a container run records, typed: the backup's details (in the run's context) and the
 * sub-steps (in the journal). Each is written as JSON and read back through its schema.
 */
import { z } from 'zod';
import type { UpdateContext } from '../../../machines/update-machine.js';
import type { StepContext, StepRecord } from '../../core/driver.js';
import { UpdateError } from '../../core/errors.js';
import { readRecord } from '../../core/records.js';
import { readSteps } from '../steps.js';

/** What the backup records, so rollback returns to the exact bytes and image. */
const containerBackupSchema = z.object({
  composeFile: z.string(),
  service: z.string(),
  /** The image's repository, e.g. `127.0.0.1:5001/sample`. */
  repository: z.string(),
  /** The tag the compose file named before the update. */
  tag: z.string(),
  /** The image the service's container ran (null when it had no container). */
  imageId: z.string().nullable(),
});

export type ContainerBackup = z.output<typeof containerBackupSchema>;

/** The backup of the run (its copy of the compose file and the details above). */
export function backupOf(run: UpdateContext): ContainerBackup & { path: string } {
  if (!run.backup) throw new UpdateError('no_backup', 'the run has no backup to work from');
  return { ...readRecord(containerBackupSchema, run.backup.details, `the backup details of run ${run.runId}`), path: run.backup.path };
}

const containerStepSchema = z.discriminatedUnion('step', [
  /** backup: the copy of the compose file, written under this name. */
  z.object({ step: z.literal('backup-file'), path: z.string() }),
  /** apply: the new image is pulled. */
  z.object({ step: z.literal('pull'), ref: z.string() }),
  /** apply: the compose file names the new tag. */
  z.object({ step: z.literal('write-tag'), tag: z.string() }),
  /** apply and rollback: the service is recreated from what the compose file names. */
  z.object({ step: z.literal('recreate') }),
  /** rollback: the compose file is put back from the backup. */
  z.object({ step: z.literal('restore-compose'), from: z.string() }),
  /** rollback: the old tag points at the exact image that ran before. */
  z.object({ step: z.literal('retag'), imageId: z.string(), ref: z.string() }),
]);

export type ContainerStep = z.output<typeof containerStepSchema>;

/** Records a sub-step before it is done (typed; the journal keeps it as JSON). */
export function recordStep(ctx: StepContext, step: ContainerStep): Promise<void> {
  return ctx.step(step);
}

/** The steps an updater before typed records journaled, as sentences. */
function legacy(old: StepRecord): StepRecord {
  const backup = /^write (\/.+)$/.exec(old.step);
  if (backup) return { step: 'backup-file', path: backup[1]! };
  switch (old.step) {
    case 'pull image':
      return { ...old, step: 'pull' };
    case 'write compose tag':
      return { ...old, step: 'write-tag' };
    case 'recreate service':
      return { step: 'recreate' };
    default:
      return old;
  }
}

/** The sub-steps this run recorded in `phase`, as records. */
export function stepsTaken(ctx: StepContext, phase: 'backup' | 'apply'): ContainerStep[] {
  return readSteps(ctx.stepsTaken(phase), containerStepSchema, legacy, `run ${ctx.runId}`);
}
