import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backward, tape, type GradNode } from '../../src/autograd/index.js';
import { resolveFormat, type QTensor } from '../../src/formats/index.js';
import { dequantize, lowpConv2dForward, type LowpOperand } from '../../src/kernels/index.js';
import { BatchNorm2d, Conv2d, ConvTranspose2d, GemmLayer, Linear, Module, ReLU, buildModel } from '../../src/nn/index.js';
import { conv2d, convTranspose2d, flatten, linear, mul, softmaxCrossEntropy, sum } from '../../src/ops/index.js';
import { AdamW } from '../../src/optim/index.js';
import { applyRecipe, parseRecipe, presetRecipe, quantizeOperand, type OperandObserver } from '../../src/quant/index.js';
import { Generator, Tensor } from '../../src/tensor/index.js';
import { randomInput, randomLabels } from '../helpers/overfit.js';
import { randomTensor } from '../helpers/tensors.js';

/** One GEMM layer as a whole model. */
class Single extends Module {
  constructor(readonly layer: GemmLayer) {
    super();
    this.registerModule('layer', layer);
  }
  protected forward(x: Tensor): Tensor {
    return this.layer.call(x);
  }
}

class TwoLinear extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(g: Generator) {
    super();
    this.fc1 = this.registerModule('fc1', new Linear(6, 5, { generator: g }));
    this.fc2 = this.registerModule('fc2', new Linear(5, 3, { generator: g }));
  }
  protected forward(x: Tensor): Tensor {
    return this.fc2.call(new ReLU().call(this.fc1.call(x)));
  }
}

const valuesOf = (op: LowpOperand): Float32Array => (op instanceof Float32Array ? op : dequantize(op));

function maxRelError(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / scale);
  return worst;
}

const g = new Generator(11);
const LAYERS: [string, () => GemmLayer, number[], (x: Tensor, w: Tensor, b: Tensor | null) => Tensor][] = [
  ['conv2d', () => new Conv2d(3, 4, 3, { stride: 2, padding: 1, generator: g }), [2, 3, 7, 7], (x, w, b) => conv2d(x, w, b, { stride: 2, padding: 1 })],
  ['convTranspose2d', () => new ConvTranspose2d(3, 2, 2, { stride: 2, generator: g }), [2, 3, 4, 4], (x, w, b) => convTranspose2d(x, w, b, { stride: 2 })],
  ['linear', () => new Linear(5, 4, { generator: g }), [3, 5], (x, w, b) => linear(x, w, b)],
];

describe('sfp8: the backward pass is float32 through the dequantized forward values', () => {
  for (const [name, make, shape, reference] of LAYERS) {
    test(name, () => {
      const model = new Single(make());
      const seen: Record<string, Float32Array | QTensor> = {};
      applyRecipe(model, presetRecipe('sfp8'), { observer: (_l, role, op) => void (seen[role] = op) });
      const x = randomTensor(shape, 3);
      const y = model.call(x);
      const r = randomTensor([...y.shape], 4, -1, 1, false);
      backward(sum(mul(y, r)));
      assert.ok(!(seen.x instanceof Float32Array) && !(seen.w instanceof Float32Array), 'forward operands are codes');
      assert.ok(seen.dy instanceof Float32Array, 'the output gradient stays float32');
      const xq = new Tensor(valuesOf(seen.x), x.shape).requireGrad();
      const layer = model.layer;
      const wq = new Tensor(valuesOf(seen.w), layer.weight.shape).requireGrad();
      const bias = layer.bias ? new Tensor(Float32Array.from(layer.bias.data), layer.bias.shape).requireGrad() : null;
      backward(sum(mul(reference(xq, wq, bias), r)));
      assert.ok(maxRelError(x.grad!.data, xq.grad!.data) < 1e-6, 'input gradient');
      assert.ok(maxRelError(layer.weight.grad!.data, wq.grad!.data) < 1e-6, 'weight gradient');
      assert.ok(maxRelError(layer.bias!.grad!.data, bias!.grad!.data) < 1e-6, 'bias gradient');
    });
  }
});

