import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { castCommand, formatValue, parseNumberToken } from '../../src/cli/cast_command.js';
import { encodeReference } from '../../src/formats/index.js';
import { runOctet } from '../helpers/cli_io.js';

describe('octet cast', () => {
  test('prints input, zero-padded hex code and decoded value per line', async () => {
    const r = await runOctet(['cast', '--format', 'e5m2'], '1.1  57344\n61440 -0\tnan inf -inf 1e-9 -3e-6 0.000244140625\n');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      [
        '1.1\t0x3c\t1',
        '57344\t0x7b\t57344',
        '61440\t0x7c\tInfinity',
        '-0\t0x80\t-0',
        'nan\t0x7e\tNaN',
        'inf\t0x7c\tInfinity',
        '-inf\t0xfc\t-Infinity',
        '1e-9\t0x00\t0',
        '-3e-6\t0x80\t-0',
        '0.000244140625\t0x0c\t0.000244140625',
        '',
      ].join('\n'),
    );
  });

  test('pads codes to the format width: 4 digits for 16-bit formats, 1 for 4-bit ones', async () => {
    const r = await runOctet(['cast', '-f', 'e6m9'], '1 -2');
    assert.equal(r.stdout, '1\t0x3e00\t1\n-2\t0xc000\t-2\n');
    const small = await runOctet(['cast', '-f', 'e2m1'], '1.5 7');
    // e2m1 is OCP FP4, finite only: 7 saturates to its largest value, 6.
    assert.equal(small.stdout, '1.5\t0x3\t1.5\n7\t0x7\t6\n');
  });

  test('rounds the input to float32 first', async () => {
    // 1.1250000001 lies above the E5M2 tie 1.125 between 1 and 1.25, but it is 1.125 in
    // float32, and that tie goes to the even neighbour 1.
    const r = await runOctet(['cast', '-f', 'e5m2'], '1.1250000001');
    assert.equal(r.stdout, '1.1250000001\t0x3c\t1\n');
  });

  test('--saturate, --rounding toward-zero and E4M3 overflow to NaN', async () => {
    assert.equal((await runOctet(['cast', '-f', 'e4m3'], '464 465 inf')).stdout, '464\t0x7e\t448\n465\t0x7f\tNaN\ninf\t0x7f\tNaN\n');
    assert.equal((await runOctet(['cast', '-f', 'e4m3', '--saturate'], '465 -inf')).stdout, '465\t0x7e\t448\n-inf\t0xfe\t-448\n');
    assert.equal((await runOctet(['cast', '-f', 'e5m2', '-r', 'toward-zero'], '1.7 -1e6')).stdout, '1.7\t0x3e\t1.5\n-1e6\t0xfb\t-57344\n');
  });

  test('stochastic rounding is reproducible from --seed', async () => {
    const input = Array.from({ length: 64 }, () => '0.3').join(' ');
    const a = await runOctet(['cast', '-f', 'e5m2', '-r', 'stochastic', '--seed', '12'], input);
    const b = await runOctet(['cast', '-f', 'e5m2', '-r', 'stochastic', '--seed', '12'], input);
    const c = await runOctet(['cast', '-f', 'e5m2', '-r', 'stochastic', '--seed', '13'], input);
    assert.equal(a.stdout, b.stdout);
    assert.notEqual(a.stdout, c.stdout);
    const values = new Set(a.stdout.trim().split('\n').map((l) => l.split('\t')[2]));
    assert.deepEqual([...values].sort(), ['0.25', '0.3125']);
  });

  test('streams: 50 million numbers in chunks, with bounded memory, the same lines as one batch', async () => {
    const total = 50_000_000;
    const perChunk = 500_000;
    // The chunks split numbers in the middle, so tokens span chunk boundaries.
    const line = Array.from({ length: perChunk }, (_, i) => String((i % 1000) * 0.37 - 100)).join(' ') + ' ';
    const chunks = async function* () {
      for (let sent = 0; sent < total; sent += perChunk) {
        yield line.slice(0, 777);
        yield line.slice(777);
      }
    };
    let lines = 0;
    let last = '';
    let peak = 0;
    const heapBefore = process.memoryUsage().heapUsed;
    await castCommand({ format: 'e5m2', rounding: 'stochastic', seed: '5' }, {
      stdout: () => undefined,
      stderr: () => undefined,
      stdinChunks: chunks,
      writeOut: async (data) => {
        const text = String(data);
        for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) lines++;
        last = text.slice(text.lastIndexOf('\n', text.length - 2) + 1);
        peak = Math.max(peak, process.memoryUsage().heapUsed - heapBefore);
      },
    });
    assert.equal(lines, total);
    assert.ok(peak < 256 * 2 ** 20, `heap grew by ${(peak / 2 ** 20).toFixed(0)} MB`);
    // The last line is the whole input's last token, cast with its own stochastic draw (index total - 1).
    const value = Float32Array.of((perChunk - 1) % 1000 * 0.37 - 100);
    const code = encodeReference(value, 'e5m2', { rounding: 'stochastic', seed: 5, counterOffset: total - 1 })[0];
    assert.equal(last.split('\t')[1], `0x${code.toString(16).padStart(2, '0')}`);
  });

  test('streamed in batches, stochastic casts equal casting the whole input at once', async () => {
    const values = Array.from({ length: 200_000 }, (_, i) => String(Math.sin(i) * 3));
    const r = await runOctet(['cast', '-f', 'e5m2', '--rounding', 'stochastic', '--seed', '9'], values.join('\n'));
    const whole = encodeReference(Float32Array.from(values, Number), 'e5m2', { rounding: 'stochastic', seed: 9 });
    const codes = r.stdout.trim().split('\n').map((l) => Number(l.split('\t')[1]));
    assert.deepEqual(codes, Array.from(whole));
  });

  test('a huge invalid token is cut in the error', async () => {
    const r = await runOctet(['cast', '-f', 'e5m2'], `1 2 ${'9'.repeat(5_000_000)}x 3`);
    assert.equal(r.code, 1);
    assert.ok(r.stderr.length < 400, `${r.stderr.length} characters`);
    assert.match(r.stderr, /malformed number "9{40}"\.\.\. \(5000001 characters\) \(token 3 of the input\)/);
  });

  test('empty input prints nothing', async () => {
    const { code, stdout, stderr } = await runOctet(['cast', '-f', 'e5m2'], '  \n');
    assert.deepEqual({ code, stdout, stderr }, { code: 0, stdout: '', stderr: '' });
  });

  const errors: Array<[string[], string, RegExp]> = [
    [['cast', '-f', 'e5m2'], '1 2 x3', /malformed number "x3" \(token 3 of the input\); expected a decimal/],
    [['cast', '-f', 'e5m2'], '0x10', /malformed number "0x10"/],
    [['cast', '-f', 'e5m2'], '1e', /malformed number "1e"/],
    [['cast', '-f', 'fp8'], '1', /unknown format "fp8"; valid formats are float8_e5m2, e5m2/],
    [['cast', '-f', 'e5m2', '-r', 'up'], '1', /argument 'up' is invalid. Allowed choices are nearest, stochastic, toward-zero/],
    [['cast', '-f', 'e5m2', '--seed', '1.5'], '1', /--seed "1.5" is not a non-negative integer/],
    [['cast', '-f', 'e5m2', '--seed', '99999999999999999999'], '1', /--seed is 100000000000000000000; expected a non-negative integer at most/],
    [['cast'], '1', /required option '-f, --format <format>' not specified/],
  ];
  for (const [argv, stdin, message] of errors) {
    test(`fails clearly: ${argv.slice(1).join(' ')} <<< ${stdin}`, async () => {
      const r = await runOctet(argv, stdin);
      assert.notEqual(r.code, 0);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, message);
    });
  }
});

