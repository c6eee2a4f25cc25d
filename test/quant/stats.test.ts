import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backward } from '../../src/autograd/index.js';
import { makeQTensor, resolveFormat } from '../../src/formats/index.js';
import { encode } from '../../src/kernels/index.js';
import { Conv2d, GemmLayer, Linear, Module, ReLU } from '../../src/nn/index.js';
import { flatten, sum } from '../../src/ops/index.js';
import {
  NumericsLab, STAT_TENSORS, applyRecipe, parseRecipe, presetRecipe, productError, statFormats, tensorRecord, type StatsRecord,
} from '../../src/quant/index.js';
import { Generator, Tensor } from '../../src/tensor/index.js';

/** 2^k for k = -30 .. 9 (40 binades, alternating signs). */
const POWERS = Float32Array.from({ length: 40 }, (_, i) => (i % 2 ? -1 : 1) * 2 ** (i - 30));
const FORMATS = statFormats();

describe('a tensor record: histogram and where values land in each format, in closed form', () => {
  test('float32 tensor (scale 1): underflow, subnormal and overflow shares per format', () => {
    const r = tensorRecord(3, 'fc', 'activations', POWERS, POWERS, FORMATS);
    assert.equal(r.step, 3);
    assert.equal(r.tensor, 'activations');
    assert.equal(r.format, 'float32');
    assert.equal(r.scale, 1);
    assert.deepEqual([r.count, r.zeros, r.nonfinite, r.amax], [40, 0, 0, 512]);
    assert.deepEqual(r.log2_bins, Object.fromEntries(Array.from({ length: 40 }, (_, i) => [String(i - 30), 1])));
    assert.deepEqual(r.log2_bins_scaled, r.log2_bins);
    // E5M2: min subnormal 2^-16 (2^-17 and below round to 0: k <= -17, 14 values), subnormal
    // range 2^-16 .. 2^-15 (2 values), max 57344 (none above).
    assert.deepEqual(r.formats.e5m2, { underflow: 14 / 40, subnormal: 2 / 40, overflow: 0 });
    // E4M3: min subnormal 2^-9 (k <= -10: 21 values), subnormals 2^-9 .. 2^-7 (3), max 448 (512 above).
    assert.deepEqual(r.formats.e4m3, { underflow: 21 / 40, subnormal: 3 / 40, overflow: 1 / 40 });
    // e6m9: min subnormal 2^-39, min normal 2^-30: every value normal.
    assert.deepEqual(r.formats.e6m9, { underflow: 0, subnormal: 0, overflow: 0 });
    // FP16: min subnormal 2^-24 (k <= -25: 6 values), subnormals 2^-24 .. 2^-15 (10).
    assert.deepEqual(r.formats.fp16, { underflow: 6 / 40, subnormal: 10 / 40, overflow: 0 });
    assert.deepEqual(r.formats.bf16, { underflow: 0, subnormal: 0, overflow: 0 });
    // Best scale for E4M3: 448 / 512 = 0.875 maps amax to max finite: nothing overflows; 2^-10 * 0.875
    // is below half of 2^-9, so k <= -10 still underflows, and 2^-6 * 0.875 is now subnormal (k = -9 .. -6).
    assert.deepEqual(r.formats_best.e4m3, { scale: 448 / 512, underflow: 21 / 40, subnormal: 4 / 40, overflow: 0 });
    // Best scale for E5M2: 57344 / 512 = 112 = 1.75 * 2^6: 1.75 * 2^(k+6) <= 2^-17 for k <= -24 (7
    // values); subnormal below 0.875 * 2^-14: k = -23, -22.
    assert.deepEqual(r.formats_best.e5m2, { scale: 112, underflow: 7 / 40, subnormal: 2 / 40, overflow: 0 });
    assert.deepEqual(r.quantiles, { '0.001': 2 ** -30, '0.01': 2 ** -30, '0.5': 2 ** -11, '0.99': 2 ** 8, '0.999': 2 ** 8 });
  });

  test('a coded operand: its format and scale, and the shares under that scale', () => {
    const f = resolveFormat('e5m2');
    const scaled = POWERS.map((v) => v * 2 ** 6);
    const coded = makeQTensor(encode(scaled, f), f, 2 ** 6);
    const r = tensorRecord(0, 'conv', 'weights', POWERS, coded, FORMATS);
    assert.equal(r.format, 'float8_e5m2');
    assert.equal(r.scale, 64);
    assert.deepEqual(r.log2_bins_scaled, Object.fromEntries(Array.from({ length: 40 }, (_, i) => [String(i - 24), 1])));
    // Under 2^6, E5M2 underflows k <= -23 (8 values), subnormals k = -22, -21.
    assert.deepEqual(r.formats.e5m2, { underflow: 8 / 40, subnormal: 2 / 40, overflow: 0 });
    // E4M3 under 2^6: k + 6 >= 9 overflows (k = 3 .. 9: 7 values).
    assert.equal(r.formats.e4m3.overflow, 7 / 40);
  });

  test('ties: exactly half the smallest subnormal rounds to zero; just above it does not', () => {
    const x = Float32Array.from([2 ** -17, 2 ** -17 * (1 + 2 ** -20), 2 ** -14 - 2 ** -17, 2 ** -14 - 2 ** -16, 57344, 57344 * (1 + 2 ** -20)]);
    const r = tensorRecord(0, 'l', 'errors', x, x, statFormats());
    // 2^-17 underflows; 2^-17(1+e) rounds to 2^-16 (subnormal); 2^-14 - 2^-17 ties to 2^-14 (normal);
    // 2^-14 - 2^-16 is the largest subnormal; 57344 is max; above it overflows.
    assert.deepEqual(r.formats.e5m2, { underflow: 1 / 6, subnormal: 2 / 6, overflow: 1 / 6 });
  });

  test('zeros, NaN and Inf are counted apart and never make a share NaN; an empty tensor gives zeros', () => {
    const x = Float32Array.from([0, -0, NaN, Infinity, 1]);
    const r = tensorRecord(0, 'l', 'errors', x, x, FORMATS);
    assert.deepEqual([r.zeros, r.nonfinite, r.amax], [2, 2, 1]);
    assert.deepEqual(r.formats.e5m2, { underflow: 0, subnormal: 0, overflow: 0 });
    const empty = tensorRecord(0, 'l', 'errors', new Float32Array(4), new Float32Array(4), FORMATS);
    assert.deepEqual(empty.formats_best.e4m3, { scale: 1, underflow: 0, subnormal: 0, overflow: 0 });
    assert.deepEqual(empty.quantiles['0.5'], null);
  });

  test('candidate formats: the defaults, then extra ones once each; unknown names refused', () => {
    assert.deepEqual(statFormats(['e3m4', 'float8_e5m2', 'E3M4']).map(([k]) => k), ['e5m2', 'e4m3', 'e6m9', 'fp16', 'bf16', 'e3m4']);
    assert.throws(() => statFormats(['e9m9']), /e9m9/);
  });
});

