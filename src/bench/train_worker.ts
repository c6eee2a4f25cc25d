/**
 * One training-speed measurement in its own process, so that its peak memory is its own:
 * argv [model, recipe JSON, batch, steps, size, classes]; prints one JSON line
 * {seconds_per_step, images_per_s, peak_rss_mb, saved_mb, state_mb}: the best step's time, the
 * process's peak resident memory, the bytes the graph keeps for backward at the end of a forward
 * pass (activations, their codes and masks; parameters excluded), and the bytes of the weights
 * and the optimizer's moments. The data is random: only speed and memory are measured.
 */
import { backward, savedMemory } from '../autograd/index.js';
import { buildModel } from '../nn/index.js';
import { softmaxCrossEntropy } from '../ops/index.js';
import { AdamW } from '../optim/index.js';
import { applyRecipe, parseRecipe } from '../quant/index.js';
import { Generator, Tensor } from '../tensor/index.js';

const [model, recipeJson, batchText, stepsText, sizeText, classesText] = process.argv.slice(2);
const batch = Number(batchText);
const steps = Number(stepsText);
const size = Number(sizeText);
const classes = Number(classesText);
const recipe = parseRecipe(JSON.parse(recipeJson));
const net = buildModel(model, { classes, inChannels: 3, seed: 1 });
const session = applyRecipe(net, recipe, { seed: 1 });
const optimizer = new AdamW(net.namedParameters(), { lr: 1e-3, masterWeights: recipe.masterWeights, moments: recipe.moments });
const g = new Generator(2);
const x = Tensor.randn([batch, 3, size, size], g);
const labels = Int32Array.from({ length: batch }, () => g.below(classes));
const params = net.parameters().map((p) => p.data);
let savedBytes = 0;
// The first (untimed) step also counts what its graph saved.
const step = (countSaved = false) => {
  optimizer.zeroGrad();
  const loss = softmaxCrossEntropy(net.call(x), labels);
  if (countSaved) savedBytes = savedMemory(loss, params).bytes;
  backward(session.scaleLoss(loss));
  optimizer.stepAll(session.finishBackward().skip);
};
step(true);
let best = Infinity;
for (let i = 0; i < steps; i++) {
  const t0 = process.hrtime.bigint();
  step();
  best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
}
const stateBytes = params.reduce((sum, p) => sum + p.byteLength, 0) + optimizer.stateBytes();
process.stdout.write(
  JSON.stringify({
    seconds_per_step: best,
    images_per_s: batch / best,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    saved_mb: savedBytes / 2 ** 20,
    state_mb: stateBytes / 2 ** 20,
  }) + '\n',
);
