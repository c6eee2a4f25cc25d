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
