/** Small helpers for benchmarks: timing, percentiles, markdown. */
export const ms = (ns: bigint) => Number(ns) / 1e6;

export async function time<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = process.hrtime.bigint();
  const value = await fn();
  return { ms: ms(process.hrtime.bigint() - t0), value };
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

export const fmt = (n: number, digits = 1) => n.toFixed(digits);

export interface Section {
  title: string;
  /** Markdown table rows: [figure, measured, baseline, ratio, goal, verdict]. */
  rows: string[][];
  notes?: string[];
}

export function verdict(ok: boolean): string {
  return ok ? 'met' : '**missed**';
}
