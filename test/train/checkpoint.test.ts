/**
 * Checkpoints refuse what they cannot vouch for: a record that is not JSON or lacks its fields,
 * tensors whose bytes changed since they were written, and tensors of another shape than the
 * model they describe, each with the file and the tensor named.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { loadDataset, type Dataset } from '../../src/data/index.js';
import { presetRecipe } from '../../src/quant/index.js';
import {
  CHECKPOINT_FILE, buildTrainModel, decodeSafetensors, encodeSafetensors, readCheckpointRecord, restoreCheckpoint, train, type TrainConfig,
} from '../../src/train/index.js';

const config: TrainConfig = {
  model: 'resnet20', modelOptions: { width: 4 }, data: 'mnist', recipe: presetRecipe('fp8'), epochs: 1, batchSize: 32, lr: 0.01, weightDecay: 0,
  optimizer: 'adamw', seed: 3, maxTrain: 32, maxTest: 32, checkpointEvery: 0, logEvery: 1,
};

let dataset: Dataset;
let file: string;
let original: Uint8Array;

/** The checkpoint with `change` applied to its decoded tensors and metadata, written to a new file. */
function altered(change: (tensors: Map<string, { dtype: never; shape: number[]; bytes: Uint8Array }>, metadata: Record<string, string>) => void): string {
  const { tensors, metadata } = decodeSafetensors(original, file);
  const copy = new Map([...tensors].map(([k, t]) => [k, { ...t, bytes: t.bytes.slice() }]));
  change(copy as never, metadata);
  const out = join(mkdtempSync(join(tmpdir(), 'octet-ckpt-')), CHECKPOINT_FILE);
  writeFileSync(out, encodeSafetensors(copy, metadata));
  return out;
}

describe('checkpoints', () => {
  before(async () => {
    dataset = await loadDataset('mnist');
    const out = mkdtempSync(join(tmpdir(), 'octet-ckpt-'));
    await train(config, dataset, out);
    file = join(out, CHECKPOINT_FILE);
    original = new Uint8Array(readFileSync(file));
  });

  test('an intact checkpoint reads, and restores into the model it describes', () => {
    const model = buildTrainModel(config, dataset);
    restoreCheckpoint(file, readCheckpointRecord(file), model, null, null);
  });

  test('a tensor whose bytes changed is refused by name', () => {
    const changed = altered((tensors) => {
      tensors.get('model.fc.bias')!.bytes[0] ^= 1;
    });
    assert.throws(() => readCheckpointRecord(changed), /the bytes of tensor model\.fc\.bias do not match the hash it was written with/);
    const dropped = altered((tensors) => void tensors.delete('model.fc.bias'));
    assert.throws(() => readCheckpointRecord(dropped), /tensor model\.fc\.bias is missing/);
  });

  test('a record that is not JSON, or lacks config or session, is refused', () => {
    const notJson = altered((_t, metadata) => void (metadata.octet = '{"config": '));
    assert.throws(() => readCheckpointRecord(notJson), /its Octet record is not JSON/);
    const partial = altered((_t, metadata) => {
      const record = JSON.parse(metadata.octet) as Record<string, unknown>;
      delete record.config;
      delete record.session;
      metadata.octet = JSON.stringify(record);
    });
    assert.throws(() => readCheckpointRecord(partial), /its Octet record lacks config, session/);
  });

  test('tensors of another shape than the model needs are refused with both shapes', () => {
    const model = buildTrainModel({ ...config, modelOptions: { width: 8 } }, dataset);
    assert.throws(() => restoreCheckpoint(file, readCheckpointRecord(file), model, null, null), /model\.conv1\.weight has shape \[4, 1, 3, 3\]; the model it describes needs \[8, 1, 3, 3\]/);
  });
});
