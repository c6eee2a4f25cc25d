/**
 * Pruned convolutions on the block-sparse kernel: the same evaluation and the same training, bit
 * for bit, as the dense direct products (float32 with --conv direct, and a recipe's codes with
 * float32 accumulation); proof that the sparse forward really runs (weights left in pruned blocks
 * are ignored by it); the fixed rules; the weight gradient at the kept blocks (float32 and codes),
 * dense where a recipe reads it whole; a quantized weight gradient zeroed outside the kept blocks
 * before its scale is taken, on dense and sparse products alike.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  bsrConv2dInputGradient, bsrFromPattern, bsrLowpConv2dInputGradient, bsrRotatedConv2dInputGradient, bsrTranspose, convGeometry, encode, groupColumns, sparseConvWins, sparseInputGradientWins, sparseWeightGradientWins,
  zeroPruned, type SparsePattern,
} from '../../src/kernels/index.js';
import { nativeCore } from '../../src/kernels/native.js';
import { makeQTensor } from '../../src/formats/index.js';
import { conv2dGradients } from '../../src/ops/conv.js';
import { productKernels, type GemmProduct } from '../../src/ops/gemm_product.js';
import { quantizedGemm, type QuantizationPolicy } from '../../src/ops/quantized_gemm.js';
import { backward } from '../../src/autograd/index.js';
import { Tensor } from '../../src/tensor/index.js';
import { assertSameBits } from '../helpers/bits.js';
import { uniform } from '../helpers/random.js';
import { GemmLayer, type Module } from '../../src/nn/index.js';
import { attachSparsePatterns, detachSparsePatterns, Pruner } from '../../src/sparse/index.js';
import { CHECKPOINT_FILE, checkpointMasks, checkpointModel, evaluate, readCheckpointRecord, readSafetensors, train, type TrainConfig } from '../../src/train/index.js';
import { mnistData, smallRun } from '../helpers/runs.js';

function pattern(br: number, bc: number, kept: number, blocks = 100, cols = 64): SparsePattern {
  return { rows: 64, cols, br, bc, keep: Uint8Array.from({ length: blocks }, (_, i) => (i < kept ? 1 : 0)) };
}

/**
 * Put half of each layer's largest magnitude in its pruned weights (which the sparse forward
 * does not read; a recipe's per-tensor scale, from the largest magnitude, stays as it was).
 */
function fillPruned(model: Module): number {
  let filled = 0;
  for (const [, m] of model.namedModules()) {
    if (!(m instanceof GemmLayer) || !m.sparse) continue;
    const { rows, cols, br, bc, keep } = m.sparse;
    const half = 0.5 * m.weight.data.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
    const blockCols = Math.ceil(cols / bc);
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < cols; j++) {
        if (!keep[Math.floor(i / br) * blockCols + Math.floor(j / bc)]) {
          m.weight.data[i * cols + j] = half;
          filled++;
        }
      }
    }
  }
  return filled;
}

describe('the rule', () => {
  test('against Winograd: 8x8 blocks at 25% kept or fewer, 4x4 at 15%; never single entries or whole filters', () => {
    assert.equal(sparseConvWins(pattern(8, 8, 25), 'winograd'), true);
    assert.equal(sparseConvWins(pattern(8, 8, 26), 'winograd'), false);
    assert.equal(sparseConvWins(pattern(4, 4, 15), 'winograd'), true);
    assert.equal(sparseConvWins(pattern(4, 4, 20), 'winograd'), false);
    assert.equal(sparseConvWins(pattern(1, 1, 5), 'winograd'), false);
    assert.equal(sparseConvWins(pattern(1, 64, 5), 'winograd'), false);
  });
  test('against a direct product: 4x4 blocks at 50% kept or fewer, single entries at 25%; never whole filters', () => {
    assert.equal(sparseConvWins(pattern(4, 4, 50), 'direct'), true);
    assert.equal(sparseConvWins(pattern(4, 4, 51), 'direct'), false);
    assert.equal(sparseConvWins(pattern(1, 64, 10), 'direct'), false);
    assert.equal(sparseConvWins(pattern(1, 1, 25), 'direct'), true);
    assert.equal(sparseConvWins(pattern(1, 1, 30), 'direct'), false);
  });
});

