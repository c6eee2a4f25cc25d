import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadDataset, type Dataset } from '../../src/data/index.js';
import { mnistData, smallRun } from '../helpers/runs.js';
import { CHECKPOINT_FILE, asFloat32, buildTrainModel, readCheckpointRecord, readSafetensors, restoreCheckpoint, train, unpackCodes, type TrainConfig } from '../../src/train/index.js';
import { decode } from '../../src/kernels/index.js';

const base = smallRun;
const data = mnistData;

function weightsOf(out: string, dataset: Dataset, config: TrainConfig): Map<string, Float32Array> {
  const file = join(out, CHECKPOINT_FILE);
  const model = buildTrainModel(config, dataset);
  restoreCheckpoint(file, readCheckpointRecord(file), model, null, null);
  return new Map(model.namedParameters().map(([n, p]) => [n, p.data]));
}

describe('training', () => {
  test('a short run on real MNIST rises well above chance (10%)', async () => {
    const out = mkdtempSync(join(tmpdir(), 'octet-train-'));
    const result = await train(base('fp32', { modelOptions: { width: 8 }, maxTrain: 1024, epochs: 2, maxTest: 500 }), await data(), out);
    assert.ok(result.completed);
    assert.ok(result.final!.value > 0.6, `top-1 ${result.final!.value}`);
    const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.filter((l) => l.type === 'train').length, 64);
    assert.ok(lines.some((l) => l.type === 'eval' && l.metric === 'top1'));
  });

  test('fp8: checkpoint holds F32 master weights, F8_E5M2 forward weights with their scales, and the JSON record', async () => {
    const out = mkdtempSync(join(tmpdir(), 'octet-train-'));
    const config = base('fp8', { epochs: 1, maxTrain: 64 });
    await train(config, await data(), out);
    const { tensors, metadata } = readSafetensors(join(out, CHECKPOINT_FILE));
    assert.equal(tensors.get('model.conv1.weight')!.dtype, 'F32');
    assert.equal(tensors.get('fp8.layer1.0.conv1.weight')!.dtype, 'F8_E5M2');
    assert.deepEqual(tensors.get('fp8.layer1.0.conv1.weight_scale')!.shape, [1]);
    assert.ok(tensors.has('optimizer.fc.weight.exp_avg_sq') && tensors.has('model.bn1.running_var'));
    const record = JSON.parse(metadata.octet);
    assert.equal(record.step, 2);
    assert.equal(record.config.recipe.name, 'fp8');
    assert.ok(record.session.layers['layer1.0.conv1'].errors.dynamic.scale > 0);
  });

  test('stopped and resumed (in process) gives bit-identical weights to an uninterrupted run', async () => {
    const dataset = await data();
    const config = base('fp8', { maxTrain: 128 });
    const whole = mkdtempSync(join(tmpdir(), 'octet-whole-'));
    await train(config, dataset, whole);
    const parts = mkdtempSync(join(tmpdir(), 'octet-parts-'));
    let steps = 0;
    const first = await train(config, dataset, parts, { hooks: { onStep: () => void steps++, shouldStop: () => steps >= 3 } });
    assert.equal(first.completed, false);
    assert.equal(first.steps, 3);
    const second = await train(config, dataset, parts, { resume: true });
    assert.ok(second.completed);
    assert.deepEqual(weightsOf(parts, dataset, config), weightsOf(whole, dataset, config));
    const again = await train(config, dataset, mkdtempSync(join(tmpdir(), 'octet-again-')));
    assert.deepEqual(second.evals.map((e) => e.value), again.evals.map((e) => e.value));
  });

  test('metrics after a resume equal the uninterrupted run\'s, line for line, with a logging window that straddles the resume', async () => {
    const dataset = await data();
    const config = base('fp8', { maxTrain: 128, logEvery: 3 });
    const metricsOf = (out: string) =>
      readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => {
        const { images_per_s: _speed, ...rest } = JSON.parse(l) as Record<string, unknown>;
        return rest;
      });
    const whole = mkdtempSync(join(tmpdir(), 'octet-whole-'));
    await train(config, dataset, whole);
    const parts = mkdtempSync(join(tmpdir(), 'octet-parts-'));
    let steps = 0;
    await train(config, dataset, parts, { hooks: { onStep: () => void steps++, shouldStop: () => steps >= 4 } });
    await train(config, dataset, parts, { resume: true });
    const expected = metricsOf(whole);
    assert.ok(expected.some((l) => l.type === 'numerics') && expected.filter((l) => l.type === 'train').length === 3);
    assert.deepEqual(metricsOf(parts), expected);
  });

  test('a new run refuses a folder that holds a run unless asked to overwrite, and changes nothing before its first step', async () => {
    const dataset = await data();
    const out = mkdtempSync(join(tmpdir(), 'octet-train-'));
    const config = base('fp32', { epochs: 1, maxTrain: 64 });
    await train(config, dataset, out);
    const before = readFileSync(join(out, 'metrics.jsonl'), 'utf8');
    await assert.rejects(train(config, dataset, out), /already holds a run \(config\.json, metrics\.jsonl, checkpoint\.safetensors, result\.json\); continue it with resume/);
    // A run that fails at once (a test label out of range) leaves the folder as it was, overwrite or not.
    const bad = { ...dataset, test: { ...dataset.test, labels: Uint8Array.from(dataset.test.labels!, (l, i) => (i === 7 ? 12 : l)) } };
    await assert.rejects(train(config, bad, out, { overwrite: true }), /mnist \(test split\): example 7 has label 12; expected 0 to 9/);
    assert.equal(readFileSync(join(out, 'metrics.jsonl'), 'utf8'), before);
    const replaced = await train({ ...config, seed: 4 }, dataset, out, { overwrite: true });
    assert.ok(replaced.completed);
    assert.equal(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).seed, 4);
    assert.notEqual(readFileSync(join(out, 'metrics.jsonl'), 'utf8'), before);
  });

  test('resume removes temporary files a killed checkpoint write left', async () => {
    const dataset = await data();
    const out = mkdtempSync(join(tmpdir(), 'octet-train-'));
    const config = base('fp32', { epochs: 2, maxTrain: 64 });
    let steps = 0;
    await train(config, dataset, out, { hooks: { onStep: () => void steps++, shouldStop: () => steps >= 1 } });
    writeFileSync(join(out, '.checkpoint.safetensors.99999.tmp'), 'half a checkpoint');
    await train(config, dataset, out, { resume: true });
    assert.equal(existsSync(join(out, '.checkpoint.safetensors.99999.tmp')), false);
  });

  test('a diverging run (lr 1e30) stops with an error and keeps its last checkpoint with finite weights', async () => {
    const dataset = await data();
    const out = mkdtempSync(join(tmpdir(), 'octet-train-'));
    const config = base('fp32', { epochs: 1, maxTrain: 256, lr: 1e30, warmupSteps: 0, checkpointEvery: 1 });
    await assert.rejects(train(config, dataset, out), /training diverged.*(The last good checkpoint is kept at|No checkpoint was written)/);
    if (existsSync(join(out, CHECKPOINT_FILE))) {
      const { tensors } = readSafetensors(join(out, CHECKPOINT_FILE));
      for (const [name, t] of tensors) {
        if (t.dtype !== 'F32') continue;
        const values = new Float32Array(t.bytes.buffer.slice(t.bytes.byteOffset, t.bytes.byteOffset + t.bytes.byteLength));
        assert.ok(values.every(Number.isFinite), `${name} holds NaN or Inf`);
      }
    }
    assert.equal(existsSync(join(out, 'result.json')), false);
  });

  test('killed at a random step (SIGKILL), then --resume: the same final weights as an uninterrupted run', async () => {
    const dataset = await data();
    const config = base('fp32', { checkpointEvery: 1 });
    const whole = mkdtempSync(join(tmpdir(), 'octet-whole-'));
    await train(config, dataset, whole);
    const out = mkdtempSync(join(tmpdir(), 'octet-kill-'));
    const killAt = 3 + Math.floor(Math.random() * 8);
    const child = spawn(process.execPath, [
      '--import', 'tsx', 'src/cli/bin.ts', 'train', '--model', 'resnet20', '--width', '4', '--data', 'mnist', '--recipe', 'fp32',
      '--epochs', '2', '--batch-size', '32', '--lr', '0.01', '--weight-decay', '0', '--seed', '3', '--max-train', '256', '--max-test', '200',
      '--checkpoint-every', '1', '--log-every', '1', '--out', out, '--no-progress',
    ], { stdio: 'ignore' });
    await new Promise<void>((resolve, reject) => {
      const poll = setInterval(() => {
        const metrics = join(out, 'metrics.jsonl');
        const steps = existsSync(metrics) ? readFileSync(metrics, 'utf8').split('\n').filter((l) => l.includes('"type":"train"')).length : 0;
        if (steps >= killAt) {
          clearInterval(poll);
          child.kill('SIGKILL');
          resolve();
        }
      }, 20);
      child.on('exit', (code) => {
        clearInterval(poll);
        if (code === 0) reject(new Error(`the run finished before step ${killAt}`));
        else resolve();
      });
    });
    const saved = readCheckpointRecord(join(out, CHECKPOINT_FILE)).record.step;
    assert.ok(saved >= killAt - 1 && saved < 16, `checkpoint at step ${saved}, killed near ${killAt}`);
    const resumed = await train(config, dataset, out, { resume: true });
    assert.ok(resumed.completed);
    assert.deepEqual(weightsOf(out, dataset, config), weightsOf(whole, dataset, config));
    const trainSteps = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.type === 'train').map((l) => l.step);
    assert.deepEqual(trainSteps, Array.from({ length: 16 }, (_, i) => i + 1));
  });

  test('Ctrl-C (SIGINT) finishes the step, saves a checkpoint and exits with 130; --resume finishes the run', async () => {
    const out = mkdtempSync(join(tmpdir(), 'octet-sigint-'));
    const args = [
      '--import', 'tsx', 'src/cli/bin.ts', 'train', '--model', 'resnet20', '--width', '4', '--data', 'mnist', '--epochs', '2', '--batch-size', '32',
      '--seed', '3', '--max-train', '256', '--max-test', '100', '--log-every', '1', '--out', out, '--no-progress',
    ];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    const code = await new Promise<number | null>((resolve) => {
      const poll = setInterval(() => {
        const metrics = join(out, 'metrics.jsonl');
        if (existsSync(metrics) && readFileSync(metrics, 'utf8').includes('"step":3,')) {
          clearInterval(poll);
          child.kill('SIGINT');
        }
      }, 20);
      child.on('exit', (c) => {
        clearInterval(poll);
        resolve(c);
      });
    });
    assert.equal(code, 130);
    assert.match(stdout, /Interrupted after step \d+; checkpoint saved to .*checkpoint\.safetensors\. Continue with the same command and --resume/);
    const step = readCheckpointRecord(join(out, CHECKPOINT_FILE)).record.step;
    assert.ok(step >= 3 && step < 16, `saved at step ${step}`);
    const resumed = spawn(process.execPath, [...args, '--resume'], { stdio: 'ignore' });
    assert.equal(await new Promise((resolve) => resumed.on('exit', resolve)), 0);
    assert.equal(readCheckpointRecord(join(out, CHECKPOINT_FILE)).record.step, 16);
  });

  test('resume refuses a checkpoint made with other settings, and a missing one', async () => {
    const dataset = await data();
    const out = mkdtempSync(join(tmpdir(), 'octet-train-'));
    await train(base('fp32', { epochs: 1, maxTrain: 64 }), dataset, out);
    await assert.rejects(train(base('fp32', { epochs: 1, maxTrain: 64, batchSize: 16 }), dataset, out, { resume: true }), /made with batchSize 32, this run asks for 16/);
    await assert.rejects(train(base('fp8', { epochs: 1, maxTrain: 64 }), dataset, out, { resume: true }), /made with recipe fp32, this run asks for fp8/);
    // Every setting that changes the result is compared, and every difference is named.
    await assert.rejects(
      train(base('fp32', { epochs: 1, maxTrain: 64, lr: 0.02, weightDecay: 0.001, warmupSteps: 1 }), dataset, out, { resume: true }),
      /made with lr 0\.01, this run asks for 0\.02; weightDecay 0, this run asks for 0\.001; warmupSteps unset, this run asks for 1; resume with the same settings/,
    );
    // A recipe whose contents changed under the same name is named as such.
    const changed = { ...base('fp32', { epochs: 1, maxTrain: 64 }) };
    changed.recipe = { ...changed.recipe, accumulation: { format: 'e6m9', chunk: 0, rounding: 'nearest', outer: 'fp32', promote: 0 } };
    await assert.rejects(train(changed, dataset, out, { resume: true }), /recipe fp32 with other contents \(accumulation changed since\)/);
    await assert.rejects(train(base('fp32'), dataset, mkdtempSync(join(tmpdir(), 'octet-empty-')), { resume: true }), /no checkpoint at .*; start without resume/);
  });

  test('the conv algorithm is recorded, and resuming with the other one is refused with how to match it', async () => {
    const dataset = await data();
    const out = mkdtempSync(join(tmpdir(), 'octet-train-'));
    await train(base('fp32', { epochs: 1, maxTrain: 64, conv: 'winograd' }), dataset, out);
    const record = readCheckpointRecord<TrainConfig>(join(out, CHECKPOINT_FILE)).record;
    assert.equal(record.config.conv, 'winograd');
    assert.equal(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).conv, 'winograd');
    await assert.rejects(
      train(base('fp32', { epochs: 1, maxTrain: 64, conv: 'direct' }), dataset, out, { resume: true }),
      /made with float32 convolutions on the winograd product, this run uses direct \(resume with conv "winograd" or OCTET_CONV=winograd\)/,
    );
    // Unset, a run takes the default (OCTET_CONV, read when the run starts) and records it.
    const was = process.env.OCTET_CONV;
    process.env.OCTET_CONV = 'direct';
    try {
      const other = mkdtempSync(join(tmpdir(), 'octet-train-'));
      await train(base('fp32', { epochs: 1, maxTrain: 64 }), dataset, other);
      assert.equal(readCheckpointRecord<TrainConfig>(join(other, CHECKPOINT_FILE)).record.config.conv, 'direct');
    } finally {
      if (was === undefined) delete process.env.OCTET_CONV;
      else process.env.OCTET_CONV = was;
    }
  });

  test('segmentation: UNet on mnist-seg reports mIoU and per-class IoU', async () => {
    const seg = await loadDataset('mnist-seg', { mnistSegCount: [64, 16] });
    const out = mkdtempSync(join(tmpdir(), 'octet-seg-'));
    const result = await train({ ...base('fp32'), model: 'unet', modelOptions: { width: 4, depth: 2 }, data: 'mnist-seg', epochs: 1, batchSize: 16, maxTrain: undefined, maxTest: 16 }, seg, out);
    assert.equal(result.final!.metric, 'miou');
    assert.equal(result.final!.iou!.length, 11);
    assert.ok(result.final!.value > 0 && result.final!.value <= 1);
  });
});

