/** `octet prune`: one-shot block pruning of a trained checkpoint, written with its masks to a new folder. */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import { checkSparsity, parseBlockShape, type PruneConfig } from '../sparse/index.js';
import { CHECKPOINT_FILE, pruneCheckpoint, readCheckpointRecord, type TrainConfig } from '../train/index.js';
import type { CliIo } from './io.js';
import { loadData, number } from './train_command.js';

export interface PruneOptions {
  checkpoint: string;
  block: string;
  sparsity: string;
  global?: boolean;
  norm: string;
  exclude?: string;
  firstLast?: boolean;
  out: string;
  overwrite?: boolean;
}

export async function pruneCommand(options: PruneOptions, io: CliIo): Promise<void> {
  parseBlockShape(options.block);
  const sparsity = checkSparsity(number(options.sparsity, '--sparsity')!, '--sparsity');
  if (options.norm !== 'l1' && options.norm !== 'l2') throw new InvalidArgumentError(`--norm is "${options.norm}"; expected l1 or l2`);
  const outFile = join(options.out, CHECKPOINT_FILE);
  if (existsSync(outFile) && !options.overwrite) throw new InvalidArgumentError(`${outFile} exists; give another --out, or --overwrite to replace it`);
  const { record } = readCheckpointRecord<TrainConfig>(options.checkpoint);
  const exclude = options.exclude?.split(',').map((p) => p.trim()).filter(Boolean);
  const prune: PruneConfig = {
    block: options.block, sparsity, norm: options.norm, ...(options.global ? { global: true } : {}), ...(exclude?.length ? { exclude } : {}),
    ...(options.firstLast ? { pruneFirstLast: true } : {}),
  };
  const dataset = await loadData(record.config.data);
  mkdirSync(options.out, { recursive: true });
  const layers = pruneCheckpoint(options.checkpoint, prune, dataset, outFile);
  const blocks = layers.reduce((s, l) => s + l.blocks, 0);
  const dropped = layers.reduce((s, l) => s + l.sparsity * l.blocks, 0);
  io.stdout(
    `Pruned ${layers.length} layers of ${record.config.model} (step ${record.step}) in ${options.block} blocks: ${(100 * dropped / blocks).toFixed(1)}% of their blocks. ` +
      `Written to ${outFile}\n` +
      `Per layer: octet summary --checkpoint ${outFile}\n` +
      `Evaluate: octet eval --checkpoint ${outFile}\n` +
      `Fine-tune: octet train --init ${outFile} --prune ${options.block}:${sparsity} --model ${record.config.model} --data ${record.config.data} ...\n`,
  );
}
