/**
 * Every kernel path on this one machine: the simpler micro-kernels forced by environment
 * variables, and the TypeScript reference path when the addon is switched off.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { decodeTable, resolveFormat } from '../../src/formats/index.js';
import { nativeCore, nativeUnavailableReason } from '../../src/kernels/native.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

function check(env: Record<string, string>) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'test/helpers/kernel_path_check.ts'], {
    cwd: root,
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
}

describe('native core', () => {
  test('loads here and reports its kernel and threads', () => {
    const native = nativeCore();
    assert.ok(native, `addon not loaded: ${nativeUnavailableReason()}`);
    const info = native.info();
    assert.match(info.gemmKernel, /^(avx512|avx2|portable)$/);
    assert.ok(info.threads >= 1);
    assert.equal(nativeUnavailableReason(), null);
  });

  test('every call takes named options; a missing, mistyped or out-of-range option is refused by name', () => {
    const native = nativeCore()!;
    const e5m2 = resolveFormat('e5m2');
    const a = { data: new Uint8Array(6), table: decodeTable(e5m2), format: e5m2 };
    const b = { data: new Float32Array(6) };
    const c = new Float32Array(4);
    const shape = { transA: false, transB: false, m: 2, n: 2, k: 3, lda: 3, ldb: 2, ldc: 2, unfused: false };
    native.sgemmCoded(a, b, c, { ...shape, threads: 1 });
    assert.throws(() => native.sgemmCoded(a, b, c, { ...shape, threads: 1.5 }), /threads must be an integer/);
    assert.throws(() => native.sgemmCoded(a, b, c, { ...shape, threads: 0 }), /threads must be a positive integer/);
    assert.throws(() => native.sgemmCoded(a, b, c, { ...shape, m: undefined } as never), /missing option m/);
    assert.throws(() => native.sgemmCoded(a, b, c, { ...shape, ldb: 1 }), /leading dimension too small/);
    assert.throws(() => native.sgemmCoded({ data: a.data, table: a.table } as never, b, c, shape), /a\.format must be the format record of its codes/);
    assert.throws(() => (native.sgemmCoded as (...args: unknown[]) => void)(false, false, 2, 2, 3, a.data), /sgemmCoded takes its options as an object \(argument 4\)/);
    assert.throws(() => native.sgemmCoded(a.data as never, b, c, shape), /a must be an operand object/);
    assert.throws(() => (native.absMax as (...args: unknown[]) => void)(new Float32Array(4), 2), /absMax takes its options as an object/);
    assert.throws(() => native.encode(new Float32Array(4), new Uint8Array(4), { params: { m: 2 } as never }), /missing option emin/);
  });

  test('maps large blocks on their own (1 MiB unless OCTET_MMAP_THRESHOLD says otherwise)', () => {
    const threshold = (env: Record<string, string>) => {
      const r = spawnSync(process.execPath, ['-e', `process.stdout.write(String(require('./build/Release/octet_native.node').info().mmapThreshold))`], {
        cwd: root, env: { ...process.env, ...env }, encoding: 'utf8',
      });
      assert.equal(r.status, 0, r.stderr);
      return Number(r.stdout);
    };
    // glibc (Debian, this project's machines) honours the setting; elsewhere the addon reports 0.
    const glibc = Boolean((process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header?.glibcVersionRuntime);
    assert.equal(threshold({}), glibc ? 1 << 20 : 0);
    assert.equal(threshold({ OCTET_MMAP_THRESHOLD: '262144' }), glibc ? 262144 : 0);
    assert.equal(threshold({ OCTET_MMAP_THRESHOLD: '0' }), 0);
  });

  for (const kernel of ['avx2', 'portable']) {
    test(`the ${kernel} GEMM and codec kernels match the references`, () => {
      const r = check({ OCTET_GEMM_KERNEL: kernel, OCTET_CODEC_KERNEL: kernel });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`kernel (${kernel}|portable)`));
      assert.match(r.stdout, /gemm max relative error [0-9.e-]+ ok/);
      assert.match(r.stdout, /codec mismatches 0\n/);
      assert.match(r.stdout, /lowp mismatches 0\n/);
      assert.match(r.stdout, /block mismatches 0\n/);
      assert.match(r.stdout, /sparse mismatches 0\n/);
      assert.match(r.stdout, /batch norm mismatches 0\n/);
      // Pruned FP8 input gradients run on AVX-512 and AVX2, never on the plain loops.
      if (r.stdout.includes('kernel avx2')) assert.match(r.stdout, /sparse fp8 input gradients 3\n/);
      if (r.stdout.includes('kernel portable')) assert.match(r.stdout, /sparse fp8 input gradients 0\n/);
      assert.match(r.stdout, /bsr build mismatches 0 \([1-9]\d* into stale pooled arrays\)\n/);
      assert.match(r.stdout, /winograd max relative error [0-9.e-]+ ok/);
      assert.match(r.stdout, /direct mismatches 0\n/);
    });
  }

  test('FP8 products on the bfloat16-pair kernel (OCTET_BF16_PAIRS=on) give the float kernel\'s bits', (t) => {
    const run = (setting: string) => {
      const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'test', 'helpers', 'bf16_pairs_check.ts')], {
        cwd: root, env: { ...process.env, OCTET_BF16_PAIRS: setting }, encoding: 'utf8',
      });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout;
    };
    const bad = spawnSync(process.execPath, ['--import', 'tsx', '-e', "import('./src/kernels/native.ts').then((m) => m.nativeCore())"], {
      cwd: root, env: { ...process.env, OCTET_BF16_PAIRS: 'yes' }, encoding: 'utf8',
    });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /OCTET_BF16_PAIRS is "yes"; expected "on", "off" or "auto"/);
    const off = run('off');
    assert.match(off, /bf16Pairs false\npair products 0\nsparse pair products 0\nblock pair products 0\nmismatches 0\n/);
    const on = run('on');
    if (/bf16Pairs false/.test(on)) {
      t.skip('this CPU has no AVX512_BF16');
      return;
    }
    // Every product but the one with Inf and NaN among its operands ran on the pair kernel.
    assert.match(on, /pair products (\d+)\n/);
    assert.ok(Number(/pair products (\d+)/.exec(on)![1]) >= 15, on);
    // The block-sparse convolutions with even block columns and finite images: 5 shapes x 4 blocks.
    assert.match(on, /sparse pair products 20\n/);
    // The block-scaled GEMMs with float32 partials, 8-bit elements and even runs: 3 of 5.
    assert.match(on, /block pair products 3\n/);
    assert.match(on, /mismatches 0\n/);
    assert.equal(/hash (\w+)/.exec(on)![1], /hash (\w+)/.exec(off)![1]);
  });

  test('the portable build (no x86 code at all, as on arm64) compiles and matches the references', () => {
    const nodeInclude = join(dirname(dirname(process.execPath)), 'include', 'node');
    assert.ok(existsSync(join(nodeInclude, 'node_api.h')), `Node headers not found at ${nodeInclude}`);
    const out = join(mkdtempSync(join(tmpdir(), 'octet-portable-')), 'octet_native.node');
    const sources = readdirSync(join(root, 'native')).filter((f) => f.endsWith('.cc')).map((f) => join(root, 'native', f));
    const build = spawnSync('g++', [
      '-std=c++17', '-O2', '-fopenmp', '-fPIC', '-shared', '-DOCTET_NO_X86', '-DNAPI_VERSION=8', '-DNAPI_CPP_EXCEPTIONS',
      `-I${nodeInclude}`, `-I${join(root, 'node_modules', 'node-addon-api')}`, ...sources, '-o', out,
    ], { encoding: 'utf8' });
    assert.equal(build.status, 0, build.stderr);
    const r = check({ OCTET_NATIVE_PATH: out });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /kernel portable/);
    assert.match(r.stdout, /gemm max relative error [0-9.e-]+ ok/);
    assert.match(r.stdout, /codec mismatches 0\n/);
    assert.match(r.stdout, /lowp mismatches 0\n/);
    assert.match(r.stdout, /block mismatches 0\n/);
    assert.match(r.stdout, /sparse mismatches 0\n/);
    assert.match(r.stdout, /winograd max relative error [0-9.e-]+ ok/);
  });

  test('a million calls leave memory flat', () => {
    const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', 'test/helpers/leak_check.ts', '1000000'], { cwd: root, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const { rssBeforeMb, rssAfterMb } = JSON.parse(r.stdout) as { rssBeforeMb: number; rssAfterMb: number };
    assert.ok(rssAfterMb - rssBeforeMb < 20, `RSS grew from ${rssBeforeMb.toFixed(1)} MB to ${rssAfterMb.toFixed(1)} MB`);
  });

  test('an addon that fails to load leaves the reference path, with one clear warning', () => {
    const r = check({ OCTET_NATIVE_PATH: join(tmpdir(), 'no-such-octet-addon.node') });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /reference path: Cannot find module/);
    assert.equal(r.stderr.match(/OCTET_NATIVE_UNAVAILABLE/g)?.length, 1, r.stderr);
    assert.match(r.stderr, /running on the TypeScript reference kernels.*npm rebuild octet/);
  });

  test('OCTET_NATIVE=0 runs everything on the reference path', () => {
    const r = check({ OCTET_NATIVE: '0' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /reference path: disabled by OCTET_NATIVE=0/);
    assert.match(r.stdout, /gemm max relative error 0 ok/);
    assert.match(r.stdout, /sparse mismatches 0\n/);
    assert.match(r.stdout, /bsr build mismatches 0 \([1-9]\d* into stale pooled arrays\)\n/);
    assert.doesNotMatch(r.stderr, /OCTET_NATIVE_UNAVAILABLE/, 'a deliberate switch is not warned about');
  });
});
