/**
 * What an app run records, typed: the backup's details (in the run's context) and the sub-steps
 * (in the journal). Each is written as JSON and read back through its schema.
 */
import { z } from 'zod';
import type { StepContext, StepRecord } from '../../core/driver.js';
import { readSteps } from '../steps.js';

/**
 * The backup's details, for a person reading the journal (rollback works from the backup's path
 * and the run's own paths): the tree it is of, and where this run puts the old tree aside (null
 * for a manual restore, which puts nothing aside by rename).
 */
export type AppBackup = { installPath: string; oldTree: string | null };

const appStepSchema = z.discriminatedUnion('step', [
  /**
   * validate: the release asset is kept at `path` and its sha256 is `sha256` (checked against the
   * release's `.sha256` when it has one); `reused` when a kept download matched and nothing was
   * downloaded. apply installs from that file, after checking it still has that sha256.
   */
  z.object({ step: z.literal('asset'), path: z.string(), sha256: z.string(), reused: z.boolean() }),
  /** backup: the tarball of the install directory, written under this name. */
  z.object({ step: z.literal('backup-file'), path: z.string() }),
  /** apply and rollback: the service is stopped. */
  z.object({ step: z.literal('stop') }),
  /**
   * apply, after the stop: the installed files `preserve` keeps are copied into the staged tree
   * (`kept`, relative to the install path); `releaseCopies` are the release's different files put
   * beside them as `<file>.new`. Only the staged tree changes: rollback has nothing to undo for it.
   */
  z.object({ step: z.literal('preserve'), kept: z.array(z.string()), releaseCopies: z.array(z.string()) }),
  /** apply: the installed tree is renamed aside (to: null when journaled by an updater that did not say). */
  z.object({ step: z.literal('old-aside'), to: z.string().nullable() }),
  /** apply: the staged tree is renamed into the install path. */
  z.object({ step: z.literal('new-in'), from: z.string().nullable() }),
  /** apply and rollback: `requirements.txt` is installed (rollback: the old tree's). */
  z.object({ step: z.literal('requirements') }),
  /** apply and rollback: the service is started. */
  z.object({ step: z.literal('start') }),
  /** rollback: the failed tree is renamed aside. */
  z.object({ step: z.literal('failed-aside'), to: z.string().nullable() }),
  /** rollback: the old tree is renamed back into the install path. */
  z.object({ step: z.literal('old-back'), from: z.string().nullable() }),
  /** rollback (and a manual restore): the tree is rebuilt from the backup tarball. */
  z.object({ step: z.literal('restore-backup'), backup: z.string().nullable() }),
]);

export type AppStep = z.output<typeof appStepSchema>;

/** Records a sub-step before it is done (typed; the journal keeps it as JSON). */
export function recordStep(ctx: StepContext, step: AppStep): Promise<void> {
  return ctx.step(step);
}

/** The steps an updater before typed records journaled, as sentences. */
function legacy(old: StepRecord): StepRecord {
  const backup = /^write (\/.+)$/.exec(old.step);
  if (backup) return { step: 'backup-file', path: backup[1]! };
  const named: Record<string, string> = {
    'stop service': 'stop',
    'install requirements': 'requirements',
    'reinstall old requirements': 'requirements',
    'start service': 'start',
  };
  const step = named[old.step];
  if (step) return { step };
  // Moves journaled as sentences carried no paths (null): they were the run's own (the driver's paths()).
  if (old.step === 'move old tree aside') return { step: 'old-aside', to: null };
  if (old.step === 'move new tree in') return { step: 'new-in', from: null };
  if (old.step === 'move failed tree aside') return { step: 'failed-aside', to: null };
  if (old.step === 'move old tree back') return { step: 'old-back', from: null };
  if (old.step === 'restore from backup') return { step: 'restore-backup', backup: null };
  return old;
}

/** The sub-steps this run recorded in `phase`, as records. */
export function stepsTaken(ctx: StepContext, phase: 'validate' | 'backup' | 'apply'): AppStep[] {
  return readSteps(ctx.stepsTaken(phase), appStepSchema, legacy, `run ${ctx.runId}`);
}
