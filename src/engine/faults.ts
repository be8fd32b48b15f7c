/**
 * Fault points for crash tests. Inert unless `UPDATER_FAULT` names one:
 * - `after:<state>`: SIGKILL right after the transition into <state> is committed,
 *   before that state's work starts.
 * - `during:<phase>[:<n>]`: SIGKILL in the middle of <phase>'s work: when the n-th
 *   sub-step intent (default 2) of that phase is recorded in this process, i.e. after
 *   the earlier sub-steps took effect; or, if the work has fewer sub-steps, when it
 *   finishes or fails, before its end is committed (effects done, journal behind).
 */
export type FaultPosition = 'after' | 'during';

export interface FaultSpec {
  position: FaultPosition;
  state: string;
  n: number;
}

export function parseFault(spec: string | undefined): FaultSpec | null {
  if (!spec) return null;
  const m = /^(after|during):([a-z_]+)(?::(\d+))?$/.exec(spec.trim());
  if (!m) throw new Error(`UPDATER_FAULT="${spec}" is not after:<state> or during:<phase>[:<n>]`);
  return { position: m[1] as FaultPosition, state: m[2]!, n: m[3] ? Number(m[3]) : 2 };
}

export class FaultPoints {
  private readonly spec: FaultSpec | null;
  private readonly stepCounts = new Map<string, number>();

  constructor(
    spec: string | undefined = process.env.UPDATER_FAULT,
    private readonly kill: () => void = () => {
      process.kill(process.pid, 'SIGKILL');
    },
  ) {
    this.spec = parseFault(spec);
  }

  get armed(): boolean {
    return this.spec !== null;
  }

  afterCommit(state: string): void {
    if (this.spec?.position === 'after' && this.spec.state === state) this.kill();
  }

  duringStep(phase: string): void {
    const count = (this.stepCounts.get(phase) ?? 0) + 1;
    this.stepCounts.set(phase, count);
    if (this.spec?.position === 'during' && this.spec.state === phase && count === this.spec.n) this.kill();
  }

  duringEnd(phase: string): void {
    if (this.spec?.position === 'during' && this.spec.state === phase && (this.stepCounts.get(phase) ?? 0) < this.spec.n) this.kill();
  }
}
