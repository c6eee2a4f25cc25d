/**
 * Every kernel path on this one machine: the simpler micro-kernels forced by environment
 * variables, and the TypeScript reference path when the addon is switched off.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
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

  for (const kernel of ['avx2', 'portable']) {
    test(`the ${kernel} GEMM and codec kernels match the references`, () => {
      const r = check({ OCTET_GEMM_KERNEL: kernel, OCTET_CODEC_KERNEL: kernel });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`kernel (${kernel}|portable)`));
      assert.match(r.stdout, /gemm max relative error [0-9.e-]+ ok/);
      assert.match(r.stdout, /codec mismatches 0\n/);
    });
  }

  test('OCTET_NATIVE=0 runs everything on the reference path', () => {
    const r = check({ OCTET_NATIVE: '0' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /reference path: disabled by OCTET_NATIVE=0/);
    assert.match(r.stdout, /gemm max relative error 0 ok/);
    assert.doesNotMatch(r.stderr, /OCTET_NATIVE_UNAVAILABLE/, 'a deliberate switch is not warned about');
  });
});
