/**
 * One training-speed measurement in its own process, so that its peak memory is its own:
 * argv [WorkerJob as JSON]; prints one JSON line (WorkerResult): the best step's time, the
 * process's peak resident memory, the bytes the graph keeps for backward at the end of a forward
 * pass (activations, their codes and masks; parameters excluded), the bytes of the weights and
 * the optimizer's moments, and, when asked, a profile of further steps (see autograd/profile.ts).
 * The data is random: only speed and memory are measured. Classification models get one label
 * per image, segmentation models one per pixel.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { Profiler, backward, profiled, savedMemory, withActivationRelease } from '../autograd/index.js';
import { buildModel, modelInfo } from '../nn/index.js';
import { softmaxCrossEntropy } from '../ops/index.js';
import { AdamW } from '../optim/index.js';
import { applyRecipe, parseRecipe } from '../quant/index.js';
import { Generator, Tensor } from '../tensor/index.js';
import { summarizeProfile, type StepProfile, type WorkerJob, type WorkerResult } from './train_profile.js';

const job = JSON.parse(process.argv[2]) as WorkerJob;
const [channels, height, width] = job.input;
const info = modelInfo(job.model);
const recipe = parseRecipe(job.recipe);
const net = buildModel(job.model, { classes: job.classes, inChannels: channels, seed: 1, ...(job.width ? { width: job.width } : {}) });
const session = applyRecipe(net, recipe, { seed: 1 });
const optimizer = new AdamW(net.namedParameters(), { lr: 1e-3, masterWeights: recipe.masterWeights, moments: recipe.moments });
const g = new Generator(2);
const x = Tensor.randn([job.batch, channels, height, width], g);
const labelCount = info.task === 'segmentation' ? job.batch * height * width : job.batch;
const labels = Int32Array.from({ length: labelCount }, () => g.below(job.classes));
const params = net.parameters().map((p) => p.data);
let savedBytes = 0;

// The first (untimed) step also counts what its graph saved.
const step = (countSaved = false) => {
  optimizer.zeroGrad({ release: true });
  withActivationRelease(() => {
    const loss = softmaxCrossEntropy(net.call(x), labels);
    if (countSaved) savedBytes = savedMemory(loss, params).bytes;
    backward(session.scaleLoss(loss));
  });
  optimizer.stepAll(session.finishBackward().skip);
};

/** The same step, each part under the profiler. */
const profiledStep = (profiler: Profiler) =>
  profiled(profiler, () => {
    profiler.section('step', 'zero gradients', () => optimizer.zeroGrad({ release: true }));
    withActivationRelease(() => {
      profiler.startForward();
      const loss = softmaxCrossEntropy(net.call(x), labels);
      profiler.endForward();
      const scaled = profiler.section('step', 'loss scaling', () => session.scaleLoss(loss));
      backward(scaled);
    });
    const outcome = profiler.section('step', 'gradient checks and scales', () => session.finishBackward());
    profiler.section('step', 'optimizer', () => optimizer.stepAll(outcome.skip));
  });

step(true);
let best = Infinity;
for (let i = 0; i < job.steps; i++) {
  const t0 = process.hrtime.bigint();
  step();
  best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
}

let profile: StepProfile | null = null;
if (job.profileSteps > 0) {
  const profiler = new Profiler(net.namedModules());
  let gcMs = 0;
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcMs += e.duration;
  });
  observer.observe({ entryTypes: ['gc'] });
  let wall = 0;
  for (let i = 0; i < job.profileSteps; i++) {
    const t0 = performance.now();
    profiledStep(profiler);
    wall += performance.now() - t0;
  }
  // GC entries arrive asynchronously: let them in before reading the total.
  await new Promise((resolve) => setTimeout(resolve, 20));
  observer.disconnect();
  profile = summarizeProfile(profiler, job.profileSteps, wall, gcMs);
}

const stateBytes = params.reduce((sum, p) => sum + p.byteLength, 0) + optimizer.stateBytes();
const result: WorkerResult = {
  seconds_per_step: best,
  images_per_s: job.batch / best,
  peak_rss_mb: process.resourceUsage().maxRSS / 1024,
  saved_mb: savedBytes / 2 ** 20,
  state_mb: stateBytes / 2 ** 20,
  params: net.numParameters(),
  profile,
};
process.stdout.write(JSON.stringify(result) + '\n');
