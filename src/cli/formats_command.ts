/** `octet formats`: the facts of every preset (or of the named formats), as a table or JSON. */
import { PRESETS, layoutOf, resolveFormat, type Format } from '../formats/index.js';
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

export function formatsCommand(names: readonly string[], options: { json?: boolean }, io: CliIo): void {
  const formats = names.length ? names.map((n) => resolveFormat(n)) : [...PRESETS];
  if (options.json) {
    io.stdout(JSON.stringify(formats.map(formatFacts), null, 2) + '\n');
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
  io.stdout(
    renderTable(['format', 'aliases', 'layout', 'bias', 'max', 'min normal', 'min subnormal', 'epsilon', 'specials'], rows),
  );
  if (!names.length) io.stdout('Any other split: eXmY (IEEE specials, bias 2^(X-1)-1), e.g. `octet formats e3m4`.\n');
}
