/**
 * The failures a run's work can end with: a code that the API (a run's `error.code`), the messages
 * and the journal share, and a sentence a person understands. Every code in use is listed here, so
 * a new one is a deliberate addition and a typo does not compile.
 */

export const UPDATE_ERROR_CODES = [
  // The request or the release itself
  'bad_request',
  'not_found',
  'unknown_version',
  'bad_release',
  'bad_manifest',
  'updater_too_old',
  'remote_too_old',
  'asset_missing',
  'image_missing',
  'bad_tag',
  // The device, before anything changes
  'not_installed',
  'not_writable',
  'disk_full',
  'service_unknown',
  'service_not_running',
  'service_manager_missing',
  'service_manager_invalid',
  'not_supervised',
  'trial_open',
  'docker_unreachable',
  'registry_unreachable',
  'compose_missing',
  'compose_unreadable',
  'compose_invalid',
  'compose_no_service',
  'compose_no_image',
  'compose_tag_unusable',
  'compose_changed',
  // Doing the work
  'download_failed',
  'pull_failed',
  'tag_failed',
  'compose_failed',
  'apply_failed',
  'requirements_failed',
  'service_start_failed',
  'service_stop_failed',
  'service_status_failed',
  // Checking the result
  'health_failed',
  'container_exited',
  'service_failed',
  'verify_failed',
  'self_not_started',
  'self_check_failed',
  // Undoing it
  'no_backup',
  'rollback_failed',
  // Anything else: a bug or a broken invariant, and a failure that said nothing more precise
  'internal',
  'failed',
] as const;

export type UpdateErrorCode = (typeof UPDATE_ERROR_CODES)[number];

/** A failure with a code the API shares (`bad_release`, `health_failed`, ...) and a sentence for people. */
export class UpdateError extends Error {
  /** Set when the failed work changed nothing, so an apply failure aborts instead of rolling back. */
  nothingChanged = false;

  constructor(
    readonly code: UpdateErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'UpdateError';
  }
}

/** Runs `work` (which must not change the running system); any failure is marked "nothing changed". */
export async function withoutEffects<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    const e = error instanceof UpdateError ? error : new UpdateError('failed', (error as Error).message ?? String(error), { cause: error });
    e.nothingChanged = true;
    throw e;
  }
}
