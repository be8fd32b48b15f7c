/** What a run keeps of its release in context, from discover on (journaled at every transition: kept small). */
import type { UpdateContext } from '../../machines/update-machine.js';
import { UpdateError } from '../core/errors.js';

export interface ReleaseFacts {
  tag: string;
  url: string;
  assets: Array<{ name: string; url: string; size: number }>;
}

export function releaseOf(run: UpdateContext): ReleaseFacts {
  const facts = run.release as ReleaseFacts | null;
  if (!facts?.tag) throw new UpdateError('internal', 'the run has no resolved release (discover did not record one)');
  return facts;
}
