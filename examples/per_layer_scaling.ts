/**
 * Experiment: one global loss scale vs per-layer gradient scaling, with E5M2 errors.
 *
 * A small CNN on real MNIST whose layers' error magnitudes differ by orders of magnitude: each
 * block is conv -> batch norm -> ReLU -> a fixed gain. Batch norm makes the forward pass (and so
 * float32 training with Adam) indifferent to the gains, but the error reaching the convolution
 * after a gain c is scaled by 1/c. Gains 1e5 and 1e-2 spread the conv errors over 7 decades,
 * more than E5M2's range can hold under one scale.
 *
 * Three runs with the same seed and data order: fp32, fp8-global (E5M2 errors, one dynamic loss
 * scale) and fp8 (E5M2 errors, per-layer dynamic scales). Both dynamic schemes grow after 4 clean
 * steps (the presets use 50) so that a run of a few hundred steps shows where each settles. Printed: per-layer underflow fraction
 * of the errors (mean over training), each layer's final error scale, the final training loss
 * and test accuracy.
 *
 *   npm run experiment:scaling            (about three minutes on 2 cores)
 */
import {
  AdamW,
  BatchNorm2d,
  Conv2d,
  Generator,
  Linear,
  Module,
  Tensor,
  adaptiveAvgPool2d,
  applyRecipe,
  backward,
  cosineWithWarmup,
  flatten,
  maxPool2d,
  noGrad,
  presetRecipe,
  readMnist,
  relu,
  scale,
  softmaxCrossEntropy,
  type ImageSet,
  type Recipe,
} from '../src/index.js';

const GAINS = [1e5, 1e-2, 1];
const TRAIN = 4096;
const TEST = 2000;
const BATCH = 64;
const EPOCHS = 4;
const SEED = 7;
const GROWTH_INTERVAL = 4;

function withGrowthInterval(recipe: Recipe, growthInterval: number): Recipe {
  if (recipe.errors?.scaling.mode === 'dynamic') recipe.errors.scaling.growthInterval = growthInterval;
  if (recipe.lossScaling.mode === 'dynamic') recipe.lossScaling.growthInterval = growthInterval;
  return recipe;
}

class GainCnn extends Module {
  private readonly convs: Conv2d[] = [];
  private readonly norms: BatchNorm2d[] = [];
  private readonly fc: Linear;

  constructor(seed: number) {
    super();
    const g = new Generator(seed);
    const widths = [1, 16, 32, 32];
    for (let i = 0; i < 3; i++) {
      this.convs.push(this.registerModule(`conv${i + 1}`, new Conv2d(widths[i], widths[i + 1], 3, { padding: 1, bias: false, generator: g })));
      this.norms.push(this.registerModule(`bn${i + 1}`, new BatchNorm2d(widths[i + 1])));
    }
    this.fc = this.registerModule('fc', new Linear(32, 10, { generator: g }));
  }

  protected forward(x: Tensor): Tensor {
    let y = x;
    for (let i = 0; i < 3; i++) {
      y = relu(this.norms[i].call(this.convs[i].call(y)));
      if (i < 2) y = maxPool2d(y, 2);
      y = scale(y, GAINS[i]);
    }
    return this.fc.call(flatten(adaptiveAvgPool2d(y, 1)));
  }
}

function batchOf(set: ImageSet, indices: ArrayLike<number>): { x: Tensor; labels: Int32Array } {
  const plane = set.height * set.width;
  const x = Tensor.zeros([indices.length, 1, set.height, set.width]);
  const labels = new Int32Array(indices.length);
  for (let b = 0; b < indices.length; b++) {
    const i = indices[b];
    for (let p = 0; p < plane; p++) x.data[b * plane + p] = (set.images[i * plane + p] / 255 - 0.1307) / 0.3081;
    labels[b] = set.labels[i];
  }
  return { x, labels };
}

interface RunResult {
  recipe: string;
  underflow: Record<string, number>;
  errorScale: Record<string, number>;
  /** Layer updates skipped for an overflow (layers x steps). */
  skippedLayerSteps: number;
  finalLoss: number;
  testAccuracy: number;
  seconds: number;
}