describe('block-scaled recipes', () => {
  test('mxfp8: trains, exports MX weights (F8_E4M3 codes, F8_E8M0 scales), and resumes bit-identically', async () => {
    const dataset = await data();
    const config = base('mxfp8', { maxTrain: 96 });
    const whole = mkdtempSync(join(tmpdir(), 'octet-mx-whole-'));
    const result = await train(config, dataset, whole);
    assert.ok(result.completed && Number.isFinite(result.final!.value));
    const { tensors } = readSafetensors(join(whole, CHECKPOINT_FILE));
    const w = tensors.get('fp8.layer1.0.conv1.weight')!;
    const s = tensors.get('fp8.layer1.0.conv1.weight_scale')!;
    assert.equal(w.dtype, 'F8_E4M3');
    assert.equal(s.dtype, 'F8_E8M0');
    // [OC, K] codes, one E8M0 scale per 32 along K = in channels * 3 * 3.
    assert.deepEqual(s.shape, [w.shape[0], Math.ceil(w.shape[1] / 32)]);
    const parts = mkdtempSync(join(tmpdir(), 'octet-mx-parts-'));
    let steps = 0;
    await train(config, dataset, parts, { hooks: { onStep: () => void steps++, shouldStop: () => steps >= 2 } });
    await train(config, dataset, parts, { resume: true });
    assert.deepEqual(weightsOf(parts, dataset, config), weightsOf(whole, dataset, config));
  });

  test('deepseek-v3 and rowwise train a few steps with finite losses', async () => {
    const dataset = await data();
    for (const recipe of ['deepseek-v3', 'rowwise', 'mxfp4', 'mxfp6']) {
      const out = mkdtempSync(join(tmpdir(), `octet-${recipe}-`));
      const result = await train(base(recipe, { epochs: 1, maxTrain: 64 }), dataset, out);
      assert.ok(result.completed && Number.isFinite(result.final!.value), recipe);
      if (recipe === 'mxfp4') {
        // FP4 weights go out as F4, two codes a byte, with their E8M0 block scales.
        const { tensors } = readSafetensors(join(out, CHECKPOINT_FILE));
        const w = tensors.get('fp8.layer1.0.conv1.weight')!;
        assert.equal(w.dtype, 'F4');
        assert.equal(w.bytes.length, Math.ceil((w.shape[0] * w.shape[1]) / 2));
        assert.equal(tensors.get('fp8.layer1.0.conv1.weight_scale')!.dtype, 'F8_E8M0');
        assert.ok(!tensors.has('fp8.conv1.weight'), 'the first layer stays float32 under mxfp4');
      }
      if (recipe === 'mxfp6') {
        // FP6 E2M3 weights go out as F6_E2M3, four codes in three bytes, with E8M0 block scales,
        // and decode to the model's weights within E2M3's rounding of each block of 32.
        const { tensors } = readSafetensors(join(out, CHECKPOINT_FILE));
        const w = tensors.get('fp8.layer1.0.conv1.weight')!;
        const s = tensors.get('fp8.layer1.0.conv1.weight_scale')!;
        assert.equal(w.dtype, 'F6_E2M3');
        assert.equal(s.dtype, 'F8_E8M0');
        const [rows, k] = w.shape;
        assert.equal(w.bytes.length, (rows * k * 3) / 4);
        const values = decode(unpackCodes('F6_E2M3', w.bytes, rows * k), 'e2m3');
        const model = asFloat32(tensors.get('model.layer1.0.conv1.weight')!, 'w', 'x');
        const kBlocks = s.shape[1];
        for (let r = 0; r < rows; r++) {
          for (let b = 0; b < kBlocks; b++) {
            const scale = 2 ** (s.bytes[r * kBlocks + b] - 127);
            let amax = 0;
            for (let t = 32 * b; t < Math.min(k, 32 * b + 32); t++) amax = Math.max(amax, Math.abs(model[r * k + t]));
            for (let t = 32 * b; t < Math.min(k, 32 * b + 32); t++) {
              assert.ok(Math.abs(values[r * k + t] * scale - model[r * k + t]) <= amax / 8, `weight [${r}, ${t}]`);
            }
          }
        }
      }
    }
  });
});
