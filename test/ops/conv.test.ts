import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { conv2d, convTranspose2d } from '../../src/ops/index.js';
import { Tensor } from '../../src/tensor/index.js';
import { randomTensor } from '../helpers/tensors.js';

/** Direct convolution from the definition, in double precision. */
function naiveConv(x: Tensor, w: Tensor, b: Tensor | null, stride: number, pad: number, dilation: number, groups: number): Float64Array {
  const [N, C, H, W] = x.shape;
  const [OC, CG, KH, KW] = w.shape;
  const OH = Math.floor((H + 2 * pad - dilation * (KH - 1) - 1) / stride) + 1;
  const OW = Math.floor((W + 2 * pad - dilation * (KW - 1) - 1) / stride) + 1;
  const out = new Float64Array(N * OC * OH * OW);
  const ocg = OC / groups;
  for (let n = 0; n < N; n++)
    for (let oc = 0; oc < OC; oc++) {
      const g = Math.floor(oc / ocg);
      for (let oh = 0; oh < OH; oh++)
        for (let ow = 0; ow < OW; ow++) {
          let s = b ? b.data[oc] : 0;
          for (let cg = 0; cg < CG; cg++)
            for (let i = 0; i < KH; i++)
              for (let j = 0; j < KW; j++) {
                const ih = oh * stride - pad + i * dilation;
                const iw = ow * stride - pad + j * dilation;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                s += x.data[((n * C + g * CG + cg) * H + ih) * W + iw] * w.data[((oc * CG + cg) * KH + i) * KW + j];
              }
          out[((n * OC + oc) * OH + oh) * OW + ow] = s;
        }
    }
  return out;
}

describe('conv2d forward', () => {
  const cases: Array<[string, number[], number[], number, number, number, number]> = [
    ['3x3 pad 1', [2, 3, 8, 8], [5, 3, 3, 3], 1, 1, 1, 1],
    ['stride 2 (ResNet downsampling)', [2, 4, 9, 9], [6, 4, 3, 3], 2, 1, 1, 1],
    ['7x7 stride 2 pad 3 (ResNet stem)', [1, 3, 20, 20], [4, 3, 7, 7], 2, 3, 1, 1],
    ['dilation 2', [1, 2, 10, 10], [3, 2, 3, 3], 1, 2, 2, 1],
    ['groups 2', [2, 4, 6, 6], [4, 2, 3, 3], 1, 1, 1, 2],
    ['depthwise', [2, 6, 7, 7], [6, 1, 3, 3], 2, 1, 1, 6],
    ['1x1', [3, 8, 5, 5], [4, 8, 1, 1], 1, 0, 1, 1],
  ];
  for (const [name, xs, ws, stride, pad, dilation, groups] of cases) {
    test(`${name} equals the direct definition`, () => {
      const x = randomTensor(xs, 1, -1, 1, false);
      const w = randomTensor(ws, 2, -1, 1, false);
      const b = randomTensor([ws[0]], 3, -1, 1, false);
      const y = conv2d(x, w, b, { stride, padding: pad, dilation, groups });
      const expected = naiveConv(x, w, b, stride, pad, dilation, groups);
      assert.equal(y.size, expected.length);
      for (let i = 0; i < y.size; i++) assert.ok(Math.abs(y.data[i] - expected[i]) < 1e-4, `${i}: ${y.data[i]} vs ${expected[i]}`);
    });
  }

  test('shape errors name the op, what came and what was expected', () => {
    assert.throws(() => conv2d(Tensor.zeros([1, 3, 8, 8]), Tensor.zeros([4, 2, 3, 3])), /conv2d: input \[1, 3, 8, 8\] with groups=1 does not fit weight \[4, 2, 3, 3\]; expected \[C_out, 3, KH, KW\]/);
    assert.throws(() => conv2d(Tensor.zeros([3, 8, 8]), Tensor.zeros([4, 3, 3, 3])), /conv2d: input \[3, 8, 8\] and weight \[4, 3, 3, 3\]; expected \[N, C, H, W\]/);
    assert.throws(() => conv2d(Tensor.zeros([1, 3, 2, 2]), Tensor.zeros([4, 3, 3, 3])), /smaller than the dilated kernel/);
    assert.throws(() => conv2d(Tensor.zeros([1, 3, 8, 8]), Tensor.zeros([4, 3, 3, 3]), Tensor.zeros([5])), /bias \[5\]; expected \[4\]/);
  });
});

