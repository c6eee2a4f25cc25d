/** Optimizers and learning-rate schedules. */
export { Optimizer } from './optimizer.js';
export type { OptimizerBaseOptions, OptimizerState, StepOptions, StepReport, StorageSpec } from './optimizer.js';
export { AdamW } from './adamw.js';
export type { AdamWOptions } from './adamw.js';
export { SGD } from './sgd.js';
export type { SgdOptions } from './sgd.js';
export { cosineWithWarmup } from './schedule.js';
export type { CosineSchedule } from './schedule.js';
