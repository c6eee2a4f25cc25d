/**
 * `octet gemm`: one emulated low-precision GEMM on raw operand codes, C = A B with A M x K and B
 * K x N, both row-major codes of their formats (one byte each for 8-bit formats, two little-endian
 * bytes for 9- to 16-bit ones), scales 1, under an accumulation given by name or as a JSON file;
 * C is written as M x N little-endian float32. The way to compare Octet with an RTL simulation or
 * a GPU on the same operands.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import { InvalidArgumentError } from '../errors.js';
import { makeQTensor, resolveFormat, type CodeArray, type Format } from '../formats/index.js';
import { HOPPER_MODELS, alignedGemm, checkAligned, isAlignedModel, lowpGemm, type HopperModel, type LowpGemmOptions } from '../kernels/index.js';
import type { CliIo } from './io.js';

export interface GemmCommandOptions {
  a: string;
  b: string;
  shape: string;
  aFormat: string;
  bFormat: string;
  accumulation: string;
  out?: string;
}

/** "MxKxN" as [M, K, N]. */
export function parseGemmShape(text: string): [number, number, number] {
  const m = /^(\d+)x(\d+)x(\d+)$/.exec(text.trim());
  if (!m || [m[1], m[2], m[3]].some((d) => Number(d) < 1)) {
    throw new InvalidArgumentError(`--shape is "${text}"; expected MxKxN with positive sizes, such as 64x128x32`);
  }
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

/** An accumulation file: the emulated accumulator's settings (docs/lowp_gemm.md). */
const AccumulationFile = z
  .object({
    format: z.string().optional(),
    /** An aligned fixed-point accumulator instead of a format (src/kernels/hopper_gemm.ts). */
    aligned: z.object({ group: z.number().int(), keep: z.number().int(), significant: z.number().int(), interval: z.number().int() }).strict().optional(),
    chunk: z.number().int().min(0).optional(),
    rounding: z.enum(['nearest', 'stochastic']).optional(),
    saturate: z.boolean().optional(),
    seed: z.number().int().min(0).optional(),
  })
  .strict()
  .refine((f) => (f.format === undefined) !== (f.aligned === undefined), { message: 'give exactly one of format and aligned' });

/** The accumulation options: a format name (fp32, e6m9, fp16, any eXmY: rounded after every add), or a JSON file. */
export function accumulationOptions(spec: string): LowpGemmOptions {
  if (!spec.endsWith('.json')) {
    resolveFormat(spec);
    return { accumulation: spec };
  }
  if (!existsSync(spec)) throw new InvalidArgumentError(`--accumulation file ${spec} does not exist; give a format name (fp32, e6m9, ...) or a JSON file`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(spec, 'utf8'));
  } catch (error) {
    throw new InvalidArgumentError(`--accumulation file ${spec} is not JSON (${(error as Error).message})`);
  }
  const result = AccumulationFile.safeParse(parsed);
  if (!result.success) throw new InvalidArgumentError(`--accumulation file ${spec}: ${z.prettifyError(result.error)}`);
  const { format, aligned, ...rest } = result.data;
  if (aligned) return { accumulation: checkAligned(aligned), ...rest };
  if (!isAlignedModel(format)) resolveFormat(format!);
  return { accumulation: format, ...rest };
}

/** The codes of a rows x cols operand of `format` from a file of raw little-endian codes. */
function readCodes(file: string, format: Format, rows: number, cols: number, flag: string): CodeArray {
  if (format.storageBytes === 4) throw new InvalidArgumentError(`${flag}: ${format.name} operands are not supported; use a format of at most 16 bits`);
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    throw new InvalidArgumentError(`${flag} ${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  const expected = rows * cols * format.storageBytes;
  if (bytes.length !== expected) {
    throw new InvalidArgumentError(
      `${flag} ${file} holds ${bytes.length} bytes; a ${rows} x ${cols} operand of ${format.name} codes takes ${expected} (${format.storageBytes} byte${format.storageBytes > 1 ? 's' : ''} each)`,
    );
  }
  if (format.storageBytes === 1) return new Uint8Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  const codes = new Uint16Array(rows * cols);
  for (let i = 0; i < codes.length; i++) codes[i] = bytes.readUInt16LE(2 * i);
  const limit = 2 ** format.bits;
  const bad = codes.findIndex((c) => c >= limit);
  if (bad >= 0) throw new InvalidArgumentError(`${flag} ${file}: code ${bad} is 0x${codes[bad].toString(16)}, beyond ${format.name}'s ${format.bits} bits`);
  return codes;
}

export async function gemmCommand(options: GemmCommandOptions, io: CliIo): Promise<void> {
  const [m, k, n] = parseGemmShape(options.shape);
  const aFormat = resolveFormat(options.aFormat);
  const bFormat = resolveFormat(options.bFormat);
  const hopper = (HOPPER_MODELS as readonly string[]).includes(options.accumulation) ? (options.accumulation as HopperModel) : null;
  if (hopper && (aFormat.bits !== 8 || bFormat.bits !== 8)) {
    throw new InvalidArgumentError(`--accumulation ${hopper} models FP8 tensor cores: give e4m3 or e5m2 operands (got ${aFormat.name} x ${bFormat.name})`);
  }
  const accumulation = hopper ? null : accumulationOptions(options.accumulation);
  const aCodes = readCodes(options.a, aFormat, m, k, '--a');
  const bCodes = readCodes(options.b, bFormat, k, n, '--b');
  const c = hopper
    ? alignedGemm(m, n, k, aCodes as Uint8Array, aFormat, bCodes as Uint8Array, bFormat, hopper)
    : lowpGemm(m, n, k, makeQTensor(aCodes, aFormat), makeQTensor(bCodes, bFormat), accumulation!);
  const bytes = new Uint8Array(c.buffer, c.byteOffset, c.byteLength);
  if (options.out) writeFileSync(options.out, bytes);
  else await io.writeOut(bytes);
}
