/**
 * What the updater process tells the kinds about itself: its own version, where it was installed
 * from, its journal, whether its server answers, and a way to exit so that its supervisor starts
 * it again. Only the `self` kind uses it (a run that replaces the updater under itself); the
 * composition root (src/main.ts) makes the one instance of a process.
 */
export interface UpdaterHost {
  /** The running release's version (its VERSION file; src/version.ts). */
  readonly version: string;
  /**
   * The install root this process was started from by `ROOT/launch` (UPDATER_INSTALL_ROOT), or
   * null when it was not started by launch (a checkout, the CLI run by hand, a test).
   */
  readonly installRoot: string | null;
  /** Whether this process is a release on trial (launch counts its starts; UPDATER_ON_TRIAL). */
  readonly onTrial: boolean;
  /** The journal's file. */
  readonly databasePath: string;
  /**
   * Resolves once this process's own server answers `/healthz` with its version and a writable
   * journal; rejects with a sentence when it does not (or there is no server: the CLI).
   */
  selfCheck(signal: AbortSignal): Promise<void>;
  /**
   * Stops the service at once (a run in progress stays in its committed state, for the next start
   * to recover) and exits with `code`, for the supervisor to start `ROOT/launch` again. Throws
   * when this process has no supervisor to come back (not `updater serve`).
   */
  restart(code: number, why: string): void;
}

/** A host for processes that are not `updater serve` (the CLI, tests): no server, no restart. */
export function standaloneHost(version: string, databasePath: string, installRoot: string | null = null): UpdaterHost {
  return {
    version,
    installRoot,
    onTrial: false,
    databasePath,
    selfCheck: () => Promise.reject(new Error('this updater process has no server to check (it is not `updater serve`)')),
    restart: () => {
      throw new Error('this updater process cannot restart itself (it is not `updater serve` under its supervisor)');
    },
  };
}
