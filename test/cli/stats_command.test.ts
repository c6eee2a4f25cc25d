import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { runOctet } from '../helpers/cli_io.js';

const SMALL = ['--model', 'resnet20', '--width', '4', '--data', 'mnist', '--batch-size', '32', '--max-train', '128', '--max-test', '32', '--no-progress'];
const tmp = () => mkdtempSync(join(tmpdir(), 'octet-stats-'));

describe('octet stats', () => {
  test('--json prints one record per step x layer x tensor with the documented fields; the files are written', async () => {
    const out = tmp();
    const r = await runOctet(['stats', ...SMALL, '--recipe', 'fp8', '--steps', '0,2', '--formats', 'e3m4', '--out', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const records = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(records.length, 2 * 20 * 4);
    for (const key of ['step', 'layer', 'tensor', 'count', 'zeros', 'nonfinite', 'amax', 'log2_bins', 'formats', 'snr_db']) assert.ok(key in records[4], key);
    assert.deepEqual(Object.keys(records[4].formats), ['e5m2', 'e4m3', 'e6m9', 'fp16', 'bf16', 'e3m4']);
    assert.deepEqual(new Set(records.map((x: { tensor: string }) => x.tensor)), new Set(['weights', 'activations', 'errors', 'weightGradients']));
    assert.equal(records[4].layer, 'layer1.0.conv1');
    assert.ok(existsSync(join(out, 'stats.json')) && existsSync(join(out, 'stats.html')));
    // The run stopped after the last step asked for, with a checkpoint to continue from.
    assert.ok(existsSync(join(out, 'checkpoint.safetensors')));
    const plain = await runOctet(['stats', '--checkpoint', join(out, 'checkpoint.safetensors'), '--recipe', 'hybrid', '--out', join(out, 'again')]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stdout, /^80 records \(steps 0; 20 layers\)\. Stats: .*stats\.json; page: .*stats\.html/);
    assert.equal(JSON.parse(readFileSync(join(out, 'again', 'stats.json'), 'utf8')).recipe.name, 'hybrid');
  });

  test('bad input: a step beyond the run, an unknown format, another model\'s checkpoint, a bad tolerance', async () => {
    const out = tmp();
    const beyond = await runOctet(['stats', ...SMALL, '--steps', '0,4', '--out', out]);
    assert.equal(beyond.code, 1);
    assert.match(beyond.stderr, /stats step 4 is beyond the run: it has 4 steps \(0 to 3\)/);
    const unknown = await runOctet(['stats', ...SMALL, '--formats', 'e3m4,e9q', '--out', out]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /--formats: unknown format "e9q"/);
    const steps = await runOctet(['stats', ...SMALL, '--steps', '0,-1', '--out', out]);
    assert.match(steps.stderr, /--steps: "-1" is not a step number/);
    const tolerance = await runOctet(['stats', ...SMALL, '--tolerance', '2', '--out', out]);
    assert.match(tolerance.stderr, /--tolerance is "2"; expected a fraction in \[0, 1\)/);
    const run = await runOctet(['train', ...SMALL, '--epochs', '1', '--max-train', '32', '--out', join(out, 'run')]);
    assert.equal(run.code, 0, run.stderr);
    const other = await runOctet(['stats', '--model', 'unet', '--checkpoint', join(out, 'run', 'checkpoint.safetensors'), '--out', join(out, 's')]);
    assert.equal(other.code, 1);
    assert.match(other.stderr, /holds a resnet20 model, not unet/);
    const formats = await runOctet(['train', ...SMALL, '--stats-formats', 'e3m4', '--out', join(out, 'x')]);
    assert.match(formats.stderr, /--stats-formats needs --stats-every/);
  });
});
