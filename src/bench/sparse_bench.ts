/**
 * Block-sparse convolution speed: the forward product of ResNet-18's (CIFAR variant) 3x3
 * convolutions at batch 64 with weights pruned in blocks (1x1, 4x4, 8x8, 16x16, whole filters)
 * at 50%, 75% and 90%, against the dense direct product of the same convolution (the GEMM on the
 * same implicit column matrix, the chain the sparse product keeps) measured beside it, with
 * float32 and with E5M2 operands (fp32 accumulation). `speedup` = dense seconds / sparse seconds;
 * `speedup_default` is against the convolution the layers run by default (float32 3x3 stride-1
 * products go through Winograd F(4x4, 3x3), which does fewer multiplications than the direct
 * product; E5M2 ones stay direct). The 1x1 rows are unstructured pruning on the same kernel
 * (compressed sparse rows of single entries). Rows with `product: 'input_gradient'` (float32)
 * time the input gradient (W^T dY folded into the images, bsrConv2dInputGradient) against conv2d's
 * dense backward (direct; `speedup_default` against Winograd's where the layer runs it). Rows with
 * `product: 'weight_gradient'` time the
 * weight gradient at the kept blocks (bsrConv2dWeightGradient) against the dense direct weight
 * gradient (the SGEMM on the transposed implicit columns, the chain it keeps) and, for
 * `speedup_default`, Winograd's weight gradient where the layer runs it; every product writes into
 * a buffer reused between calls.
 *
 * `sparseStepBench` times whole ResNet-18 (CIFAR, 100 classes, batch 64) steps with every
 * convolution pruned in 8x8 blocks to 90% (one-shot; the classifier stays dense): a training step
 * (forward, backward, AdamW, the masks enforced) and an inference forward (evaluation mode), with
 * the patterns attached (the forward, the input gradient and the weight gradient on the
 * block-sparse kernel where their rules choose it, AdamW over the kept entries as the trainer
 * runs it) against the same model without them, alternating, best of several; fp32 and fp8 with
 * float32 accumulation (E5M2 operands, the train bench's recipe).
 */
import { makeQTensor, resolveFormat } from '../formats/index.js';
import {
  blockGrid, bsrConv2dForward, bsrConv2dInputGradient, bsrConv2dWeightGradient, bsrFromDense, bsrLowpConv2dInputGradient, bsrStructure, bsrToDense, bsrTranspose, columnsGemm,
  convGeometry, decode, encode, groupColumns, lowpConv2dBackwardData, lowpConv2dForward, nativeCore, recycle, winogradForward, winogradPlan, winogradWeightGradient,
  type ConvGeometry,
} from '../kernels/index.js';
import { backward, noGrad, withActivationRelease } from '../autograd/index.js';
import { buildModel } from '../nn/index.js';
import { conv2dGradients } from '../ops/conv.js';
import { softmaxCrossEntropy } from '../ops/index.js';
import { AdamW } from '../optim/index.js';
import { applyRecipe, presetRecipe, type Recipe } from '../quant/index.js';
import { attachSparsePatterns, detachSparsePatterns, Pruner } from '../sparse/index.js';
import { Generator, Tensor } from '../tensor/index.js';
import { filled } from './gemm_bench.js';
import { bestOf } from './timing.js';

export interface SparseBenchRow {
  bench: 'sparse';
  /**
   * forward (W times the columns), input_gradient (float32: W^T dY folded into the images; E5M2:
   * the rotated weights' chains over the kept entries) or weight_gradient (dY times the columns'
   * transpose, at the kept blocks only).
   */
  product: 'forward' | 'input_gradient' | 'weight_gradient';
  block: string;
  sparsity: number;
  m: number;
  n: number;
  k: number;
  shape: string;
  operands: 'fp32' | 'e5m2';
  threads: number;
  dense_ms: number;
  sparse_ms: number;
  speedup: number;
  speedup_default: number;
}

/** ResNet-18 (CIFAR) convolutions at batch 64: input channels, output channels, size, stride. */
export const RESNET18_CONVS: Array<{ label: string; c: number; o: number; size: number; stride: number }> = [
  { label: 'layer1 3x3 64->64 32x32', c: 64, o: 64, size: 32, stride: 1 },
  { label: 'layer2 3x3 128->128 16x16', c: 128, o: 128, size: 16, stride: 1 },
  { label: 'layer3 3x3 256->256 8x8', c: 256, o: 256, size: 8, stride: 1 },
  { label: 'layer4 3x3 512->512 4x4', c: 512, o: 512, size: 4, stride: 1 },
  { label: 'layer2 3x3 64->128 stride 2', c: 64, o: 128, size: 32, stride: 2 },
];

