import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PRESETS } from '../../src/formats/index.js';
import { runOctet } from '../helpers/cli_io.js';

describe('octet formats', () => {
  test('the table lists every preset with its facts', async () => {
    const r = await runOctet(['formats']);
    assert.equal(r.code, 0);
    for (const f of PRESETS) assert.match(r.stdout, new RegExp(`^${f.name}\\s`, 'm'));
    assert.match(r.stdout, /^float8_e5m2\s+e5m2, fp8_e5m2\s+1-5-2\s+15\s+57344\s+2\^-14\s+2\^-16\s+2\^-2\s+Inf, NaN$/m);
    assert.match(r.stdout, /^float8_e4m3fn\s.*1-4-3\s+7\s+448\s+2\^-6\s+2\^-9\s+2\^-3\s+NaN only \(no Inf\)$/m);
    assert.match(r.stdout, /^float16_e6m9\s.*1-6-9\s+31\s+4290772992\s+2\^-30\s+2\^-39/m);
  });

  test('--json gives the facts as numbers', async () => {
    const r = await runOctet(['formats', '--json']);
    const facts = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
    // Every preset, then the MX scale format E8M0.
    assert.equal(facts.length, PRESETS.length + 1);
    assert.deepEqual([facts[facts.length - 1].name, facts[facts.length - 1].max, facts[facts.length - 1].min_normal], ['float8_e8m0fnu', 2 ** 127, 2 ** -127]);
    const e5m2 = facts.find((f) => f.name === 'float8_e5m2')!;
    assert.deepEqual(
      [e5m2.layout, e5m2.bias, e5m2.max, e5m2.min_normal, e5m2.min_subnormal, e5m2.epsilon, e5m2.specials],
      ['1-5-2', 15, 57344, 2 ** -14, 2 ** -16, 0.25, 'ieee'],
    );
  });

  test('named formats, including eXmY, and a clear error for an unknown one', async () => {
    const r = await runOctet(['formats', 'e3m4', 'bf16', '--json']);
    assert.deepEqual(JSON.parse(r.stdout).map((f: { name: string }) => f.name), ['e3m4', 'bfloat16']);
    const bad = await runOctet(['formats', 'e3m']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /unknown format "e3m"/);
  });
});