function run(recipeName: string, train: ImageSet, test: ImageSet): RunResult {
  const start = Date.now();
  const model = new GainCnn(SEED);
  const session = applyRecipe(model, withGrowthInterval(presetRecipe(recipeName), GROWTH_INTERVAL), { seed: SEED });
  const optimizer = new AdamW(model.namedParameters(), { lr: 3e-3, weightDecay: 1e-4 });
  const stepsPerEpoch = TRAIN / BATCH;
  const totalSteps = stepsPerEpoch * EPOCHS;
  // Underflow of the errors, averaged over the last epoch (after the dynamic scales have settled).
  const underflowSum: Record<string, number> = {};
  const underflowCount: Record<string, number> = {};
  let skippedLayerSteps = 0;
  const losses: number[] = [];
  for (let epoch = 0; epoch < EPOCHS; epoch++) {
    const order = new Generator(SEED + epoch).permutation(TRAIN);
    for (let s = 0; s < stepsPerEpoch; s++) {
      const step = epoch * stepsPerEpoch + s;
      optimizer.lr = cosineWithWarmup(step, { baseLr: 3e-3, totalSteps, warmupSteps: 10 });
      const { x, labels } = batchOf(train, order.subarray(s * BATCH, (s + 1) * BATCH));
      optimizer.zeroGrad();
      const loss = softmaxCrossEntropy(model.call(x), labels);
      backward(session.scaleLoss(loss));
      const outcome = session.finishBackward();
      // A global overflow skips every layer's update.
      skippedLayerSteps += outcome.overflowed.includes('(loss)') ? session.layers.length : outcome.overflowed.length;
      optimizer.stepAll(outcome.skip);
      losses.push(loss.item());
      for (const r of session.telemetry.flush(step).records) {
        if (r.tensor !== 'errors' || epoch < EPOCHS - 1) continue;
        underflowSum[r.layer] = (underflowSum[r.layer] ?? 0) + r.underflow;
        underflowCount[r.layer] = (underflowCount[r.layer] ?? 0) + 1;
      }
    }
  }
  model.eval();
  let correct = 0;
  noGrad(() => {
    for (let s = 0; s < TEST; s += 500) {
      const idx = Int32Array.from({ length: Math.min(500, TEST - s) }, (_, i) => s + i);
      const { x, labels } = batchOf(test, idx);
      const logits = model.call(x);
      for (let b = 0; b < labels.length; b++) {
        const row = logits.data.subarray(b * 10, (b + 1) * 10);
        if (row.indexOf(Math.max(...row)) === labels[b]) correct++;
      }
    }
  });
  const underflow: Record<string, number> = {};
  for (const layer of Object.keys(underflowSum)) underflow[layer] = underflowSum[layer] / underflowCount[layer];
  const errorScale = Object.fromEntries(session.layers.map((l) => [l.name, l.errorScale ?? session.lossScaler.scale]));
  const tail = losses.slice(-16);
  return {
    recipe: recipeName,
    underflow,
    errorScale,
    skippedLayerSteps,
    finalLoss: tail.reduce((a, b) => a + b, 0) / tail.length,
    testAccuracy: correct / TEST,
    seconds: (Date.now() - start) / 1000,
  };
}

const train = readMnist('train');
const test = readMnist('test');
const results = ['fp32', 'fp8-global', 'fp8'].map((r) => run(r, train, test));
const layers = ['conv1', 'conv2', 'conv3', 'fc'];
const pct = (v: number | undefined) => (v === undefined ? '-' : `${(100 * v).toFixed(2)}%`);
console.log(`GainCnn on MNIST (${TRAIN} train, ${TEST} test images), ${EPOCHS} epochs, batch ${BATCH}, gains ${GAINS.join(', ')}\n`);
console.log('Error underflow (fraction of nonzero values flushed to zero), mean over the last epoch:\n');
console.log('| recipe | ' + layers.map((l) => `${l} underflow`).join(' | ') + ` | skipped layer updates (of ${4 * EPOCHS * (TRAIN / BATCH)}) | final loss | test acc | s |`);
console.log('|---|' + layers.map(() => '---|').join('') + '---|---|---|---|');
for (const r of results) {
  console.log(
    `| ${r.recipe} | ${layers.map((l) => pct(r.underflow[l])).join(' | ')} | ${r.skippedLayerSteps} | ${r.finalLoss.toFixed(4)} | ${(100 * r.testAccuracy).toFixed(1)}% | ${r.seconds.toFixed(0)} |`,
  );
}
console.log('\nFinal error scales (per layer; for fp8-global the one loss scale):');
for (const r of results.slice(1)) console.log(`  ${r.recipe}: ${layers.map((l) => `${l} 2^${Math.log2(r.errorScale[l]).toFixed(0)}`).join(', ')}`);
console.log('\n' + JSON.stringify(results));