describe('the weight-gradient rule', () => {
  test('against Winograd: 8x8 blocks at 25% kept or fewer, 4x4 at 10%; never thin blocks, single entries or whole filters', () => {
    assert.equal(sparseWeightGradientWins(pattern(8, 8, 25), 'winograd'), true);
    assert.equal(sparseWeightGradientWins(pattern(8, 8, 26), 'winograd'), false);
    assert.equal(sparseWeightGradientWins(pattern(4, 4, 10), 'winograd'), true);
    assert.equal(sparseWeightGradientWins(pattern(4, 4, 11), 'winograd'), false);
    assert.equal(sparseWeightGradientWins(pattern(2, 8, 5), 'winograd'), false);
    assert.equal(sparseWeightGradientWins(pattern(1, 1, 5), 'direct'), false);
    assert.equal(sparseWeightGradientWins(pattern(1, 64, 5), 'direct'), false);
  });
  test('against a float32 direct product: 8x8 blocks at 50% kept or fewer, 4x4 at 10%; against codes on bfloat16 pairs as against Winograd, without pairs as against the direct product', () => {
    assert.equal(sparseWeightGradientWins(pattern(8, 8, 50), 'direct'), true);
    assert.equal(sparseWeightGradientWins(pattern(8, 8, 51), 'direct'), false);
    assert.equal(sparseWeightGradientWins(pattern(4, 4, 10), 'direct'), true);
    assert.equal(sparseWeightGradientWins(pattern(4, 4, 11), 'direct'), false);
    assert.equal(sparseWeightGradientWins(pattern(8, 8, 25), 'codes', true), true);
    assert.equal(sparseWeightGradientWins(pattern(8, 8, 26), 'codes', true), false);
    assert.equal(sparseWeightGradientWins(pattern(8, 8, 50), 'codes', false), true);
    assert.equal(sparseWeightGradientWins(pattern(8, 8, 51), 'codes', false), false);
    assert.equal(sparseWeightGradientWins(pattern(4, 4, 10), 'codes', false), true);
    assert.equal(sparseWeightGradientWins(pattern(4, 4, 11), 'codes', false), false);
    // The pairs flag plays no part against float32 products; the default is this machine's core.
    assert.equal(sparseWeightGradientWins(pattern(8, 8, 26), 'winograd', false), false);
    assert.equal(sparseWeightGradientWins(pattern(8, 8, 40), 'codes'), !(nativeCore()?.info().bf16Pairs ?? true));
  });
});

