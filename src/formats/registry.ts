/**
 * The preset formats, their aliases, and `eXmY` names for any other split.
 *
 * Each preset states its facts in its comment; `checkStatedFacts` below verifies the derived
 * limits against those facts when this module loads, so a wrong constant cannot ship.
 */
import { UnknownFormatError } from '../errors.js';
import { defineFormat, type Format } from './spec.js';

export const PRESETS: readonly Format[] = [
  // FP8 E5M2. Layout 1-5-2, bias 15. Inf = S.11111.00, NaN = S.11111.{01,10,11}.
  // Max 57344 = 1.75 * 2^15, min normal 2^-14, min subnormal 2^-16. The GEMM operand format.
  defineFormat({
    name: 'float8_e5m2',
    aliases: ['e5m2', 'fp8_e5m2'],
    exponentBits: 5,
    mantissaBits: 2,
    bias: 15,
    specials: 'ieee',
    subnormals: true,
    description: 'FP8 E5M2 (IEEE-like): GEMM operands, weights, activations, errors, gradients',
  }),
  // OCP FP8 E4M3FN. Layout 1-4-3, bias 7. No Inf; NaN = S.1111.111 only.
  // Max 448 = 1.75 * 2^8, min normal 2^-6, min subnormal 2^-9.
  defineFormat({
    name: 'float8_e4m3fn',
    aliases: ['e4m3', 'e4m3fn', 'fp8_e4m3'],
    exponentBits: 4,
    mantissaBits: 3,
    bias: 7,
    specials: 'fn',
    subnormals: true,
    description: 'OCP FP8 E4M3FN (no Inf, one NaN): forward operands of the common GPU recipe',
  }),
  // FNUZ FP8 E4M3 (ONNX float8e4m3fnuz, AMD MI300). Layout 1-4-3, bias 8. No Inf, no -0;
  // NaN = 0x80 only. Max 240 = 1.875 * 2^7, min normal 2^-7, min subnormal 2^-10.
  defineFormat({
    name: 'float8_e4m3fnuz',
    aliases: ['e4m3fnuz', 'fp8_e4m3fnuz'],
    exponentBits: 4,
    mantissaBits: 3,
    bias: 8,
    specials: 'fnuz',
    subnormals: true,
    description: 'FP8 E4M3FNUZ (no Inf, no -0, NaN = 0x80): forward operands on AMD MI300',
  }),
  // FNUZ FP8 E5M2 (ONNX float8e5m2fnuz). Layout 1-5-2, bias 16. No Inf, no -0; NaN = 0x80 only.
  // Max 57344 = 1.75 * 2^15, min normal 2^-15, min subnormal 2^-17.
  defineFormat({
    name: 'float8_e5m2fnuz',
    aliases: ['e5m2fnuz', 'fp8_e5m2fnuz'],
    exponentBits: 5,
    mantissaBits: 2,
    bias: 16,
    specials: 'fnuz',
    subnormals: true,
    description: 'FP8 E5M2FNUZ (no Inf, no -0, NaN = 0x80): gradients on AMD MI300',
  }),
  // OCP MX FP6 E3M2. Layout 1-3-2, bias 3. No Inf, no NaN (finite only, saturating).
  // Max 28 = 1.75 * 2^4, min normal 2^-2, min subnormal 2^-4.
  defineFormat({
    name: 'float6_e3m2fn',
    aliases: ['e3m2', 'fp6_e3m2'],
    exponentBits: 3,
    mantissaBits: 2,
    bias: 3,
    specials: 'finite',
    subnormals: true,
    description: 'OCP FP6 E3M2 (finite only): MXFP6 elements',
  }),
  // OCP MX FP6 E2M3. Layout 1-2-3, bias 1. No Inf, no NaN (finite only, saturating).
  // Max 7.5 = 1.875 * 2^2, min normal 2^0, min subnormal 2^-3.
  defineFormat({
    name: 'float6_e2m3fn',
    aliases: ['e2m3', 'fp6_e2m3'],
    exponentBits: 2,
    mantissaBits: 3,
    bias: 1,
    specials: 'finite',
    subnormals: true,
    description: 'OCP FP6 E2M3 (finite only): MXFP6 elements',
  }),
  // OCP MX FP4 E2M1. Layout 1-2-1, bias 1. No Inf, no NaN (finite only, saturating).
  // Max 6 = 1.5 * 2^2, min normal 2^0, min subnormal 2^-1. Values 0, 0.5, 1, 1.5, 2, 3, 4, 6.
  defineFormat({
    name: 'float4_e2m1fn',
    aliases: ['e2m1', 'fp4', 'fp4_e2m1'],
    exponentBits: 2,
    mantissaBits: 1,
    bias: 1,
    specials: 'finite',
    subnormals: true,
    description: 'OCP FP4 E2M1 (finite only): MXFP4 / NVFP4 elements',
  }),
  // 16-bit accumulation float. Layout 1-6-9, bias 31, IEEE specials.
  // Max (2 - 2^-9) * 2^31 = 4290772992, min normal 2^-30, min subnormal 2^-39.
  defineFormat({
    name: 'float16_e6m9',
    aliases: ['e6m9'],
    exponentBits: 6,
    mantissaBits: 9,
    bias: 31,
    specials: 'ieee',
    subnormals: true,
    description: '16-bit 1-6-9 float: the GEMM accumulator of the FP8 training hardware',
  }),
  // IEEE 754 binary16. Layout 1-5-10, bias 15. Max 65504, min normal 2^-14, min subnormal 2^-24.
  defineFormat({
    name: 'float16',
    aliases: ['fp16', 'half', 'e5m10'],
    exponentBits: 5,
    mantissaBits: 10,
    bias: 15,
    specials: 'ieee',
    subnormals: true,
    description: 'IEEE binary16',
  }),
  // bfloat16. Layout 1-8-7, bias 127. Max (2 - 2^-7) * 2^127, min normal 2^-126,
  // min subnormal 2^-133.
  defineFormat({
    name: 'bfloat16',
    aliases: ['bf16', 'e8m7'],
    exponentBits: 8,
    mantissaBits: 7,
    bias: 127,
    specials: 'ieee',
    subnormals: true,
    description: 'bfloat16: float32 range with 8 significant bits',
  }),
  // IEEE 754 binary32. Layout 1-8-23, bias 127. Max (2 - 2^-23) * 2^127, min normal 2^-126,
  // min subnormal 2^-149. Casting float32 to it is the identity (NaN payloads made canonical).
  defineFormat({
    name: 'float32',
    aliases: ['fp32', 'single', 'e8m23'],
    exponentBits: 8,
    mantissaBits: 23,
    bias: 127,
    specials: 'ieee',
    subnormals: true,
    description: 'IEEE binary32: full precision, master weights',
  }),
];

