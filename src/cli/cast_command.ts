/** `octet cast`: numbers from standard input to codes of a format and back. */
import { InvalidArgumentError } from '../errors.js';
import { checkRounding, checkSeed, decodeReference, encodeReference, resolveFormat, type Rounding } from '../formats/index.js';
import type { CliIo } from './io.js';

export interface CastCommandOptions {
  format: string;
  rounding: string;
  seed: string;
  saturate?: boolean;
}

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
const SPECIAL: Record<string, number> = { nan: NaN, inf: Infinity, '+inf': Infinity, '-inf': -Infinity };

/** Parse one token: a decimal number, or nan / inf / -inf (any case). */
export function parseNumberToken(token: string, position: number): number {
  const special = SPECIAL[token.toLowerCase()];
  if (special !== undefined) return special;
  if (DECIMAL.test(token)) return Number(token);
  throw new InvalidArgumentError(
    `malformed number ${JSON.stringify(token)} (token ${position} of the input); expected a decimal ` +
      `such as 1.5, -2e-3 or 65504, or one of nan, inf, -inf`,
  );
}

/** JavaScript's shortest round-trip string, keeping the sign of zero. */
export function formatValue(value: number): string {
  return Object.is(value, -0) ? '-0' : String(value);
}

export async function castCommand(options: CastCommandOptions, io: CliIo): Promise<void> {
  const format = resolveFormat(options.format);
  const rounding: Rounding = checkRounding(options.rounding);
  if (!/^\d+$/.test(options.seed)) {
    throw new InvalidArgumentError(`--seed ${JSON.stringify(options.seed)} is not a non-negative integer`);
  }
  const seed = checkSeed(Number(options.seed), '--seed');
  const tokens = (await io.readStdin()).split(/\s+/).filter((t) => t.length > 0);
  const values = Float32Array.from(tokens, (t, i) => parseNumberToken(t, i + 1));
  const codes = encodeReference(values, format, { rounding, seed, saturate: options.saturate ?? false });
  const decoded = decodeReference(codes, format);
  const hexDigits = Math.ceil(format.bits / 4);
  const lines = tokens.map(
    (t, i) => `${t}\t0x${codes[i].toString(16).padStart(hexDigits, '0')}\t${formatValue(decoded[i])}\n`,
  );
  io.stdout(lines.join(''));
}