describe('the stride-1 input-gradient rule (in place of Winograd)', () => {
  test('8x8 blocks at 25% kept or fewer, 4x4 at 10%; never thinner blocks', () => {
    assert.equal(sparseInputGradientWins(pattern(8, 8, 25)), true);
    assert.equal(sparseInputGradientWins(pattern(8, 8, 26)), false);
    assert.equal(sparseInputGradientWins(pattern(4, 4, 10)), true);
    assert.equal(sparseInputGradientWins(pattern(4, 4, 11)), false);
    assert.equal(sparseInputGradientWins(pattern(1, 1, 5)), false);
    assert.equal(sparseInputGradientWins(pattern(2, 16, 5)), false);
  });

  test('one-byte codes (in place of the dense product on bfloat16 pairs): blocks of at least 4x4, at 25% kept or fewer on inputs of 32 pixels or more, at 15% on smaller ones', () => {
    assert.equal(sparseInputGradientWins(pattern(8, 8, 25), 'codes', Infinity, true), true);
    assert.equal(sparseInputGradientWins(pattern(8, 8, 26), 'codes', Infinity, true), false);
    assert.equal(sparseInputGradientWins(pattern(8, 8, 25), 'codes', 32, true), true);
    assert.equal(sparseInputGradientWins(pattern(8, 8, 25), 'codes', 31, true), false);
    assert.equal(sparseInputGradientWins(pattern(8, 8, 15), 'codes', 16, true), true);
    assert.equal(sparseInputGradientWins(pattern(8, 8, 16), 'codes', 16, true), false);
    assert.equal(sparseInputGradientWins(pattern(4, 4, 25), 'codes', Infinity, true), true);
    assert.equal(sparseInputGradientWins(pattern(1, 1, 5), 'codes', Infinity, true), false);
    assert.equal(sparseInputGradientWins(pattern(2, 16, 5), 'codes', Infinity, true), false);
  });

  test('one-byte codes where the dense product runs one product an instruction (no bfloat16 pairs): at 35% kept or fewer on 32 pixels or more, 15% below', () => {
    assert.equal(sparseInputGradientWins(pattern(8, 8, 35), 'codes', 32, false), true);
    assert.equal(sparseInputGradientWins(pattern(8, 8, 36), 'codes', 32, false), false);
    assert.equal(sparseInputGradientWins(pattern(4, 4, 35), 'codes', 784, false), true);
    assert.equal(sparseInputGradientWins(pattern(8, 8, 15), 'codes', 16, false), true);
    assert.equal(sparseInputGradientWins(pattern(8, 8, 16), 'codes', 16, false), false);
    assert.equal(sparseInputGradientWins(pattern(2, 16, 5), 'codes', 784, false), false);
    // The default is this machine's native core.
    const pairs = nativeCore()?.info().bf16Pairs ?? true;
    assert.equal(sparseInputGradientWins(pattern(8, 8, 30), 'codes', 64), !pairs);
  });
});

