/**
 * "Does this component's service run?" for the readers (`GET /api/components`, `system_info` on
 * every transport): a status command (`systemctl show`, a user's `status` command, a Docker
 * inspect) costs a process or a round trip, and a dashboard, the frontend and scripts ask often
 * and at once. So, per component:
 * - single flight: callers that ask while a probe is under way get that probe's answer;
 * - a freshness window (2 s): an answer whose probe started less than 2 s ago is given as is.
 * Hence at most one probe starts per component per 2 s, however many ask. The age counts from the
 * probe's start, not its end, so an answer is never older than the window plus the probe's own
 * time: a service stopped by hand shows as stopped within 2 s (and the status command's duration).
 *
 * `forget` drops what is known of a component: the next caller probes again. The drivers call it
 * when a run changes the service (the updater's own start and stop, and each step of a run begins
 * and ends), so that what the updater itself just did is never hidden behind a cached answer. A
 * probe that was under way when `forget` was called still answers the callers that were waiting
 * for it, but its answer is not kept.
 */

export interface RunningCacheOptions {
  /** How long an answer stays fresh, from the start of its probe (ms). Default 2000. */
  freshMs?: number;
  /** A monotonic clock in ms (tests pass their own). Default `performance.now`. */
  now?: () => number;
}

type Answer = boolean | null;

interface Entry {
  startedAt: number;
  /** While the probe runs. */
  pending: Promise<Answer> | null;
  /** Once it has answered. */
  answer?: Answer;
}

export const RUNNING_FRESH_MS = 2000;

export class RunningCache {
  private readonly entries = new Map<string, Entry>();
  private readonly freshMs: number;
  private readonly now: () => number;

  /** `probe` answers for one component; a probe that throws counts as "cannot tell" (null). */
  constructor(
    private readonly probe: (name: string) => Promise<Answer>,
    options: RunningCacheOptions = {},
  ) {
    this.freshMs = options.freshMs ?? RUNNING_FRESH_MS;
    this.now = options.now ?? (() => performance.now());
  }

  get(name: string): Promise<Answer> {
    const known = this.entries.get(name);
    if (known?.pending) return known.pending;
    if (known && known.answer !== undefined && this.now() - known.startedAt < this.freshMs) return Promise.resolve(known.answer);
    const entry: Entry = { startedAt: this.now(), pending: null };
    this.entries.set(name, entry);
    // Every step below runs after this assignment, even for a probe that throws at once.
    entry.pending = Promise.resolve()
      .then(() => this.probe(name))
      .catch((): Answer => null)
      .then((answer) => {
        // Forgotten (or replaced) meanwhile: answer the callers that waited, keep nothing.
        if (this.entries.get(name) === entry) {
          entry.answer = answer;
          entry.pending = null;
        }
        return answer;
      });
    return entry.pending;
  }

  forget(name: string): void {
    this.entries.delete(name);
  }
}
