/**
 * The codec against an independent implementation: ONNX Runtime's Cast operator (CPU), which
 * rounds to nearest-even. Its FP8 casts are compared in saturating mode only (its non-saturating
 * FP8 mode is wrong near overflow); its float16 and bfloat16 casts are IEEE casts with Inf.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { quantizeReference, resolveFormat } from '../../src/formats/index.js';
import { float32FromBits } from '../helpers/format_oracle.js';
import { ONNX_TYPE, onnxCastRoundTrip } from '../helpers/onnx_cast.js';
import { xorshift } from '../helpers/random.js';

function sample(count: number, seed: number, lowExponent: number, highExponent: number): Float32Array {
  const next = xorshift(seed);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    let bits = next();
    if (i % 4 !== 0) bits = (bits & 0x807fffff) | ((lowExponent + (next() % (highExponent - lowExponent + 1))) << 23);
    out[i] = float32FromBits(bits >>> 0);
  }
  return out;
}

const cases: Array<[string, number, boolean | null, boolean]> = [
  // our format, ONNX type, ONNX saturate attribute, our saturate
  ['e5m2', ONNX_TYPE.float8e5m2, true, true],
  ['e4m3', ONNX_TYPE.float8e4m3fn, true, true],
  ['e4m3fnuz', ONNX_TYPE.float8e4m3fnuz, true, true],
  ['e5m2fnuz', ONNX_TYPE.float8e5m2fnuz, true, true],
  ['fp16', ONNX_TYPE.float16, null, false],
  ['bf16', ONNX_TYPE.bfloat16, null, false],
];

describe('codec agrees with ONNX Runtime Cast', () => {
  for (const [name, onnxType, onnxSaturate, saturate] of cases) {
    test(`${name}${saturate ? ' saturating' : ''}: one million values`, async () => {
      const format = resolveFormat(name);
      const low = Math.max(1, format.emin - format.mantissaBits - 3 + 127);
      const high = Math.min(254, format.emax + 2 + 127);
      const x = sample(1_000_000, 0x5eed + onnxType, low, high);
      const theirs = await onnxCastRoundTrip(x, onnxType, onnxSaturate);
      const ours = quantizeReference(x, format, { saturate });
      let mismatches = 0;
      let first = '';
      for (let i = 0; i < x.length; i++) {
        const same = Object.is(ours[i], theirs[i]) || (Number.isNaN(ours[i]) && Number.isNaN(theirs[i]));
        if (!same && mismatches++ === 0) first = `${x[i]} -> ours ${ours[i]}, ONNX Runtime ${theirs[i]}`;
      }
      assert.equal(mismatches, 0, `${mismatches} mismatches; first: ${first}`);
    });
  }
});