describe('the gradients of a pruned convolution', () => {
  const geometry = convGeometry([2, 16, 10, 10], [16, 16, 3, 3], { padding: 1 });
  const keep = Uint8Array.from({ length: 2 * 18 }, (_, i) => (i % 5 === 0 ? 1 : 0));
  const sparse: SparsePattern = { rows: 16, cols: 144, br: 8, bc: 8, keep };
  const inKept = (i: number) => keep[Math.floor(Math.floor(i / 144) / 8) * 18 + Math.floor((i % 144) / 8)] === 1;
  const x = uniform(2 * 16 * 100, 1), g = uniform(2 * 16 * 100, 2);

  test('float32: the kept entries are the dense direct chain bit for bit and the pruned ones +0; dense where the gradient is read in full', () => {
    const dense = conv2dGradients({ g, x, weight: null, geometry, algorithm: 'direct' }).gw!;
    const got = conv2dGradients({ g, x, weight: null, geometry, algorithm: 'direct', sparse }).gw!;
    assertSameBits(got, dense.map((v, i) => (inKept(i) ? v : 0)), 'sparse');
    assertSameBits(conv2dGradients({ g, x, weight: null, geometry, algorithm: 'direct', sparse, prunedGradientUnread: false }).gw!, dense, 'read in full');
    // Under Winograd the kept entries take the direct chain instead (the rule moves the layer at 20% kept).
    const wino = conv2dGradients({ g, x, weight: null, geometry, algorithm: 'winograd', sparse }).gw!;
    assertSameBits(wino, dense.map((v, i) => (inKept(i) ? v : 0)), 'off Winograd');
  });

  test('zeroPruned clears exactly the entries outside the kept blocks (edge blocks shorter)', () => {
    const p: SparsePattern = { rows: 5, cols: 7, br: 4, bc: 4, keep: Uint8Array.from([1, 0, 0, 1]) };
    const v = zeroPruned(Float32Array.from({ length: 35 }, (_, i) => i + 1), p);
    for (let i = 0; i < 5; i++) for (let j = 0; j < 7; j++) assert.equal(v[i * 7 + j], p.keep[Math.floor(i / 4) * 2 + Math.floor(j / 4)] ? i * 7 + j + 1 : 0, `${i},${j}`);
    assert.throws(() => zeroPruned(new Float32Array(3), p), /3 values; the pattern covers 5 x 7/);
    // Runs of pruned blocks (cleared a run at a time), kept ones between them, a short last block row and column.
    const rows = 19, cols = 45, br = 4, bc = 4;
    const keep = Uint8Array.from({ length: 5 * 12 }, (_, i) => (i * 7) % 5 === 0 || i % 11 === 3 ? 1 : 0);
    const w = zeroPruned(Float32Array.from({ length: rows * cols }, (_, i) => i + 1), { rows, cols, br, bc, keep });
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) assert.equal(w[i * cols + j], keep[Math.floor(i / br) * 12 + Math.floor(j / bc)] ? i * cols + j + 1 : 0, `${i},${j}`);
  });

  test('float32 input gradient, stride 1, in place of the direct product: the rotated kernel over the kept weights, the direct bits (zero signs too), where the native core has vector paths', () => {
    const vectors = ['avx512', 'avx2'].includes(nativeCore()?.info().gemmKernel ?? '');
    const cases: Array<[string, [number, number, number, number], [number, number, number, number], Parameters<typeof convGeometry>[2], number, number]> = [
      ['3x3 pad 1, 19 images (a partial group of 16)', [19, 16, 9, 9], [24, 16, 3, 3], { padding: 1 }, 8, 8],
      ['5x5 pad 2, blocks that do not divide the view', [3, 5, 11, 11], [13, 5, 5, 5], { padding: 2 }, 8, 8],
      ['3x3 dilation 2, 4x4 blocks', [2, 8, 12, 12], [16, 8, 3, 3], { padding: 2, dilation: 2 }, 4, 4],
      ['3x3 without padding', [2, 8, 10, 10], [8, 8, 3, 3], {}, 4, 4],
    ];
    for (const [name, xShape, wShape, options, br, bc] of cases) {
      const geo = convGeometry(xShape, wShape, options);
      const rows = wShape[0], cols = wShape[1] * wShape[2] * wShape[3];
      const blocks = Math.ceil(rows / br) * Math.ceil(cols / bc);
      const p: SparsePattern = { rows, cols, br, bc, keep: Uint8Array.from({ length: blocks }, (_, i) => (i % 4 === 1 ? 1 : 0)) };
      const w = zeroPruned(uniform(rows * cols, 5).map((v) => v - 0.5), p);
      const dy = uniform(geo.batch * rows * geo.outH * geo.outW, 6).map((v, i) => (i % 7 === 0 ? 0 : v - 0.5));
      const direct = conv2dGradients({ g: dy, x: null, weight: w, geometry: geo, algorithm: 'direct' }).gx!;
      const dx = new Float32Array(direct.length).fill(Number.NaN);
      for (const threads of [1, 2]) {
        assert.equal(bsrRotatedConv2dInputGradient(p, dy, w, groupColumns(geo), geo.batch, dx, { threads }), vectors, name);
        if (vectors) assertSameBits(dx, direct, `${name}, ${threads} threads`);
      }
      // The layer's route (25% kept: the rule takes it) and the dense one agree.
      assertSameBits(conv2dGradients({ g: dy, x: null, weight: w, geometry: geo, algorithm: 'direct', sparse: p }).gx!, direct, `${name}, conv2dGradients`);
    }
    // Not finite: declines, writing nothing.
    const geo = convGeometry([2, 8, 6, 6], [8, 8, 3, 3], { padding: 1 });
    const p: SparsePattern = { rows: 8, cols: 72, br: 4, bc: 4, keep: new Uint8Array(2 * 18).fill(1) };
    const dy = uniform(2 * 8 * 36, 7);
    dy[3] = Number.POSITIVE_INFINITY;
    const dx = new Float32Array(2 * 8 * 36).fill(5);
    assert.equal(bsrRotatedConv2dInputGradient(p, dy, uniform(8 * 72, 8), groupColumns(geo), 2, dx), false);
    assert.ok(dx.every((v) => v === 5));
  });

  test('float32 input gradient, stride 1: in place of Winograd the sparse kernel (W^T dY folded in as col2im does); in place of the direct product the direct bits', () => {
    const w = uniform(16 * 144, 3);
    for (let i = 0; i < w.length; i++) if (!inKept(i)) w[i] = 0;
    const want = bsrConv2dInputGradient(bsrTranspose(bsrFromPattern(w, sparse)), g, groupColumns(geometry), 2, { reference: true });
    assertSameBits(conv2dGradients({ g, x: null, weight: w, geometry, algorithm: 'winograd', sparse }).gx!, want, 'off Winograd');
    const direct = conv2dGradients({ g, x: null, weight: w, geometry, algorithm: 'direct' }).gx!;
    assertSameBits(conv2dGradients({ g, x: null, weight: w, geometry, algorithm: 'direct', sparse }).gx!, direct, 'direct stays direct');
    for (let i = 0; i < want.length; i++) assert.ok(Math.abs(want[i] - direct[i]) <= 1e-5 * (1 + Math.abs(direct[i])));
  });

  test('codes under float32 accumulation: the dense product bits at the kept entries where the recipe leaves weight gradients float32', () => {
    const xq = makeQTensor(encode(x, 'e4m3', { saturate: true }), 'e4m3', 1);
    const eq = makeQTensor(encode(g.map((v) => v * 16), 'e5m2', { saturate: true }), 'e5m2', 16);
    const xTensor = new Tensor(x, [2, 16, 10, 10]), wTensor = new Tensor(new Float32Array(16 * 144), [16, 16, 3, 3]);
    const kernels = productKernels(xTensor, wTensor, { kind: 'conv2d', options: { padding: 1 }, sparse });
    const dense = productKernels(xTensor, wTensor, { kind: 'conv2d', options: { padding: 1 } }).weightGrad(eq, xq, { accumulation: 'fp32' });
    assertSameBits(kernels.weightGrad(eq, xq, { accumulation: 'fp32', prunedGradientUnread: true }), dense.map((v, i) => (inKept(i) ? v : 0)), 'sparse');
    assertSameBits(kernels.weightGrad(eq, xq, { accumulation: 'fp32' }), dense, 'quantized weight gradients: dense');
    // An emulated accumulator: dense (the sparse kernel accumulates in float32 only).
    const e6m9 = { accumulation: 'e6m9', chunk: 16, prunedGradientUnread: true } as const;
    assertSameBits(kernels.weightGrad(eq, xq, e6m9), productKernels(xTensor, wTensor, { kind: 'conv2d', options: { padding: 1 } }).weightGrad(eq, xq, e6m9), 'e6m9');
  });
});

