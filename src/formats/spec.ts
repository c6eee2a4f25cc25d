/**
 * A number format is data: one record of bit counts, bias and special-value policy. Everything
 * else (limits, code patterns, storage width) is derived here from the record, once.
 */
import { InvalidFormatError } from '../errors.js';

/**
 * Which codes are not finite numbers.
 * - `ieee`: the all-ones exponent holds ±Inf (mantissa 0) and NaN (mantissa non-zero), as in
 *   IEEE 754 binary16/32 and FP8 E5M2.
 * - `fn`: there is no Inf; only the all-ones exponent with the all-ones mantissa is NaN, so the
 *   rest of the top binade holds finite values, as in OCP FP8 E4M3FN.
 * - `fnuz`: no Inf and no negative zero; the one NaN is the code with only the sign bit set
 *   (0x80 for 8 bits), every other code is finite, as in E4M3FNUZ and E5M2FNUZ (ONNX, AMD).
 * - `finite`: no Inf and no NaN; every code is a finite number, as in OCP FP6 (E3M2, E2M3) and
 *   FP4 (E2M1). Overflow always saturates; a NaN input has no code and becomes +max, as PTX's
 *   `cvt.satfinite` does (OCP MX v1.0 leaves it to the implementation; in an MX block a NaN makes
 *   the block's scale NaN instead).
 */
export type SpecialValues = 'ieee' | 'fn' | 'fnuz' | 'finite';
const SPECIALS: readonly SpecialValues[] = ['ieee', 'fn', 'fnuz', 'finite'];

/** The record that defines a format. */
export interface FormatSpec {
  /** Canonical name, following ml_dtypes where it has one (`float8_e5m2`). */
  readonly name: string;
  /** Other names that resolve to this record (`e5m2`). */
  readonly aliases: readonly string[];
  readonly exponentBits: number;
  readonly mantissaBits: number;
  /** A biased exponent field `b` of a normal number means 2^(b - bias). */
  readonly bias: number;
  readonly specials: SpecialValues;
  /** When false, subnormal results flush to a signed zero and subnormal codes decode as zero. */
  readonly subnormals: boolean;
  /** One line for `octet formats`: what the format is for. */
  readonly description: string;
}

/** A format record with its derived facts. Built only by `defineFormat`, which checks them. */
export interface Format extends FormatSpec {
  /** Bits in a code: 1 sign + exponent + mantissa. */
  readonly bits: number;
  /** Bytes used to store one code (1, 2 or 4). */
  readonly storageBytes: 1 | 2 | 4;
  /** Exponent of the smallest normal number, 1 - bias. */
  readonly emin: number;
  /** Exponent of the largest finite number. */
  readonly emax: number;
  /** Largest finite value. */
  readonly maxFinite: number;
  /** Smallest positive normal value, 2^emin. */
  readonly minNormal: number;
  /** Smallest positive value (subnormal when subnormals are kept, else minNormal). */
  readonly minSubnormal: number;
  /** Distance from 1 to the next larger value, 2^-mantissaBits. */
  readonly epsilon: number;
  /** Biased exponent field of the largest finite value. */
  readonly maxBiasedExponent: number;
  /** Mantissa field of the largest finite value. */
  readonly maxMantissaAtTop: number;
  /** Code of +maxFinite. */
  readonly maxCode: number;
  /** Code of +Inf, or null when the format has none. */
  readonly infCode: number | null;
  /**
   * Code a NaN input becomes: the positive quiet NaN (`ieee`, `fn`: sign bit added for negative
   * NaN inputs), the one NaN (`fnuz`), or +max (`finite`, which has no NaN).
   */
  readonly nanCode: number;
  /** Whether the format has a NaN code (all but `finite`). */
  readonly hasNaN: boolean;
  /** Whether negative zero exists (all but `fnuz`): a negative result that rounds to zero keeps its sign. */
  readonly signedZero: boolean;
  /** Code with only the sign bit set (-0). */
  readonly signMask: number;
}

/**
 * Derive and check a format's facts from its record. Octet represents every value of every format
 * in float32, so a format must fit inside float32: at most 8 exponent and 23 mantissa bits, its
 * smallest normal at or above 2^-126 and its largest finite value at or below float32's.
 */
export function defineFormat(spec: FormatSpec): Format {
  const { name, exponentBits: e, mantissaBits: m, bias, specials } = spec;
  const where = `format ${JSON.stringify(name)}`;
  if (!Number.isInteger(e) || e < 2 || e > 8) {
    throw new InvalidFormatError(`${where}: exponentBits is ${e}; expected an integer from 2 to 8`);
  }
  if (!Number.isInteger(m) || m < 1 || m > 23) {
    throw new InvalidFormatError(`${where}: mantissaBits is ${m}; expected an integer from 1 to 23`);
  }
  if (!SPECIALS.includes(specials)) {
    throw new InvalidFormatError(`${where}: specials is ${JSON.stringify(specials)}; expected ${SPECIALS.map((x) => JSON.stringify(x)).join(', ')}`);
  }
  if (!Number.isInteger(bias)) {
    throw new InvalidFormatError(`${where}: bias is ${bias}; expected an integer`);
  }
  const allOnesExponent = 2 ** e - 1;
  const maxBiasedExponent = specials === 'ieee' ? allOnesExponent - 1 : allOnesExponent;
  // fnuz and finite formats use every code of the top binade for numbers.
  const maxMantissaAtTop = specials === 'fn' ? 2 ** m - 2 : 2 ** m - 1;
  const emin = 1 - bias;
  const emax = maxBiasedExponent - bias;
  if (emin < -126) {
    throw new InvalidFormatError(
      `${where}: bias ${bias} puts the smallest normal at 2^${emin}, below float32's 2^-126; use a bias of at most 127`,
    );
  }
  if (emax > 127) {
    throw new InvalidFormatError(
      `${where}: bias ${bias} puts the largest finite value at 2^${emax}, above float32's range; ` +
        `use a bias of at least ${maxBiasedExponent - 127}` +
        (specials !== 'ieee' && e === 8 ? ' (an 8-bit exponent needs specials "ieee")' : ''),
    );
  }
  const bits = 1 + e + m;
  const storageBytes: 1 | 2 | 4 = bits <= 8 ? 1 : bits <= 16 ? 2 : 4;
  const maxFinite = (1 + maxMantissaAtTop / 2 ** m) * 2 ** emax;
  const minNormal = 2 ** emin;
  const maxCode = maxBiasedExponent * 2 ** m + maxMantissaAtTop;
  const nanCode =
    specials === 'ieee' ? allOnesExponent * 2 ** m + 2 ** (m - 1) : specials === 'fn' ? 2 ** (e + m) - 1 : specials === 'fnuz' ? 2 ** (e + m) : maxCode;
  return Object.freeze({
    ...spec,
    aliases: Object.freeze([...spec.aliases]),
    bits,
    storageBytes,
    emin,
    emax,
    maxFinite,
    minNormal,
    minSubnormal: spec.subnormals ? 2 ** (emin - m) : minNormal,
    epsilon: 2 ** -m,
    maxBiasedExponent,
    maxMantissaAtTop,
    maxCode,
    infCode: specials === 'ieee' ? allOnesExponent * 2 ** m : null,
    nanCode,
    hasNaN: specials !== 'finite',
    signedZero: specials !== 'fnuz',
    signMask: 2 ** (e + m),
  });
}

/** `1-5-2` style layout string. */
export function layoutOf(format: Format): string {
  return `1-${format.exponentBits}-${format.mantissaBits}`;
}
