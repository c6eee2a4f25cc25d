/**
 * `octet stats`: the numerics lab on the command line. Trains the configured run up to the last
 * step asked for, looking at those steps, or (--checkpoint) looks at one batch through a trained
 * checkpoint; writes stats.json and stats.html into --out, and with --json prints the records,
 * one JSON object per line.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError, SettingError } from '../errors.js';
import { loadRecipe } from '../quant/index.js';
import {
  DEFAULT_TOLERANCE, STATS_FILE, STATS_PAGE, checkpointStats, readCheckpointRecord, readStats, train, writeStats, writeStatsPage, type StatsDocument, type TrainConfig,
} from '../train/index.js';
import { prepareOutputFolder } from '../train/run_folder.js';
import type { CliIo } from './io.js';
import { loadData, number, parseFormats, runHooks, trainConfig, type TrainOptions } from './train_command.js';

export interface StatsOptions extends Omit<TrainOptions, 'model' | 'data'> {
  model?: string;
  data?: string;
  checkpoint?: string;
  steps: string;
  formats?: string;
  tolerance?: string;
  json?: boolean;
}

/** A comma-separated list of step numbers. */
export function parseSteps(text: string): number[] {
  const parts = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (!parts.length) throw new SettingError('statsSteps', `--steps is "${text}"; give step numbers such as 0,50,200`);
  return parts.map((p) => {
    if (!/^\d+$/.test(p)) throw new SettingError('statsSteps', `--steps: "${p}" is not a step number; give integers >= 0 such as 0,50,200`);
    return Number(p);
  });
}

function parseTolerance(text: string | undefined): number {
  const t = number(text, '--tolerance');
  if (t === undefined) return DEFAULT_TOLERANCE;
  if (t >= 1) throw new InvalidArgumentError(`--tolerance is "${text}"; expected a fraction in [0, 1), such as 0.001 (0.1%)`);
  return t;
}

export async function statsCommand(options: StatsOptions, io: CliIo): Promise<number> {
  const formats = parseFormats(options.formats, '--formats');
  const tolerance = parseTolerance(options.tolerance);
  let doc: StatsDocument;
  if (options.checkpoint) {
    const loaded = readCheckpointRecord<TrainConfig>(options.checkpoint);
    const config = loaded.record.config;
    if (options.steps !== '0') throw new SettingError('statsSteps', `--steps ${options.steps} with --checkpoint: a checkpoint is looked at on one batch (step 0); leave --steps out`);
    const dataset = await loadData(options.data ?? config.data, options.imageSize);
    prepareOutputFolder(options.out);
    if (existsSync(join(options.out, STATS_FILE)) && !options.overwrite) {
      throw new SettingError('overwrite', `${options.out} already holds ${STATS_FILE}; give another --out or replace it with --overwrite`);
    }
    doc = checkpointStats(options.checkpoint, dataset, { recipe: options.recipe === undefined ? undefined : loadRecipe(options.recipe), model: options.model, formats }, loaded);
    writeStats(options.out, doc);
    await writeStatsPage(options.out, doc, tolerance);
  } else {
    if (!options.model) throw new SettingError('model', 'octet stats needs --model (or --checkpoint to look at a trained model)');
    if (!options.data) throw new SettingError('data', 'octet stats needs --data (or --checkpoint to look at a trained model)');
    const steps = parseSteps(options.steps);
    const last = Math.max(...steps);
    const config = trainConfig({ ...options, model: options.model, data: options.data }, options.recipe ?? 'fp32');
    const dataset = await loadData(options.data, options.imageSize);
    const { hooks, done } = runHooks(io, `${config.recipe.name} stats`, options.progress !== false);
    let taken = 0;
    const userStop = hooks.shouldStop;
    hooks.onStep = ((inner) => (p) => {
      taken = p.step;
      inner?.(p);
    })(hooks.onStep);
    // The run stops once the last step asked for has been looked at (a checkpoint is kept there).
    hooks.shouldStop = () => taken > last || (userStop?.() ?? false);
    try {
      await train(config, dataset, options.out, { resume: options.resume, overwrite: options.overwrite, hooks, stats: { steps, formats, tolerance } });
    } finally {
      done();
    }
    if (taken <= last) {
      io.stdout(`Interrupted after step ${taken}; continue with the same command and --resume.\n`);
      return 130;
    }
    doc = readStats(join(options.out, STATS_FILE));
  }
  if (options.json) {
    for (const r of doc.records) io.stdout(JSON.stringify(r) + '\n');
  } else {
    io.stdout(`${doc.records.length} records (steps ${doc.steps.join(', ')}; ${new Set(doc.records.map((r) => r.layer)).size} layers). ` +
      `Stats: ${join(options.out, STATS_FILE)}; page: ${join(options.out, STATS_PAGE)}\n`);
  }
  return 0;
}
