import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkConvGeometry, convGeometry, convOutputSize, groupColumns, resolvePair, transposedConvGeometry } from '../../src/kernels/conv_geometry.js';

describe('convolution geometry', () => {
  test('convOutputSize is PyTorch\'s formula', () => {
    assert.equal(convOutputSize(32, 3, 1, 1, 1), 32);
    assert.equal(convOutputSize(224, 7, 2, 3, 1), 112);
    assert.equal(convOutputSize(10, 3, 1, 2, 2), 10);
    assert.equal(convOutputSize(7, 3, 2, 1, 1), 4);
  });

  test('convGeometry resolves pairs and defaults once, and its result passes the kernels\' check', () => {
    const g = convGeometry([2, 6, 9, 8], [4, 3, 3, 2], { stride: [2, 1], padding: 1, dilation: [1, 2], groups: 2 });
    assert.deepEqual(g, {
      batch: 2, channels: 6, height: 9, width: 8, outChannels: 4, groups: 2, kernelH: 3, kernelW: 2, strideH: 2, strideW: 1,
      padH: 1, padW: 1, dilationH: 1, dilationW: 2, outH: 5, outW: 8,
    });
    checkConvGeometry(g, 'test');
    assert.deepEqual(groupColumns(g), {
      channels: 3, height: 9, width: 8, kernelH: 3, kernelW: 2, strideH: 2, strideW: 1, padH: 1, padW: 1, dilationH: 1, dilationW: 2, outH: 5, outW: 8,
    });
  });

  test('a transposed convolution is the convolution from its output to its input, output padding included', () => {
    for (const [stride, padding, dilation, outputPadding] of [[2, 1, 1, 1], [2, 0, 1, 0], [3, 1, 1, 2], [1, 1, 2, 1]]) {
      const g = transposedConvGeometry([2, 4, 5, 6], [4, 3, 3, 3], { stride, padding, dilation, outputPadding, groups: 2 });
      assert.equal(g.outH, 5);
      assert.equal(g.outW, 6);
      assert.equal(g.channels, 6);
      assert.equal(g.outChannels, 4);
      assert.equal(g.height, (5 - 1) * stride - 2 * padding + dilation * 2 + outputPadding + 1);
      checkConvGeometry(g, 'transposed');
    }
  });

  test('bad shapes and options get errors that say what was wrong', () => {
    assert.throws(() => convGeometry([2, 6, 9], [4, 3, 3, 3]), /conv2d: input \[2, 6, 9\] and weight \[4, 3, 3, 3\]; expected \[N, C, H, W\]/);
    assert.throws(() => convGeometry([2, 6, 9, 9], [4, 3, 3, 3]), /does not fit weight \[4, 3, 3, 3\]; expected \[C_out, 6, KH, KW\]/);
    assert.throws(() => convGeometry([2, 6, 9, 9], [5, 3, 3, 3], { groups: 2 }), /C_out divisible by groups/);
    assert.throws(() => convGeometry([2, 6, 9, 9], [4, 6, 3, 3], { groups: 0 }), /groups is 0; expected a positive integer/);
    assert.throws(() => convGeometry([2, 6, 9, 9], [4, 6, 3, 3], { stride: 0 }), /stride is 0; expected an integer >= 1/);
    assert.throws(() => convGeometry([2, 6, 9, 9], [4, 6, 3, 3], { padding: [1, 1.5] }), /padding is \[1,1.5\]/);
    assert.throws(() => convGeometry([2, 6, 2, 2], [4, 6, 3, 3]), /smaller than the dilated kernel/);
    assert.throws(() => convGeometry([2, 6, 9, 9], [4, 6, 3, 3], { outputPadding: 1 }), /outputPadding is for transposed convolutions only/);
    assert.throws(() => transposedConvGeometry([1, 2, 3, 3], [2, 1, 3, 3], { stride: 2, outputPadding: 2 }), /outputPadding 2,2 must be smaller than the stride or the dilation/);
    assert.throws(() => transposedConvGeometry([1, 2, 3, 3], [3, 1, 3, 3]), /does not fit weight \[3, 1, 3, 3\]/);
    assert.throws(() => resolvePair([1, 2, 3] as never, 1, 'stride', 'op', 1), /op: stride is \[1,2,3\]/);
  });

  test('checkConvGeometry refuses an output size the rest does not give', () => {
    const g = convGeometry([1, 1, 3, 3], [1, 1, 3, 3], { padding: 1 });
    assert.throws(() => checkConvGeometry({ ...g, outH: 5, outW: 5 }, 'lowpConv2dForward'), /lowpConv2dForward: output 5x5 does not match the geometry .* gives 3x3/);
    assert.throws(() => checkConvGeometry({ ...g, padH: -1 }, 'op'), /padH is -1; expected an integer >= 0/);
    assert.throws(() => checkConvGeometry({ ...g, groups: 2, channels: 3, outChannels: 2 }, 'op'), /not both divisible by groups=2/);
  });
});
