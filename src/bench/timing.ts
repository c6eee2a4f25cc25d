/**
 * Timing for benchmarks. The machine is shared, so interference only ever slows a run down:
 * `bestOf` reports the fastest of repeated runs (the least disturbed), and peers are timed the
 * same way in the same run.
 */
export interface Timing {
  /** Median seconds per call. */
  seconds: number;
  repeats: number;
}

export function timeIt(fn: () => void, minSeconds = 0.4, maxRepeats = 50): Timing {
  fn();
  const samples: number[] = [];
  const start = process.hrtime.bigint();
  while (samples.length < maxRepeats) {
    const t0 = process.hrtime.bigint();
    fn();
    samples.push(Number(process.hrtime.bigint() - t0) / 1e9);
    if (Number(process.hrtime.bigint() - start) / 1e9 > minSeconds && samples.length >= 3) break;
  }
  samples.sort((a, b) => a - b);
  return { seconds: samples[samples.length >> 1], repeats: samples.length };
}

/** Fastest seconds per call over repeated runs lasting at least `minSeconds` (3 runs at least). */
export function bestOf(fn: () => void, minSeconds = 0.5, maxRepeats = 200): number {
  fn();
  let best = Infinity;
  const start = process.hrtime.bigint();
  for (let r = 0; r < maxRepeats; r++) {
    const t0 = process.hrtime.bigint();
    fn();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
    if (r >= 2 && Number(process.hrtime.bigint() - start) / 1e9 > minSeconds) break;
  }
  return best;
}

export async function timeItAsync(fn: () => Promise<void>, minSeconds = 0.4, maxRepeats = 30): Promise<Timing> {
  await fn();
  const samples: number[] = [];
  const start = process.hrtime.bigint();
  while (samples.length < maxRepeats) {
    const t0 = process.hrtime.bigint();
    await fn();
    samples.push(Number(process.hrtime.bigint() - t0) / 1e9);
    if (Number(process.hrtime.bigint() - start) / 1e9 > minSeconds && samples.length >= 3) break;
  }
  samples.sort((a, b) => a - b);
  return { seconds: samples[samples.length >> 1], repeats: samples.length };
}
