/** Deterministic test data (xorshift32), independent of the library's generators. */
export function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

/** Uniform floats in [lo, hi). */
export function uniform(length: number, seed: number, lo = -1, hi = 1): Float32Array {
  const next = xorshift(seed);
  return Float32Array.from({ length }, () => lo + ((next() / 2 ** 32) * (hi - lo)));
}