describe('the input gradient of a pruned convolution on codes', () => {
  test('float32 accumulation, stride 1, 15% of blocks kept or fewer: the sparse kernel, the dense product\'s bits; dense under other accumulations', () => {
    const geometry = convGeometry([2, 16, 10, 10], [16, 16, 3, 3], { padding: 1 });
    const keep = Uint8Array.from({ length: 2 * 18 }, (_, i) => (i % 10 === 0 ? 1 : 0));
    const sparse: SparsePattern = { rows: 16, cols: 144, br: 8, bc: 8, keep };
    const weight = zeroPruned(uniform(16 * 144, 3), sparse);
    const wq = makeQTensor(encode(weight, 'e4m3', { saturate: true }), 'e4m3', 1);
    const eq = makeQTensor(encode(uniform(2 * 16 * 100, 4).map((v) => v * 16), 'e5m2', { saturate: true }), 'e5m2', 16);
    const xTensor = new Tensor(new Float32Array(2 * 16 * 100), [2, 16, 10, 10]), wTensor = new Tensor(weight, [16, 16, 3, 3]);
    const kernels = productKernels(xTensor, wTensor, { kind: 'conv2d', options: { padding: 1 }, sparse });
    const dense = productKernels(xTensor, wTensor, { kind: 'conv2d', options: { padding: 1 } });
    assert.equal(sparseInputGradientWins(sparse, 'codes', 100), true);
    if (nativeCore()?.info().gemmKernel === 'avx512') assert.ok(bsrLowpConv2dInputGradient(sparse, eq, wq, groupColumns(geometry), 2, { accumulation: 'fp32' }), 'the sparse kernel takes it');
    assertSameBits(kernels.inputGrad(eq, wq, { accumulation: 'fp32' }), dense.inputGrad(eq, wq, { accumulation: 'fp32' }), 'fp32 accumulation');
    const e6m9 = { accumulation: 'e6m9', chunk: 16 } as const;
    assertSameBits(kernels.inputGrad(eq, wq, e6m9), dense.inputGrad(eq, wq, e6m9), 'e6m9');
  });
});