describe('fp8', () => {
  test('every operand reaching a kernel is E5M2 codes (resnet20, forward and backward)', () => {
    const model = buildModel('resnet20', { width: 4, classes: 3 });
    const roles = new Map<string, number>();
    const observer: OperandObserver = (layer, role, op) => {
      assert.ok(!(op instanceof Float32Array), `${layer} ${role} is float32`);
      assert.equal(resolveFormat(op.format).name, 'float8_e5m2');
      assert.ok(op.codes instanceof Uint8Array);
      roles.set(role, (roles.get(role) ?? 0) + 1);
    };
    const session = applyRecipe(model, presetRecipe('fp8'), { observer });
    backward(session.scaleLoss(softmaxCrossEntropy(model.call(randomInput([2, 3, 8, 8], 1)), [0, 2])));
    assert.deepEqual([...roles].sort(), [['e', 20], ['w', 20], ['x', 20]]);
  });

  test('the forward output is the low-precision kernel of the contract (reference loop) on those codes', () => {
    const layer = new Conv2d(3, 4, 3, { padding: 1, generator: g });
    const model = new Single(layer);
    const seen: Record<string, QTensor> = {};
    applyRecipe(model, presetRecipe('fp8'), { observer: (_l, role, op) => void (seen[role] = op as QTensor) });
    const y = model.call(randomTensor([2, 3, 5, 5], 5));
    const shape = { batch: 2, channels: 3, height: 5, width: 5, outChannels: 4, kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padH: 1, padW: 1, dilationH: 1, dilationW: 1, groups: 1, outH: 5, outW: 5 };
    const expected = lowpConv2dForward(seen.x, seen.w, shape, { accumulation: 'e6m9', chunk: 64 }, true);
    for (let i = 0; i < expected.length; i++) expected[i] += layer.bias!.data[Math.floor(i / 25) % 4];
    assert.deepEqual(y.data, expected);
  });

  test('hybrid: E4M3 forward, E5M2 errors, first and last layers untouched', () => {
    const model = buildModel('resnet20', { width: 4, classes: 3 });
    const formats = new Map<string, Set<string>>();
    const session = applyRecipe(model, presetRecipe('hybrid'), {
      observer: (layer, role, op) => {
        const set = formats.get(role) ?? new Set();
        set.add(resolveFormat((op as QTensor).format).name);
        formats.set(role, set);
        assert.ok(layer !== 'conv1' && layer !== 'fc');
      },
    });
    assert.deepEqual(session.highPrecision, ['conv1', 'fc']);
    backward(softmaxCrossEntropy(model.call(randomInput([2, 3, 8, 8], 1)), [0, 2]));
    assert.deepEqual(Object.fromEntries([...formats].map(([k, v]) => [k, [...v]])), { w: ['float8_e4m3fn'], x: ['float8_e4m3fn'], e: ['float8_e5m2'] });
  });
});

