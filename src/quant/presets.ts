/** The preset recipes, each one the JSON a user would start a file from. */
import { UnknownNameError } from '../errors.js';
import { parseRecipe, type Recipe, type RecipeInput } from './recipe.js';

/**
 * Forward operands are scaled so that amax lands at 2^-8 of the format's max (margin 8), not at the
 * max: the product of two E5M2 values at the top of their range is 2^31.6, and a sum of such
 * products would overflow the e6m9 accumulator (max about 2^32). With margin 8 products stay below
 * 2^16, so sums of up to 65536 of them fit, while values 24 binades below amax still stay nonzero.
 */
const E5M2_OPERAND = { format: 'e5m2', rounding: 'nearest', scaling: { mode: 'current', margin: 8, powerOfTwo: true } } as const;
/** Weight gradients are not GEMM inputs here: they use the whole range. */
const E5M2_CURRENT = { format: 'e5m2', rounding: 'nearest', scaling: { mode: 'current', margin: 0, powerOfTwo: true } } as const;
const E4M3_CURRENT = { format: 'e4m3', rounding: 'nearest', scaling: { mode: 'current', margin: 0, powerOfTwo: true } } as const;
const PER_LAYER_ERRORS = {
  format: 'e5m2',
  rounding: 'nearest',
  scaling: { mode: 'dynamic', init: 2 ** 15, growthInterval: 50, growthFactor: 2, backoffFactor: 0.5 },
} as const;
/** e6m9 in chunks of 64 (Wang et al. 2018): long weight-gradient sums (batch x pixels terms) do not swamp. */
const E6M9_CHUNKED = { format: 'e6m9', chunk: 64, rounding: 'nearest' } as const;

/** OCP MX: blocks of 32 along K sharing an E8M0 scale (floor(log2 amax) - emax), saturating elements. */
function mx(format: string) {
  return { format, rounding: 'nearest', saturate: true, scaling: { mode: 'current', granularity: 'mx', block: 32 } } as const;
}
/** DeepSeek-V3: float32 scales per 1 x 128 tile (activations, errors) or 128 x 128 block (weights). */
const DEEPSEEK_TILE = { format: 'e4m3', rounding: 'nearest', saturate: true, scaling: { mode: 'current', granularity: 'tile', block: 128, scaleFormat: 'fp32' } } as const;
/** torchao's rowwise: one power-of-two scale per row of each GEMM operand (axiswise), E4M3 throughout. */
const ROWWISE = { format: 'e4m3', rounding: 'nearest', saturate: true, scaling: { mode: 'current', granularity: 'row', scaleFormat: 'pow2' } } as const;