describe('a quantized weight gradient of a pruned convolution', () => {
  test('is +0 outside the kept blocks before it is quantized (its scale from the kept entries), on the dense products as on the sparse ones', () => {
    const keep = Uint8Array.from({ length: 2 * 18 }, (_, i) => (i % 5 === 0 ? 1 : 0));
    const sparse: SparsePattern = { rows: 16, cols: 144, br: 8, bc: 8, keep };
    const inKept = (i: number) => keep[Math.floor(Math.floor(i / 144) / 8) * 18 + Math.floor((i % 144) / 8)] === 1;
    const seen: Float32Array[] = [];
    // Errors "quantized" (the FP8 path) and weight gradients quantized by their amax: the policy
    // records what reaches the weight gradients' quantizer.
    const policy: QuantizationPolicy = {
      quantizesErrors: true,
      prunedGradientUnread: false,
      algorithm: 'direct',
      quantize: (cls, v) => {
        if (cls === 'weight_gradients') seen.push(Float32Array.from(v));
        return v;
      },
      gemmOptions: () => ({ accumulation: 'fp32' }),
    };
    const run = (product: GemmProduct) => {
      const x = new Tensor(uniform(2 * 16 * 100, 1), [2, 16, 10, 10]).requireGrad();
      const w = new Tensor(uniform(16 * 144, 3).map((v, i) => (inKept(i) ? v : 0)), [16, 16, 3, 3]).requireGrad();
      const y = quantizedGemm(x, w, null, product, policy);
      backward(y, { gradient: new Tensor(uniform(y.size, 2), y.shape) });
      return { quantized: seen[seen.length - 1], grad: Float32Array.from(w.grad!.data) };
    };
    const options = { padding: 1 };
    const dense = run({ kind: 'conv2d', options });
    const pruned = run({ kind: 'conv2d', options, pruned: sparse });
    const onSparse = run({ kind: 'conv2d', options, sparse, pruned: sparse });
    assert.ok(dense.quantized.some((v, i) => !inKept(i) && v !== 0), 'an unpruned layer quantizes its whole gradient');
    assertSameBits(pruned.quantized, dense.quantized.map((v, i) => (inKept(i) ? v : 0)), 'the kept entries, +0 elsewhere');
    assertSameBits(onSparse.quantized, pruned.quantized, 'the same on the sparse products');
    assertSameBits(onSparse.grad, pruned.grad, 'the gradient the optimizer sees');
  });
});

describe('evaluation', () => {
  for (const recipe of ['fp32', 'hybrid']) {
    test(`${recipe}: a pruned checkpoint evaluates to the same bits on the sparse kernel as on the dense direct products`, async () => {
      const dataset = await mnistData();
      const out = mkdtempSync(join(tmpdir(), 'octet-sparse-eval-'));
      await train(smallRun(recipe, { epochs: 1, maxTrain: 96, conv: 'direct', prune: { block: '4x4', sparsity: 0.75, start: 1, kernels: 'dense' } }), dataset, out);
      const file = join(out, CHECKPOINT_FILE);
      const loaded = readCheckpointRecord<TrainConfig>(file);
      const dense = evaluate(checkpointModel(file, dataset, {}, loaded).model, dataset, 150, 64);
      const { model } = checkpointModel(file, dataset, {}, loaded);
      const layers = attachSparsePatterns(model, checkpointMasks(file, loaded.tensors), '4x4');
      // 18 pruned convolutions (first and last layers dense), each with 25% of its blocks kept.
      assert.equal(layers.length, 18);
      assert.ok(layers.every((l) => l.sparseAgainstDirect && Math.abs(l.kept - 0.25) < 0.05), JSON.stringify(layers[0]));
      const sparse = evaluate(model, dataset, 150, 64);
      assert.equal(sparse.loss, dense.loss);
      assert.equal(sparse.value, dense.value);
      // The sparse forward never reads the pruned blocks: values put there change nothing, until
      // the patterns are taken off.
      assert.ok(fillPruned(model) > 0);
      assert.equal(evaluate(model, dataset, 150, 64).loss, dense.loss);
      detachSparsePatterns(model);
      assert.notEqual(evaluate(model, dataset, 150, 64).loss, dense.loss);
    });
  }
});

