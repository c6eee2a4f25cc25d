/** `octet models` and `octet summary`: the model zoo, and one model layer by layer. */
import { InvalidArgumentError } from '../errors.js';
import { MODELS, modelInfo, summarize, withoutInit, type ModelOptions } from '../nn/index.js';
import { parseBlockShape } from '../sparse/index.js';
import { Tensor } from '../tensor/index.js';
import { asFloat32, checkpointMasks, readCheckpointRecord, type TrainConfig } from '../train/index.js';
import type { CliIo } from './io.js';
import { renderTable } from './text_table.js';

const grouped = (n: number) => n.toLocaleString('en-US');

export function modelsCommand(options: { json?: boolean }, io: CliIo): void {
  const entries = MODELS.map((m) => ({
    name: m.name,
    task: m.task,
    classes: m.classes,
    in_channels: m.inChannels,
    input_size: m.inputSize,
    params: withoutInit(() => m.build()).numParameters(),
    description: m.description,
  }));
  if (options.json) {
    io.stdout(JSON.stringify(entries, null, 2) + '\n');
    return;
  }
  const rows = entries.map((e) => [e.name, e.task, String(e.classes), String(e.in_channels), e.input_size.join('x'), grouped(e.params), e.description]);
  io.stdout(renderTable(['model', 'task', 'classes', 'in', 'input', 'params', 'description'], rows));
  io.stdout('Per-layer view: octet summary --model NAME\n');
}

function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${flag} is "${value}"; expected a positive integer`);
  return n;
}

/** "32" or "32x64" as [H, W]. */
export function parseSize(value: string, flag: string): [number, number] {
  const m = /^(\d+)(?:x(\d+))?$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`${flag} is "${value}"; expected a size such as 32 or 64x128`);
  const h = Number(m[1]);
  const w = m[2] === undefined ? h : Number(m[2]);
  if (h < 1 || w < 1) throw new InvalidArgumentError(`${flag} is "${value}"; sizes must be positive`);
  return [h, w];
}

export interface SummaryOptions {
  model?: string;
  checkpoint?: string;
  classes?: string;
  inChannels?: string;
  width?: string;
  input?: string;
  json?: boolean;
}

/**
 * A checkpoint's GEMM layers: each weight's GEMM view (output channels x the rest), and where the
 * run pruned it, the block shape, the blocks kept and the share of zero weights.
 */
function checkpointSummary(file: string, options: SummaryOptions, io: CliIo): void {
  const { record, tensors } = readCheckpointRecord<TrainConfig>(file);
  const prune = record.config.prune;
  const shape = prune ? parseBlockShape(prune.block) : null;
  const masks = checkpointMasks(file, tensors);
  const layers = [...tensors]
    .filter(([name, t]) => name.startsWith('model.') && name.endsWith('.weight') && t.shape.length >= 2)
    .map(([name, t]) => {
      const param = name.slice('model.'.length);
      const values = asFloat32(t, name, file);
      const rows = t.shape[0], cols = values.length / rows;
      let zeros = 0;
      for (const v of values) if (v === 0) zeros++;
      const keep = masks.get(param);
      const kept = keep ? keep.reduce((a, b) => a + b, 0) : null;
      return {
        layer: param.slice(0, -'.weight'.length), rows, cols, block: keep && shape ? shape.name : null, blocks: keep?.length ?? null, kept,
        sparsity: keep ? 1 - kept! / keep.length : 0, zeros: zeros / values.length,
      };
    });
  if (options.json) {
    io.stdout(JSON.stringify({ checkpoint: file, model: record.config.model, step: record.step, prune: prune ?? null, layers }, null, 2) + '\n');
    return;
  }
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const rows = layers.map((l) => [l.layer, `${l.rows} x ${l.cols}`, l.block ?? 'dense', l.blocks === null ? '-' : `${l.kept}/${l.blocks}`, l.block ? pct(l.sparsity) : '-', pct(l.zeros)]);
  io.stdout(renderTable(['layer', 'GEMM view', 'blocks', 'kept', 'block sparsity', 'zero weights'], rows));
  const weights = layers.reduce((s, l) => s + l.rows * l.cols, 0);
  const zeros = layers.reduce((s, l) => s + l.zeros * l.rows * l.cols, 0);
  io.stdout(
    `${record.config.model} at step ${record.step}: ${prune ? `pruned in ${prune.block} blocks to ${pct(prune.sparsity)} (${masks.size} layers)` : 'not pruned'}; ` +
      `${pct(zeros / weights)} of all GEMM weights are zero\n`,
  );
}

export function summaryCommand(options: SummaryOptions, io: CliIo): void {
  if (options.checkpoint !== undefined) {
    if (options.model !== undefined) throw new InvalidArgumentError('octet summary: give --model or --checkpoint, not both (a checkpoint names its model)');
    checkpointSummary(options.checkpoint, options, io);
    return;
  }
  if (options.model === undefined) throw new InvalidArgumentError('octet summary: give --model NAME (a model of the zoo) or --checkpoint FILE (a trained run)');
  const info = modelInfo(options.model);
  const config: ModelOptions = {
    classes: positiveInt(options.classes, '--classes'),
    inChannels: positiveInt(options.inChannels, '--in-channels'),
    width: positiveInt(options.width, '--width'),
  };
  const model = info.build(config);
  const [h, w] = options.input ? parseSize(options.input, '--input') : info.inputSize;
  const summary = summarize(model, Tensor.zeros([1, config.inChannels ?? info.inChannels, h, w]));
  if (options.json) {
    io.stdout(JSON.stringify({ model: info.name, ...summary }, null, 2) + '\n');
    return;
  }
  const rows = summary.rows.map((r) => [r.name, r.layer, `[${r.outputShape.join(', ')}]`, grouped(r.params), grouped(r.macs)]);
  io.stdout(renderTable(['layer', 'op', 'output shape', 'params', 'MACs'], rows));
  io.stdout(
    `${info.name}: ${grouped(summary.totalParams)} parameters, ${(summary.totalMacs / 1e6).toFixed(1)} M MACs ` +
      `for one ${summary.inputShape.slice(1).join('x')} input\n`,
  );
}
