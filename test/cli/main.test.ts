import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { runOctet } from '../helpers/cli_io.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

describe('octet command line', () => {
  test('--help lists the commands', async () => {
    const r = await runOctet(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /formats/);
    assert.match(r.stdout, /cast/);
  });

  test('an unknown command fails with a usage hint', async () => {
    const r = await runOctet(['frobnicate']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /unknown command 'frobnicate'/);
  });

  test('the executable runs as a process: stdin in, exit code out', () => {
    const ok = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/bin.ts', 'cast', '-f', 'e4m3'], {
      cwd: root,
      input: '1.1 -inf\n',
      encoding: 'utf8',
    });
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(ok.stdout, '1.1\t0x39\t1.125\n-inf\t0xff\tNaN\n');
    const bad = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/bin.ts', 'cast', '-f', 'nope'], {
      cwd: root,
      input: '1',
      encoding: 'utf8',
    });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /^octet: error: unknown format "nope"/);
  });
});
