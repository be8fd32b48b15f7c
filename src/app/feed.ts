/**
 * The feed: every outbound message of the updater, in one stream that every transport subscribes
 * to (/ws today; Web PubSub and NATS next): `updater_progress` (one per committed transition, plus
 * transient download and pull progress), `update_result`, `update_batch` (an update of all
 * components: each run it starts, and its end), and after every check, whoever asked,
 * `update_check_result` and `system_info`.
 *
 * A subscription is `idle` (it gets only the check results: every connected client hears them),
 * `replaying` or `live` (it also gets every run's messages). Delivery of transitions is gap-free
 * and duplicate-free by construction:
 * - every subscription has a cursor, the seq of the last transition it was sent; it is only ever
 *   sent the journal's transitions after its cursor, in seq order, and the cursor moves to each
 *   one sent;
 * - transitions are published synchronously right after their SQLite commit, on this thread, so
 *   whatever is published is already in the journal. A published seq of cursor+1 is sent as is; a
 *   larger one means the subscription missed some, which are read from the journal (which include
 *   the published one); a smaller or equal one was already sent and is skipped;
 * - a replay (`replay(afterSeq)`) reads the journal in chunks, waiting between messages while the
 *   receiver is behind (`FeedSink.pace`), and ignores live publishing meanwhile (the journal holds
 *   everything published); it holds back `update_result`s and drops transient progress. It goes
 *   live in the same synchronous step as the read that found the end of the journal, so nothing can
 *   be published between the two; then it sends the held results.
 * Sends are never awaited: a receiver that cannot keep up is the transport's to drop (its sink
 * answers false), so one slow client never holds up the others.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { isTerminal, isWorkPhase } from '../../machines/update-machine.js';
import type { Engine, ProgressEvent, RunResult } from '../engine/engine.js';
import type { Transition } from '../journal/journal.js';
import type { ComponentStatus } from '../releases/checker.js';
import type { OutboundMessage, ProgressBody, UpdateBatch } from '../contract/index.js';
import type { Batches } from './batch.js';
import type { Queries } from './queries.js';

/** Transitions read from the journal at a time by a replay or a catch-up. */
const CHUNK = 200;

/** Where a subscription's messages go: a socket, a group, a bus. */
export interface FeedSink {
  /**
   * Takes one message, without waiting. False when the receiver is gone, or was just dropped for
   * not keeping up: the subscription then ends.
   */
  send(message: OutboundMessage): boolean;
  /** Asked before each replayed message: a promise makes the replay wait for it (the receiver is behind). */
  pace?(): Promise<void> | undefined;
  /** The subjects it wants (default: every one); nothing is computed for a subject no one wants. */
  readonly subjects?: ReadonlySet<OutboundMessage['subject']>;
}

/** A receiver's place in the feed. */
export interface Subscription {
  /** Live from the journal's current end (no replay). Only an idle subscription changes. */
  live(): void;
  /**
   * Replays the journal's transitions after `afterSeq` (default: the last one, i.e. none; beyond
   * the last is taken as the last), then goes live. On a subscription already live or replaying it
   * starts over from `afterSeq`: the receiver asked for those again.
   */
  replay(afterSeq?: number): Promise<void>;
  /** Ends it (idempotent); the feed sends it nothing more. */
  close(): void;
  readonly closed: boolean;
}

interface Subscriber extends Subscription {
  sink: FeedSink;
  mode: 'idle' | 'replaying' | 'live';
  /** Seq of the last transition sent (meaningful unless idle). */
  cursor: number;
  /** Bumped by each replay: a replay stops when a newer one has started. */
  generation: number;
  /** `update_result`s published during a replay, sent when it goes live (after the run's last transition). */
  held: OutboundMessage[];
  ended: boolean;
}

/** `phase` of an `updater_progress`: the work phase entered, `finished` for an end state. */
function phaseOf(state: string): string {
  if (isWorkPhase(state)) return state;
  if (isTerminal(state)) return 'finished';
  return 'idle';
}

const progressOf = (t: Transition): OutboundMessage => ({
  subject: 'updater_progress',
  body: { run_id: t.runId, component: t.component, seq: t.seq, phase: phaseOf(t.to), state: t.to, message: t.message, level: t.level },
});

export class Feed {
  private readonly subscribers = new Set<Subscriber>();
  /** The latest transition of each unfinished run: where transient progress is placed. */
  private readonly heads = new Map<number, { seq: number; state: string }>();
  private readonly unsubscribe: Array<() => void>;
  private closed = false;

  constructor(
    private readonly queries: Queries,
    engine: Pick<Engine, 'transitions' | 'progress' | 'results'>,
    private readonly log: Logger,
    batches?: Pick<Batches, 'changes'>,
  ) {
    this.unsubscribe = [
      engine.transitions.subscribe((t) => this.onTransition(t)),
      engine.progress.subscribe((p) => this.onProgress(p)),
      engine.results.subscribe((r) => this.onResult(r)),
      ...(batches ? [batches.changes.subscribe((b) => this.onBatch(b))] : []),
    ];
  }

  /** A new receiver: idle until it goes live or replays. */
  subscribe(sink: FeedSink): Subscription {
    const s: Subscriber = {
      sink,
      mode: 'idle',
      cursor: 0,
      generation: 0,
      held: [],
      ended: this.closed,
      get closed() {
        return this.ended;
      },
      live: () => this.goLive(s),
      replay: (afterSeq?: number) => this.replay(s, afterSeq),
      close: () => this.drop(s),
    };
    if (!this.closed) this.subscribers.add(s);
    return s;
  }

