import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeTable, encodeReference, makeQTensor, resolveFormat, type Format } from '../../src/formats/index.js';
import { columnsGemm, columnsGemmReference, type ColumnSource, type GemmInput } from '../../src/kernels/columns_gemm.js';
import { im2colBatch } from '../../src/kernels/im2col.js';
import { convOutputSize, type ColumnGeometry } from '../../src/kernels/conv_geometry.js';
import { nativeCore } from '../../src/kernels/native.js';
import { gemm } from '../../src/kernels/gemm.js';
import { lowpGemm } from '../../src/kernels/lowp_gemm.js';
import { uniform } from '../helpers/random.js';

function geometry(channels: number, size: [number, number], k: [number, number], s: [number, number], p: [number, number], d: [number, number]): ColumnGeometry {
  const [height, width] = size;
  return {
    channels, height, width, kernelH: k[0], kernelW: k[1], strideH: s[0], strideW: s[1], padH: p[0], padW: p[1], dilationH: d[0], dilationW: d[1],
    outH: convOutputSize(height, k[0], s[0], p[0], d[0]), outW: convOutputSize(width, k[1], s[1], p[1], d[1]),
  };
}

// [geometry, batch, output rows]: planes of 1024, 64 (tiles within one image), 16 and odd sizes
// (staged), stride, dilation, padding wider than the kernel's reach, 1x1.
const CASES: [ColumnGeometry, number, number][] = [
  [geometry(16, [32, 32], [3, 3], [1, 1], [1, 1], [1, 1]), 3, 24],
  [geometry(8, [16, 16], [3, 3], [2, 2], [1, 1], [1, 1]), 5, 13],
  [geometry(32, [4, 4], [3, 3], [1, 1], [1, 1], [1, 1]), 7, 40],
  [geometry(3, [9, 7], [3, 2], [2, 3], [1, 0], [1, 1]), 4, 5],
  [geometry(4, [10, 10], [3, 3], [1, 1], [3, 2], [2, 2]), 2, 9],
  [geometry(24, [8, 8], [1, 1], [1, 1], [0, 0], [1, 1]), 6, 33],
  [geometry(5, [13, 11], [5, 5], [1, 1], [2, 2], [1, 1]), 3, 17],
];

function label(g: ColumnGeometry, batch: number): string {
  return `C${g.channels} ${g.height}x${g.width} k${g.kernelH}x${g.kernelW} s${g.strideH},${g.strideW} p${g.padH},${g.padW} d${g.dilationH} x${batch}`;
}

const e5m2 = resolveFormat('e5m2');
const e4m3 = resolveFormat('e4m3');

function codesOf(values: Float32Array, format = e5m2): { codes: Uint8Array; table: Float32Array; format: Format } {
  return { codes: encodeReference(values, format, { saturate: true }) as Uint8Array, table: decodeTable(format), format };
}

/** The images of a source with two channels more than the group uses, so imageStride > one group. */
function images(g: ColumnGeometry, batch: number, seed: number): { x: Float32Array; imageStride: number } {
  const imageStride = (g.channels + 2) * g.height * g.width;
  return { x: uniform(batch * imageStride, seed, -2, 2), imageStride };
}

