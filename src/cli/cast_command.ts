/** `octet cast`: numbers from standard input to codes of a format and back. */
import { InvalidArgumentError } from '../errors.js';
import {
  checkRounding, checkSeed, decodeCode, decodeE8M0, decodeReference, encodeE8M0, encodeReference, isE8M0Name, resolveFormat, type Rounding,
} from '../formats/index.js';
import { blockQuantizeReference } from '../kernels/index.js';
import type { CliIo } from './io.js';

export interface CastCommandOptions {
  format: string;
  rounding: string;
  seed: string;
  saturate?: boolean;
  /** MX conversion: blocks of this many inputs share an E8M0 scale. */
  block?: string;
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
/** One batch of tokens cast to lines of output; `done` tokens came before it. */
type BatchCaster = (tokens: string[], values: Float32Array, done: number) => string;

function hex(code: number, digits: number): string {
  return `0x${code.toString(16).padStart(digits, '0')}`;
}

/** E8M0 has a codec of its own (src/formats/e8m0.ts): nearest or toward-zero, no stochastic rounding. */
function e8m0Caster(rounding: Rounding, saturate: boolean): BatchCaster {
  if (rounding === 'stochastic') throw new InvalidArgumentError('--rounding stochastic: e8m0 rounds nearest or toward-zero (it is a scale format); choose one of those');
  return (tokens, values) => {
    let text = '';
    for (let i = 0; i < tokens.length; i++) {
      const code = encodeE8M0(values[i], { rounding, saturate });
      text += `${tokens[i]}\t${hex(code, 2)}\t${formatValue(decodeE8M0(code))}\n`;
    }
    return text;
  };
}

/**
 * MX conversion (OCP MX v1.0): each block of `block` consecutive inputs (the last one shorter)
 * shares an E8M0 scale X = 2^(floor(log2 amax) - emax), elements saturate; value = element x X.
 */
function mxCaster(formatName: string, block: number, rounding: Rounding, seed: number): BatchCaster {
  if (rounding === 'toward-zero') throw new InvalidArgumentError('--rounding toward-zero: MX elements round nearest or stochastic; choose one of those');
  return (tokens, values, done) => {
    const q = blockQuantizeReference(values, 1, values.length, 'rk', {
      format: formatName, blockRows: 1, blockK: block, scale: 'e8m0', rounding: rounding as 'nearest' | 'stochastic', seed, counterOffset: done,
    });
    const digits = Math.ceil(q.format.bits / 4);
    let text = '';
    for (let i = 0; i < tokens.length; i++) {
      const divisor = q.scales[Math.floor(i / block)];
      const exponent = -Math.log2(divisor);
      const value = Math.fround(decodeCode(q.codes[i], q.format) * 2 ** exponent);
      text += `${tokens[i]}\t${hex(q.codes[i], digits)}\t${hex(exponent + 127, 2)}\t${formatValue(value)}\n`;
    }
    return text;
  };
}

function blockSize(text: string | undefined): number | null {
  if (text === undefined) return null;
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > 65536) {
    throw new InvalidArgumentError(`--block ${shown(text)} is not a block size; expected an integer from 1 to 65536 (OCP MX uses 32)`);
  }
  return Number(text);
}

export async function castCommand(options: CastCommandOptions, io: CliIo): Promise<void> {
  const rounding: Rounding = checkRounding(options.rounding);
  if (!/^\d+$/.test(options.seed)) {
    throw new InvalidArgumentError(`--seed ${shown(options.seed)} is not a non-negative integer`);
  }
  const seed = checkSeed(Number(options.seed), '--seed');
  const block = blockSize(options.block);
  let cast: BatchCaster;
  if (isE8M0Name(options.format)) {
    if (block) throw new InvalidArgumentError('--block with --format e8m0: e8m0 is the scale format of MX blocks; give the element format (e4m3, e5m2, e2m1, ...) with --block');
    cast = e8m0Caster(rounding, options.saturate ?? false);
  } else if (block) {
    const format = resolveFormat(options.format);
    if (format.bits > 8) throw new InvalidArgumentError(`--block: ${format.name} has ${format.bits}-bit codes; MX elements take formats of at most 8 bits`);
    cast = mxCaster(options.format, block, rounding, seed);
  } else {
    const format = resolveFormat(options.format);
    const hexDigits = Math.ceil(format.bits / 4);
    cast = (tokens, values, done) => {
      const codes = encodeReference(values, format, { rounding, seed, saturate: options.saturate ?? false, counterOffset: done });
      const decoded = decodeReference(codes, format);
      let text = '';
      for (let i = 0; i < tokens.length; i++) text += `${tokens[i]}\t${hex(codes[i], hexDigits)}\t${formatValue(decoded[i])}\n`;
      return text;
    };
  }
  // Batches hold whole blocks, so that a block never straddles two batches.
  const batch = block ? Math.ceil(BATCH / block) * block : BATCH;
  let tokens: string[] = [];
  let done = 0;
  const flush = async () => {
    if (!tokens.length) return;
    const values = Float32Array.from(tokens, (t, i) => parseNumberToken(t, done + i + 1));
    const text = cast(tokens, values, done);
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
      if (tokens.length >= batch) await flush();
    }
  }
  if (carry) tokens.push(carry);
  await flush();
}
