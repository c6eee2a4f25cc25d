/**
 * The main job (`npm start`): its configuration stays within its step budget, so that it finishes
 * in about a minute and a half on two cores of the machines it was measured on (README: "The main
 * job"). A count of steps, not a timing.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { presetNames } from '../../src/quant/index.js';

/** Training steps of all recipes together (fp32 + sfp8 + fp8 at 120 steps each measured 83 s). */
const STEP_BUDGET = 360;
/** Test images each recipe evaluates. */
const EVAL_BUDGET = 2000;
/** Fewer steps than this and fp8's gap to fp32 is noise (README, docs/benchmarks.md). */
const MIN_STEPS = 100;

function startFlags(): Map<string, string> {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> };
  const words = pkg.scripts.start.split(/\s+/);
  assert.deepEqual(words.slice(0, 3), ['node', 'bin/octet.js', 'compare'], 'npm start runs octet compare');
  const flags = new Map<string, string>();
  for (let i = 3; i < words.length; i++) {
    assert.ok(words[i].startsWith('--'), `unexpected word ${words[i]}`);
    const next = words[i + 1];
    if (next === undefined || next.startsWith('--')) flags.set(words[i], 'true');
    else flags.set(words[i], words[++i]);
  }
  return flags;
}

describe('the main job (npm start)', () => {
  const flags = startFlags();
  const recipes = (flags.get('--recipes') ?? '').split(',');
  const batch = Number(flags.get('--batch-size') ?? 64);
  const epochs = Number(flags.get('--epochs') ?? 1);
  const maxTrain = Number(flags.get('--max-train'));
  const steps = epochs * Math.ceil(maxTrain / batch);

  test('compares fp8 with fp32 on the data that installs with the package', () => {
    assert.equal(flags.get('--data'), 'mnist');
    assert.ok(recipes.includes('fp32') && recipes.includes('fp8'), `recipes ${recipes.join(',')}`);
    for (const r of recipes) assert.ok(presetNames().includes(r), `${r} is a preset`);
  });

  test(`trains at most ${STEP_BUDGET} steps in all, and at least ${MIN_STEPS} per recipe`, () => {
    assert.ok(Number.isInteger(maxTrain) && maxTrain > 0, '--max-train is set (the job trains on a fixed subset)');
    assert.ok(steps >= MIN_STEPS, `${steps} steps per recipe`);
    assert.ok(steps * recipes.length <= STEP_BUDGET, `${steps} steps x ${recipes.length} recipes`);
  });

  test(`evaluates at most ${EVAL_BUDGET} test images per recipe`, () => {
    const maxTest = Number(flags.get('--max-test'));
    assert.ok(Number.isInteger(maxTest) && maxTest > 0 && maxTest <= EVAL_BUDGET, `--max-test ${flags.get('--max-test')}`);
  });
});
