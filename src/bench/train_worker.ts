/**
 * One training-speed measurement in its own process, so that its peak memory is its own:
 * argv [model, recipe JSON, batch, steps, size, classes]; prints one JSON line
 * {seconds_per_step, images_per_s, peak_rss_mb}. The data is random: only speed is measured.
 */
import { backward } from '../autograd/index.js';
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
const step = () => {
  optimizer.zeroGrad();
  const loss = softmaxCrossEntropy(net.call(x), labels);
  backward(session.scaleLoss(loss));
  optimizer.stepAll(session.finishBackward().skip);
};
step();
let best = Infinity;
for (let i = 0; i < steps; i++) {
  const t0 = process.hrtime.bigint();
  step();
  best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
}
process.stdout.write(JSON.stringify({ seconds_per_step: best, images_per_s: batch / best, peak_rss_mb: process.resourceUsage().maxRSS / 1024 }) + '\n');