describe('convTranspose2d forward', () => {
  for (const [stride, pad, groups, H] of [[1, 1, 1, 7], [2, 1, 1, 11], [2, 0, 2, 10], [3, 1, 1, 14]]) {
    test(`is the adjoint of conv2d (stride ${stride}, padding ${pad}, groups ${groups}, size ${H})`, () => {
      const x = randomTensor([2, 4, H, H], 5, -1, 1, false);
      const w = randomTensor([6, 4 / groups, 3, 3], 6, -1, 1, false);
      const y = conv2d(x, w, null, { stride, padding: pad, groups });
      const r = randomTensor(y.shape as number[], 7, -1, 1, false);
      // The rows of x that the strided convolution never reaches come back as outputPadding.
      const outPad = H - ((y.shape[2] - 1) * stride - 2 * pad + 3);
      const back = convTranspose2d(r, w, null, { stride, padding: pad, groups, outputPadding: outPad });
      assert.deepEqual(back.shape, x.shape);
      let left = 0;
      let right = 0;
      for (let i = 0; i < y.size; i++) left += y.data[i] * r.data[i];
      for (let i = 0; i < x.size; i++) right += x.data[i] * back.data[i];
      assert.ok(Math.abs(left - right) < 1e-3 * (1 + Math.abs(left)), `${left} vs ${right}`);
    });
  }

  test('output size follows (H - 1) * stride - 2 * padding + dilation * (K - 1) + outputPadding + 1', () => {
    const y = convTranspose2d(Tensor.zeros([1, 2, 5, 5]), Tensor.zeros([2, 3, 4, 4]), null, { stride: 2, padding: 1, outputPadding: 1 });
    assert.deepEqual(y.shape, [1, 3, 11, 11]);
  });
});

describe('conv2d on Winograd (3x3, stride 1, 16 or more channels)', () => {
  // Shapes that winogradTile sends to 4x4 tiles, 2x2 tiles (a 4x5 output), a 32x32 output, and a
  // grouped convolution whose groups have 16 channels.
  const cases: [number[], number[], number, number][] = [
    [[2, 16, 8, 8], [24, 16, 3, 3], 1, 1],
    [[3, 32, 4, 5], [16, 32, 3, 3], 1, 1],
    [[1, 16, 32, 32], [16, 16, 3, 3], 1, 1],
    [[2, 32, 10, 10], [32, 16, 3, 3], 0, 2],
  ];
  for (const [xs, ws, pad, groups] of cases) {
    test(`x ${xs.join('x')}, w ${ws.join('x')}, padding ${pad}, groups ${groups}: forward, input and weight gradients as the direct product's`, async () => {
      const { backward } = await import('../../src/autograd/index.js');
      const { convGeometry, winogradPlan } = await import('../../src/kernels/index.js');
      const run = (algorithm: 'winograd' | 'direct') => {
        const x = randomTensor(xs, 41, -1, 1, true);
        const w = randomTensor(ws, 42, -1, 1, true);
        const y = conv2d(x, w, null, { padding: pad, groups, algorithm });
        backward(y, { gradient: randomTensor(y.shape as number[], 43, -1, 1, false) });
        return { x, w, y };
      };
      const fast = run('winograd'), direct = run('direct');
      const naive = naiveConv(fast.x, fast.w, null, 1, pad, 1, groups);
      // The terms' scale: at most C*9 products of magnitude <= 1 per output.
      const terms = (ws[1] * 9);
      for (let i = 0; i < naive.length; i++) assert.ok(Math.abs(fast.y.data[i] - naive[i]) <= 1e-4 * terms, `forward element ${i}: ${fast.y.data[i]} vs ${naive[i]}`);
      const close = (a: Float32Array, b: Float32Array, scale: number, what: string) => {
        for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= 1e-4 * scale, `${what} element ${i}: ${a[i]} vs ${b[i]}`);
      };
      close(fast.x.grad!.data, direct.x.grad!.data, ws[0] / groups * 9, 'input gradient');
      close(fast.w.grad!.data, direct.w.grad!.data, xs[0] * xs[2] * xs[3], 'weight gradient');
      // It really ran on Winograd where the addon is there.
      if (winogradPlan(convGeometry(xs, ws, { padding: pad, groups }), 'winograd')) assert.notDeepEqual(fast.y.data, direct.y.data, 'a different summation from the direct product');
    });
  }
});
