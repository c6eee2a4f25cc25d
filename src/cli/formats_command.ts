/** `octet formats`: the facts of every preset (or of the named formats), as a table or JSON. */
import { E8M0, PRESETS, isE8M0Name, layoutOf, resolveFormat, type Format } from '../formats/index.js';
import type { CliIo } from './io.js';
import { renderTable } from './text_table.js';

/** `2^-16` for powers of two, the shortest round-trip decimal otherwise. */
function powerOfTwo(value: number): string {
  const exponent = Math.log2(value);
  return Number.isInteger(exponent) ? `2^${exponent}` : String(value);
}

const SPECIALS_TEXT: Record<Format['specials'], string> = {
  ieee: 'Inf, NaN',
  fn: 'NaN only (no Inf)',
  fnuz: 'NaN = 0x80 (no Inf, no -0)',
  finite: 'none (finite only, saturates)',
};

function specialsText(f: Format): string {
  return SPECIALS_TEXT[f.specials];
}

export function formatFacts(f: Format) {
  return {
    name: f.name,
    aliases: [...f.aliases],
    layout: layoutOf(f),
    bits: f.bits,
    exponent_bits: f.exponentBits,
    mantissa_bits: f.mantissaBits,
    bias: f.bias,
    specials: f.specials,
    subnormals: f.subnormals,
    max: f.maxFinite,
    min_normal: f.minNormal,
    min_subnormal: f.minSubnormal,
    epsilon: f.epsilon,
    description: f.description,
  };
}

/** The facts of E8M0, the MX scale format (exponent only, unsigned; src/formats/e8m0.ts). */
function e8m0Facts() {
  return {
    name: E8M0.name, aliases: [...E8M0.aliases], layout: '0-8-0', bits: 8, exponent_bits: 8, mantissa_bits: 0, bias: 127, specials: 'NaN = 0xFF; no sign, zero or Inf',
    subnormals: false, max: 2 ** 127, min_normal: 2 ** -127, min_subnormal: 2 ** -127, epsilon: 1, description: E8M0.description,
  };
}

export function formatsCommand(names: readonly string[], options: { json?: boolean }, io: CliIo): void {
  const withScale = !names.length || names.some(isE8M0Name);
  const formats = names.length ? names.filter((n) => !isE8M0Name(n)).map((n) => resolveFormat(n)) : [...PRESETS];
  if (options.json) {
    io.stdout(JSON.stringify([...formats.map(formatFacts), ...(withScale ? [e8m0Facts()] : [])], null, 2) + '\n');
    return;
  }
  const rows = formats.map((f) => [
    f.name,
    f.aliases.join(', '),
    layoutOf(f),
    String(f.bias),
    String(f.maxFinite),
    powerOfTwo(f.minNormal),
    powerOfTwo(f.minSubnormal) + (f.subnormals ? '' : ' (flushed)'),
    powerOfTwo(f.epsilon),
    specialsText(f),
  ]);
  if (withScale) rows.push([E8M0.name, E8M0.aliases.join(', '), '0-8-0 (unsigned)', '127', '2^127', '2^-127', '2^-127 (no zero)', '2^0', 'NaN = 0xFF (scale format)']);
  io.stdout(
    renderTable(['format', 'aliases', 'layout', 'bias', 'max', 'min normal', 'min subnormal', 'epsilon', 'specials'], rows),
  );
  if (!names.length) io.stdout('Any other split: eXmY (IEEE specials, bias 2^(X-1)-1), e.g. `octet formats e3m4`.\n');
}