describe('columnsGemm (implicit im2col)', { skip: nativeCore() ? false : 'native core not built' }, () => {
  for (const [g, batch, rows] of CASES) {
    const k = g.channels * g.kernelH * g.kernelW;
    const np = batch * g.outH * g.outW;
    const { x, imageStride } = images(g, batch, k + np);
    const stored = new Float32Array(k * np);
    im2colBatch(x, stored, g, batch, imageStride);
    const source: ColumnSource = { x, geometry: g, batch, imageStride };

    test(`${label(g, batch)}: forward equals the SGEMM on the stored columns bit for bit, on 1 and 2 threads`, () => {
      const w = uniform(rows * k, rows);
      const expected = gemm(rows, np, k, w, stored, new Float32Array(rows * np), { threads: 1 });
      for (const threads of [1, 2]) {
        const c = new Float32Array(rows * np).fill(NaN);
        columnsGemm(rows, np, k, w, source, c, { threads });
        assert.deepEqual(c, expected);
      }
    });

    test(`${label(g, batch)}: transB (weight-gradient shape) equals the SGEMM bit for bit`, () => {
      const dy = uniform(rows * np, rows + 1);
      const expected = gemm(rows, k, np, dy, stored, new Float32Array(rows * k), { transB: true });
      const c = new Float32Array(rows * k).fill(NaN);
      columnsGemm(rows, k, np, dy, source, c, { transB: true });
      assert.deepEqual(c, expected);
    });

    test(`${label(g, batch)}: E5M2 and E4M3 codes on both sides equal the SGEMM on decoded values`, () => {
      for (const format of [e5m2, e4m3]) {
        const xc = codesOf(x, format);
        const storedCodes = new Uint8Array(k * np);
        im2colBatch(xc.codes, storedCodes, g, batch, imageStride);
        const w = codesOf(uniform(rows * k, rows + 2), format);
        const expected = lowpGemm(rows, np, k, makeQTensor(w.codes, format.name, 1), makeQTensor(storedCodes, format.name, 1));
        const c = new Float32Array(rows * np).fill(NaN);
        columnsGemm(rows, np, k, w, { ...source, x: xc.codes, table: xc.table, format: xc.format }, c);
        assert.deepEqual(c, expected, format.name);
        const dy = uniform(rows * np, rows + 3);
        const expectedT = lowpGemm(rows, k, np, dy, makeQTensor(storedCodes, format.name, 1), { transB: true });
        const cT = new Float32Array(rows * k).fill(NaN);
        // float32 x code products are not exact in float32: lowpGemm rounds product, then sum
        columnsGemm(rows, k, np, dy, { ...source, x: xc.codes, table: xc.table, format: xc.format }, cT, { transB: true, unfused: true });
        assert.deepEqual(cT, expectedT, `${format.name} transB`);
      }
    });

    test(`${label(g, batch)}: outImages places C in NCHW, untouched between images`, () => {
      const w = uniform(rows * k, rows + 4);
      const flat = columnsGemm(rows, np, k, w, source, new Float32Array(rows * np));
      const plane = g.outH * g.outW;
      const outStride = (rows + 1) * plane; // one spare channel per image stays as it was
      const c = new Float32Array(batch * outStride).fill(7);
      columnsGemm(rows, np, k, w, source, c, { outImages: { plane, imageStride: outStride } });
      for (let n = 0; n < batch; n++) {
        for (let i = 0; i < rows; i++) {
          assert.deepEqual(c.subarray(n * outStride + i * plane, n * outStride + (i + 1) * plane), flat.subarray(i * np + n * plane, i * np + (n + 1) * plane));
        }
        assert.ok(c.subarray(n * outStride + rows * plane, (n + 1) * outStride).every((v) => v === 7));
      }
    });
  }

  test('the reference equals the fast path with unfused steps, and transA', () => {
    const [g, batch, rows] = CASES[1];
    const k = g.channels * g.kernelH * g.kernelW;
    const np = batch * g.outH * g.outW;
    const { x, imageStride } = images(g, batch, 5);
    const source: ColumnSource = { x, geometry: g, batch, imageStride };
    const wT: GemmInput = uniform(k * rows, 6);
    const fast = columnsGemm(rows, np, k, wT, source, new Float32Array(rows * np), { transA: true, unfused: true });
    const reference = columnsGemmReference(rows, np, k, wT, source, new Float32Array(rows * np), { transA: true });
    assert.deepEqual(fast, reference);
  });

  test('a shape that does not match the geometry, short images, or codes without a table are refused', () => {
    const [g, batch] = CASES[0];
    const k = g.channels * 9;
    const np = batch * g.outH * g.outW;
    const { x, imageStride } = images(g, batch, 1);
    const source: ColumnSource = { x, geometry: g, batch, imageStride };
    assert.throws(() => columnsGemm(4, np + 1, k, new Float32Array(4 * k), source, new Float32Array(4 * (np + 1))), /column matrix is 144 x 3072/);
    assert.throws(() => columnsGemm(4, np, k, new Float32Array(4 * k), { ...source, x: x.subarray(0, 10) }, new Float32Array(4 * np)), /images hold 10/);
    assert.throws(() => columnsGemm(4, np, k, new Float32Array(4 * k), { ...source, x: new Uint8Array(x.length) }, new Float32Array(4 * np)), /table/);
    assert.throws(() => columnsGemm(4, np, k, new Float32Array(4 * k), source, new Float32Array(10)), /C holds 10/);
  });
});
