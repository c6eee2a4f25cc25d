/**
 * A seeded generator for initialization, shuffling and dropout. It is counter-based (the draw for
 * step i is a pure function of seed and i, see src/formats/random.ts), so its whole state is
 * (seed, counter) and a checkpoint can store it exactly.
 */
import { drawU32, seedKey } from '../formats/index.js';

export interface GeneratorState {
  seed: number;
  counter: number;
}

export class Generator {
  readonly seed: number;
  private readonly key: number;
  counter: number;
  private spareNormal: number | null = null;

  constructor(seed: number, counter = 0) {
    this.seed = seed;
    this.key = seedKey(seed);
    this.counter = counter;
  }

  state(): GeneratorState {
    return { seed: this.seed, counter: this.counter };
  }

  static fromState(state: GeneratorState): Generator {
    return new Generator(state.seed, state.counter);
  }

  /** A uniform 32-bit unsigned integer. */
  nextU32(): number {
    const value = drawU32(this.key, this.counter >>> 0);
    this.counter++;
    return value;
  }

  /** Uniform in [0, 1) with 32 random bits. */
  uniform(): number {
    return this.nextU32() / 4294967296;
  }

  /** Standard normal (Box-Muller, both values used). */
  normal(): number {
    if (this.spareNormal !== null) {
      const v = this.spareNormal;
      this.spareNormal = null;
      return v;
    }
    const u1 = (this.nextU32() + 1) / 4294967297;
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    this.spareNormal = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  }

  /** An integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** A seeded permutation of 0..n-1 (Fisher-Yates). */
  permutation(n: number): Int32Array {
    const p = Int32Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = this.below(i + 1);
      const t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }
}
