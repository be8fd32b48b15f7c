/** waitUntilHealthy: when a service counts as healthy, on a fast and on a slow device. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { waitUntilHealthy } from '../src/services/health.js';
import { UpdateError } from '../src/core/errors.js';

/** A check that takes `ms` and answers from `script` in turn (then its last answer for ever). */
function slowCheck(ms: number, script: Array<string | null> = [null]) {
  let i = 0;
  const check = async () => {
    await sleep(ms);
    return script[Math.min(i++, script.length - 1)] ?? null;
  };
  return Object.assign(check, { calls: () => i });
}

const healthFailed = (pattern: RegExp) => (e: unknown) => e instanceof UpdateError && e.code === 'health_failed' && pattern.test(e.message);

test('settling is measured in time: checks slower than the poll interval still settle within the deadline', async () => {
  // Each round takes 300 ms, polls every 100 ms; settle 1 s, deadline 0.5 s + settle. Counting
  // passes (settle / poll + 1 = 11 rounds, 4.4 s) would miss the deadline.
  const check = slowCheck(300);
  const t0 = Date.now();
  await waitUntilHealthy({ deadline: t0 + 1500, pollMs: 100, checks: [check], passesNeeded: 2, settleMs: 1000 });
  const took = Date.now() - t0;
  assert.ok(took >= 1000, `it returned after ${took} ms, before the service had stayed healthy for 1 s`);
  assert.ok(check.calls() <= 6, `${check.calls()} rounds`);
});

test('a failure during the settle time starts it again, and the deadline then fails the run with that reason', async () => {
  // Healthy twice (not yet settled), then activating for good.
  const check = slowCheck(20, [null, null, 'the unit is activating']);
  await assert.rejects(waitUntilHealthy({ deadline: Date.now() + 300, pollMs: 50, checks: [check], passesNeeded: 2, settleMs: 400 }), healthFailed(/activating/));
});

test('nothing ever passes: health_failed with the last reason, at the deadline', async () => {
  const t0 = Date.now();
  await assert.rejects(waitUntilHealthy({ deadline: t0 + 300, pollMs: 50, checks: [slowCheck(10, ['health URL answered 503'])] }), healthFailed(/answered 503/));
  assert.ok(Date.now() - t0 < 1000);
});

test('a streak under way at the deadline may finish; a failure after the deadline ends it at once', async () => {
  await waitUntilHealthy({ deadline: Date.now() + 100, pollMs: 50, checks: [slowCheck(10)], passesNeeded: 2, settleMs: 500 });
  const failing = slowCheck(10, [null, null, null, 'the container exited (code 1)']);
  await assert.rejects(waitUntilHealthy({ deadline: Date.now() + 60, pollMs: 50, checks: [failing], passesNeeded: 2, settleMs: 1000 }), healthFailed(/exited/));
});
