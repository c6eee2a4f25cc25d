/**
 * Recycled float32 buffers. A training step allocates and drops hundreds of megabytes of
 * activations and gradients, and JavaScript frees an array only when the garbage collector
 * next runs: between collections the dead arrays pile up on top of the live ones, and every fresh
 * array costs page faults to map and zero. The backward pass knows exactly when an intermediate
 * gradient is dead (its op has run and nothing else holds it), so it hands such arrays back here,
 * and the ops that allocate arrays of the same sizes (the next layer's gradients, the next step's
 * activations) take them instead of allocating.
 *
 * Only whole arrays of at least MIN_ELEMENTS come in (a view shares its buffer with something
 * else); the pool holds at most `limit` bytes, dropping the longest-unused arrays first. An array
 * taken from the pool has stale contents: `takeBuffer` is for arrays the caller writes
 * completely, `takeZeroed` for arrays it accumulates into.
 */
import { InvalidArgumentError } from '../errors.js';
import { allocCodes, type CodeArray, type FormatLike } from '../formats/index.js';
import { nativeCore } from './native.js';

const MIN_ELEMENTS = 1 << 14;

/** Free arrays, oldest first. */
let free: (Float32Array | CodeArray)[] = [];
let pooledBytes = 0;
/**
 * Default limit: 1 GiB. A ResNet-18 step (batch 64, float32) takes about 380 MB from the pool:
 * at the earlier 256 MB the rest came fresh, about 137 MB of new pages a step (measured
 * 2026-12-07: 1.03 s a step at 256 MB, 0.76-0.79 s at 512 MB and above, no fresh pages, the same
 * peak memory, since the forward pass takes them all back before its peak). What a larger limit
 * costs is memory held for later in the step: fp8 at batch 256 keeps float32 gradient arrays
 * through the forward pass's peak for its backward pass (peak 1085 -> 1349 MB, steps 8.6 -> 7.6
 * s). markForward trims the pool to what the passes take; OCTET_POOL_MB sets another limit.
 */
export const DEFAULT_POOL_LIMIT = 1024 << 20;
/** OCTET_POOL_MB: the limit in MiB instead of the default (0 switches recycling off). */
function limitFromEnvironment(): number {
  const text = process.env.OCTET_POOL_MB;
  if (text === undefined || text === '') return DEFAULT_POOL_LIMIT;
  const mb = Number(text);
  if (!Number.isFinite(mb) || mb < 0) throw new InvalidArgumentError(`OCTET_POOL_MB is "${text}"; expected a number of MiB >= 0`);
  return Math.floor(mb * 2 ** 20);
}
let limit = limitFromEnvironment();
let recycledCount = 0;
let reusedCount = 0;
let freshCount = 0;
let freshBytes = 0;
let trimmedBytes = 0;

/**
 * Give back an array nothing else refers to (the caller's promise). Views, small arrays and arrays
 * already in the pool are ignored.
 */
export function recycle(a: Float32Array | CodeArray): void {
  if (a.length < MIN_ELEMENTS || a.byteOffset !== 0 || a.byteLength !== a.buffer.byteLength || limit === 0) return;
  if (free.some((f) => f.buffer === a.buffer)) return;
  free.push(a);
  pooledBytes += a.byteLength;
  recycledCount++;
  if (pooledBytes > limit) {
    let drop = 0;
    while (pooledBytes > limit) pooledBytes -= free[drop++].byteLength;
    free = free.slice(drop);
  }
}

/**
 * What the passes take, by kind of array (type and length): counted from `markForward` to
 * `markBackward` (a forward pass) and from there to the next `markForward` (the backward pass, the
 * optimizer step and whatever runs until the next forward).
 */
type Demand = Map<string, number>;
let counting: Demand | null = null;
let forwardDemand: Demand | null = null;
let lastForward: Demand | null = null;
let lastBackward: Demand | null = null;

function kindOf(a: { length: number; constructor: { name: string } }): string {
  return `${a.constructor.name}:${a.length}`;
}

function countTake(key: string): void {
  if (counting) counting.set(key, (counting.get(key) ?? 0) + 1);
}

/**
 * A forward pass begins (withActivationRelease calls this on entry). The arrays the pool holds
 * beyond what the last step took of their kind (its forward pass's takes and the takes after it:
 * the arrays a forward pass keeps for backward are still out while the backward pass takes more)
 * are dropped, newest kept: no pass of a step like the last one would take them. (The larger of
 * the two counts was too few: ResNet-18's backward took 44 MB a step fresh.)
 */
