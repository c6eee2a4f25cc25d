/** Timing helpers for benchmarks: warm up, then the median of repeated runs. */
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
