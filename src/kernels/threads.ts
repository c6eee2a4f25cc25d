/**
 * How many threads the native kernels use: OCTET_THREADS from the environment, else every
 * hardware thread. Results never depend on it (threads split output rows and columns only).
 */
import { availableParallelism } from 'node:os';
import { InvalidArgumentError } from '../errors.js';

let threads: number | undefined;

function fromEnvironment(): number {
  const text = process.env.OCTET_THREADS;
  if (text === undefined || text === '') return availableParallelism();
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) {
    throw new InvalidArgumentError(`OCTET_THREADS is ${JSON.stringify(text)}; expected a positive integer`);
  }
  return n;
}

export function kernelThreads(): number {
  if (threads === undefined) threads = fromEnvironment();
  return threads;
}

export function setKernelThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`thread count is ${n}; expected a positive integer`);
  threads = n;
}
