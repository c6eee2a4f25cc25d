import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InvalidRecipeError, PRESET_RECIPES, loadRecipe, parseRecipe, presetRecipe } from '../../src/quant/index.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function message(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof InvalidRecipeError || (error as Error).name.endsWith('Error'));
    return (error as Error).message;
  }
  assert.fail('expected an error');
}

describe('recipes', () => {
  test('the presets are valid and named as documented', () => {
    assert.deepEqual(PRESET_RECIPES.map((r) => r.name), ['fp32', 'sfp8', 'fp8', 'fp8-m16', 'fp8-global', 'hybrid', 'rowwise', 'mxfp8', 'mxfp6', 'mxfp4', 'deepseek-v3']);
    assert.deepEqual([presetRecipe('mxfp8').weights?.format, presetRecipe('mxfp8').errors?.format], ['e4m3', 'e5m2']);
    assert.equal(presetRecipe('mxfp4').activations?.format, 'e2m1');
    assert.deepEqual(presetRecipe('deepseek-v3').accumulation, { format: 'hopper-fp8', chunk: 0, rounding: 'nearest', outer: 'fp32', promote: 128 });
    assert.deepEqual(presetRecipe('deepseek-v3').weights?.scaling, { mode: 'current', margin: 0, powerOfTwo: true, granularity: 'tile', block: 128, scaleFormat: 'fp32' });
    const fp8 = presetRecipe('fp8');
    assert.deepEqual([fp8.weights?.format, fp8.activations?.format, fp8.errors?.format, fp8.weightGradients?.format], ['e5m2', 'e5m2', 'e5m2', 'e5m2']);
    assert.equal(fp8.accumulation.format, 'e6m9');
    assert.equal(fp8.errors?.scaling.mode, 'dynamic');
    assert.equal(presetRecipe('sfp8').errors, null);
    assert.equal(presetRecipe('fp8-m16').masterWeights.rounding, 'stochastic');
    assert.equal(presetRecipe('fp8-m16').moments.format, 'bf16');
    assert.equal(presetRecipe('hybrid').weights?.format, 'e4m3');
  });

  test('a minimal recipe gets float32 defaults', () => {
    const r = parseRecipe({ name: 'mine', weights: { format: 'e4m3' } });
    assert.equal(r.activations, null);
    assert.deepEqual(r.weights?.scaling, { mode: 'current', margin: 0, powerOfTwo: true, granularity: 'tensor' });
    assert.equal(r.accumulation.format, 'fp32');
    assert.equal(r.savedActivations, null);
    assert.equal(parseRecipe({ name: 'x', savedActivations: 'e4m3' }).savedActivations, 'e4m3');
    assert.match(message(() => parseRecipe({ name: 'x', savedActivations: 'e3m9x' })), /savedActivations: unknown format/);
  });

  test('block-scaled recipes refuse what makes no sense, naming the field', () => {
    const mxE4m3 = { format: 'e4m3', scaling: { mode: 'current', granularity: 'mx' } };
    const cases: Array<[object, RegExp]> = [
      [{ weights: { format: 'e4m3', scaling: { mode: 'current', granularity: 'mx', scaleFormat: 'fp32' } } }, /weights\.scaling\.scaleFormat: mx blocks have E8M0 scales/],
      [{ weights: { format: 'fp16', scaling: { mode: 'current', granularity: 'tile' } } }, /weights\.format: block-scaled operands take formats of at most 8 bits/],
      [{ weights: { format: 'e4m3', scaling: { mode: 'current', granularity: 'row', block: 16 } } }, /weights\.scaling\.block: granularity row has no block size/],
      [{ weights: mxE4m3, errors: { format: 'e5m2', scaling: { mode: 'dynamic' } } }, /errors\.scaling\.mode: a block-scaled recipe \(weights\) scales every GEMM operand from its current values/],
      [{ weights: mxE4m3, errors: { format: 'e5m2' }, weightGradients: { format: 'e5m2', scaling: { mode: 'current', granularity: 'mx' } } }, /weightGradients\.scaling\.granularity: weight gradients are not GEMM operands here/],
      [{ weights: { format: 'e4m3', scaling: { mode: 'current', granularity: 'blocks' } } }, /weights\.scaling\.granularity: .*tensor.*mx/],
      [{ weights: { format: 'e4m3' }, accumulation: { format: 'hopper-fp8' } }, /accumulation\.format: hopper-fp8 models FP8 tensor cores: activations must be quantized/],
      [{ weights: { format: 'e4m3' }, activations: { format: 'e4m3' }, accumulation: { format: 'hopper-fp8', chunk: 64 } }, /accumulation\.chunk: hopper-fp8 has its own groups and intervals/],
      [{ accumulation: { format: 'volta-fp8' } }, /accumulation\.format: unknown accumulator; use a format .* or hopper-fp8, hopper-fp8-fast/],
    ];
    for (const [fields, pattern] of cases) assert.match(message(() => parseRecipe({ name: 'x', ...fields })), pattern);
  });

  test('a bad recipe names the field, the value found and what is allowed', () => {
    const m = message(() => parseRecipe({ name: 'x', weights: { format: 'e9m9x' }, accumulation: { chunk: -1 }, errors: { format: 'e5m2', rounding: 'up' } }, 'my.json'));
    assert.match(m, /my\.json is not a valid recipe/);
    assert.match(m, /weights\.format: unknown format; use a preset \(float8_e5m2, .*\) or eXmY \(found "e9m9x"\)/);
    assert.match(m, /accumulation\.chunk: .*>=0 \(found -1\)/);
    assert.match(m, /errors\.rounding: .*"nearest"\|"stochastic"\|"toward-zero" \(found "up"\)/);
  });

  test('unknown keys and misplaced dynamic scaling are refused', () => {
    assert.match(message(() => parseRecipe({ name: 'x', wieghts: {} })), /Unrecognized key: "wieghts"/);
    assert.match(message(() => parseRecipe({ name: 'x', weights: { format: 'e5m2', scaling: { mode: 'dynamic' } } })), /weights\.scaling\.mode: dynamic scaling is for errors only/);
    assert.match(message(() => parseRecipe({ name: 'x', weightGradients: { format: 'e5m2' } })), /need quantized errors/);
  });

  test('recipes load from files; a missing file, bad JSON and an unknown preset say what to do', () => {
    const dir = mkdtempSync(join(tmpdir(), 'octet-recipe-'));
    const good = join(dir, 'r.json');
    writeFileSync(good, JSON.stringify({ ...presetRecipe('fp8'), name: 'mine', highPrecisionLayers: ['first'] }));
    assert.deepEqual(loadRecipe(good).highPrecisionLayers, ['first']);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"name": ');
    assert.match(message(() => loadRecipe(bad)), /bad\.json is not valid JSON/);
    assert.match(message(() => loadRecipe(join(dir, 'none.json'))), /cannot be read \(ENOENT\); check the path/);
    assert.match(message(() => loadRecipe('fp9')), /unknown recipe "fp9"; choose a preset \(fp32, sfp8, fp8/);
  });
});
