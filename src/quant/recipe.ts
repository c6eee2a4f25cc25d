/**
 * Recipes: plain JSON that says, per tensor class, the format, rounding and scaling of every
 * GEMM/conv operand, the accumulator, the master weights and optimizer moments, how gradients
 * are scaled, and which layers stay in float32. Validated with a schema; an invalid recipe gets a
 * message naming the field, the value found and what is allowed.
 */
import { z } from 'zod';
import { InvalidArgumentError } from '../errors.js';
import { ROUNDINGS, formatNames, resolveFormat } from '../formats/index.js';
import { HOPPER_MODELS, isAlignedModel } from '../kernels/index.js';

/** An accumulator: a format, or an aligned fixed-point model (hopper-fp8, hopper-fp8-fast). */
const accumulatorName = z.string().superRefine((name, ctx) => {
  if (isAlignedModel(name)) return;
  try {
    resolveFormat(name);
  } catch {
    ctx.addIssue({ code: 'custom', message: `unknown accumulator; use a format (${formatNames().join(', ')}, or eXmY) or ${HOPPER_MODELS.join(', ')}` });
  }
});

/** Whether an accumulation names float32 (the plain float32 sum). */
export function isFloat32Accumulation(name: string): boolean {
  return !isAlignedModel(name) && resolveFormat(name).name === 'float32';
}

const formatName = z.string().superRefine((name, ctx) => {
  try {
    resolveFormat(name);
  } catch {
    ctx.addIssue({ code: 'custom', message: `unknown format; use a preset (${formatNames().join(', ')}) or eXmY` });
  }
});

/** How finely a tensor class is scaled: one scale per tensor, or per block of each GEMM operand. */
export const GRANULARITIES = ['tensor', 'row', 'channel', 'tile', 'mx'] as const;
export type Granularity = (typeof GRANULARITIES)[number];

const perTensorScaling = z.discriminatedUnion('mode', [
  /** No scaling: values are quantized as they are (a global loss scale may still apply to errors). */
  z.object({ mode: z.literal('none') }).strict(),
  /**
   * scale = max finite / (amax * 2^margin), amax of this tensor now; or, with a `granularity`
   * other than `tensor`, one scale per block of each GEMM operand along that GEMM's K
   * (src/kernels/block_quant.ts): `row`/`channel` one per row of the GEMM view, `tile` 1 x block
   * (activations, errors) or block x block (weights), `mx` 1 x block with an E8M0 scale (OCP MX).
   * scaleFormat: `fp32`, `pow2` (rounded down to a power of two) or `e8m0` (MX's rule); default
   * e8m0 for mx, else pow2 when powerOfTwo, fp32 otherwise.
   */
  z.object({
    mode: z.literal('current'),
    margin: z.number().int().min(0).max(30).default(0),
    powerOfTwo: z.boolean().default(true),
    granularity: z.enum(GRANULARITIES).default('tensor'),
    block: z.number().int().min(1).max(1 << 20).optional(),
    scaleFormat: z.enum(['fp32', 'pow2', 'e8m0']).optional(),
  }).strict(),
  /** As current, with amax the maximum over the last `history` steps (this step's amax joins after use). */
  z.object({
    mode: z.literal('delayed'),
    history: z.number().int().min(1).max(1024).default(16),
    margin: z.number().int().min(0).max(30).default(0),
    powerOfTwo: z.boolean().default(true),
  }).strict(),
  /**
   * Per-layer dynamic gradient scaling (errors only): each layer keeps its own scale, multiplies
   * it by growthFactor after growthInterval clean steps, and on an overflow or NaN multiplies it by
   * backoffFactor and skips that layer's update.
   */
  z.object({
    mode: z.literal('dynamic'),
    init: z.number().positive().default(2 ** 15),
    growthInterval: z.number().int().min(1).default(50),
    growthFactor: z.number().gt(1).default(2),
    backoffFactor: z.number().gt(0).lt(1).default(0.5),
  }).strict(),
]);