const PRESET_INPUTS: RecipeInput[] = [
  {
    name: 'fp32',
    description: 'The baseline: every tensor and every sum in float32.',
  },
  {
    name: 'sfp8',
    description:
      'Forward GEMM/conv operands (weights, activations) in E5M2 with per-tensor current scaling and e6m9 ' +
      'chunked accumulation; the backward pass in float32 through the dequantized forward values (straight-through).',
    weights: E5M2_OPERAND,
    activations: E5M2_OPERAND,
    accumulation: E6M9_CHUNKED,
  },
  {
    name: 'fp8',
    description:
      'The system we emulate: weights, activations, errors and weight gradients of every GEMM/conv in E5M2, ' +
      'e6m9 accumulation (chunks of 64), per-layer dynamic gradient scaling of the errors, float32 master weights; ' +
      'batch norm keeps its normalized input for backward in E5M2 too, so every saved activation is 8-bit.',
    weights: E5M2_OPERAND,
    activations: E5M2_OPERAND,
    errors: PER_LAYER_ERRORS,
    weightGradients: E5M2_CURRENT,
    accumulation: E6M9_CHUNKED,
    savedActivations: 'e5m2',
  },
  {
    name: 'fp8-m16',
    description:
      'As fp8, with master weights kept in the 16-bit 1-6-9 format (e6m9) and updated with stochastic rounding, and the ' +
      "optimizer's moments stored as 16-bit BF16 codes.",
    weights: E5M2_OPERAND,
    activations: E5M2_OPERAND,
    errors: PER_LAYER_ERRORS,
    weightGradients: E5M2_CURRENT,
    accumulation: E6M9_CHUNKED,
    savedActivations: 'e5m2',
    masterWeights: { format: 'e6m9', rounding: 'stochastic' },
    moments: { format: 'bf16', rounding: 'nearest' },
  },
  {
    name: 'fp8-global',
    description:
      'As fp8, but with one dynamic loss scale for the whole network instead of per-layer gradient scaling ' +
      '(for comparison: small-gradient layers underflow).',
    weights: E5M2_OPERAND,
    activations: E5M2_OPERAND,
    errors: { format: 'e5m2', rounding: 'nearest', scaling: { mode: 'none' } },
    weightGradients: E5M2_CURRENT,
    accumulation: E6M9_CHUNKED,
    savedActivations: 'e5m2',
    lossScaling: { mode: 'dynamic', init: 2 ** 15, growthInterval: 50, growthFactor: 2, backoffFactor: 0.5 },
  },
  {
    name: 'hybrid',
    description:
      'The common GPU recipe: E4M3 forward operands, E5M2 errors and weight gradients, per-tensor delayed scaling ' +
      '(amax history 16) with saturating casts, float32 accumulation, first and last layers in float32.',
    weights: E4M3_CURRENT,
    // Delayed scales come from earlier steps' amax, so a tensor can exceed its scaled range: the
    // casts saturate (as TransformerEngine's do) instead of turning the excess into NaN or Inf.
    activations: { ...E4M3_CURRENT, saturate: true, scaling: { mode: 'delayed', history: 16, margin: 0, powerOfTwo: true } },
    errors: { format: 'e5m2', rounding: 'nearest', saturate: true, scaling: { mode: 'delayed', history: 16, margin: 0, powerOfTwo: true } },
    weightGradients: E5M2_CURRENT,
    highPrecisionLayers: ['first', 'last'],
  },
  {
    name: 'rowwise',
    description:
      "torchao's rowwise FP8: weights, activations and errors in E4M3 with one power-of-two scale per row of each GEMM " +
      'operand (re-quantized per GEMM along its K), saturating casts, float32 accumulation, float32 weight gradients.',
    weights: ROWWISE,
    activations: ROWWISE,
    errors: ROWWISE,
  },
  {
    name: 'mxfp8',
    description:
      'OCP MXFP8: E4M3 weights and activations, E5M2 errors, each in blocks of 32 along K with an E8M0 scale ' +
      '(OCP MX v1.0 rule), float32 accumulation; weight gradients float32.',
    weights: mx('e4m3'),
    activations: mx('e4m3'),
    errors: mx('e5m2'),
  },
  {
    name: 'mxfp6',
    description: 'OCP MXFP6 (the MX paper\'s FP6 training): E2M3 weights and activations, E3M2 errors, MX blocks of 32, float32 accumulation.',
    weights: mx('e2m3'),
    activations: mx('e2m3'),
    errors: mx('e3m2'),
  },
  {
    name: 'mxfp4',
    description:
      'MXFP4 forward: E2M1 weights and activations in MX blocks of 32; the backward keeps more precision (MXFP6 E3M2 ' +
      'errors), and the first and last layers stay float32, as FP4 training recipes do; float32 accumulation.',
    weights: mx('e2m1'),
    activations: mx('e2m1'),
    errors: mx('e3m2'),
    highPrecisionLayers: ['first', 'last'],
  },
  {
    name: 'deepseek-v3',
    description:
      "DeepSeek-V3's fine-grained FP8: E4M3 everywhere, float32 scales per 1 x 128 tile of activations and errors and per " +
      '128 x 128 block of weights; each 128-product partial is accumulated as the H200 tensor cores do (hopper-fp8: groups ' +
      'of 32 aligned to their largest exponent, a 14-bit accumulator) and promoted into a float32 sum; BF16 optimizer moments.',
    weights: DEEPSEEK_TILE,
    activations: DEEPSEEK_TILE,
    errors: DEEPSEEK_TILE,
    accumulation: { format: 'hopper-fp8', outer: 'fp32', promote: 128 },
    moments: { format: 'bf16', rounding: 'nearest' },
  },
];

export const PRESET_RECIPES: readonly Recipe[] = PRESET_INPUTS.map((r) => parseRecipe(r, `preset ${r.name}`));

export function presetNames(): string[] {
  return PRESET_RECIPES.map((r) => r.name);
}

export function presetRecipe(name: string): Recipe {
  const recipe = PRESET_RECIPES.find((r) => r.name === name);
  if (!recipe) throw new UnknownNameError(`unknown recipe "${name}"; choose a preset (${presetNames().join(', ')}) or give a JSON file path`);
  return structuredClone(recipe);
}
