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

/** Tokens echoed in errors are cut to this many characters. */
const SHOWN = 40;

function shown(token: string): string {
  return token.length <= SHOWN ? JSON.stringify(token) : `${JSON.stringify(token.slice(0, SHOWN))}... (${token.length} characters)`;
}

/** Parse one token: a decimal number, or nan / inf / -inf (any case). */
export function parseNumberToken(token: string, position: number): number {
  const special = SPECIAL[token.toLowerCase()];
  if (special !== undefined) return special;
  if (token.length <= 1000 && DECIMAL.test(token)) return Number(token);
  throw new InvalidArgumentError(
    `malformed number ${shown(token)} (token ${position} of the input); expected a decimal ` +
      `such as 1.5, -2e-3 or 65504, or one of nan, inf, -inf`,
  );
}

/** JavaScript's shortest round-trip string, keeping the sign of zero. */
export function formatValue(value: number): string {
  return Object.is(value, -0) ? '-0' : String(value);
}

/** Tokens cast per batch: memory stays bounded whatever the input's length. */
const BATCH = 65536;

/**
 * Cast the numbers of standard input, streamed: tokens are read a chunk at a time and cast in
 * batches, each batch's stochastic draws indexed from its first token's position in the whole
 * input, so the output is the same as casting all of it at once.
 */
export async function castCommand(options: CastCommandOptions, io: CliIo): Promise<void> {
  const format = resolveFormat(options.format);
  const rounding: Rounding = checkRounding(options.rounding);
  if (!/^\d+$/.test(options.seed)) {
    throw new InvalidArgumentError(`--seed ${shown(options.seed)} is not a non-negative integer`);
  }
  const seed = checkSeed(Number(options.seed), '--seed');
  const hexDigits = Math.ceil(format.bits / 4);
  let tokens: string[] = [];
  let done = 0;
  const flush = async () => {
    if (!tokens.length) return;
    const values = Float32Array.from(tokens, (t, i) => parseNumberToken(t, done + i + 1));
    const codes = encodeReference(values, format, { rounding, seed, saturate: options.saturate ?? false, counterOffset: done });
    const decoded = decodeReference(codes, format);
    let text = '';
    for (let i = 0; i < tokens.length; i++) text += `${tokens[i]}\t0x${codes[i].toString(16).padStart(hexDigits, '0')}\t${formatValue(decoded[i])}\n`;
    done += tokens.length;
    tokens = [];
    await io.writeOut(text);
  };
  // A token may span chunks: the text after the last whitespace of a chunk waits for the next.
  let carry = '';
  for await (const chunk of io.stdinChunks()) {
    const parts = (carry + chunk).split(/\s+/);
    carry = parts.pop() ?? '';
    if (carry.length > 1000) parseNumberToken(carry, done + tokens.length + parts.filter(Boolean).length + 1);
    for (const t of parts) {
      if (!t) continue;
      tokens.push(t);
      if (tokens.length >= BATCH) await flush();
    }
  }
  if (carry) tokens.push(carry);
  await flush();
}
