/**
 * Run in a child process with OCTET_BF16_PAIRS=on or off: FP8 products with fp32 accumulation
 * (plain GEMMs, the three convolution products, which read their columns from the images, and
 * the block-sparse convolution forward, block-scaled GEMMs with float32 partials)
 * against the references, bit for bit, and a hash of every result, so that the parent can
 * check that both settings give the same bits. Prints the addon's bf16Pairs setting, how many
 * products ran on the pair kernel, the mismatches and the hash.
 */
import { makeQTensor, resolveFormat } from '../../src/formats/index.js';
import { blockScaledGemm, blockScaledGemmReference } from '../../src/kernels/block_gemm.js';
import { blockQuantizeReference, type BlockSpec } from '../../src/kernels/block_quant.js';
import { bsrConv2dForward, bsrConv2dForwardReference, bsrFromDense } from '../../src/kernels/block_sparse.js';
import { convGeometry, groupColumns, type ConvGeometry } from '../../src/kernels/conv_geometry.js';
import { decode, encode } from '../../src/kernels/codec.js';
import { lowpConv2dBackwardData, lowpConv2dBackwardWeight, lowpConv2dForward } from '../../src/kernels/lowp_conv.js';
import { lowpGemm, lowpGemmReference } from '../../src/kernels/lowp_gemm.js';
import { nativeCore } from '../../src/kernels/native.js';
import { uniform } from './random.js';

const native = nativeCore();
if (!native) throw new Error('bf16_pairs_check needs the addon');
let mismatches = 0;
let hash = 2166136261;
const compare = (fast: Float32Array, ref: Float32Array) => {
  const fb = new Uint32Array(fast.buffer, fast.byteOffset, fast.length);
  for (let i = 0; i < fast.length; i++) {
    if (!Object.is(fast[i], ref[i]) && !(Number.isNaN(fast[i]) && Number.isNaN(ref[i]))) mismatches++;
    hash = Math.imul(hash ^ fb[i], 16777619) >>> 0;
  }
};
// Wide magnitudes (subnormal codes included), zeros and negative zeros.
const values = (n: number, seed: number, spread: number) => {
  const u = uniform(n, seed);
  return u.map((v, i) => (i % 17 === 0 ? 0 : i % 29 === 0 ? -0 : Math.sign(v) * 2 ** (spread * Math.abs(v) - spread / 2)));
};
const operand = (n: number, seed: number, format: string, spread = 20) => makeQTensor(encode(values(n, seed, spread), format, { saturate: true }), format);

for (const [m, n, k, transA, transB, fa, fb] of [
  [64, 96, 300, false, false, 'e5m2', 'e5m2'],
  [37, 70, 385, false, true, 'e5m2', 'e4m3'], // odd k past one block of 384
  [100, 33, 769, true, false, 'e4m3', 'e5m2'],
  [13, 200, 7, true, true, 'e5m2', 'e5m2'], // few rows: A would have been read in place
  [130, 48, 1, false, false, 'e5m2', 'e5m2'],
  [24, 16, 1000, false, false, 'e4m3', 'e4m3'],
] as const) {
  const a = operand(m * k, m + k, fa);
  const b = operand(k * n, n + k, fb);
  compare(lowpGemm(m, n, k, a, b, { transA, transB }), lowpGemmReference(m, n, k, a, b, { transA, transB }));
}
// Inf and NaN among the values read: the float kernel runs (the pair one would change NaN's bits).
{
  const a = operand(40 * 90, 5, 'e5m2');
  a.codes[17] = 0x7c; // +Inf
  a.codes[400] = 0x7e; // NaN
  const b = operand(90 * 50, 6, 'e5m2');
  compare(lowpGemm(40, 50, 90, a, b), lowpGemmReference(40, 50, 90, a, b));
}