describe('training', () => {
  for (const recipe of ['fp32', 'hybrid']) {
    test(`${recipe}: training with the sparse products ends bit for bit where training on the dense direct products does`, async () => {
      const dataset = await mnistData();
      // 8x8 at 75%: the forward, the strided input gradients and (float32 weight gradients) the
      // weight gradients run sparse; stride-1 input gradients stay direct.
      const prune = { block: '8x8', sparsity: 0.75, start: 1, end: 2, every: 1 };
      const runs: Array<Map<string, { bytes: Uint8Array }>> = [];
      for (const kernels of ['auto', 'dense'] as const) {
        const out = mkdtempSync(join(tmpdir(), `octet-sparse-train-${kernels}-`));
        await train(smallRun(recipe, { epochs: 1, maxTrain: 160, conv: 'direct', prune: { ...prune, kernels } }), dataset, out);
        runs.push(readSafetensors(join(out, CHECKPOINT_FILE)).tensors);
      }
      for (const [name, t] of runs[1]) if (name.startsWith('model.') || name.startsWith('optimizer.')) assert.deepEqual(runs[0].get(name)!.bytes, t.bytes, name);
    });
  }

  test('hybrid at 8x8/90%: the stride-1 input gradients of codes run sparse too, and training ends bit for bit where the dense products do', async () => {
    const dataset = await mnistData();
    const prune = { block: '8x8', sparsity: 0.9, start: 1, end: 2, every: 1 };
    const runs: Array<Map<string, { bytes: Uint8Array }>> = [];
    for (const kernels of ['auto', 'dense'] as const) {
      const out = mkdtempSync(join(tmpdir(), `octet-sparse-hybrid90-${kernels}-`));
      await train(smallRun('hybrid', { epochs: 1, maxTrain: 160, conv: 'direct', prune: { ...prune, kernels } }), dataset, out);
      runs.push(readSafetensors(join(out, CHECKPOINT_FILE)).tensors);
    }
    for (const [name, t] of runs[1]) if (name.startsWith('model.') || name.startsWith('optimizer.')) assert.deepEqual(runs[0].get(name)!.bytes, t.bytes, name);
  });

  test('float32 under Winograd: at 10% of 4x4 blocks kept the pruned layers leave Winograd for the sparse kernel in all three products (last bits differ), and resume stays bit-identical', async () => {
    const dataset = await mnistData();
    const config = smallRun('fp32', { epochs: 1, maxTrain: 160, prune: { block: '4x4', sparsity: 0.9, start: 1, end: 2, every: 1 } });
    const auto = mkdtempSync(join(tmpdir(), 'octet-sparse-wino-'));
    const dense = mkdtempSync(join(tmpdir(), 'octet-sparse-wino-dense-'));
    const a = await train(config, dataset, auto);
    const d = await train({ ...config, prune: { ...config.prune!, kernels: 'dense' } }, dataset, dense);
    const ta = readSafetensors(join(auto, CHECKPOINT_FILE)).tensors, td = readSafetensors(join(dense, CHECKPOINT_FILE)).tensors;
    const w = 'model.layer3.0.conv2.weight';
    assert.notDeepEqual(ta.get(w)!.bytes, td.get(w)!.bytes);
    assert.ok(Math.abs(a.final!.loss - d.final!.loss) < 0.05 * d.final!.loss, `${a.final!.loss} vs ${d.final!.loss}`);
    // Stopped after 3 steps and resumed: the same bits as the uninterrupted run.
    const parts = mkdtempSync(join(tmpdir(), 'octet-sparse-wino-parts-'));
    let steps = 0;
    await train(config, dataset, parts, { hooks: { onStep: () => void steps++, shouldStop: () => steps >= 3 } });
    await train(config, dataset, parts, { resume: true });
    const tp = readSafetensors(join(parts, CHECKPOINT_FILE)).tensors;
    for (const [name, t] of ta) assert.deepEqual(tp.get(name)!.bytes, t.bytes, name);
    // Attached by hand: the Pruner's patterns name the layers it prunes.
    const { buildTrainModel } = await import('../../src/train/index.js');
    const model = buildTrainModel(config, dataset);
    const pruner = new Pruner(model.namedParameters(), config.prune!);
    pruner.update(1);
    assert.equal(attachSparsePatterns(model, pruner.keepPatterns(), '4x4').length, 18);
  });

  test('sfp8 (a float32 backward of quantized forwards): the pruned layers backward on the sparse kernel (last bits differ from dense), and resume stays bit-identical', async () => {
    const dataset = await mnistData();
    const config = smallRun('sfp8', { epochs: 1, maxTrain: 160, prune: { block: '4x4', sparsity: 0.9, start: 1, end: 2, every: 1 } });
    const whole = mkdtempSync(join(tmpdir(), 'octet-sparse-sfp8-'));
    const dense = mkdtempSync(join(tmpdir(), 'octet-sparse-sfp8-dense-'));
    await train(config, dataset, whole);
    await train({ ...config, prune: { ...config.prune!, kernels: 'dense' } }, dataset, dense);
    const tw = readSafetensors(join(whole, CHECKPOINT_FILE)).tensors, td = readSafetensors(join(dense, CHECKPOINT_FILE)).tensors;
    assert.notDeepEqual(tw.get('model.layer3.0.conv2.weight')!.bytes, td.get('model.layer3.0.conv2.weight')!.bytes);
    const parts = mkdtempSync(join(tmpdir(), 'octet-sparse-sfp8-parts-'));
    let steps = 0;
    await train(config, dataset, parts, { hooks: { onStep: () => void steps++, shouldStop: () => steps >= 3 } });
    await train(config, dataset, parts, { resume: true });
    const tp = readSafetensors(join(parts, CHECKPOINT_FILE)).tensors;
    for (const [name, t] of tw) assert.deepEqual(tp.get(name)!.bytes, t.bytes, name);
  });

  test('a mask whose block grid does not fit its layer is refused, naming both', async () => {
    const dataset = await mnistData();
    const config = smallRun('fp32', { epochs: 1, maxTrain: 32, prune: { block: '4x4', sparsity: 0.5 } });
    const { buildTrainModel } = await import('../../src/train/index.js');
    const model = buildTrainModel(config, dataset);
    const pruner = new Pruner(model.namedParameters(), config.prune!);
    pruner.update(0);
    assert.throws(() => attachSparsePatterns(model, pruner.keepPatterns(), '8x8'), /the mask for layer1\.0\.conv1\.weight has \d+ blocks; 8x8 blocks of its 4 x 36 view make \d+ \(was it made with another block shape\?\)/);
  });

  test('a bad kernels setting is refused with what is allowed', async () => {
    const dataset = await mnistData();
    const config = smallRun('fp32', { epochs: 1, maxTrain: 32, prune: { block: '4x4', sparsity: 0.5, kernels: 'fast' as 'auto' } });
    await assert.rejects(train(config, dataset, mkdtempSync(join(tmpdir(), 'octet-sparse-bad-'))), /prune kernels is "fast"; expected "auto" .* or "dense"/);
  });
});