const tensorClass = z.object({
  format: formatName,
  rounding: z.enum(ROUNDINGS as unknown as [string, ...string[]]).default('nearest'),
  saturate: z.boolean().default(false),
  scaling: perTensorScaling.default({ mode: 'current', margin: 0, powerOfTwo: true, granularity: 'tensor' }),
}).strict();

const storage = z.object({
  format: formatName,
  rounding: z.enum(['nearest', 'stochastic']).default('nearest'),
}).strict();

const lossScaling = z.discriminatedUnion('mode', [
  z.object({ mode: z.literal('none') }).strict(),
  z.object({ mode: z.literal('static'), scale: z.number().positive() }).strict(),
  z.object({
    mode: z.literal('dynamic'),
    init: z.number().positive().default(2 ** 16),
    growthInterval: z.number().int().min(1).default(200),
    growthFactor: z.number().gt(1).default(2),
    backoffFactor: z.number().gt(0).lt(1).default(0.5),
  }).strict(),
]);

export const recipeSchema = z.object({
  name: z.string().min(1),
  description: z.string().default(''),
  /** Operands of forward GEMMs; null keeps them float32. */
  weights: tensorClass.nullable().default(null),
  activations: tensorClass.nullable().default(null),
  /** Output gradients reaching each GEMM layer; null: the backward pass runs in float32. */
  errors: tensorClass.nullable().default(null),
  /** The weight gradient each layer produces; null keeps it float32. */
  weightGradients: tensorClass.nullable().default(null),
  accumulation: z.object({
    /** A format, or an aligned accumulator model (`hopper-fp8`, `hopper-fp8-fast`: FP8 operands only). */
    format: accumulatorName.default('fp32'),
    chunk: z.number().int().min(0).default(0),
    rounding: z.enum(['nearest', 'stochastic']).default('nearest'),
    /**
     * Block-scaled recipes: the sum that each K-block's partial (accumulated as above, then divided
     * by its blocks' scales) is added into, rounded to nearest after every add. DeepSeek-V3
     * promotes to float32: the default.
     */
    outer: formatName.default('fp32'),
    /**
     * Promotion interval (0: none): every `promote` products the partial, accumulated in `format`,
     * is added into the `outer` sum, as DeepSeek-V3 promotes tensor-core partials to float32 every
     * 128 products. Runs the GEMMs on the block-scaled path (one scale per operand unless a class
     * asks for blocks).
     */
    promote: z.number().int().min(0).default(0),
  }).strict().default({ format: 'fp32', chunk: 0, rounding: 'nearest', outer: 'fp32', promote: 0 }),
  masterWeights: storage.default({ format: 'fp32', rounding: 'nearest' }),
  moments: storage.default({ format: 'fp32', rounding: 'nearest' }),
  lossScaling: lossScaling.default({ mode: 'none' }),
  /**
   * Format in which batch normalization keeps its normalized input for backward (scaled per
   * tensor by a power of two, nearest rounding); null keeps float32. GEMM layers always keep their
   * operands' codes, so with this set every activation saved for backward is low precision.
   */
  savedActivations: formatName.nullable().default(null),
  /** GEMM layers kept in float32: "first", "last", or dotted layer paths (e.g. "fc"). */
  highPrecisionLayers: z.array(z.string().min(1)).default([]),
}).strict().superRefine((r, ctx) => {
  for (const key of ['weights', 'activations', 'weightGradients'] as const) {
    if (r[key]?.scaling.mode === 'dynamic') {
      ctx.addIssue({ code: 'custom', path: [key, 'scaling', 'mode'], message: 'dynamic scaling is for errors only; use none, current or delayed' });
    }
  }
  const blockClasses = (['weights', 'activations', 'errors'] as const).filter((key) => {
    const scaling = r[key]?.scaling;
    return scaling?.mode === 'current' && scaling.granularity !== 'tensor';
  });
  for (const key of ['weights', 'activations', 'errors', 'weightGradients'] as const) {
    const scaling = r[key]?.scaling;
    if (scaling?.mode !== 'current') continue;
    if (key === 'weightGradients' && scaling.granularity !== 'tensor') {
      ctx.addIssue({ code: 'custom', path: [key, 'scaling', 'granularity'], message: 'weight gradients are not GEMM operands here: use granularity tensor' });
    }
    if (scaling.granularity === 'mx' && scaling.scaleFormat !== undefined && scaling.scaleFormat !== 'e8m0') {
      ctx.addIssue({ code: 'custom', path: [key, 'scaling', 'scaleFormat'], message: 'mx blocks have E8M0 scales (OCP MX); use scaleFormat e8m0 or granularity tile' });
    }
    if (scaling.block !== undefined && (scaling.granularity === 'tensor' || scaling.granularity === 'row' || scaling.granularity === 'channel')) {
      ctx.addIssue({ code: 'custom', path: [key, 'scaling', 'block'], message: `granularity ${scaling.granularity} has no block size; block goes with tile or mx` });
    }
    if (scaling.granularity !== 'tensor' && resolveFormat(r[key]!.format).bits > 8) {
      ctx.addIssue({ code: 'custom', path: [key, 'format'], message: 'block-scaled operands take formats of at most 8 bits' });
    }
  }
  if (blockClasses.length || r.accumulation.promote > 0) {
    const why = blockClasses.length ? `a block-scaled recipe (${blockClasses.join(', ')})` : 'a recipe with a promotion interval';
    for (const key of ['weights', 'activations', 'errors'] as const) {
      const mode = r[key]?.scaling.mode;
      if (r[key] && mode !== 'current') {
        ctx.addIssue({
          code: 'custom', path: [key, 'scaling', 'mode'],
          message: `${why} scales every GEMM operand from its current values: use mode current (granularity tensor for one scale per operand)`,
        });
      }
    }
  }
  if (isAlignedModel(r.accumulation.format)) {
    for (const key of ['weights', 'activations'] as const) {
      const cls = r[key];
      if (!cls || resolveFormat(cls.format).bits > 8) {
        ctx.addIssue({ code: 'custom', path: ['accumulation', 'format'], message: `${r.accumulation.format} models FP8 tensor cores: ${key} must be quantized to a format of at most 8 bits` });
      }
    }
    if (r.errors && resolveFormat(r.errors.format).bits > 8) {
      ctx.addIssue({ code: 'custom', path: ['accumulation', 'format'], message: `${r.accumulation.format} models FP8 tensor cores: errors must use a format of at most 8 bits` });
    }
    if (r.accumulation.chunk) ctx.addIssue({ code: 'custom', path: ['accumulation', 'chunk'], message: `${r.accumulation.format} has its own groups and intervals: use chunk 0` });
  }
  if (r.weightGradients && !r.errors) {
    ctx.addIssue({ code: 'custom', path: ['weightGradients'], message: 'quantized weight gradients need quantized errors (set errors, or weightGradients to null)' });
  }
});

