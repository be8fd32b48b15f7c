/**
 * One updater per data directory: `<dataDir>/updater.lock` holds the pid of the running one.
 * A second instance is refused with that pid; a lock left by a dead process (kill -9, power
 * cut) is taken over. Created with O_EXCL, so two starting at once cannot both win.
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { JournalError } from './database.js';

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface InstanceLock {
  path: string;
  release(): void;
}

export function acquireInstanceLock(dataDir: string): InstanceLock {
  const path = join(dataDir, 'updater.lock');
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o644);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      let released = false;
      return {
        path,
        release() {
          if (released) return;
          released = true;
          try {
            if (Number(readFileSync(path, 'utf8').trim()) === process.pid) rmSync(path, { force: true });
          } catch {
            // already gone
          }
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new JournalError('lock_failed', `cannot create ${path}: ${(error as Error).message}`);
      }
      let holder = NaN;
      try {
        holder = Number(readFileSync(path, 'utf8').trim());
      } catch {
        // removed meanwhile: try again
      }
      if (holder === process.pid) throw new JournalError('locked', `this process already holds ${path}`);
      if (alive(holder)) {
        throw new JournalError('locked', `another updater (pid ${holder}) is already using ${dataDir}; stop it first, or give this one another dataDir`);
      }
      rmSync(path, { force: true }); // a dead process's lock
    }
  }
  throw new JournalError('locked', `cannot take the lock ${path}: another updater keeps starting`);
}
