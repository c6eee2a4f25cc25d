/** Quantization recipes, scaling, telemetry, and applying a recipe to a model. */
export { GRANULARITIES, InvalidRecipeError, isBlockScaled, isFloat32Accumulation, parseRecipe, recipeSchema } from './recipe.js';
export type { Granularity, LossScalingSpec, Recipe, RecipeInput, ScalingSpec, TensorClassSpec } from './recipe.js';
export { PRESET_RECIPES, presetNames, presetRecipe } from './presets.js';
export { loadRecipe } from './load.js';
export { DynamicScale, LossScaler, TensorScaler, amaxOf, scaleFromAmax } from './scaling.js';
export type { DynamicSpec, ScaleEvent } from './scaling.js';
export { NumericsTelemetry } from './telemetry.js';
export type { LayerEventRecord, NumericsRecord, OperandStats, TelemetryState, TensorClass } from './telemetry.js';
export { quantizeOperand } from './quantizer.js';
export { LayerQuantState } from './layer_state.js';
export type { OperandObserver } from './layer_state.js';
export { QuantSession, applyRecipe } from './session.js';
export type { ApplyOptions, SessionState, StepOutcome } from './session.js';
export { DEFAULT_STAT_FORMATS, NumericsLab, STAT_QUANTILES, STAT_TENSORS, productError, statFormats, tensorRecord } from './stats.js';
export type { FormatFit, ProductError, StatTensor, StatsOptions, StatsRecord } from './stats.js';
