/**
 * A tiny in-process publish/subscribe stream. Listeners run synchronously, in order, and
 * one that throws is logged away from the publisher: a transition is published from the
 * journal's entry action, and a listener's bug must never fail the run.
 */
export type Listener<T> = (value: T) => void;

export class Hub<T> {
  private readonly listeners = new Set<Listener<T>>();

  constructor(private readonly onListenerError: (error: unknown) => void = (e) => console.error('listener failed:', e)) {}

  subscribe(listener: Listener<T>): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  publish(value: T): void {
    for (const listener of this.listeners) {
      try {
        listener(value);
      } catch (error) {
        this.onListenerError(error);
      }
    }
  }

  get size(): number {
    return this.listeners.size;
  }
}
