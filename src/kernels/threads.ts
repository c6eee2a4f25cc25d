/**
 * How many threads the native kernels use: OCTET_THREADS from the environment, else every
 * hardware thread. Results never depend on it (threads split output rows and columns only).
 */
import { availableParallelism } from 'node:os';
import { InvalidArgumentError } from '../errors.js';

let threads: number | undefined;

/** A thread count, checked: a positive integer, or an error that names where it came from. */
function checkThreads(n: number, where: string, shown: string = String(n)): number {
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${where} is ${shown}; expected a positive integer`);
  return n;
}

function fromEnvironment(): number {
  const text = process.env.OCTET_THREADS;
  if (text === undefined || text === '') return availableParallelism();
  return checkThreads(Number(text), 'OCTET_THREADS', JSON.stringify(text));
}

/** A kernel's `threads` option: the default (kernelThreads()) when not given, else checked. */
export function resolveThreads(n: number | undefined): number {
  return n === undefined ? kernelThreads() : checkThreads(n, 'threads');
}

export function kernelThreads(): number {
  if (threads === undefined) threads = fromEnvironment();
  return threads;
}

export function setKernelThreads(n: number): void {
  threads = checkThreads(n, 'thread count');
}
