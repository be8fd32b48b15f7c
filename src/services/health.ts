/**
 * Waiting for a service to be healthy after an update: polls fast (every `pollMs`) until
 * every check passes or the deadline; no fixed sleeps. A check that can tell the update is
 * hopeless (the container exited) throws `Hopeless` to stop waiting at once.
 */
import { UpdateError } from '../core/errors.js';
import { plainVersion } from '../core/versions.js';

export class Hopeless extends UpdateError {}

export interface HealthUrlCheck {
  url: string;
  /** When the answer is JSON with a `version`, it must equal this (a leading v is ignored). */
  expectVersion?: string | null;
  /** Bound of one request. */
  requestTimeoutMs?: number;
}

/** One GET of the health URL: null when healthy, else why not. */
export async function probeHealthUrl(check: HealthUrlCheck, signal?: AbortSignal): Promise<string | null> {
  const timeout = AbortSignal.timeout(check.requestTimeoutMs ?? 2000);
  let response: Response;
  try {
    response = await fetch(check.url, { signal: signal ? AbortSignal.any([signal, timeout]) : timeout, redirect: 'manual' });
  } catch (error) {
    signal?.throwIfAborted();
    const e = error as Error & { cause?: { code?: string } };
    const why = e.name === 'TimeoutError' ? `no answer within ${check.requestTimeoutMs ?? 2000} ms` : (e.cause?.code ?? e.message);
    return `health URL ${check.url} did not answer (${why})`;
  }
  const text = await response.text().catch(() => '');
  if (response.status !== 200) return `health URL ${check.url} answered ${response.status}`;
  if (check.expectVersion) {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return null; // not JSON: a 200 is all it promises
    }
    const version = (body as { version?: unknown })?.version;
    if (typeof version === 'string' && plainVersion(version) !== plainVersion(check.expectVersion)) {
      return `health URL ${check.url} reports version ${version}, expected ${plainVersion(check.expectVersion)}`;
    }
  }
  return null;
}

export interface WaitOptions {
  deadline: number;
  pollMs?: number;
  signal?: AbortSignal;
  /** Each returns null when its condition holds, else a sentence; may throw Hopeless. */
  checks: Array<() => Promise<string | null>>;
  /** How many consecutive passes count as healthy (default 1). */
  passesNeeded?: number;
  /**
   * How long the checks must keep passing, without a failure in between, measured in time from
   * the first pass of the streak (default 0). Measured in time, not in passes: on a busy device
   * one round of checks (a systemctl, an HTTP request) can take longer than the poll interval.
   */
  settleMs?: number;
}

/**
 * Resolves once all checks pass `passesNeeded` times in a row and have kept passing for
 * `settleMs`; else throws `health_failed` with the last reason. A streak of passes that is under
 * way at the deadline may finish (up to `settleMs` past it): a service found healthy in time is
 * not failed because confirming it took a slow device a little longer.
 */
export async function waitUntilHealthy(options: WaitOptions): Promise<void> {
  const pollMs = options.pollMs ?? 100;
  const needed = options.passesNeeded ?? 1;
  const settleMs = options.settleMs ?? 0;
  let passes = 0;
  let streakSince = 0;
  let last = 'no check ran';
  for (;;) {
    options.signal?.throwIfAborted();
    let failed: string | null = null;
    for (const check of options.checks) {
      failed = await check();
      if (failed) break;
    }
    const now = Date.now();
    if (failed) {
      passes = 0;
      last = failed;
    } else {
      if (passes++ === 0) streakSince = now;
      if (passes >= needed && now - streakSince >= settleMs) return;
    }
    const late = now + pollMs > options.deadline;
    // Past the deadline only an unbroken streak that began in time may go on, and not for ever.
    if (late && (passes === 0 || now + pollMs > options.deadline + Math.max(settleMs, pollMs * needed))) {
      throw new UpdateError('health_failed', passes === 0 ? last : `healthy for only ${((now - streakSince) / 1000).toFixed(1)} s (${passes} checks in a row) before the deadline; it must stay healthy for ${(settleMs / 1000).toFixed(1)} s`);
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