export const SPARSE_BLOCKS = ['1x1', '4x4', '8x8', '16x16', 'filter'];
export const SPARSITIES = [0.5, 0.75, 0.9];

/** A keep pattern with exactly round(s x blocks) blocks dropped, chosen by a fixed shuffle. */
function keepPattern(blocks: number, sparsity: number, seed: number): Uint8Array {
  const order = Int32Array.from({ length: blocks }, (_, i) => i);
  let state = seed >>> 0 || 1;
  for (let i = blocks - 1; i > 0; i--) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    const j = (state >>> 0) % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const keep = new Uint8Array(blocks).fill(1);
  for (let i = 0; i < Math.round(sparsity * blocks); i++) keep[order[i]] = 0;
  return keep;
}

export function sparseBench(threads: number, batch = 64, convs = RESNET18_CONVS, blocks = SPARSE_BLOCKS, sparsities = SPARSITIES): SparseBenchRow[] {
  if (!nativeCore()) return [];
  const rows: SparseBenchRow[] = [];
  const e5m2 = resolveFormat('e5m2');
  const table = decode(Uint8Array.from({ length: 256 }, (_, i) => i), 'e5m2');
  for (const conv of convs) {
    const geo: ConvGeometry = convGeometry([batch, conv.c, conv.size, conv.size], [conv.o, conv.c, 3, 3], { padding: 1, stride: conv.stride });
    const g = groupColumns(geo);
    const m = conv.o, k = conv.c * 9, plane = g.outH * g.outW, n = batch * plane;
    const imageStride = conv.c * conv.size * conv.size;
    const x = filled(batch * imageStride, 3, 4);
    const weight = filled(m * k, 4, 4);
    const xCodes = encode(x, 'e5m2', { saturate: true }) as Uint8Array;
    const wCodes = encode(weight, 'e5m2', { saturate: true }) as Uint8Array;
    const wValues = decode(wCodes, 'e5m2');
    const y = new Float32Array(batch * m * plane);
    const floatSource = { x, geometry: g, batch, imageStride };
    const codeSource = { x: xCodes, table, format: e5m2, geometry: g, batch, imageStride };
    const denseFloat = bestOf(() => void columnsGemm(m, n, k, weight, floatSource, y, { outImages: { plane, imageStride: m * plane }, threads }), 0.3);
    const plan = winogradPlan(geo, 'winograd');
    const defaultFloat = plan ? bestOf(() => void winogradForward(x, weight, y, plan, threads), 0.3) : denseFloat;
    const denseCodes = bestOf(() => void columnsGemm(m, n, k, { codes: wCodes, table, format: e5m2 }, codeSource, y, { outImages: { plane, imageStride: m * plane }, threads }), 0.3);
    const defaultCodes = bestOf(() => void lowpConv2dForward(makeQTensor(xCodes, 'e5m2'), makeQTensor(wCodes, 'e5m2'), geo, { threads }), 0.3);
    // The weight gradient: dY as rows (m x n) for the dense GEMM and as NCHW for the sparse kernel.
    const dyRows = filled(m * n, 5, 4);
    const dyImages = new Float32Array(m * n);
    for (let i = 0; i < m; i++) for (let img = 0; img < batch; img++) dyImages.set(dyRows.subarray(i * n + img * plane, i * n + (img + 1) * plane), (img * m + i) * plane);
    const dyRowCodes = encode(dyRows, 'e5m2', { saturate: true }) as Uint8Array;
    const dyImageCodes = encode(dyImages, 'e5m2', { saturate: true }) as Uint8Array;
    const dw = new Float32Array(m * k);
    const gradFloat = bestOf(() => void columnsGemm(m, k, n, dyRows, floatSource, dw, { transB: true, threads }), 0.3);
    const gradDefaultFloat = plan ? bestOf(() => void winogradWeightGradient(x, dyImages, dw, plan, threads), 0.3) : gradFloat;
    const gradCodes = bestOf(() => void columnsGemm(m, k, n, { codes: dyRowCodes, table, format: e5m2 }, codeSource, dw, { transB: true, threads }), 0.3);
    // The float32 input gradient as conv2d's backward runs it dense: direct, and Winograd where the layer takes it.
    const gx = new Float32Array(batch * imageStride);
    const inputGradient = (algorithm: 'direct' | 'winograd') => () => recycle(conv2dGradients({ g: dyImages, x: null, weight, geometry: geo, algorithm }).gx!);
    const inputFloat = bestOf(inputGradient('direct'), 0.3);
    const inputDefaultFloat = plan ? bestOf(inputGradient('winograd'), 0.3) : inputFloat;
    // The E5M2 input gradient as the layers run it dense (lowpConv2dBackwardData, float32 accumulation).
    const dyQ = makeQTensor(dyImageCodes, 'e5m2');
    const wQ = makeQTensor(wCodes, 'e5m2');
    const inputCodes = bestOf(() => recycle(lowpConv2dBackwardData(dyQ, wQ, geo, { threads })), 0.3);
    for (const block of blocks) {
      const [br, bc] = block === 'filter' ? [1, k] : block.split('x').map(Number);
      const { blockRowCount, blockColCount } = blockGrid(m, k, br, bc);
      for (const sparsity of sparsities) {
        const keep = keepPattern(blockRowCount * blockColCount, sparsity, m + k + br * 31 + Math.round(sparsity * 100));
        for (const operands of ['fp32', 'e5m2'] as const) {
          const w = bsrFromDense(operands === 'fp32' ? weight : wValues, m, k, br, bc, keep);
          const images = operands === 'fp32' ? x : { codes: xCodes, table, format: e5m2 };
          const seconds = bestOf(() => void bsrConv2dForward(w, images, g, batch, { out: y, threads }), 0.3);
          const dense = operands === 'fp32' ? denseFloat : denseCodes;
          rows.push({
            bench: 'sparse', product: 'forward', block, sparsity, m, n, k, shape: conv.label, operands, threads, dense_ms: dense * 1e3, sparse_ms: seconds * 1e3,
            speedup: dense / seconds, speedup_default: (operands === 'fp32' ? defaultFloat : defaultCodes) / seconds,
          });
        }
        {
          const wT = bsrTranspose(bsrFromDense(weight, m, k, br, bc, keep));
          const seconds = bestOf(() => {
            gx.fill(0);
            bsrConv2dInputGradient(wT, dyImages, g, batch, { out: gx, threads });
          }, 0.3);
          rows.push({
            bench: 'sparse', product: 'input_gradient', block, sparsity, m, n, k, shape: conv.label, operands: 'fp32', threads, dense_ms: inputFloat * 1e3,
            sparse_ms: seconds * 1e3, speedup: inputFloat / seconds, speedup_default: inputDefaultFloat / seconds,
          });
        }
        {
          // E5M2: the contract's chains over the kept weights (bsrLowpConv2dInputGradient).
          const pattern = { rows: m, cols: k, br, bc, keep };
          const wPruned = makeQTensor(encode(bsrToDense(bsrFromDense(wValues, m, k, br, bc, keep)), 'e5m2', { saturate: true }) as Uint8Array, 'e5m2');
          if (bsrLowpConv2dInputGradient(pattern, dyQ, wPruned, g, batch, { threads })) {
            const seconds = bestOf(() => recycle(bsrLowpConv2dInputGradient(pattern, dyQ, wPruned, g, batch, { threads })!), 0.3);
            rows.push({
              bench: 'sparse', product: 'input_gradient', block, sparsity, m, n, k, shape: conv.label, operands: 'e5m2', threads, dense_ms: inputCodes * 1e3,
              sparse_ms: seconds * 1e3, speedup: inputCodes / seconds, speedup_default: inputCodes / seconds,
            });
          }
        }
        for (const operands of ['fp32', 'e5m2'] as const) {
          const pattern = bsrStructure({ rows: m, cols: k, br, bc, keep });
          const images = operands === 'fp32' ? x : { codes: xCodes, table, format: e5m2 };
          const dy = operands === 'fp32' ? dyImages : { codes: dyImageCodes, table, format: e5m2 };
          const seconds = bestOf(() => void bsrConv2dWeightGradient(pattern, images, dy, g, batch, { out: dw, threads }), 0.3);
          const dense = operands === 'fp32' ? gradFloat : gradCodes;
          rows.push({
            bench: 'sparse', product: 'weight_gradient', block, sparsity, m, n, k, shape: conv.label, operands, threads, dense_ms: dense * 1e3, sparse_ms: seconds * 1e3,
            speedup: dense / seconds, speedup_default: (operands === 'fp32' ? gradDefaultFloat : gradCodes) / seconds,
          });
        }
      }
    }
  }
  return rows;
}

