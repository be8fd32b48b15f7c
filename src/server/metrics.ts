/**
 * Prometheus metrics, through the application layer. Counts come from the read model at scrape
 * time (the journal: so they survive restarts and never disagree with the history); durations are
 * observed as the feed tells of each transition.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Application } from '../app/index.js';

export function createMetrics({ queries, feed }: Application): { registry: Registry; stop: () => void } {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'updater_' });

  new Counter({
    name: 'updater_runs_total',
    help: 'Runs that ended, by component and result (from the journal).',
    labelNames: ['component', 'result'],
    registers: [registry],
    collect() {
      this.reset();
      for (const r of queries.runCounts()) this.inc({ component: r.component, result: r.result }, r.n);
    },
  });
  // One series at every scrape, so that `updater_active_run == 0` can be alerted on: while a run is
  // unfinished it carries the run's component, otherwise no label at all. Never `component=""`:
  // Prometheus takes an empty label value as no label, and exporters are expected not to write one.
  new Gauge({
    name: 'updater_active_run',
    help: '1 while a run is unfinished (labelled with its component), else 0 (with no label).',
    labelNames: ['component'],
    registers: [registry],
    collect() {
      this.reset();
      const active = queries.activeRun();
      if (active) this.set({ component: active.component }, 1);
      else this.set(0);
    },
  });
  new Gauge({
    name: 'updater_updates_available',
    help: 'Components whose last check found an update.',
    registers: [registry],
    collect() {
      this.set(queries.checkSummary().updatesAvailable);
    },
  });
  new Gauge({
    name: 'updater_last_check_timestamp_seconds',
    help: 'When the last update check finished (unix time), 0 if never.',
    registers: [registry],
    collect() {
      const last = queries.checkSummary().lastChecked;
      this.set(last ? Date.parse(last) / 1000 : 0);
    },
  });
  const runDuration = new Histogram({
    name: 'updater_run_duration_seconds',
    help: 'Duration of runs from start to end, by result.',
    labelNames: ['result'],
    buckets: [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900],
    registers: [registry],
  });
  const phaseDuration = new Histogram({
    name: 'updater_phase_duration_seconds',
    help: 'Time spent in each phase of a run (from entering it to leaving it).',
    labelNames: ['phase'],
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 300],
    registers: [registry],
  });

  // Each transition is sent to live subscribers in the same synchronous step as its commit: its
  // time here is its commit's.
  const entered = new Map<number, { state: string; at: number; started: number }>();
  const subscription = feed.subscribe({
    subjects: new Set(['updater_progress']),
    send(message) {
      if (message.subject !== 'updater_progress' || message.body.transient) return true;
      const t = message.body;
      const now = Date.now();
      const prev = entered.get(t.run_id);
      if (prev) phaseDuration.observe({ phase: prev.state }, (now - prev.at) / 1000);
      if (t.phase === 'finished') {
        if (prev) runDuration.observe({ result: t.state }, (now - prev.started) / 1000);
        entered.delete(t.run_id);
      } else {
        entered.set(t.run_id, { state: t.state, at: now, started: prev?.started ?? now });
      }
      return true;
    },
  });
  subscription.live();
  return { registry, stop: () => subscription.close() };
}
