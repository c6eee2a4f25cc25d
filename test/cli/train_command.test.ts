import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { runOctet } from '../helpers/cli_io.js';

const SMALL = ['--model', 'resnet20', '--width', '4', '--data', 'mnist', '--epochs', '1', '--batch-size', '32', '--max-train', '64', '--max-test', '64', '--no-progress'];

describe('octet train / eval / compare', () => {
  test('compare writes summary.json, report.html with SVG charts, and prints the table', async () => {
    const out = mkdtempSync(join(tmpdir(), 'octet-compare-'));
    const r = await runOctet(['compare', ...SMALL, '--recipes', 'fp32,fp8', '--out', out, '--stats-every', '1']);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    assert.equal(summary.model, 'resnet20');
    assert.equal(summary.data, 'mnist');
    assert.deepEqual(summary.results.map((x: { recipe: string }) => x.recipe), ['fp32', 'fp8']);
    for (const x of summary.results) {
      assert.equal(x.metric, 'top1');
      assert.ok(x.value >= 0 && x.value <= 1 && x.epochs === 1 && x.seconds > 0);
    }
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    assert.ok((html.match(/<svg/g) ?? []).length >= 5, 'loss, accuracy, eval, scale and underflow charts');
    assert.match(html, /Error \(gradient\) scale per layer and step/);
    // The run's settings, each recipe's, the difference from the first, the numerics pages.
    assert.match(html, /<h2>The run<\/h2>/);
    assert.match(html, /<td>errors<\/td><td[^>]*>float32<\/td><td[^>]*>e5m2, nearest, per-layer dynamic scale/);
    assert.match(html, /points vs fp32/);
    assert.match(html, /<a href="fp8\/stats\.html">numerics<\/a>/);
    assert.ok(existsSync(join(out, 'fp32', 'stats.json')) && existsSync(join(out, 'fp8', 'stats.html')));
    // The table with each recipe's difference from fp32 in points, then a line per recipe on what it quantized.
    assert.match(r.stdout, /^recipe\s+top1\s+vs fp32\s+top-5/m);
    assert.match(r.stdout, /^fp8\s+\d+\.\d+%\s+[+-]\d+\.\d\d\s+\d+\.\d+%\s+1\s/m);
    assert.match(r.stdout, /^fp32\s+float32 throughout: the reference$/m);
    assert.match(r.stdout, /^fp8\s+weights, activations, weight gradients e5m2 \(amax scale per tensor\); errors e5m2 \(per-layer dynamic scale\); accumulation e6m9 in chunks of 64$/m);
    // The report opens with the table, the recipe lines and the per-layer numerics, the lab's error distribution among them.
    const opening = html.slice(0, html.indexOf('<h2>The run</h2>'));
    assert.match(opening, /points vs fp32/);
    assert.match(opening, /errors e5m2 \(per-layer dynamic scale\)/);
    assert.match(opening, /Error \(gradient\) scale per layer and step/);
    assert.match(opening, /fp8: errors at step \d+ against the formats' ranges/);
    assert.doesNotMatch(opening, /fp32: errors at step/, 'float32 errors have no distribution to show');
    assert.match(r.stdout, new RegExp(`Report: ${out.replace(/[/\\]/g, '.')}.report\\.html`));
  });

  test('train with a recipe file, then eval the checkpoint', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'octet-train-'));
    const recipeFile = join(dir, 'mine.json');
    const shown = await runOctet(['recipes', 'show', 'hybrid']);
    writeFileSync(recipeFile, JSON.stringify({ ...JSON.parse(shown.stdout), name: 'mine' }));
    const out = join(dir, 'run');
    const r = await runOctet(['train', ...SMALL, '--recipe', recipeFile, '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /resnet20 \/ mine on mnist: top1 \d+\.\d+%/);
    assert.ok(existsSync(join(out, 'checkpoint.safetensors')) && existsSync(join(out, 'result.json')));
    const e = await runOctet(['eval', '--checkpoint', join(out, 'checkpoint.safetensors'), '--max-test', '50']);
    const result = JSON.parse(e.stdout);
    assert.equal(result.recipe, 'mine');
    assert.equal(result.metric, 'top1');
    assert.equal(result.conv, 'winograd', "the checkpoint's convolutions");
    const direct = JSON.parse((await runOctet(['eval', '--checkpoint', join(out, 'checkpoint.safetensors'), '--max-test', '50', '--conv', 'direct'])).stdout);
    assert.equal(direct.conv, 'direct');
    assert.ok(Math.abs(direct.value - result.value) <= 0.04, 'the same model to rounding');
  });

  test('bad arguments are named', async () => {
    const bad = await runOctet(['train', ...SMALL, '--epochs', 'two']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--epochs is "two"; expected an integer >= 1/);
    const data = await runOctet(['train', '--model', 'resnet20', '--data', 'cifar10:/nonexistent', '--no-progress']);
    assert.match(data.stderr, /data_batch_1\.bin: is missing; point --data at the folder unpacked from cifar-10-binary\.tar\.gz/);
    const ckpt = await runOctet(['eval', '--checkpoint', '/nonexistent/checkpoint.safetensors']);
    assert.match(ckpt.stderr, /cannot be read \(ENOENT\)/);
    // The library names its settings; the command line adds the flag.
    const out = mkdtempSync(join(tmpdir(), 'octet-cli-resume-'));
    assert.equal((await runOctet(['train', ...SMALL, '--out', out])).code, 0);
    const resumed = await runOctet(['train', ...SMALL.map((a) => (a === '32' ? '16' : a)), '--out', out, '--resume']);
    assert.equal(resumed.code, 1);
    assert.match(resumed.stderr, /resume: .* was made with batchSize 32, this run asks for 16; .* \(batchSize is --batch-size on the command line\)/);
    // Decimal numbers only (Number() would take 0x10 as 16), and a clear error for a model too large to allocate.
    for (const [flag, value] of [['--lr', '0x10'], ['--epochs', '0x2'], ['--lr', ''], ['--batch-size', '0b11']]) {
      const r = await runOctet(['train', ...SMALL, flag, value]);
      assert.equal(r.code, 1, `${flag} ${value}`);
      assert.match(r.stderr, new RegExp(`octet: error: ${flag} is "${value}"; expected`));
    }
    const wide = await runOctet(['train', ...SMALL, '--width', '100000000', '--out', mkdtempSync(join(tmpdir(), 'octet-wide-'))]);
    assert.equal(wide.code, 1);
    assert.match(wide.stderr, /octet: error: Tensor: shape \[100000000, \d+, 3, 3\] needs .* more than can be allocated; use a smaller model/);
    // Output folders that cannot be used.
    const place = mkdtempSync(join(tmpdir(), 'octet-out-'));
    writeFileSync(join(place, 'file'), 'x');
    for (const [out, why] of [[join(place, 'file'), /the output folder .*file is a file/], [join(place, 'file', 'sub'), /cannot be used: a part of its path .* is a file/], ['', /the output folder is empty/]] as const) {
      const r = await runOctet(['train', ...SMALL, '--out', out]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, why);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
    const conv = await runOctet(['train', ...SMALL, '--conv', 'fast']);
    assert.notEqual(conv.code, 0);
    assert.match(conv.stderr, /--conv <algorithm>' argument 'fast' is invalid\. Allowed choices are winograd, direct/);
  });
  test('compare on segmentation: mIoU and pixel accuracy in the table, per-class IoU in summary.json and as a chart', async () => {
    const out = mkdtempSync(join(tmpdir(), 'octet-compare-seg-'));
    const r = await runOctet(['compare', '--model', 'unet', '--width', '4', '--depth', '2', '--data', 'mnist-seg', '--batch-size', '16', '--max-train', '32', '--max-test', '16',
      '--class-weights', 'median', '--recipes', 'fp32,fp8', '--out', out, '--no-progress']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /recipe +miou +vs fp32 +pixel acc +epochs/);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    for (const x of summary.results) {
      assert.equal(x.metric, 'miou');
      assert.equal(x.iou.length, 11);
      assert.ok(x.pixel_accuracy >= 0 && x.pixel_accuracy <= 1 && x.iou.every((v: number) => v >= 0 && v <= 1));
    }
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    assert.match(html, /<h2>IoU per class at the end \(class 0: background\)<\/h2>\n<svg/);
    assert.match(html, /<th>pixel accuracy<\/th>/);
  });
  test('--class-weights and --ignore-index: recorded in the run; bad values named with their flag', async () => {
    const out = mkdtempSync(join(tmpdir(), 'octet-cli-weights-'));
    const ok = await runOctet(['train', ...SMALL, '--class-weights', '1,1,1,1,1,2,1,1,1,1', '--out', out]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).classWeights, [1, 1, 1, 1, 1, 2, 1, 1, 1, 1]);
    for (const [args, message] of [
      [['--class-weights', 'inverse'], /--class-weights is "inverse"; expected balanced, median or one number per class/],
      [['--class-weights', '1,x'], /--class-weights \(weight 1\) is "x"; expected a number >= 0/],
      [['--class-weights', '1,1'], /class weights: 2 given; this data set has 10 classes, give one weight per class \(classWeights is --class-weights/],
      [['--ignore-index', '300'], /--ignore-index is 300; labels are 0 to 255/],
      [['--ignore-index', '3'], /an ignore index applies to segmentation labels; mnist is a classification set \(ignoreIndex is --ignore-index/],
    ] as const) {
      const r = await runOctet(['train', ...SMALL, ...args, '--out', mkdtempSync(join(tmpdir(), 'octet-cli-weights-'))]);
      assert.equal(r.code, 1, args.join(' '));
      assert.match(r.stderr, message);
    }
  });
  test('--prune prunes during training, reports the sparsity, checkpoints the masks; bad pruning flags are refused', async () => {
    const out = mkdtempSync(join(tmpdir(), 'octet-prune-'));
    const r = await runOctet(['train', ...SMALL, '--max-train', '96', '--prune', '8x8:0.5', '--prune-start', '1', '--prune-end', '2', '--prune-every', '1', '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Pruned 18 layers in 8x8 blocks: \d+\.\d% of their blocks/);
    const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8'));
    assert.deepEqual(result.config.prune, { block: '8x8', sparsity: 0.5, start: 1, end: 2, every: 1 });
    assert.ok(result.sparsity.every((l: { sparsity: number }) => l.sparsity > 0.3));
    const summary = await runOctet(['summary', '--checkpoint', join(out, 'checkpoint.safetensors')]);
    assert.equal(summary.code, 0, summary.stderr);
    assert.match(summary.stdout, /^conv1\s+4 x 9\s+dense\s+-\s+-\s+0\.0%$/m);
    assert.match(summary.stdout, /^layer1\.0\.conv1\s+4 x 36\s+8x8\s+\d+\/5\s+\d+\.\d%/m);
    assert.match(summary.stdout, /resnet20 at step 3: pruned in 8x8 blocks to 50\.0% \(18 layers\)/);
    const json = JSON.parse((await runOctet(['summary', '--checkpoint', join(out, 'checkpoint.safetensors'), '--json'])).stdout);
    assert.equal(json.layers.find((l: { layer: string }) => l.layer === 'layer2.0.conv2').block, '8x8');
    const both = await runOctet(['summary', '--checkpoint', join(out, 'checkpoint.safetensors'), '--model', 'resnet20']);
    assert.match(both.stderr, /give --model or --checkpoint, not both/);
    for (const [flags, message] of [
      [['--prune-every', '5'], /--prune-every needs --prune BLOCK:SPARSITY/],
      [['--prune', '8x8'], /--prune "8x8": expected BLOCK:SPARSITY/],
      [['--prune', '3x:0.5'], /block shape "3x" is not RxC/],
      [['--prune', '4x4:0.5', '--prune-start', '5', '--prune-end', '2'], /--prune-end 2 is before --prune-start 5/],
      [['--prune', '4x4:0.5', '--prune-kernels', 'fast'], /--prune-kernels "fast": expected auto .* or dense/],
      [['--prune-kernels', 'dense'], /--prune-kernels needs --prune BLOCK:SPARSITY/],
    ] as const) {
      const bad = await runOctet(['train', ...SMALL, ...flags, '--out', join(out, 'x')]);
      assert.equal(bad.code, 1, flags.join(' '));
      assert.match(bad.stderr, message);
    }
  });
  test('octet prune: one-shot block pruning of a checkpoint, written with its masks; bad values refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'octet-prune-cli-'));
    assert.equal((await runOctet(['train', ...SMALL, '--out', join(dir, 'dense')])).code, 0);
    const source = join(dir, 'dense', 'checkpoint.safetensors');
    const r = await runOctet(['prune', '--checkpoint', source, '--block', '4x4', '--sparsity', '0.5', '--out', join(dir, 'pruned')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Pruned 18 layers of resnet20 \(step 2\) in 4x4 blocks: \d+\.\d% of their blocks/);
    assert.match(r.stdout, /Fine-tune: octet train --init .*checkpoint\.safetensors --prune 4x4:0\.5/);
    const evaluated = await runOctet(['eval', '--checkpoint', join(dir, 'pruned', 'checkpoint.safetensors')]);
    assert.equal(evaluated.code, 0, evaluated.stderr);
    // The pruned convolutions and whether the rule runs them sparse (against a direct product: at 50% of 4x4 blocks kept or fewer).
    const layers = JSON.parse(evaluated.stdout).sparse.layers;
    assert.equal(layers.length, 18);
    assert.ok(layers.every((l: { kept: number; sparseAgainstDirect: boolean }) => l.kept > 0.4 && l.kept < 0.6 && l.sparseAgainstDirect === (l.kept <= 0.5)));
    const again = await runOctet(['prune', '--checkpoint', source, '--block', '4x4', '--sparsity', '0.5', '--out', join(dir, 'pruned')]);
    assert.match(again.stderr, /exists; give another --out, or --overwrite to replace it/);
    for (const [flags, message] of [
      [['--block', '4x4', '--sparsity', '1'], /--sparsity is 1; expected a fraction in \[0, 1\)/],
      [['--block', '8', '--sparsity', '0.5'], /block shape "8" is not RxC/],
      [['--block', '4x4', '--sparsity', '0.5', '--exclude', 'nowhere'], /no GEMM layer at "nowhere"/],
    ] as const) {
      const bad = await runOctet(['prune', '--checkpoint', source, ...flags, '--out', join(dir, 'bad')]);
      assert.equal(bad.code, 1, flags.join(' '));
      assert.match(bad.stderr, message);
    }
  });
});