describe('product error against the float32 shadow', () => {
  test('exact: SNR null and relative error 0; the split between operands and accumulator', () => {
    const shadow = Float32Array.from([1, 2, 3, 4]);
    assert.deepEqual(productError(shadow, shadow, null), { snr_db: null, relative: 0, operands: 0, accumulator: 0, operands_share: null });
    const result = Float32Array.from([1, 2, 3, 4.3]);
    const middle = Float32Array.from([1, 2, 3.1, 4]);
    const e = productError(result, shadow, middle);
    const signal = 30;
    assert.ok(Math.abs(e.relative! - Math.sqrt((0.3 ** 2) / signal)) < 1e-6);
    assert.ok(Math.abs(e.operands! - Math.sqrt(0.1 ** 2 / signal)) < 1e-6);
    assert.ok(Math.abs(e.accumulator! - Math.sqrt((0.1 ** 2 + 0.3 ** 2) / signal)) < 1e-6);
    assert.ok(Math.abs(e.snr_db! - 10 * Math.log10(signal / 0.3 ** 2)) < 1e-4);
    assert.ok(Math.abs(e.operands_share! - 0.01 / (0.01 + 0.1)) < 1e-6);
  });
});

class Net extends Module {
  readonly conv: Conv2d;
  readonly fc: Linear;
  constructor(g: Generator) {
    super();
    this.conv = this.registerModule('conv', new Conv2d(2, 3, 3, { padding: 1, generator: g }));
    this.fc = this.registerModule('fc', new Linear(3 * 5 * 5, 4, { generator: g }));
  }
  protected forward(x: Tensor): Tensor {
    return this.fc.call(flatten(new ReLU().call(this.conv.call(x))));
  }
}

function input(): Tensor {
  const g = new Generator(5);
  return Tensor.randn([2, 2, 5, 5], g);
}

/** One step of Net under `recipe` with a lab looking; returns the records and the gradients. */
function step(recipe: ReturnType<typeof presetRecipe>, look: boolean): { records: StatsRecord[]; grads: Float32Array[] } {
  const model = new Net(new Generator(3));
  const session = applyRecipe(model, recipe, { seed: 1 });
  const lab = new NumericsLab(session, { formats: ['e3m4'] });
  if (look) lab.begin(0);
  const out = model.call(input());
  backward(session.scaleLoss(sum(out)));
  const records = look ? lab.end() : [];
  lab.close();
  return { records, grads: model.namedParameters().map(([, p]) => Float32Array.from(p.grad!.data)) };
}

