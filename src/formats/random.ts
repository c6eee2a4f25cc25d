/**
 * Counter-based random numbers for stochastic rounding.
 *
 * A draw is a pure function of (key, counter): no state advances, so the same seed and the same
 * element give the same bits in any order, on any number of threads, in TypeScript and in the
 * native core alike. The mixer is the 32-bit finalizer of MurmurHash3 (a bijection on 32-bit
 * words with full avalanche), applied twice around a Weyl step.
 *
 * Contract (the native core implements exactly this):
 *   key(seed)          = mix32(mix32(lo32(seed) ^ 0x243F6A88) ^ hi32(seed) ^ 0xB7E15162)
 *   draw(key, counter) = mix32(mix32(counter * 0x9E3779B9 + key mod 2^32) ^ key)
 *
 * Streams are told apart by mixing what they belong to into the key, here and nowhere else:
 *   streamSeed(seed, index)      = seed ^ (index + 1) * 0x9E3779B9            (mod 2^32)
 *   streamKey(key, index, role)  = mix32(streamSeed(key, index) ^ ROLE * 0x85EBCA6B)
 *   cellKey(key, i, j)           = mix32(mix32(key ^ i * 0x85EBCA6B) ^ j * 0xC2B2AE35)
 * with index a parameter's, layer's or convolution group's position and ROLE from STREAM_ROLES
 * (0 without a role).
 */
import { InvalidArgumentError } from '../errors.js';

/** MurmurHash3's fmix32: a bijective 32-bit mixer. Returns an unsigned 32-bit integer. */
export function mix32(x: number): number {
  let h = x | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Check that a seed is a non-negative safe integer; the message names where it came from. */
export function checkSeed(seed: number, where = 'seed'): number {
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new InvalidArgumentError(
      `${where} is ${seed}; expected a non-negative integer at most ${Number.MAX_SAFE_INTEGER}`,
    );
  }
  return seed;
}

/** Fold a user seed (any non-negative safe integer) into a 32-bit stream key. */
export function seedKey(seed: number): number {
  checkSeed(seed);
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 2 ** 32) >>> 0;
  return mix32(mix32(lo ^ 0x243f6a88) ^ hi ^ 0xb7e15162);
}

/** The 32-bit draw for `counter` (an unsigned 32-bit integer) in the stream of `key`. */
export function drawU32(key: number, counter: number): number {
  return mix32(mix32((Math.imul(counter, 0x9e3779b9) + key) | 0) ^ key);
}

const WEYL = 0x9e3779b9;
const ROW = 0x85ebca6b;
const COLUMN = 0xc2b2ae35;

/** What a stochastic-rounding stream rounds: a GEMM layer's operands, or the sums of its three GEMMs. */
export const STREAM_ROLES = {
  weights: 1,
  activations: 2,
  errors: 3,
  weight_gradients: 4,
  forward: 16,
  inputGradient: 17,
  weightGradient: 18,
} as const;

export type StreamRole = keyof typeof STREAM_ROLES;

/** The 32-bit seed of stream `index` (a parameter's position, say) under a run's seed; unmixed, as a seed goes through seedKey. */
export function streamSeed(seed: number, index: number): number {
  return (seed ^ Math.imul(index + 1, WEYL)) >>> 0;
}

/** The key of stream `index` (a layer, a convolution group) of `key`, for `role` where one is given. */
export function streamKey(key: number, index: number, role?: StreamRole): number {
  return mix32(streamSeed(key, index) ^ (role === undefined ? 0 : Math.imul(STREAM_ROLES[role], ROW)));
}

/** The key of the stream of GEMM result element (i, j) (its accumulation draws) under `key`. */
export function cellKey(key: number, i: number, j: number): number {
  return mix32(mix32(key ^ Math.imul(i, ROW)) ^ Math.imul(j, COLUMN));
}
