/** `octet bench [groups...]`: run benchmarks and print JSON lines (or a table). */
import { blockBench, codecBench, gemmBench, lowpBench, parseInputShape, sparseBench, sparseStepBench, trainBench, type TrainBenchOptions } from '../bench/index.js';
import { InvalidArgumentError } from '../errors.js';
import { kernelThreads } from '../kernels/index.js';
import type { CliIo } from './io.js';
import { renderTable } from './text_table.js';

type Row = Record<string, unknown>;

const GROUPS: Record<string, (threads: number[], train: TrainBenchOptions) => Promise<Row[]> | Row[]> = {
  gemm: (threads) => gemmBench(threads) as unknown as Row[],
  lowp: (threads) => [...lowpBench(threads), ...blockBench(threads)] as unknown as Row[],
  codec: async (threads) => (await codecBench(threads)) as unknown as Row[],
  train: (threads, train) => trainBench(Math.max(...threads), train) as unknown as Row[],
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

export interface BenchOptions {
  json?: boolean;
  threads?: string;
  /** train group only: */
  model?: string;
  batch?: string;
  input?: string;
  profile?: string;
}

function parseCount(text: string, flag: string, min: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${flag} ${JSON.stringify(text)}; expected an integer >= ${min}`);
  return n;
}

/** The train group's options, checked (they apply to that group alone). */
function trainOptions(options: BenchOptions, groups: readonly string[]): TrainBenchOptions {
  const given = (['model', 'batch', 'input', 'profile'] as const).filter((k) => options[k] !== undefined);
  if (given.length && !(groups.length === 1 && groups[0] === 'train')) {
    throw new InvalidArgumentError(`--${given[0]} applies to the train benchmark alone; run \`octet bench train --${given[0]} ...\``);
  }
  return {
    model: options.model,
    batch: options.batch === undefined ? undefined : parseCount(options.batch, '--batch', 1),
    input: options.input === undefined ? undefined : parseInputShape(options.input),
    profileSteps: options.profile === undefined ? undefined : parseCount(options.profile, '--profile', 0),
  };
}

/** A row's step profile as a short table: the largest op kinds, then the phases. */
function profileTable(row: Row): string {
  const p = row.profile as { by_kind: { phase: string; kind: string; ms: number; share: number }[]; step_ms: number; outside_ops_ms: number; gc_ms: number } | null;
  if (!p) return '';
  const head = `${row.model} ${row.recipe} (${row.acc}): ${p.step_ms.toFixed(1)} ms per profiled step, ${p.outside_ops_ms.toFixed(1)} ms outside ops, ${p.gc_ms.toFixed(1)} ms in GC`;
  const top = p.by_kind.slice(0, 12);
  return `${head}\n${renderTable(['phase', 'kind', 'ms', 'share'], top.map((k) => [k.phase, k.kind, k.ms.toFixed(2), `${(100 * k.share).toFixed(1)}%`]))}\n`;
}

export async function benchCommand(groups: string[], options: BenchOptions, io: CliIo): Promise<void> {
  const unknown = groups.filter((g) => !(g in GROUPS));
  if (unknown.length) {
    throw new InvalidArgumentError(`unknown benchmark ${unknown.map((g) => JSON.stringify(g)).join(', ')}; choose from ${BENCH_GROUPS.join(', ')}`);
  }
  const threads = parseThreads(options.threads);
  const train = trainOptions(options, groups);
  for (const group of groups.length ? groups : BENCH_GROUPS) {
    const rows = await GROUPS[group](threads, train);
    if (options.json) {
      io.stdout(rows.map((r) => JSON.stringify(r)).join('\n') + (rows.length ? '\n' : ''));
    } else {
      const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))].filter((c) => c !== 'profile');
      io.stdout(renderTable(columns, rows.map((r) => columns.map((c) => cell(r[c])))) + '\n');
      for (const r of rows) io.stdout(profileTable(r));
    }
  }
}
