/**
 * Elementwise ops: add, sub, mul with NumPy broadcasting, scaling, and the activations ReLU,
 * ReLU6 and hardswish. Gradients of broadcast inputs are summed over the broadcast axes.
 */
import { needsGrad, record, registerGradient } from '../autograd/index.js';
import { InvalidArgumentError } from '../errors.js';
import { addArrays, maskBytes, reluBackward, reluForward, takeBuffer } from '../kernels/index.js';
import { Tensor, broadcastIndex, broadcastShapes, formatShape, shapesEqual } from '../tensor/index.js';
import { productOperands } from './saved.js';

interface BinarySaved {
  aIndex: Int32Array | null;
  bIndex: Int32Array | null;
  /** The operands' values, kept by mul only (productOperands). */
  aData?: Float32Array | null;
  bData?: Float32Array | null;
}

/** Sum a gradient of the output's shape back onto an input read through `index`. */
function reduceTo(g: Float32Array, index: Int32Array | null, size: number, scale?: Float32Array): Float32Array {
  const out = new Float32Array(size);
  if (index === null) {
    if (scale) for (let i = 0; i < g.length; i++) out[i] = g[i] * scale[i];
    else out.set(g);
    return out;
  }
  if (scale) for (let i = 0; i < g.length; i++) out[index[i]] += g[i] * scale[i];
  else for (let i = 0; i < g.length; i++) out[index[i]] += g[i];
  return out;
}

function binary(op: string, a: Tensor, b: Tensor, f: (x: number, y: number) => number): Tensor {
  const values = op === 'mul' ? productOperands(a, b) : {};
  if (shapesEqual(a.shape, b.shape)) {
    const out = new Float32Array(a.size);
    for (let i = 0; i < out.length; i++) out[i] = f(a.data[i], b.data[i]);
    return record(op, [a, b], new Tensor(out, a.shape), { aIndex: null, bIndex: null, ...values });
  }
  const shape = broadcastShapes(a.shape, b.shape, op);
  const aIndex = broadcastIndex(a.shape, shape);
  const bIndex = broadcastIndex(b.shape, shape);
  const result = Tensor.zeros(shape);
  const out = result.data;
  for (let i = 0; i < out.length; i++) out[i] = f(a.data[aIndex ? aIndex[i] : i], b.data[bIndex ? bIndex[i] : i]);
  return record(op, [a, b], result, { aIndex, bIndex, ...values });
}

/** In-place variants (as PyTorch's `inplace=True`): the output is written over the first input. */
export interface InPlaceOptions {
  /**
   * Write the result over the (first) input's values and return a tensor sharing them: the
   * caller's promise that nothing reads those values afterwards, and that no op kept them for
   * backward (the op itself keeps what its gradient needs apart). Saves an activation-sized array.
   */
  inPlace?: boolean;
}

export function add(a: Tensor, b: Tensor, options: InPlaceOptions = {}): Tensor {
  if (options.inPlace && !shapesEqual(a.shape, b.shape)) {
    throw new InvalidArgumentError(`add: inPlace needs operands of one shape; got ${formatShape(a.shape)} and ${formatShape(b.shape)}`);
  }
  if (shapesEqual(a.shape, b.shape)) {
    const out = options.inPlace ? new Tensor(a.data, a.shape) : new Tensor(takeBuffer(a.size), a.shape);
    addArrays(a.data, b.data, out.data);
    return record('add', [a, b], out, { aIndex: null, bIndex: null });
  }
  return binary('add', a, b, (x, y) => x + y);
}

export function sub(a: Tensor, b: Tensor): Tensor {
  return binary('sub', a, b, (x, y) => x - y);
}

export function mul(a: Tensor, b: Tensor): Tensor {
  return binary('mul', a, b, (x, y) => x * y);
}

// Without broadcasting both inputs receive g itself (backward copies it for the second).
registerGradient<BinarySaved>('add', (node, g) => [
  node.saved.aIndex === null ? g : reduceTo(g, node.saved.aIndex, node.inputs[0]!.size),
  node.saved.bIndex === null ? g : reduceTo(g, node.saved.bIndex, node.inputs[1]!.size),
]);

registerGradient<BinarySaved>('sub', (node, g) => {
  const gb = reduceTo(g, node.saved.bIndex, node.inputs[1]!.size);
  for (let i = 0; i < gb.length; i++) gb[i] = -gb[i];
  return [reduceTo(g, node.saved.aIndex, node.inputs[0]!.size), gb];
});

/** Values of the other operand, gathered to the output's shape. */
function gathered(data: Float32Array, index: Int32Array | null, n: number): Float32Array {
  if (index === null) return data;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = data[index[i]];
  return out;
}

registerGradient<BinarySaved>('mul', (node, g) => {
  const [a, b] = node.inputs;
  const { aIndex, bIndex, aData, bData } = node.saved;
  return [
    a!.requiresGrad ? reduceTo(g, aIndex, a!.size, gathered(bData!, bIndex, g.length)) : null,
    b!.requiresGrad ? reduceTo(g, bIndex, b!.size, gathered(aData!, aIndex, g.length)) : null,
  ];
});

/** x * factor for a constant factor. */
export function scale(x: Tensor, factor: number): Tensor {
  const out = new Float32Array(x.size);
  for (let i = 0; i < out.length; i++) out[i] = x.data[i] * factor;
  return record('scale', [x], new Tensor(out, x.shape), factor);
}

registerGradient<number>('scale', (node, g) => {
  const out = new Float32Array(g.length);
  for (let i = 0; i < g.length; i++) out[i] = g[i] * node.saved;
  return [out];
});

/** max(x, 0). For backward it keeps one bit per element (where x > 0), not x. */
export function relu(x: Tensor, options: InPlaceOptions = {}): Tensor {
  const out = options.inPlace ? new Tensor(x.data, x.shape) : new Tensor(takeBuffer(x.size), x.shape);
  const mask = needsGrad(x) ? new Uint8Array(maskBytes(x.size)) : null;
  reluForward(x.data, out.data, mask);
  return record('relu', [x], out, mask);
}

// In place: g is this op's alone once its rule runs.
registerGradient<Uint8Array>('relu', (node, g) => [reluBackward(node.saved, g, g)]);

export function relu6(x: Tensor): Tensor {
  const out = Tensor.zeros(x.shape);
  const d = x.data;
  const o = out.data;
  for (let i = 0; i < d.length; i++) {
    const v = d[i];
    o[i] = v <= 0 ? 0 : v >= 6 ? 6 : v;
  }
  return record('relu6', [x], out, x.data);
}

registerGradient<Float32Array>('relu6', (node, g) => {
  const d = node.saved;
  const out = new Float32Array(g.length);
  for (let i = 0; i < g.length; i++) out[i] = d[i] > 0 && d[i] < 6 ? g[i] : 0;
  return [out];
});

/** x * relu6(x + 3) / 6 (Howard et al. 2019). */
export function hardswish(x: Tensor): Tensor {
  const out = Tensor.zeros(x.shape);
  const d = x.data;
  const o = out.data;
  for (let i = 0; i < d.length; i++) {
    const v = d[i];
    o[i] = v <= -3 ? 0 : v >= 3 ? v : (v * (v + 3)) / 6;
  }
  return record('hardswish', [x], out, x.data);
}

registerGradient<Float32Array>('hardswish', (node, g) => {
  const d = node.saved;
  const out = new Float32Array(g.length);
  for (let i = 0; i < g.length; i++) {
    const v = d[i];
    out[i] = v < -3 ? 0 : v > 3 ? g[i] : (g[i] * (2 * v + 3)) / 6;
  }
  return [out];
});