describe('per-layer gradient scaling', () => {
  function setup() {
    const model = new TwoLinear(new Generator(2));
    const session = applyRecipe(model, presetRecipe('fp8'));
    const optimizer = new AdamW(model.namedParameters(), { lr: 0.1 });
    const before = model.parameters().map((p) => Float32Array.from(p.data));
    return { model, session, optimizer, before };
  }

  test('an injected Inf backs the layer off, skips its update, and never reaches the weights', () => {
    const { model, session, optimizer, before } = setup();
    const y = model.call(randomTensor([4, 6], 1, -1, 1, false));
    const poison = Tensor.ones([...y.shape]);
    poison.data[5] = Infinity;
    backward(sum(mul(y, poison)));
    const outcome = session.finishBackward();
    assert.ok(outcome.overflowed.includes('fc2'));
    assert.ok(outcome.skip.has('fc2.weight') && outcome.skip.has('fc2.bias'));
    optimizer.stepAll(outcome.skip);
    model.parameters().forEach((p, i) => {
      assert.ok(p.data.every(Number.isFinite));
      assert.deepEqual(p.data, before[i]);
    });
    assert.equal(session.layers.find((l) => l.name === 'fc2')!.errorScale, 2 ** 14);
    const { events } = session.telemetry.flush(1);
    assert.ok(events.some((e) => e.layer === 'fc2' && e.event === 'skip') && events.some((e) => e.layer === 'fc2' && e.event === 'backoff'));
  });

  test('a finite gradient too large for the scale overflows only where it is too large', () => {
    const { model, session } = setup();
    // fc2's error (100) times its scale 2^15 overflows E5M2; fc1's (100 * W2, with W2 shrunk) does not.
    for (let i = 0; i < model.fc2.weight.size; i++) model.fc2.weight.data[i] *= 0.001;
    const y = model.call(randomTensor([4, 6], 1, -1, 1, false));
    backward(sum(mul(y, Tensor.full([...y.shape], 100))));
    const outcome = session.finishBackward();
    assert.deepEqual(outcome.overflowed, ['fc2']);
    assert.ok(model.fc1.weight.grad!.data.every(Number.isFinite) && model.fc1.weight.grad!.data.some((v) => v !== 0));
  });

  test('an all-zero gradient: no overflow, zero gradients, scales unchanged, no NaN', () => {
    const { model, session, optimizer } = setup();
    const y = model.call(randomTensor([4, 6], 1, -1, 1, false));
    backward(sum(mul(y, Tensor.zeros([...y.shape]))));
    const outcome = session.finishBackward();
    assert.deepEqual(outcome.overflowed, []);
    for (const p of model.parameters()) assert.ok(p.grad!.data.every((v) => v === 0));
    optimizer.stepAll(outcome.skip);
    for (const p of model.parameters()) assert.ok(p.data.every(Number.isFinite));
    assert.ok(session.layers.every((l) => l.errorScale === 2 ** 15));
    const errors = session.telemetry.flush(1).records.filter((r) => r.tensor === 'errors');
    assert.ok(errors.every((r) => r.underflow === 0 && r.overflow === 0 && Number.isFinite(r.scale)));
  });

  test('scales grow after growthInterval clean steps', () => {
    const model = new TwoLinear(new Generator(2));
    const recipe = parseRecipe({ ...presetRecipe('fp8'), errors: { format: 'e5m2', scaling: { mode: 'dynamic', init: 4, growthInterval: 2 } } });
    const session = applyRecipe(model, recipe);
    for (let step = 0; step < 4; step++) {
      backward(sum(model.call(randomTensor([4, 6], step, -1, 1, false))));
      session.finishBackward();
      model.zeroGrad();
    }
    assert.ok(session.layers.every((l) => l.errorScale === 16));
  });
});

describe('global loss scaling', () => {
  test('gradients are unscaled; an overflow skips every parameter and backs the loss scale off', () => {
    const model = new TwoLinear(new Generator(3));
    const session = applyRecipe(model, presetRecipe('fp8-global'));
    const x = randomTensor([4, 6], 1, -1, 1, false);
    backward(session.scaleLoss(sum(model.call(x))));
    const outcome = session.finishBackward();
    assert.equal(outcome.lossScale, 2 ** 15);
    assert.equal(outcome.skip.size, 0);
    // The bias gradient of the last layer is the batch size exactly, whatever the scale was.
    assert.deepEqual(Array.from(model.fc2.bias!.grad!.data), [4, 4, 4]);
    model.zeroGrad();
    const y = model.call(x);
    const poison = Tensor.ones([...y.shape]);
    poison.data[0] = NaN;
    backward(session.scaleLoss(sum(mul(y, poison))));
    const second = session.finishBackward();
    assert.equal(second.skip.size, 4);
    assert.equal(session.lossScaler.scale, 2 ** 14);
  });
});

