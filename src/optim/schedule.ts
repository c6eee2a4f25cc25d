/**
 * Learning-rate schedules as pure functions of the step (0-based), so a resumed run recomputes
 * the same rate. Cosine with linear warmup:
 *   step < warmup:  lr = baseLr * (step + 1) / warmup
 *   after:          lr = minLr + (baseLr - minLr) * (1 + cos(pi * (step - warmup) / (total - warmup))) / 2
 */
import { InvalidArgumentError } from '../errors.js';

export interface CosineSchedule {
  baseLr: number;
  totalSteps: number;
  warmupSteps?: number;
  minLr?: number;
}

export function cosineWithWarmup(step: number, s: CosineSchedule): number {
  const warmup = s.warmupSteps ?? 0;
  const minLr = s.minLr ?? 0;
  if (!Number.isInteger(s.totalSteps) || s.totalSteps < 1 || !Number.isInteger(warmup) || warmup < 0 || warmup > s.totalSteps) {
    throw new InvalidArgumentError(`cosine schedule: totalSteps ${s.totalSteps}, warmupSteps ${warmup}; expected integers with 0 <= warmup <= total, total >= 1`);
  }
  if (step < warmup) return (s.baseLr * (step + 1)) / warmup;
  const span = s.totalSteps - warmup;
  const progress = span === 0 ? 1 : Math.min(1, (step - warmup) / span);
  return minLr + ((s.baseLr - minLr) * (1 + Math.cos(Math.PI * progress))) / 2;
}
