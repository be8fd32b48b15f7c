/** A small seeded PRNG (mulberry32): the same seed gives the same sequence, so a schedule can be replayed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** SOAK_SEED when set (decimal or 0x hex), else a fresh one. */
export function seedFromEnv(): number {
  const raw = process.env.SOAK_SEED;
  if (raw !== undefined && raw.trim() !== '') {
    const n = Number(raw.trim());
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`SOAK_SEED must be an integer in [0, 2^32): got "${raw}"`);
    return n;
  }
  return (Date.now() ^ (process.pid << 16)) >>> 0;
}

/** A positive integer from the environment, or the default. */
export function intFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw.trim());
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer: got "${raw}"`);
  return n;
}