function shape(batch: number, channels: number, size: number, outChannels: number, kernel: number, stride: number, pad: number): ConvGeometry {
  return convGeometry([batch, channels, size, size], [outChannels, channels, kernel, kernel], { stride, padding: pad });
}
// Stride 2 runs the input gradient phase by phase, whose reads pass the images' edges unevenly
// (and, for some phases, crop them); padding beyond the kernel's reach.
for (const s of [
  shape(4, 19, 12, 40, 3, 1, 1), shape(3, 32, 9, 24, 3, 2, 1), shape(2, 7, 10, 33, 1, 1, 0), shape(2, 65, 8, 20, 3, 1, 1),
  shape(2, 6, 9, 5, 4, 2, 1), shape(2, 8, 7, 6, 1, 2, 0), shape(1, 5, 6, 7, 3, 1, 3),
]) {
  const x = operand(s.batch * s.channels * s.height * s.width, 11, 'e5m2', 12);
  const w = operand(s.outChannels * s.channels * s.kernelH * s.kernelW, 12, 'e4m3', 8);
  const dy = operand(s.batch * s.outChannels * s.outH * s.outW, 13, 'e5m2', 12);
  compare(lowpConv2dForward(x, w, s), lowpConv2dForward(x, w, s, {}, true));
  compare(lowpConv2dBackwardWeight(dy, x, s), lowpConv2dBackwardWeight(dy, x, s, {}, true));
  compare(lowpConv2dBackwardData(dy, w, s), lowpConv2dBackwardData(dy, w, s, {}, true));
}
// Block-sparse convolutions on codes (bsrConv2dForward) against their reference: 20 eligible
// products (even block columns, finite images), then an odd block width and images with Inf and
// NaN, which stay on the float tile. K = 27 leaves an odd span in the last block column.
const densePairProducts = native.info().bf16PairProducts;
const table = decode(Uint8Array.from({ length: 256 }, (_, i) => i), 'e5m2');
const e5m2 = resolveFormat('e5m2');
// The fifth shape (16 x 16 outputs, stride 1) runs its 8-row blocks on the direct sparse kernel's pair tile.
for (const s of [shape(3, 8, 14, 16, 3, 1, 1), shape(2, 8, 32, 16, 3, 2, 1), shape(2, 3, 8, 16, 3, 1, 1), shape(2, 16, 7, 24, 3, 1, 1), shape(2, 8, 16, 16, 3, 1, 1)]) {
  const g = groupColumns(s);
  const rows = s.outChannels, cols = g.channels * g.kernelH * g.kernelW;
  const x = operand(s.batch * s.channels * s.height * s.width, 21, 'e5m2', 12);
  for (const [br, bc, wFormat] of [[8, 8, 'e4m3'], [4, 4, 'e5m2'], [2, 6, 'e4m3'], [8, 2, 'e5m2']] as const) {
    const wv = decode(operand(rows * cols, br + bc, wFormat, 8).codes, wFormat);
    const keep = Uint8Array.from({ length: Math.ceil(rows / br) * Math.ceil(cols / bc) }, (_, i) => (i % 3 === 2 ? 0 : 1));
    const w = bsrFromDense(wv, rows, cols, br, bc, keep);
    const images = { codes: x.codes as Uint8Array, table, format: e5m2 };
    compare(bsrConv2dForward(w, images, g, s.batch), bsrConv2dForwardReference(w, images, g, s.batch));
  }
}
const sparsePairProducts = native.info().bf16PairProducts - densePairProducts;
{
  const s = shape(2, 8, 14, 16, 3, 1, 1);
  const g = groupColumns(s);
  const x = operand(2 * 8 * 196, 31, 'e5m2', 12);
  const wv = decode(operand(16 * 72, 32, 'e4m3', 8).codes, 'e4m3');
  const images = { codes: x.codes as Uint8Array, table, format: e5m2 };
  const odd = bsrFromDense(wv, 16, 72, 8, 9);
  compare(bsrConv2dForward(odd, images, g, 2), bsrConv2dForwardReference(odd, images, g, 2));
  x.codes[100] = 0x7c; // +Inf
  x.codes[900] = 0x7e; // NaN
  const even = bsrFromDense(wv, 16, 72, 8, 8);
  compare(bsrConv2dForward(even, images, g, 2), bsrConv2dForwardReference(even, images, g, 2));
}
// Block-scaled GEMMs with float32 partials (MX, DeepSeek-V3's tiles with float32 divisors; K past
// one block, K odd, a single odd run): 3 products on pairs. MX FP4 stays on the float tile (its
// table is NaN past code 15, which the scan for non-finite codes, by their low 7 bits, cannot tell
// apart), and so do runs of 15 (odd: a pair would straddle two runs).
const beforeBlock = native.info().bf16PairProducts;
{
  const mx = (format: string): BlockSpec => ({ format, blockRows: 1, blockK: 32, scale: 'e8m0' });
  const tile: BlockSpec = { format: 'e4m3', blockRows: 1, blockK: 128, scale: 'fp32' };
  const weightTile: BlockSpec = { format: 'e4m3', blockRows: 128, blockK: 128, scale: 'fp32' };
  const odd: BlockSpec = { format: 'e5m2', blockRows: 1, blockK: 15, scale: 'pow2' };
  for (const [m, n, k, sa, sb] of [
    [64, 96, 301, mx('e4m3'), mx('e4m3')], [37, 70, 27, mx('e4m3'), mx('e4m3')], [100, 33, 1000, tile, weightTile], [13, 200, 70, mx('e2m1'), mx('e2m1')],
    [20, 30, 90, odd, odd],
  ] as const) {
    const qa = blockQuantizeReference(values(m * k, m + 3, 12), m, k, 'rk', sa);
    const qb = blockQuantizeReference(values(n * k, n + 5, 12), n, k, 'rk', sb);
    compare(blockScaledGemm(qa, qb), blockScaledGemmReference(qa, qb));
  }
}
const info = native.info();
const blockPairProducts = info.bf16PairProducts - beforeBlock;
process.stdout.write(
  `bf16Pairs ${info.bf16Pairs}\npair products ${info.bf16PairProducts}\nsparse pair products ${sparsePairProducts}\nblock pair products ${blockPairProducts}\nmismatches ${mismatches}\nhash ${hash.toString(16)}\n`,
);