describe('token parsing and value printing', () => {
  test('accepts decimals and the specials in any case', () => {
    assert.equal(parseNumberToken('+.5', 1), 0.5);
    assert.equal(parseNumberToken('-2E-3', 1), -0.002);
    assert.ok(Number.isNaN(parseNumberToken('NaN', 1)));
    assert.equal(parseNumberToken('-INF', 1), -Infinity);
    assert.throws(() => parseNumberToken('Infinity1', 4), /token 4/);
  });

  test('prints -0, NaN and the infinities as JavaScript does, keeping the sign of zero', () => {
    assert.deepEqual([-0, 0, NaN, Infinity, -Infinity, 1e-7].map(formatValue), ['-0', '0', 'NaN', 'Infinity', '-Infinity', '1e-7']);
  });
});

describe('MX blocks and E8M0', () => {
  test('--block 32 groups inputs, prints element code, E8M0 scale code and element x scale', async () => {
    // Block 1: amax 1000, floor(log2) = 9, E4M3 emax 8: X = 2^1 (0x80); 1000 / 2 = 500 saturates to 448.
    // Block 2 (the last, shorter): amax 0.001, X = 2^(-10 - 8) (0x6d); 0.001 * 2^18 = 262.1 -> 256.
    const r = await runOctet(['cast', '-f', 'e4m3', '--block', '4'], '1 2 3 1000 0.001 -0');
    assert.equal(r.stdout, '1\t0x30\t0x80\t1\n2\t0x38\t0x80\t2\n3\t0x3c\t0x80\t3\n1000\t0x7e\t0x80\t896\n0.001\t0x78\t0x6d\t0.0009765625\n-0\t0x80\t0x6d\t-0\n');
    // FP4 (finite only): amax 7 -> X = 2^(2 - 2) = 1; 7 saturates to 6; 0.3 rounds to 0.5.
    const fp4 = await runOctet(['cast', '-f', 'e2m1', '--block', '32'], '0.3 7');
    assert.equal(fp4.stdout, '0.3\t0x1\t0x7f\t0.5\n7\t0x7\t0x7f\t6\n');
  });

  test('a block never straddles two batches of a long stream', async () => {
    const values = Array.from({ length: 70_000 }, (_, i) => (i % 97) + 0.5);
    const r = await runOctet(['cast', '-f', 'e5m2', '--block', '48'], values.join(' '));
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 70_000);
    // Inputs 65520 .. 65567 form one block: one scale code for all of them.
    assert.equal(new Set(lines.slice(65_520, 65_568).map((l) => l.split('\t')[2])).size, 1);
  });

  test('e8m0 casts to powers of two: ties to the even code, no zero, no sign', async () => {
    const r = await runOctet(['cast', '-f', 'e8m0'], '1 3 0.75 0 -2 1e-40 inf');
    assert.equal(r.stdout, '1\t0x7f\t1\n3\t0x80\t2\n0.75\t0x7e\t0.5\n0\t0xff\tNaN\n-2\t0xff\tNaN\n1e-40\t0x00\t5.877471754111438e-39\ninf\t0xff\tNaN\n');
    const saturated = await runOctet(['cast', '-f', 'e8m0', '--saturate', '-r', 'toward-zero'], 'inf 3');
    assert.equal(saturated.stdout, 'inf\t0xfe\t1.7014118346046923e+38\n3\t0x80\t2\n');
  });

  test('bad combinations say what is allowed', async () => {
    for (const [args, message] of [
      [['-f', 'e4m3', '--block', '0'], /--block "0" is not a block size; expected an integer from 1 to 65536/],
      [['-f', 'fp16', '--block', '32'], /float16 has 16-bit codes; MX elements take formats of at most 8 bits/],
      [['-f', 'e8m0', '--block', '32'], /give the element format/],
      [['-f', 'e8m0', '-r', 'stochastic'], /e8m0 rounds nearest or toward-zero/],
    ] as const) {
      const r = await runOctet(['cast', ...args], '1');
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, message);
    }
  });
});
