/**
 * The sentence a person reads for each transition: pure, from the state entered and
 * the run's context. The journal stores it; REST and WebSocket repeat it.
 */
import type { Phase, UpdateContext } from './update-machine.js';

export type Level = 'info' | 'warn' | 'error';

export interface Description {
  message: string;
  level: Level;
}

const v = (version: string | null | undefined) => (version ? `v${version.replace(/^v/i, '')}` : 'an unknown version');
const plain = (version: string | null | undefined) => (version ? version.replace(/^v/i, '') : 'unknown');

export function describe(state: Phase, c: UpdateContext, event: string): Description {
  const name = c.component;
  const target = c.toVersion ? plain(c.toVersion) : c.requestedVersion ? plain(c.requestedVersion) : 'the latest release';
  const resumed = event === 'recover' ? ` (resumed after a restart, recovery ${c.recoveries})` : '';
  switch (state) {
    case 'idle':
      return { message: `Run created for ${name}`, level: 'info' };
    case 'discover':
      return { message: `Looking for ${c.requestedVersion ? `release ${plain(c.requestedVersion)}` : 'the latest release'} of ${name}${resumed}`, level: 'info' };
    case 'validate':
      return { message: `Checking that ${name} can be updated from ${plain(c.fromVersion)} to ${target}${resumed}`, level: 'info' };
    case 'backup':
      return { message: `Backing up ${name} ${plain(c.fromVersion)}${resumed}`, level: 'info' };
    case 'apply':
      return { message: `Installing ${name} ${target}`, level: 'info' };
    case 'verify':
      return { message: `Checking that ${name} ${target} runs${resumed}`, level: 'info' };
    case 'rollback': {
      if (c.mode === 'restore') return { message: `Restoring ${name} from backup${resumed}`, level: 'warn' };
      const why = c.failure
        ? `${c.failure.phase === 'verify' ? 'Post-update checks failed' : `Update failed during ${c.failure.phase}`}: ${c.failure.message}`
        : 'The update was interrupted while it was being applied';
      return { message: `${why}; rolling back to ${v(c.fromVersion)}${resumed}`, level: 'warn' };
    }
    case 'succeeded': {
      const notes = c.notes?.length ? `; ${c.notes.join('; ')}` : '';
      return { message: `Updated ${name} to ${target}${notes}`, level: 'info' };
    }
    case 'up_to_date':
      return { message: `${name} is up to date (${plain(c.fromVersion)})`, level: 'info' };
    case 'validated':
      return { message: `Dry run: ${name} can be updated from ${plain(c.fromVersion)} to ${target}; nothing was changed`, level: 'info' };
    case 'aborted': {
      const f = c.failure;
      const what = f?.code === 'timeout' ? f.message : f ? f.message : 'no reason recorded';
      return { message: `Update of ${name} aborted during ${f?.phase ?? 'start'}, nothing was changed: ${what}`, level: 'error' };
    }
    case 'rolled_back': {
      if (c.mode === 'restore') return { message: `Restored ${name} to ${v(c.toVersion ?? c.fromVersion)} from backup`, level: 'warn' };
      const f = c.failure;
      const head = !f
        ? 'Update was interrupted'
        : f.phase === 'verify'
          ? 'Post-update checks failed'
          : `Update failed during ${f.phase}`;
      return { message: `${head}, rolled back to ${v(c.fromVersion)}${f ? `: ${f.message}` : ''}`, level: 'error' };
    }
    case 'rollback_failed': {
      const cause = c.rollbackError?.message ?? 'unknown cause';
      const where = c.backup ? ` The backup is at ${c.backup.path}.` : ' No backup was recorded for this run.';
      const failed = c.failure ? ` The update had failed: ${c.failure.message}.` : '';
      return {
        message: `Rollback of ${name} failed, manual intervention required: ${cause}.${failed}${where} Nothing was deleted.`,
        level: 'error',
      };
    }
  }
}