describe('telemetry', () => {
  test('underflow counts nonzero values that became zero; overflow counts values beyond max', () => {
    const spec = { format: resolveFormat('e5m2'), rounding: 'nearest' as const, saturate: false, seed: 0 };
    const { stats } = quantizeOperand(Float32Array.of(1e-9, 1, 0, -2e-9, 7e4), 1, spec, 7e4);
    assert.deepEqual([stats.values, stats.nonzero, stats.underflow, stats.overflow], [5, 4, 2, 1]);
  });

  test('records per layer and tensor class over an interval, then start afresh', () => {
    const model = new TwoLinear(new Generator(4));
    const session = applyRecipe(model, presetRecipe('fp8'));
    backward(sum(flatten(model.call(randomTensor([4, 6], 1, -1, 1, false)))));
    session.finishBackward();
    const { records } = session.telemetry.flush(0);
    assert.deepEqual(records.map((r) => `${r.layer}/${r.tensor}`).sort(), [
      'fc1/activations', 'fc1/errors', 'fc1/weight_gradients', 'fc1/weights', 'fc2/activations', 'fc2/errors', 'fc2/weight_gradients', 'fc2/weights',
    ]);
    assert.equal(session.telemetry.flush(1).records.length, 0);
  });
});

describe('applying recipes', () => {
  test('fp32 leaves every layer on the float32 path; an unknown high-precision layer is named', () => {
    const model = buildModel('resnet20', { width: 4 });
    assert.equal(applyRecipe(model, presetRecipe('fp32')).layers.length, 0);
    // float32 accumulation under any name of float32 is the fp32 recipe's.
    for (const format of ['float32', 'e8m23']) {
      assert.equal(applyRecipe(model, parseRecipe({ name: 'plain', accumulation: { format } })).layers.length, 0, format);
    }
    assert.throws(
      () => applyRecipe(model, parseRecipe({ ...presetRecipe('fp8'), highPrecisionLayers: ['classifier'] })),
      /names "classifier", which is not a GEMM layer of this model; use first, last or one of: conv1, layer1\.0\.conv1/,
    );
  });

  test('savedActivations: batch norm keeps codes of that format; detach gives it float32 back', () => {
    const model = buildModel('resnet20', { width: 4 });
    const session = applyRecipe(model, parseRecipe({ ...presetRecipe('fp8'), savedActivations: 'e4m3' }));
    const norms = model.namedModules().filter(([, m]) => m instanceof BatchNorm2d) as [string, BatchNorm2d][];
    assert.ok(norms.length > 10 && norms.every(([, m]) => m.savedFormat === 'e4m3'));
    const y = model.call(randomInput([2, 3, 8, 8], 1));
    const found: string[] = [];
    for (const t of tape(y)) {
      const node = t.gradFn as GradNode<{ xhat?: unknown }> | null;
      if (node?.op === 'batchNorm2d') found.push(node.saved.xhat instanceof Float32Array ? 'float32' : (node.saved.xhat as QTensor).format.name);
    }
    assert.ok(found.length === norms.length && found.every((f) => f === 'float8_e4m3fn'), found.join(','));
    backward(session.scaleLoss(softmaxCrossEntropy(y, randomLabels(2, 10, 3))));
    session.finishBackward();
    for (const [name, p] of model.namedParameters()) assert.ok(p.grad && p.grad.data.every(Number.isFinite), name);
    session.detach();
    assert.ok(norms.every(([, m]) => m.savedFormat === null));
  });

  test('every zoo model runs a training step under fp8 without model-specific code', () => {
    const cases: [string, Record<string, number>, number[]][] = [
      ['resnet18-cifar', { width: 4 }, [2, 3, 16, 16]],
      ['squeezenet1_1', {}, [2, 3, 40, 40]],
      ['unet', { width: 4, depth: 2 }, [2, 3, 8, 8]],
      ['fastscnn', {}, [2, 3, 32, 32]],
    ];
    for (const [name, options, shape] of cases) {
      const model = buildModel(name, { ...options, classes: 3 });
      const session = applyRecipe(model, presetRecipe('fp8'));
      const y = model.call(randomInput(shape, 1));
      const labels = randomLabels(y.size / 3, 3, 2);
      backward(session.scaleLoss(softmaxCrossEntropy(y, labels)));
      const outcome = session.finishBackward();
      assert.equal(outcome.overflowed.length, 0, name);
      for (const [param, p] of model.namedParameters()) assert.ok(p.grad && p.grad.data.every(Number.isFinite), `${name} ${param}`);
    }
  });
});