/** The facts the preset comments state, as exact numbers. */
const STATED_FACTS: Record<string, { max: number; minNormal: number; minSubnormal: number }> = {
  float8_e5m2: { max: 57344, minNormal: 2 ** -14, minSubnormal: 2 ** -16 },
  float8_e4m3fn: { max: 448, minNormal: 2 ** -6, minSubnormal: 2 ** -9 },
  float8_e4m3fnuz: { max: 240, minNormal: 2 ** -7, minSubnormal: 2 ** -10 },
  float8_e5m2fnuz: { max: 57344, minNormal: 2 ** -15, minSubnormal: 2 ** -17 },
  float6_e3m2fn: { max: 28, minNormal: 2 ** -2, minSubnormal: 2 ** -4 },
  float6_e2m3fn: { max: 7.5, minNormal: 1, minSubnormal: 2 ** -3 },
  float4_e2m1fn: { max: 6, minNormal: 1, minSubnormal: 0.5 },
  float16_e6m9: { max: (2 - 2 ** -9) * 2 ** 31, minNormal: 2 ** -30, minSubnormal: 2 ** -39 },
  float16: { max: 65504, minNormal: 2 ** -14, minSubnormal: 2 ** -24 },
  bfloat16: { max: (2 - 2 ** -7) * 2 ** 127, minNormal: 2 ** -126, minSubnormal: 2 ** -133 },
  float32: { max: (2 - 2 ** -23) * 2 ** 127, minNormal: 2 ** -126, minSubnormal: 2 ** -149 },
};

function checkStatedFacts(): void {
  for (const format of PRESETS) {
    const facts = STATED_FACTS[format.name];
    if (
      !facts ||
      facts.max !== format.maxFinite ||
      facts.minNormal !== format.minNormal ||
      facts.minSubnormal !== format.minSubnormal
    ) {
      throw new Error(
        `internal error: preset ${format.name} derives max ${format.maxFinite}, min normal ` +
          `${format.minNormal}, min subnormal ${format.minSubnormal}, which contradict its stated facts`,
      );
    }
  }
}
checkStatedFacts();

const byName = new Map<string, Format>();
for (const format of PRESETS) {
  for (const key of [format.name, ...format.aliases]) byName.set(key.toLowerCase(), format);
}

const GENERIC_NAME = /^e(\d+)m(\d+)$/;
const genericCache = new Map<string, Format>();

/**
 * An `eXmY` format: IEEE specials, bias 2^(X-1) - 1, subnormals kept, for X in 2..8, Y in 1..23,
 * X + Y <= 15 (so a code fits 16 bits). Preset aliases win: `e4m3` is E4M3FN, and `e3m2`, `e2m3`,
 * `e2m1` are the OCP finite-only FP6/FP4 formats, not IEEE-like ones.
 */
function genericFormat(key: string): Format | undefined {
  const match = GENERIC_NAME.exec(key);
  if (!match) return undefined;
  const x = Number(match[1]);
  const y = Number(match[2]);
  if (x < 2 || x > 8 || y < 1 || y > 23 || x + y > 15) {
    throw new UnknownFormatError(
      `format "${key}" is not available: eXmY needs X from 2 to 8, Y from 1 to 23 and X + Y <= 15 ` +
        `(got X=${x}, Y=${y}); for wider formats use ${PRESETS.map((f) => f.name).join(', ')}`,
    );
  }
  let format = genericCache.get(key);
  if (!format) {
    format = defineFormat({
      name: key,
      aliases: [],
      exponentBits: x,
      mantissaBits: y,
      bias: 2 ** (x - 1) - 1,
      specials: 'ieee',
      subnormals: true,
      description: `generic ${1 + x + y}-bit float, IEEE specials`,
    });
    genericCache.set(key, format);
  }
  return format;
}

/** Every name `resolveFormat` accepts besides `eXmY`. */
export function formatNames(): string[] {
  return PRESETS.flatMap((f) => [f.name, ...f.aliases]);
}

/** Look a format up by name or alias (case-insensitive), or build an `eXmY` one. */
export function resolveFormat(nameOrFormat: string | Format): Format {
  if (typeof nameOrFormat !== 'string') return nameOrFormat;
  const key = nameOrFormat.trim().toLowerCase();
  const found = byName.get(key) ?? genericFormat(key);
  if (!found) {
    throw new UnknownFormatError(
      `unknown format ${JSON.stringify(nameOrFormat)}; valid formats are ${formatNames().join(', ')}, ` +
        `or eXmY for any other split (X exponent bits 2-8, Y mantissa bits 1-23, X + Y <= 15)`,
    );
  }
  return found;
}
