/** `octet models` and `octet summary`: the model zoo, and one model layer by layer. */
import { InvalidArgumentError } from '../errors.js';
import { MODELS, modelInfo, summarize, withoutInit, type ModelOptions } from '../nn/index.js';
import { Tensor } from '../tensor/index.js';
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
  model: string;
  classes?: string;
  inChannels?: string;
  width?: string;
  input?: string;
  json?: boolean;
}

export function summaryCommand(options: SummaryOptions, io: CliIo): void {
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
