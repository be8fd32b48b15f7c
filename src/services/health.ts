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
}

/** Resolves once all checks pass `passesNeeded` times in a row; else throws `health_failed` with the last reason. */
export async function waitUntilHealthy(options: WaitOptions): Promise<void> {
  const pollMs = options.pollMs ?? 100;
  const needed = options.passesNeeded ?? 1;
  let passes = 0;
  let last = 'no check ran';
  for (;;) {
    options.signal?.throwIfAborted();
    let failed: string | null = null;
    for (const check of options.checks) {
      failed = await check();
      if (failed) break;
    }
    if (failed) {
      passes = 0;
      last = failed;
    } else if (++passes >= needed) {
      return;
    }
    if (Date.now() + pollMs > options.deadline) {
      throw new UpdateError('health_failed', last);
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
