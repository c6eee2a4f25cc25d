/**
 * How well can a model whose logits live at 1/S of the input resolution segment mnist-seg at all?
 * Fast-SCNN classifies at 1/8 of the input and upsamples its logits bilinearly to the input size;
 * mnist-seg's strokes are 2-3 pixels wide on a 64x64 canvas. This computes an oracle for each
 * output stride S: the true labels, one-hot, averaged over SxS cells (ignored pixels left out),
 * upsampled with Octet's own bilinear upsampling (align corners, as Fast-SCNN does), argmax per
 * pixel, scored as `octet eval` scores (mIoU over classes, ignored pixels skipped). A model at
 * stride S is not bound by this number exactly (its logits are not label averages), but one that
 * cannot place a class boundary finer than its grid cannot do much better.
 *
 *   npm run experiment:segstride [-- --count 500] [--data mnist-seg-large]
 */
import { parseArgs } from 'node:util';
import { ConfusionMatrix, loadDataset, Tensor, upsampleBilinear2d } from '../src/index.js';

const { values: flags } = parseArgs({ options: { count: { type: 'string', default: '500' }, data: { type: 'string', default: 'mnist-seg' } } });
const count = Number(flags.count);
const dataset = await loadDataset(flags.data!, { mnistSegCount: [1, count] });
const { height: H, width: W, masks } = dataset.test;
const C = dataset.classes;
const ignore = dataset.ignoreIndex!;
const labels = Int32Array.from(masks!.subarray(0, count * H * W));

console.log(`| output stride | grid on ${H}x${W} | oracle mIoU % | digit classes mean IoU % |`);
console.log('|---:|---:|---:|---:|');
for (const s of [1, 2, 4, 8, 16].filter((v) => H % v === 0 && W % v === 0)) {
  const h = H / s;
  const w = W / s;
  const low = new Float32Array(count * C * h * w);
  for (let n = 0; n < count; n++) {
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const label = labels[(n * H + y) * W + x];
        if (label === ignore) continue;
        low[((n * C + label) * h + Math.floor(y / s)) * w + Math.floor(x / s)] += 1 / (s * s);
      }
    }
  }
  const logits = s === 1 ? new Tensor(low, [count, C, H, W]) : upsampleBilinear2d(new Tensor(low, [count, C, h, w]), { size: [H, W], alignCorners: true });
  const confusion = new ConfusionMatrix(C);
  confusion.addSegmentation(logits.data, labels, count, ignore);
  const iou = confusion.iou();
  const digits = iou.slice(1).filter((v) => !Number.isNaN(v));
  console.log(`| ${s} | ${h}x${w} | ${(100 * confusion.meanIou()).toFixed(1)} | ${((100 * digits.reduce((a, b) => a + b, 0)) / digits.length).toFixed(1)} |`);
}
