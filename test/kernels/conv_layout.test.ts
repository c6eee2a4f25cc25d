import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  inputGradientGeometry, moveRows, moveRowsReference, rotatedKernel, rotatedKernelReference, scatterPhase, scatterPhaseReference, type PhaseBlock, type RowBlock,
} from '../../src/kernels/conv_layout.js';
import { convGeometry, convOutputSize } from '../../src/kernels/conv_geometry.js';
import { uniform } from '../helpers/random.js';

const BLOCKS: RowBlock[] = [
  { n0: 0, count: 4, channels: 6, c0: 0, rows: 6, plane: 64 },
  { n0: 1, count: 2, channels: 5, c0: 2, rows: 3, plane: 9 },
  { n0: 0, count: 64, channels: 40, c0: 8, rows: 32, plane: 16 },
];

describe('conv layout moves', () => {
  for (const b of BLOCKS) {
    for (const kind of ['floats', 'codes'] as const) {
      test(`${kind}, block ${JSON.stringify(b)}: moveRows equals the reference both ways and leaves other channels alone`, () => {
        const make = (n: number, seed: number) => {
          const f = uniform(n, seed);
          return kind === 'floats' ? f : Uint8Array.from(f, (v) => Math.floor((v + 1) * 127));
        };
        const imageSize = (b.n0 + b.count) * b.channels * b.plane;
        const matrix = make(b.rows * b.count * b.plane, 1);
        const images = make(imageSize, 2);
        const expected = images.slice();
        moveRowsReference(matrix, expected, b, 'scatter');
        moveRows(matrix, images, b, 'scatter');
        assert.deepEqual(images, expected);
        const gathered = make(matrix.length, 3);
        const gatheredRef = gathered.slice();
        moveRows(gathered, images, b, 'gather');
        moveRowsReference(gatheredRef, images, b, 'gather');
        assert.deepEqual(gathered, gatheredRef);
        assert.deepEqual(gathered, matrix);
      });
    }
  }

  test('moveRows refuses blocks past the channels or the arrays, and mixed kinds', () => {
    const b = BLOCKS[1];
    assert.throws(() => moveRows(new Float32Array(100), new Float32Array(1000), { ...b, c0: 3 }, 'gather'), /not a range of channels/);
    assert.throws(() => moveRows(new Float32Array(10), new Float32Array(1000), b, 'gather'), /too short/);
    assert.throws(() => moveRows(new Float32Array(100), new Uint8Array(1000), b, 'gather'), /both be floats or both codes/);
  });

  for (const [groups, ocg, cg, taps] of [[1, 8, 5, 9], [3, 4, 2, 25], [2, 16, 1, 1]]) {
    test(`rotatedKernel of ${groups} groups of ${ocg}x${cg}x${taps}: native equals the reference, floats and codes`, () => {
      const w = uniform(groups * ocg * cg * taps, ocg + taps);
      const codes = Uint8Array.from(w, (v) => Math.floor((v + 1) * 127));
      for (let g = 0; g < groups; g++) {
        assert.deepEqual(rotatedKernel(w, g, ocg, cg, taps), rotatedKernelReference(w, g, ocg, cg, taps));
        assert.deepEqual(rotatedKernel(codes, g, ocg, cg, taps), rotatedKernelReference(codes, g, ocg, cg, taps));
      }
      // The definition, element by element: W'[c, oc * taps + t] = W[g * ocg + oc, c, taps - 1 - t].
      const r = rotatedKernel(w, groups - 1, ocg, cg, taps);
      assert.equal(r[(cg - 1) * ocg * taps + 0], w[(((groups - 1) * ocg + 0) * cg + cg - 1) * taps + taps - 1]);
    });
  }

  const PHASES: PhaseBlock[] = [
    { n0: 0, count: 64, channels: 8, c0: 2, rows: 4, height: 32, width: 32, ph: 1, pw: 0, strideH: 2, strideW: 2, phaseRows: 16, phaseCols: 16 },
    { n0: 1, count: 2, channels: 3, c0: 0, rows: 3, height: 10, width: 7, ph: 2, pw: 1, strideH: 3, strideW: 2, phaseRows: 3, phaseCols: 3 },
  ];
  for (const p of PHASES) {
    test(`scatterPhase ${JSON.stringify(p)}: native equals the reference and writes only the phase's pixels`, () => {
      const result = uniform(p.rows * p.count * p.phaseRows * p.phaseCols, p.height);
      const size = (p.n0 + p.count) * p.channels * p.height * p.width;
      const images = new Float32Array(size).fill(-7);
      const expected = images.slice();
      scatterPhase(result, images, p);
      scatterPhaseReference(result, expected, p);
      assert.deepEqual(images, expected);
      const written = images.reduce((count, v) => count + (v === -7 ? 0 : 1), 0);
      assert.equal(written, result.length);
    });
  }

  test('scatterPhase refuses a phase past the images', () => {
    const p = { ...PHASES[1], phaseRows: 4 };
    assert.throws(() => scatterPhase(new Float32Array(1000), new Float32Array(1000), p), /does not fit the images/);
  });

  test('inputGradientGeometry: stride 1 maps the output back onto the input, dY as its input and dX as its output; other strides have none', () => {
    const forward = (s: number, p: number, d: number) => convGeometry([2, 6, 10, 9], [4, 3, 3, 3], { stride: s, padding: p, dilation: d, groups: 2 });
    for (const [p, d] of [[1, 1], [0, 1], [2, 2], [2, 1]]) {
      const f = forward(1, p, d);
      const g = inputGradientGeometry(f)!;
      assert.deepEqual([g.batch, g.channels, g.outChannels, g.groups, g.height, g.width], [2, 4, 6, 2, f.outH, f.outW]);
      assert.equal(convOutputSize(g.height, g.kernelH, 1, g.padH, g.dilationH), f.height);
      assert.equal(convOutputSize(g.width, g.kernelW, 1, g.padW, g.dilationW), f.width);
      assert.deepEqual([g.outH, g.outW], [f.height, f.width]);
    }
    assert.equal(inputGradientGeometry(forward(2, 1, 1)), null);
    assert.equal(inputGradientGeometry(forward(1, 3, 1)), null);
  });
});