export type Recipe = z.output<typeof recipeSchema>;
export type RecipeInput = z.input<typeof recipeSchema>;
export type TensorClassSpec = NonNullable<Recipe['weights']>;
export type ScalingSpec = TensorClassSpec['scaling'];
export type LossScalingSpec = Recipe['lossScaling'];

/** Whether the recipe's GEMMs run on the block-scaled path: an operand class scaled per block, or a promotion interval. */
export function isBlockScaled(r: Recipe): boolean {
  return r.accumulation.promote > 0 || [r.weights, r.activations, r.errors].some((c) => c?.scaling.mode === 'current' && c.scaling.granularity !== 'tensor');
}

export class InvalidRecipeError extends InvalidArgumentError {}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = input;
  for (const key of path) v = v !== null && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[key] : undefined;
  return v;
}

/** Validate and fill defaults; `source` names where the recipe came from, for the message. */
export function parseRecipe(input: unknown, source = 'recipe'): Recipe {
  const result = recipeSchema.safeParse(input);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const field = issue.path.length ? issue.path.join('.') : '(top level)';
    const value = valueAt(input, issue.path);
    const found = value === undefined ? 'missing' : JSON.stringify(value);
    return `  ${field}: ${issue.message} (found ${found})`;
  });
  throw new InvalidRecipeError(`${source} is not a valid recipe:\n${lines.join('\n')}\nStart from a preset: octet recipes show fp8`);
}
