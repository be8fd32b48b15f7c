/**
 * Fault points for crash tests. Inert unless `UPDATER_FAULT` names one:
 * - `after:<state>`: SIGKILL right after the transition into <state> is committed,
 *   before that state's work starts.
 * - `during:<phase>[:<n>]`: SIGKILL in the middle of <phase>'s work: when the n-th
 *   sub-step intent (default 2) of that phase is recorded in this process, i.e. after
 *   the earlier sub-steps took effect; or, if the work has fewer sub-steps, when it
 *   finishes or fails, before its end is committed (effects done, journal behind).
 * With `UPDATER_FAULT_ONCE=<file>` the fault fires only while that file does not exist, and
 * creates it first: a crash test of a run that spans processes (a self-update: the old release,
 * then the new one) kills exactly one of them. `UPDATER_FAULT_VERSION` (read by the composition
 * root) arms it only in the updater of that version.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { fsyncFile } from '../util/fs-atomic.js';

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
  private readonly once: string | undefined = process.env.UPDATER_FAULT_ONCE || undefined;
  private readonly stepCounts = new Map<string, number>();

  constructor(
    spec: string | undefined = process.env.UPDATER_FAULT,
    private readonly killNow: () => void = () => {
      process.kill(process.pid, 'SIGKILL');
    },
  ) {
    this.spec = parseFault(spec);
  }

  private kill(): void {
    if (this.once) {
      if (existsSync(this.once)) return;
      writeFileSync(this.once, `${process.pid}\n`);
      fsyncFile(this.once);
    }
    this.killNow();
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