export function markForward(): void {
  if (counting && !forwardDemand) {
    // No markBackward since the last forward (an evaluation): its takes count as a forward's.
    lastForward = counting;
  } else if (forwardDemand && counting) {
    lastForward = forwardDemand;
    lastBackward = counting;
  }
  if (lastForward) {
    const keep = new Map(lastForward);
    for (const [key, n] of lastBackward ?? []) keep.set(key, n + (keep.get(key) ?? 0));
    const kept: (Float32Array | CodeArray)[] = [];
    for (let i = free.length - 1; i >= 0; i--) {
      const key = kindOf(free[i]);
      const left = keep.get(key) ?? 0;
      if (left > 0) {
        keep.set(key, left - 1);
        kept.push(free[i]);
      } else {
        pooledBytes -= free[i].byteLength;
        trimmedBytes += free[i].byteLength;
      }
    }
    free = kept.reverse();
  }
  forwardDemand = null;
  counting = new Map();
}

/** The forward pass ended (backward() calls this): what it took is the forward's demand. */
export function markBackward(): void {
  if (!counting || forwardDemand) return;
  forwardDemand = counting;
  counting = new Map();
}

function pooled<T extends Float32Array | CodeArray>(n: number, type: new (n: number) => T): T | null {
  if (n < MIN_ELEMENTS) return null;
  countTake(`${type.name}:${n}`);
  for (let i = free.length - 1; i >= 0; i--) {
    if (free[i].length === n && free[i] instanceof type) {
      const a = free[i] as T;
      free.splice(i, 1);
      pooledBytes -= a.byteLength;
      reusedCount++;
      return a;
    }
  }
  return null;
}

/** Fresh arrays of at least this many bytes (1 MiB, the addon's mmap threshold) are prefaulted. */
const PREFAULT_BYTES = 1 << 20;

/** `a`, with its pages mapped in now on this thread when it is large (native prefault). */
function prefaulted<T extends Float32Array | CodeArray>(a: T): T {
  if (a.byteLength >= PREFAULT_BYTES) nativeCore()?.prefault(a);
  return a;
}

/**
 * A fresh array of n zeros, prefaulted when large: mapped lazily, its pages would fault in at
 * first touch, and when that touch happens inside a multithreaded kernel the threads' faults
 * contend (measured on this kind of machine: col2im into a fresh 16 MB array took 81 ms on two
 * threads, 19 ms on one, 4 ms into a touched one).
 */
export function freshArray(n: number): Float32Array {
  freshCount++;
  freshBytes += 4 * n;
  return prefaulted(new Float32Array(n));
}

/**
 * A fresh code array of `format` for n values, prefaulted like `freshArray`: the codes of a
 * quantized operand are written by a multithreaded encode (measured in an fp8 ResNet-18 step:
 * page faults inside the scaled encode took about 4% of the step).
 */
export function freshCodes(format: FormatLike, n: number): CodeArray {
  const codes = allocCodes(format, n);
  freshCount++;
  freshBytes += codes.byteLength;
  return prefaulted(codes);
}

/** An array of `n` floats, contents unspecified (from the pool when one of that size is free). */
export function takeBuffer(n: number): Float32Array {
  return pooled(n, Float32Array) ?? freshArray(n);
}

/** An array of `n` zeros. */
export function takeZeroed(n: number): Float32Array {
  return pooled(n, Float32Array)?.fill(0) ?? freshArray(n);
}

/**
 * A code array of `format` for n values, contents unspecified: from the pool when one of that
 * width and length is free (a low-precision recipe's saved activations, handed back by the
 * backward pass), else fresh (freshCodes).
 */
export function takeCodes(format: FormatLike, n: number): CodeArray {
  const type = allocCodes(format, 0).constructor as new (n: number) => CodeArray;
  return pooled(n, type) ?? freshCodes(format, n);
}

/** Set the most bytes the pool keeps (0 switches recycling off); returns the previous limit. */
export function setBufferPoolLimit(bytes: number): number {
  if (!(bytes >= 0) || !Number.isFinite(bytes)) throw new InvalidArgumentError(`setBufferPoolLimit: ${bytes} bytes; expected a finite number >= 0`);
  const previous = limit;
  limit = bytes;
  if (pooledBytes > limit) {
    free = [];
    pooledBytes = 0;
  }
  return previous;
}

export interface BufferPoolStats {
  /** Arrays and bytes waiting in the pool now. */
  arrays: number;
  bytes: number;
  limit: number;
  /** Arrays handed back, and arrays handed out again, since the process started. */
  recycled: number;
  reused: number;
  /** Arrays allocated fresh (freshArray and freshCodes, and the take functions when the pool had none), and their bytes. */
  fresh: number;
  freshBytes: number;
  /** Bytes dropped by markForward's trimming since the process started. */
  trimmedBytes: number;
}

export function bufferPoolStats(): BufferPoolStats {
  return { arrays: free.length, bytes: pooledBytes, limit, recycled: recycledCount, reused: reusedCount, fresh: freshCount, freshBytes, trimmedBytes };
}

/** Drop every pooled array (their memory is freed at the next collection) and what the passes took. */
export function clearBufferPool(): void {
  free = [];
  pooledBytes = 0;
  counting = forwardDemand = lastForward = lastBackward = null;
}
