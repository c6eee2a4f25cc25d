import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runOctet } from '../helpers/cli_io.js';

describe('octet models and octet summary', () => {
  test('models --json lists every model with name, classes, in_channels and params', async () => {
    const r = await runOctet(['models', '--json']);
    assert.equal(r.code, 0);
    const models = JSON.parse(r.stdout) as { name: string; classes: number; in_channels: number; params: number }[];
    const byName = new Map(models.map((m) => [m.name, m]));
    assert.deepEqual(byName.get('resnet18'), { ...byName.get('resnet18')!, classes: 1000, in_channels: 3, params: 11_689_512 });
    assert.equal(byName.get('squeezenet1_1')!.params, 1_235_496);
    assert.equal(byName.get('resnet20')!.params, 269_722);
    assert.equal(models.length, 9);
  });

  test('models prints a table with grouped parameter counts', async () => {
    const r = await runOctet(['models']);
    assert.match(r.stdout, /^resnet101\s+classification\s+1000\s+3\s+224x224\s+44,549,160\s/m);
  });

  test('summary prints one line per layer and the totals', async () => {
    const r = await runOctet(['summary', '--model', 'resnet20']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^layer1\.0\.conv1\s+Conv2d\(16, 16, k=3x3, s=1\)\s+\[1, 16, 32, 32\]\s+2,304\s+2,359,296$/m);
    assert.match(r.stdout, /resnet20: 269,722 parameters, 40\.6 M MACs for one 3x32x32 input/);
  });

  test('summary options: classes, input channels, input size; bad values are named', async () => {
    const r = await runOctet(['summary', '-m', 'unet', '--width', '8', '--classes', '11', '--in-channels', '1', '--input', '32x48', '--json']);
    const s = JSON.parse(r.stdout);
    assert.deepEqual(s.rows.at(-1).outputShape, [1, 11, 32, 48]);
    const bad = await runOctet(['summary', '-m', 'unet', '--input', '32by48']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--input is "32by48"; expected a size such as 32 or 64x128/);
    const unknown = await runOctet(['summary', '-m', 'vgg16']);
    assert.match(unknown.stderr, /unknown model "vgg16"; choose one of: resnet18/);
  });
});
