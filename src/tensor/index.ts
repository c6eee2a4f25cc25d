/** Tensors, quantized tensors, shapes and the seeded generator. */
export { GradHandle, Tensor } from './tensor.js';
export type { GradFn } from './tensor.js';
export { Generator } from './random.js';
export type { GeneratorState } from './random.js';
export {
  broadcastIndex,
  broadcastShapes,
  checkShape,
  formatShape,
  shapeSize,
  shapesEqual,
  stridesOf,
} from './shape.js';
export type { Shape } from './shape.js';
