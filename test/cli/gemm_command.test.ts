import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { makeQTensor } from '../../src/formats/index.js';
import { lowpGemmReference } from '../../src/kernels/lowp_gemm.js';
import { hopperGemm } from '../../src/kernels/hopper_gemm.js';
import { runOctet } from '../helpers/cli_io.js';
import { xorshift } from '../helpers/random.js';

/** Random E4M3 codes that are not NaN (0x7f, 0xff). */
function codes(n: number, seed: number): Uint8Array {
  const next = xorshift(seed);
  return Uint8Array.from({ length: n }, () => {
    const c = next() & 0xff;
    return (c & 0x7f) === 0x7f ? c - 1 : c;
  });
}

const floats = (bytes: Uint8Array) => new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));

describe('octet gemm', () => {
  const dir = mkdtempSync(join(tmpdir(), 'octet-gemm-'));
  const [m, k, n] = [5, 40, 7];
  const a = codes(m * k, 1);
  const b = codes(k * n, 2);
  writeFileSync(join(dir, 'a.bin'), a);
  writeFileSync(join(dir, 'b.bin'), b);
  const args = ['gemm', '--a', join(dir, 'a.bin'), '--b', join(dir, 'b.bin'), '--shape', `${m}x${k}x${n}`, '--a-format', 'e4m3', '--b-format', 'e4m3'];

  test('writes C = A B as little-endian float32, the contract\'s bits, for each accumulation', async () => {
    writeFileSync(join(dir, 'chunked.json'), JSON.stringify({ format: 'e6m9', chunk: 8 }));
    writeFileSync(join(dir, 'stochastic.json'), JSON.stringify({ format: 'fp16', rounding: 'stochastic', seed: 4 }));
    const cases: [string, object][] = [
      ['fp32', { accumulation: 'fp32' }],
      ['e6m9', { accumulation: 'e6m9' }],
      [join(dir, 'chunked.json'), { accumulation: 'e6m9', chunk: 8 }],
      [join(dir, 'stochastic.json'), { accumulation: 'fp16', rounding: 'stochastic', seed: 4 }],
    ];
    for (const [accumulation, options] of cases) {
      const r = await runOctet([...args, '--accumulation', accumulation]);
      assert.equal(r.code, 0, r.stderr);
      const want = lowpGemmReference(m, n, k, makeQTensor(a, 'e4m3'), makeQTensor(b, 'e4m3'), options);
      assert.equal(r.stdoutBytes.length, m * n * 4);
      assert.deepEqual(floats(r.stdoutBytes), want, accumulation);
    }
    const out = join(dir, 'c.bin');
    assert.equal((await runOctet([...args, '--accumulation', 'e6m9', '--out', out])).code, 0);
    assert.deepEqual(floats(new Uint8Array(readFileSync(out))), lowpGemmReference(m, n, k, makeQTensor(a, 'e4m3'), makeQTensor(b, 'e4m3'), { accumulation: 'e6m9' }));
  });

  test('--accumulation hopper-fp8 and hopper-fp8-fast: the H200 models', async () => {
    for (const model of ['hopper-fp8', 'hopper-fp8-fast'] as const) {
      const r = await runOctet([...args, '--accumulation', model]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(floats(r.stdoutBytes), hopperGemm(m, n, k, a, 'e4m3', b, 'e4m3', { model }));
    }
    // An aligned accumulator of other parameters, from a file.
    const model = { group: 8, keep: 9, significant: 10, interval: 16 };
    writeFileSync(join(dir, 'aligned.json'), JSON.stringify({ aligned: model }));
    const r = await runOctet([...args, '--accumulation', join(dir, 'aligned.json')]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(floats(r.stdoutBytes), hopperGemm(m, n, k, a, 'e4m3', b, 'e4m3', { model }));
    writeFileSync(join(dir, 'both.json'), JSON.stringify({ format: 'e6m9', aligned: model }));
    assert.match((await runOctet([...args, '--accumulation', join(dir, 'both.json')])).stderr, /give exactly one of format and aligned/);
    const wide = await runOctet([...args.slice(0, -4), '--a-format', 'fp16', '--b-format', 'e4m3', '--accumulation', 'hopper-fp8']);
    assert.equal(wide.code, 1);
    assert.match(wide.stderr, /hopper-fp8 models FP8 tensor cores: give e4m3 or e5m2 operands/);
  });

  test('a file of the wrong size, a bad shape, format or accumulation file is named', async () => {
    const expectError = async (extra: string[], pattern: RegExp, base = args) => {
      const r = await runOctet([...base, ...extra]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, pattern);
    };
    await expectError(['--shape', '5x41x7'], /--a .*a\.bin holds 200 bytes; a 5 x 41 operand of float8_e4m3fn codes takes 205/, args.filter((x) => x !== `${m}x${k}x${n}` && x !== '--shape'));
    await expectError(['--shape', '5x40'], /--shape is "5x40"; expected MxKxN/, args.filter((x) => x !== `${m}x${k}x${n}` && x !== '--shape'));
    await expectError(['--a-format', 'e9m9'], /eXmY/, args.filter((x, i) => !(args[i - 1] === '--a-format' || x === '--a-format')));
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ format: 'e6m9', chunk: -1 }));
    await expectError(['--accumulation', join(dir, 'bad.json')], /--accumulation file .*bad\.json: [^]*at chunk/);
    await expectError(['--accumulation', join(dir, 'missing.json')], /--accumulation file .*missing\.json does not exist/);
  });
});
