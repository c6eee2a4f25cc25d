/** `octet bench [groups...]`: run benchmarks and print JSON lines (or a table). */
import { blockBench, codecBench, gemmBench, lowpBench, sparseBench, sparseStepBench, trainBench } from '../bench/index.js';
import { InvalidArgumentError } from '../errors.js';
import { kernelThreads } from '../kernels/index.js';
import type { CliIo } from './io.js';
import { renderTable } from './text_table.js';

type Row = Record<string, unknown>;

const GROUPS: Record<string, (threads: number[]) => Promise<Row[]> | Row[]> = {
  gemm: (threads) => gemmBench(threads) as unknown as Row[],
  lowp: (threads) => [...lowpBench(threads), ...blockBench(threads)] as unknown as Row[],
  codec: async (threads) => (await codecBench(threads)) as unknown as Row[],
  train: (threads) => trainBench(Math.max(...threads)) as unknown as Row[],
  sparse: (threads) => [...sparseBench(Math.max(...threads)), ...sparseStepBench(Math.max(...threads))] as unknown as Row[],
};

export const BENCH_GROUPS = Object.keys(GROUPS);

function parseThreads(text: string | undefined): number[] {
  if (text === undefined) return [...new Set([1, kernelThreads()])];
  const list = text.split(',').map((t) => Number(t.trim()));
  if (!list.length || !list.every((t) => Number.isInteger(t) && t >= 1)) {
    throw new InvalidArgumentError(`--threads ${JSON.stringify(text)}; expected positive integers separated by commas, e.g. 1,2`);
  }
  return list;
}

function cell(value: unknown): string {
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : value.toPrecision(4);
  return value === undefined ? '' : String(value);
}

export async function benchCommand(groups: string[], options: { json?: boolean; threads?: string }, io: CliIo): Promise<void> {
  const unknown = groups.filter((g) => !(g in GROUPS));
  if (unknown.length) {
    throw new InvalidArgumentError(`unknown benchmark ${unknown.map((g) => JSON.stringify(g)).join(', ')}; choose from ${BENCH_GROUPS.join(', ')}`);
  }
  const threads = parseThreads(options.threads);
  for (const group of groups.length ? groups : BENCH_GROUPS) {
    const rows = await GROUPS[group](threads);
    if (options.json) {
      io.stdout(rows.map((r) => JSON.stringify(r)).join('\n') + (rows.length ? '\n' : ''));
    } else {
      const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
      io.stdout(renderTable(columns, rows.map((r) => columns.map((c) => cell(r[c])))) + '\n');
    }
  }
}
