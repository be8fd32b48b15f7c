/**
 * Prometheus metrics. Counts come from the journal at scrape time (so they survive restarts
 * and never disagree with the history); durations are observed as transitions are published.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AppDeps } from './deps.js';
import { isTerminal } from '../../machines/update-machine.js';

export function createMetrics(deps: AppDeps): { registry: Registry; stop: () => void } {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'updater_' });

  new Counter({
    name: 'updater_runs_total',
    help: 'Runs that ended, by component and result (from the journal).',
    labelNames: ['component', 'result'],
    registers: [registry],
    collect() {
      this.reset();
      for (const r of deps.journal.runs.countsByResult()) this.inc({ component: r.component, result: r.result }, r.n);
    },
  });
  new Gauge({
    name: 'updater_active_run',
    help: '1 while a run is unfinished (labelled with its component), else 0.',
    labelNames: ['component'],
    registers: [registry],
    collect() {
      this.reset();
      const active = deps.engine.activeRun();
      if (active) this.set({ component: active.component }, 1);
      else this.set({ component: '' }, 0);
    },
  });
  new Gauge({
    name: 'updater_updates_available',
    help: 'Components whose last check found an update.',
    registers: [registry],
    collect() {
      this.set(deps.journal.components.summary().updatesAvailable);
    },
  });
  new Gauge({
    name: 'updater_last_check_timestamp_seconds',
    help: 'When the last update check finished (unix time), 0 if never.',
    registers: [registry],
    collect() {
      const last = deps.journal.components.summary().lastChecked;
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

  const entered = new Map<number, { state: string; at: number; started: number }>();
  const unsubscribe = deps.engine.transitions.subscribe((t) => {
    const now = Date.parse(t.at);
    const prev = entered.get(t.runId);
    if (prev) phaseDuration.observe({ phase: prev.state }, (now - prev.at) / 1000);
    if (isTerminal(t.to)) {
      if (prev) runDuration.observe({ result: t.to }, (now - prev.started) / 1000);
      entered.delete(t.runId);
    } else {
      entered.set(t.runId, { state: t.to, at: now, started: prev?.started ?? now });
    }
  });
  return { registry, stop: unsubscribe };
}
