/** Training: the loop, evaluation metrics, checkpoints (safetensors) and reports. */
export { DIVERGED_STEPS, pruneCheckpoint, train } from './trainer.js';
export { buildTrainModel } from './build.js';
export { checkpointModel, evalBatchSize, evaluate, evaluateCheckpoint } from './evaluation.js';
export type { CheckpointEval, CheckpointEvalOptions } from './evaluation.js';
export { CHECKPOINT_FILE, CONFIG_FILE, METRICS_FILE, RESULT_FILE } from './run_folder.js';
export type { ConvAlgorithm, EvalResult, StatsRunOptions, StepProgress, TrainConfig, TrainHooks, TrainResult, TrainRunOptions } from './trainer.js';
export { ConfusionMatrix, topKCorrect } from './metrics.js';
export { CLASS_WEIGHT_RULES, classCounts, runCriterion, savedCriterion, weightsFromCounts, withIgnoreIndex } from './criterion.js';
export type { ClassWeightSpec, Criterion } from './criterion.js';
export { CHECKPOINT_FORMAT, checkpointMasks, readCheckpointRecord, restoreCheckpoint, saveCheckpoint } from './checkpoint.js';
export type { StoredMask } from './checkpoint.js';
export type { CheckpointRecord } from './checkpoint.js';
export { asFloat32, codeDtype, decodeSafetensors, fillsBytes, encodeSafetensors, packCodes, readSafetensors, unpackCodes, writeFileAtomic, writeSafetensors } from './safetensors.js';
export type { SafetensorsDtype, StoredTensor } from './safetensors.js';
export { baselineOf, pointsText, summarizeComparison, writeReport } from './report.js';
export type { CompareEntry, CompareSummary } from './report.js';
export {
  DEFAULT_TOLERANCE, narrowestFormats, readStats, recipeLine, recipeRows, STATS_FILE, STATS_FORMAT, STATS_PAGE, statsDocument, writeStats, writeStatsPage,
} from './stats_report.js';
export type { NarrowestFit, StatsDocument, StatsFormatInfo } from './stats_report.js';
export { checkpointStats } from './checkpoint_stats.js';
export type { CheckpointStatsOptions } from './checkpoint_stats.js';