export interface SparseStepRow {
  bench: 'sparse';
  block: string;
  sparsity: number;
  /** `train_step` (forward, backward, AdamW) or `inference` (a forward without gradients). */
  step: 'train_step' | 'inference';
  model: string;
  batch: number;
  /** The recipe's operands: fp32, e5m2 (float32 accumulation), or the label the caller gave. */
  operands: string;
  threads: number;
  dense_ms: number;
  sparse_ms: number;
  speedup: number;
  /** Pruned convolutions (each one's products run sparse where their rules say so). */
  pruned_layers: number;
}

function timeOnce(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

export interface SparseStepOptions {
  rounds?: number;
  block?: string;
  sparsity?: number;
  batch?: number;
  /** A zoo model taking inChannels x size x size inputs (default resnet18-cifar, 3 x 32 x 32, 100 classes). */
  model?: string;
  size?: number;
  inChannels?: number;
  classes?: number;
  modelOptions?: Record<string, number>;
  /** Prune the first convolution too (default true; the classifier always stays dense). */
  pruneFirst?: boolean;
  /** Recipes by the label of their operands (default fp32, and E5M2 with float32 accumulation). */
  recipes?: Array<[string, Recipe]>;
}

export function sparseStepBench(threads: number, options: SparseStepOptions = {}): SparseStepRow[] {
  const { rounds = 3, block = '8x8', sparsity = 0.9, batch = 64, model = 'resnet18-cifar', size = 32, inChannels = 3, classes = 100, modelOptions = {} } = options;
  if (!nativeCore()) return [];
  const fp8 = presetRecipe('fp8');
  const recipes = options.recipes ?? [
    ['fp32', presetRecipe('fp32')],
    ['e5m2', { ...fp8, accumulation: { format: 'fp32', chunk: 0, rounding: 'nearest', outer: 'fp32', promote: 0 } }],
  ];
  const rows: SparseStepRow[] = [];
  for (const [operands, recipe] of recipes) {
    const net = buildModel(model, { classes, inChannels, seed: 1, ...modelOptions });
    const session = applyRecipe(net, recipe, { seed: 1 });
    const optimizer = new AdamW(net.namedParameters(), { lr: 1e-4, masterWeights: recipe.masterWeights, moments: recipe.moments });
    // Every convolution pruned (the first too unless pruneFirst is false); the classifier stays dense.
    const pruner = new Pruner(net.namedParameters(), options.pruneFirst === false ? { block, sparsity } : { block, sparsity, exclude: ['fc'], pruneFirstLast: true });
    pruner.update(0);
    const g = new Generator(2);
    const x = Tensor.randn([batch, inChannels, size, size], g);
    const labels = Int32Array.from({ length: batch }, () => g.below(classes));
    // A step as the trainer runs it, and inference as evaluation runs it (batch norm on its running
    // statistics, no gradients): the dead intermediates go back to the buffer pool as the pass goes
    // (withActivationRelease). Without it every step takes fresh pages for its activations, which
    // on these machines costs more than the convolutions (ResNet-18 inference, 2026-12-06: 443 ms
    // dense / 366 ms pruned without, 203 / 107 ms with).
    const train = () => {
      optimizer.zeroGrad({ release: true });
      withActivationRelease(() => {
        const loss = softmaxCrossEntropy(net.call(x), labels);
        backward(session.scaleLoss(loss));
      });
      // The trainer's step: the pruned entries skipped by the optimizer while the patterns are
      // attached (the pruned model's step), then zeroed.
      optimizer.stepAll(session.finishBackward().skip, attached ? { keep: pruner.elementMasks() } : {});
      pruner.enforce((name, keep) => optimizer.zeroSlotsWhere(name, keep));
    };
    const infer = () => {
      net.eval();
      withActivationRelease(() => noGrad(() => net.call(x)));
      net.train();
    };
    const patterns = pruner.keepPatterns();
    let attached = false;
    const layers = () => {
      attached = true;
      return attachSparsePatterns(net, patterns, block);
    };
    const detach = () => {
      attached = false;
      detachSparsePatterns(net);
    };
    const pruned = layers().length;
    detach();
    for (const [step, fn] of [['train_step', train], ['inference', infer]] as const) {
      fn();
      let dense = Infinity, sparse = Infinity;
      for (let r = 0; r < rounds; r++) {
        detach();
        dense = Math.min(dense, timeOnce(fn));
        layers();
        if (r === 0) fn();
        sparse = Math.min(sparse, timeOnce(fn));
      }
      detach();
      rows.push({
        bench: 'sparse', block, sparsity, step, model, batch, operands, threads, dense_ms: dense, sparse_ms: sparse, speedup: dense / sparse,
        pruned_layers: pruned,
      });
    }
  }
  return rows;
}
