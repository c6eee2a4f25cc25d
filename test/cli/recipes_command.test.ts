import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseRecipe } from '../../src/quant/index.js';
import { runOctet } from '../helpers/cli_io.js';

describe('octet recipes', () => {
  test('--json is an array of presets with name and description', async () => {
    const r = await runOctet(['recipes', '--json']);
    assert.equal(r.code, 0);
    const list = JSON.parse(r.stdout) as { name: string; description: string }[];
    assert.deepEqual(list.map((x) => x.name), ['fp32', 'sfp8', 'fp8', 'fp8-m16', 'fp8-global', 'hybrid', 'rowwise', 'mxfp8', 'mxfp6', 'mxfp4', 'deepseek-v3']);
    assert.ok(list.every((x) => x.description.length > 20));
  });

  test('the table shows formats, accumulation and gradient scaling per preset', async () => {
    const r = await runOctet(['recipes']);
    assert.match(r.stdout, /^fp8\s+e5m2\s+e5m2\s+e5m2\s+e5m2\s+e6m9\/64\s+per-layer\s+fp32$/m);
  });

  test('show prints a preset as JSON that parses back to the same recipe', async () => {
    const r = await runOctet(['recipes', 'show', 'fp8-m16']);
    const recipe = JSON.parse(r.stdout);
    assert.deepEqual(parseRecipe(recipe), recipe);
    assert.equal(recipe.masterWeights.format, 'e6m9');
    const bad = await runOctet(['recipes', 'show', 'fp4']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /unknown recipe "fp4"; choose a preset/);
  });
});