  /** Subscriptions open now. */
  get size(): number {
    return this.subscribers.size;
  }

  /**
   * A check has ended (whoever asked: a client, the schedule, the boot): every subscription gets
   * `update_check_result`, then `system_info`.
   */
  checked(statuses: ComponentStatus[]): void {
    if (this.closed) return;
    if (this.wanted('update_check_result')) this.broadcast({ subject: 'update_check_result', body: this.queries.checkResult(statuses) });
    // system_info asks every service whether it runs: not for no one (a one-shot CLI check, /metrics alone).
    if (!this.wanted('system_info')) return;
    this.queries.systemInfo().then(
      (body) => {
        if (!this.closed) this.broadcast({ subject: 'system_info', body });
      },
      (error: unknown) => this.log.warn({ err: error }, `system_info after a check failed: ${(error as Error).message}`),
    );
  }

  /** Idempotent: drops the engine subscriptions and ends every subscription. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const off of this.unsubscribe.splice(0)) off();
    for (const s of [...this.subscribers]) this.drop(s);
  }

  private goLive(s: Subscriber): void {
    if (s.ended || s.mode !== 'idle') return;
    s.cursor = this.queries.lastSeq();
    s.mode = 'live';
  }

  private async replay(s: Subscriber, afterSeq?: number): Promise<void> {
    if (s.ended) return;
    const last = this.queries.lastSeq();
    const generation = ++s.generation;
    s.mode = 'replaying';
    s.cursor = afterSeq === undefined ? last : Math.min(afterSeq, last);
    const stale = () => s.ended || s.generation !== generation;
    for (;;) {
      const rows = this.queries.transitionsAfter(s.cursor, CHUNK);
      for (const t of rows) {
        // Paced: a replay waits for the receiver rather than overflow it.
        const behind = s.sink.pace?.();
        if (behind) await behind;
        if (stale() || !this.send(s, progressOf(t))) return;
        s.cursor = t.seq;
      }
      if (rows.length < CHUNK) {
        // The end of the journal, in the same synchronous step as going live: nothing was published in between.
        s.mode = 'live';
        for (const message of s.held.splice(0)) if (!this.send(s, message)) return;
        return;
      }
      // Let the rest of the process run between chunks.
      await sleep(0);
      if (stale()) return;
    }
  }

  private drop(s: Subscriber): void {
    s.ended = true;
    s.held = [];
    this.subscribers.delete(s);
  }

  private wanted(subject: OutboundMessage['subject']): boolean {
    for (const s of this.subscribers) if (!s.sink.subjects || s.sink.subjects.has(subject)) return true;
    return false;
  }

  private send(s: Subscriber, message: OutboundMessage): boolean {
    if (s.ended) return false;
    if (s.sink.subjects && !s.sink.subjects.has(message.subject)) return true;
    if (s.sink.send(message)) return true;
    this.drop(s);
    return false;
  }

  private broadcast(message: OutboundMessage): void {
    for (const s of this.subscribers) this.send(s, message);
  }

  private onTransition(t: Transition): void {
    if (isTerminal(t.to)) this.heads.delete(t.runId);
    else this.heads.set(t.runId, { seq: t.seq, state: t.to });
    let message: OutboundMessage | undefined;
    for (const s of this.subscribers) {
      if (s.mode !== 'live' || t.seq <= s.cursor) continue;
      if (t.seq === s.cursor + 1) {
        if (this.send(s, (message ??= progressOf(t)))) s.cursor = t.seq;
      } else {
        this.catchUp(s);
      }
    }
  }

  private onProgress(p: ProgressEvent): void {
    const head = this.heads.get(p.runId) ?? this.queries.latestOf(p.runId);
    if (!head) return;
    const progress: NonNullable<ProgressBody['progress']> = {};
    if (p.percent !== undefined) progress.percent = p.percent;
    if (p.bytes !== undefined) progress.bytes = p.bytes;
    if (p.total !== undefined) progress.total = p.total;
    const message: OutboundMessage = {
      subject: 'updater_progress',
      body: { run_id: p.runId, component: p.component, seq: head.seq, phase: p.phase, state: head.state, message: p.message, level: 'debug', progress, transient: true },
    };
    for (const s of this.subscribers) {
      if (s.mode !== 'live') continue;
      if (s.cursor < head.seq) this.catchUp(s);
      this.send(s, message);
    }
  }

  private onResult(r: RunResult): void {
    const message: OutboundMessage = { subject: 'update_result', body: { run_id: r.runId, component: r.component, success: r.success, state: r.state, message: r.message } };
    for (const s of this.subscribers) {
      if (s.mode === 'live') this.send(s, message);
      else if (s.mode === 'replaying') s.held.push(message);
    }
  }

  /** An update of all components changed (a run started, it ended): like a run's result, for live subscriptions. */
  private onBatch(b: UpdateBatch): void {
    const message: OutboundMessage = { subject: 'update_batch', body: b };
    for (const s of this.subscribers) {
      if (s.mode === 'live') this.send(s, message);
      else if (s.mode === 'replaying') s.held.push(message);
    }
  }

  /** Sends what a live subscription missed, synchronously (a gap is at most a few transitions). */
  private catchUp(s: Subscriber): void {
    for (;;) {
      const rows = this.queries.transitionsAfter(s.cursor, CHUNK);
      for (const t of rows) {
        if (!this.send(s, progressOf(t))) return;
        s.cursor = t.seq;
      }
      if (rows.length < CHUNK) return;
    }
  }
}
