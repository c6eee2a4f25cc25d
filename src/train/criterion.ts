/**
 * The training criterion beyond its defaults: which label the loss and the metrics skip
 * (`ignoreIndex`) and how the classes are weighted in the loss (`classWeights`). Both are run
 * settings: recorded in config.json and the checkpoint, and a resume must match them.
 *
 * Class weights are PyTorch's `weight=` of cross entropy: the loss is sum(w[y] * l) / sum(w[y]).
 * Given as a list (one non-negative weight per class) or computed from the labels of the run's
 * training subset (every example it trains on, ignored labels left out), deterministically:
 * - `balanced`: total / (classes * count[c]) (scikit-learn's "balanced");
 * - `median`: median(freq) / freq[c] (median-frequency balancing, Eigen & Fergus; SegNet).
 * A class with no labelled pixel in the subset gets weight 0 (it cannot contribute to the loss
 * anyway). The test loss of an evaluation is the same weighted criterion, so it compares with the
 * training loss; mIoU, per-class IoU and pixel accuracy do not depend on the weights.
 */
import { trainingSubset, type Dataset } from '../data/index.js';
import { SettingError } from '../errors.js';

export type ClassWeightSpec = number[] | 'balanced' | 'median';

export const CLASS_WEIGHT_RULES = ['balanced', 'median'] as const;

/** The loss's options for a run: the ignore label and the class weights, resolved. */
export interface Criterion {
  ignoreIndex?: number;
  weights?: Float32Array;
}

/** The dataset as the run sees it: its ignore label replaced by the run's, if it sets one. */
export function withIgnoreIndex(dataset: Dataset, ignoreIndex: number | undefined): Dataset {
  if (ignoreIndex === undefined || ignoreIndex === dataset.ignoreIndex) return dataset;
  if (!(Number.isInteger(ignoreIndex) && ignoreIndex >= 0 && ignoreIndex <= 255)) {
    throw new SettingError('ignoreIndex', `ignore index is ${ignoreIndex}; expected an integer label from 0 to 255`);
  }
  if (dataset.task !== 'segmentation') {
    throw new SettingError('ignoreIndex', `an ignore index applies to segmentation labels; ${dataset.name} is a classification set`);
  }
  return { ...dataset, ignoreIndex };
}

/** Labelled pixels (or examples) per class over `indices` of the training split, ignored labels left out. */
export function classCounts(dataset: Dataset, indices: ArrayLike<number>): Float64Array {
  const counts = new Float64Array(dataset.classes);
  const split = dataset.train;
  const labels = split.masks ?? split.labels;
  if (!labels) return counts;
  const per = split.masks ? split.height * split.width : 1;
  for (let i = 0; i < indices.length; i++) {
    const base = indices[i] * per;
    for (let p = 0; p < per; p++) {
      const label = labels[base + p];
      if (label !== dataset.ignoreIndex && label < dataset.classes) counts[label]++;
    }
  }
  return counts;
}

/** Weights from a rule over class counts (see the top of the file). */
export function weightsFromCounts(rule: 'balanced' | 'median', counts: ArrayLike<number>): Float32Array {
  const classes = counts.length;
  let total = 0;
  for (let c = 0; c < classes; c++) total += counts[c];
  const out = new Float32Array(classes);
  if (total === 0) return out;
  if (rule === 'balanced') {
    for (let c = 0; c < classes; c++) out[c] = counts[c] > 0 ? total / (classes * counts[c]) : 0;
    return out;
  }
  const present = Array.from(counts).filter((n) => n > 0).map((n) => n / total).sort((a, b) => a - b);
  const mid = present.length >> 1;
  const median = present.length % 2 ? present[mid] : (present[mid - 1] + present[mid]) / 2;
  for (let c = 0; c < classes; c++) out[c] = counts[c] > 0 ? median / (counts[c] / total) : 0;
  return out;
}

/** Check a class-weight setting against the data set's classes. */
export function checkClassWeights(spec: ClassWeightSpec, classes: number): void {
  if (typeof spec === 'string') {
    if (!(CLASS_WEIGHT_RULES as readonly string[]).includes(spec)) {
      throw new SettingError('classWeights', `class weights "${spec}": expected ${CLASS_WEIGHT_RULES.join(' or ')}, or one number per class`);
    }
    return;
  }
  if (spec.length !== classes) {
    throw new SettingError('classWeights', `class weights: ${spec.length} given; this data set has ${classes} classes, give one weight per class`);
  }
  const bad = spec.findIndex((w) => !(Number.isFinite(w) && w >= 0));
  if (bad >= 0) throw new SettingError('classWeights', `class weight ${bad} is ${spec[bad]}; expected a finite number >= 0`);
  if (!spec.some((w) => w > 0)) throw new SettingError('classWeights', 'class weights are all 0; at least one class must count');
}

/**
 * The criterion of a run over `dataset` (already with the run's ignore label) training on
 * `subset` (indices of the training split).
 */
export function runCriterion(dataset: Dataset, classWeights: ClassWeightSpec | undefined, subset: ArrayLike<number>): Criterion {
  const criterion: Criterion = dataset.ignoreIndex !== undefined ? { ignoreIndex: dataset.ignoreIndex } : {};
  if (classWeights === undefined) return criterion;
  checkClassWeights(classWeights, dataset.classes);
  criterion.weights = typeof classWeights === 'string' ? weightsFromCounts(classWeights, classCounts(dataset, subset)) : Float32Array.from(classWeights);
  return criterion;
}

/** A saved run's view of the data and its criterion, from its recorded settings. */
export function savedCriterion(
  config: { ignoreIndex?: number; classWeights?: ClassWeightSpec; seed: number; maxTrain?: number },
  dataset: Dataset,
): { dataset: Dataset; criterion: Criterion } {
  const seen = withIgnoreIndex(dataset, config.ignoreIndex);
  const subset = config.classWeights === undefined || Array.isArray(config.classWeights) ? [] : trainingSubset(seen.train.count, config.seed, config.maxTrain);
  return { dataset: seen, criterion: runCriterion(seen, config.classWeights, subset) };
}