describe('the numerics lab on a model', () => {
  for (const name of ['fp32', 'sfp8', 'fp8', 'hybrid']) {
    test(`${name}: every GEMM layer, every tensor class; looking changes no gradient`, () => {
      const looked = step(presetRecipe(name), true);
      const plain = step(presetRecipe(name), false);
      assert.deepEqual(looked.grads, plain.grads);
      assert.deepEqual(looked.records.map((r) => `${r.layer}/${r.tensor}`), ['conv', 'fc'].flatMap((l) => STAT_TENSORS.map((t) => `${l}/${t}`)));
      for (const r of looked.records) {
        assert.ok(r.formats.e3m4, 'the extra candidate is there');
        assert.equal(r.count, { weights: r.layer === 'conv' ? 54 : 300, activations: r.layer === 'conv' ? 100 : 150, errors: r.layer === 'conv' ? 150 : 8, weightGradients: r.layer === 'conv' ? 54 : 300 }[r.tensor]);
      }
      const fc = looked.records.find((r) => r.layer === 'fc' && r.tensor === 'weights')!;
      const conv = looked.records.find((r) => r.layer === 'conv' && r.tensor === 'weights')!;
      if (name === 'fp32') {
        assert.equal(fc.snr_db, undefined, 'a float32 layer has no product error');
      } else if (name === 'hybrid') {
        // First and last layers stay float32 under hybrid.
        assert.equal(conv.snr_db, undefined);
        assert.equal(fc.format, 'float32');
      } else {
        assert.deepEqual(Object.keys(fc.snr_db!).sort(), ['forward', 'inputGradient', 'weightGradient']);
        // The first layer's input needs no gradient: no input-gradient product.
        assert.deepEqual(Object.keys(conv.snr_db!).sort(), ['forward', 'weightGradient']);
        for (const e of Object.values(fc.error!)) assert.ok(e.snr_db! > 5 && e.snr_db! < 60, `SNR ${e.snr_db}`);
        assert.equal(fc.format, 'float8_e5m2');
      }
    });
  }

  test('operands exact in E5M2 with float32 accumulation: the forward product has no error', () => {
    const model = new Net(new Generator(3));
    // Weights and input made exact in E5M2 (their power-of-two scales keep them exact).
    const e5m2 = resolveFormat('e5m2');
    for (const [, p] of model.namedParameters()) p.data.set(p.data.map((v) => Math.fround(2 ** Math.round(Math.log2(Math.abs(v) + 1e-3))) * Math.sign(v)));
    const recipe = parseRecipe({
      name: 'exact', weights: { format: 'e5m2', scaling: { mode: 'current', margin: 0 } }, activations: { format: 'e5m2', scaling: { mode: 'current', margin: 0 } },
    });
    const session = applyRecipe(model, recipe);
    const lab = new NumericsLab(session);
    lab.begin(0);
    const x = input();
    x.data.set(x.data.map((v) => Math.sign(v) * 2 ** Math.round(Math.log2(Math.abs(v) + 1e-3))));
    for (const v of x.data) assert.equal(Math.fround(v), v);
    void e5m2;
    backward(session.scaleLoss(sum(model.call(x))));
    const records = lab.end();
    const conv = records.find((r) => r.layer === 'conv' && r.tensor === 'weights')!;
    assert.equal(conv.error!.forward!.relative, 0);
    assert.equal(conv.snr_db!.forward, null);
  });

  test('e6m9 accumulation of exact operands: all the error is the accumulator\'s', () => {
    const g = new Generator(8);
    class Wide extends Module {
      readonly fc = this.registerModule('fc', new Linear(512, 4, { generator: g }));
      protected forward(x: Tensor): Tensor {
        return this.fc.call(x);
      }
    }
    const model = new Wide();
    const w = model.fc.weight.data;
    for (let i = 0; i < w.length; i++) w[i] = (i % 3 ? 1 : -1) * 2 ** -(i % 5);
    const recipe = parseRecipe({
      name: 'acc', weights: { format: 'e5m2', scaling: { mode: 'current', margin: 0 } }, activations: { format: 'e5m2', scaling: { mode: 'current', margin: 0 } },
      accumulation: { format: 'e6m9' },
    });
    const session = applyRecipe(model, recipe);
    const lab = new NumericsLab(session);
    lab.begin(0);
    const x = new Tensor(Float32Array.from({ length: 2 * 512 }, (_, i) => 1 + (i % 4) / 4), [2, 512]);
    model.call(x);
    const [record] = lab.end();
    const forward = record.error!.forward!;
    assert.equal(forward.operands, 0);
    assert.ok(forward.accumulator! > 0);
    assert.equal(forward.operands_share, 0);
  });

  test('begin twice or end without begin is refused; close gives the float32 layers their compute back', () => {
    const model = new Net(new Generator(3));
    const session = applyRecipe(model, presetRecipe('fp32'));
    const before = (model.conv as GemmLayer).compute;
    const lab = new NumericsLab(session);
    assert.notEqual(model.conv.compute, before);
    assert.throws(() => lab.end(), /no step begun/);
    lab.begin(0);
    assert.throws(() => lab.begin(1), /step 0 is still open/);
    lab.end();
    lab.close();
    assert.equal(model.conv.compute, before);
  });
});
