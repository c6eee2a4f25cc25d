/**
 * Float32 GEMM speed, GFLOP/s, at square sizes and at the convolution shapes of ResNet-18 on
 * 32x32 inputs (batch 64), in both orientations: rows = pixels of the batch (m = N*H*W,
 * n = C_out, k = C_in*9) and rows = output channels of one image (m = C_out, n = H*W,
 * k = C_in*9, as Octet's NCHW convolution calls it). numpy with OpenBLAS, when python3 has it,
 * runs each shape right after Octet with the same thread count; the ratio is Octet / numpy.
 */
import { gemm, nativeCore } from '../kernels/index.js';
import { numpyGemm } from './peers.js';
import { bestOf } from './timing.js';

export interface GemmShape {
  m: number;
  n: number;
  k: number;
  label: string;
}

export const GEMM_SHAPES: GemmShape[] = [
  { m: 512, n: 512, k: 512, label: 'square' },
  { m: 1024, n: 1024, k: 1024, label: 'square' },
  { m: 2048, n: 2048, k: 2048, label: 'square' },
  { m: 65536, n: 64, k: 27, label: 'resnet18 stem, rows=pixels' },
  { m: 65536, n: 64, k: 576, label: 'resnet18 layer1, rows=pixels' },
  { m: 16384, n: 128, k: 1152, label: 'resnet18 layer2, rows=pixels' },
  { m: 4096, n: 256, k: 2304, label: 'resnet18 layer3, rows=pixels' },
  { m: 1024, n: 512, k: 4608, label: 'resnet18 layer4, rows=pixels' },
  { m: 64, n: 1024, k: 576, label: 'resnet18 layer1, rows=channels' },
  { m: 128, n: 256, k: 1152, label: 'resnet18 layer2, rows=channels' },
  { m: 256, n: 64, k: 2304, label: 'resnet18 layer3, rows=channels' },
  { m: 512, n: 16, k: 4608, label: 'resnet18 layer4, rows=channels' },
];

export interface GemmBenchRow {
  bench: 'gemm';
  m: number;
  n: number;
  k: number;
  shape: string;
  threads: number;
  path: 'native' | 'typescript';
  kernel: string;
  gflops: number;
  numpy_gflops?: number;
  ratio_numpy?: number;
}

/** Seeded uniform values in [-range/2, range/2) (a linear congruential sequence). */
export function filled(length: number, seed: number, range = 1): Float32Array {
  const out = new Float32Array(length);
  let s = seed;
  for (let i = 0; i < length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32 - 0.5) * range;
  }
  return out;
}

export function gemmBench(threadCounts: number[], shapes: GemmShape[] = GEMM_SHAPES): GemmBenchRow[] {
  const native = nativeCore();
  const rows: GemmBenchRow[] = [];
  for (const shape of shapes) {
    const { m, n, k } = shape;
    const a = filled(m * k, 1);
    const b = filled(k * n, 2);
    const c = new Float32Array(m * n);
    const flops = 2 * m * n * k;
    for (const threads of native ? threadCounts : [1]) {
      // The reference path is far slower; time it on small shapes only.
      if (!native && flops > 2 ** 28) continue;
      // Two alternating rounds of Octet and numpy, the best of each: interference on a shared
      // machine only slows runs down, and alternating spreads it over both.
      let seconds = Infinity;
      let peer: number | null = null;
      for (let round = 0; round < 2; round++) {
        seconds = Math.min(seconds, bestOf(() => void gemm(m, n, k, a, b, c, { threads }), 0.4));
        const p = numpyGemm(m, n, k, threads);
        if (p !== null) peer = Math.max(peer ?? 0, p);
      }
      const row: GemmBenchRow = {
        bench: 'gemm',
        m,
        n,
        k,
        shape: shape.label,
        threads,
        path: native ? 'native' : 'typescript',
        kernel: native ? native.info().gemmKernel : 'reference',
        gflops: flops / seconds / 1e9,
      };
      if (peer !== null) Object.assign(row, { numpy_gflops: peer, ratio_numpy: row.gflops / peer });
      rows.push(row);
    }
  }
  return rows;
}
