/** Evaluation metrics: top-1 / top-5 accuracy, and per-class IoU and mIoU for segmentation. */

/** Count examples whose label is the top-1 / among the top-k logits (ties: lower index first). */
export function topKCorrect(logits: Float32Array, classes: number, labels: Int32Array, k: number): number {
  let correct = 0;
  for (let b = 0; b < labels.length; b++) {
    const row = logits.subarray(b * classes, (b + 1) * classes);
    const target = row[labels[b]];
    // The label is in the top k when fewer than k classes beat it (a tie counts against a later index).
    let better = 0;
    for (let c = 0; c < classes && better < k; c++) if (row[c] > target || (row[c] === target && c < labels[b])) better++;
    if (better < k) correct++;
  }
  return correct;
}

/** A confusion matrix over pixels: rows true class, columns predicted class; ignored labels skipped. */
export class ConfusionMatrix {
  readonly counts: Float64Array;

  constructor(readonly classes: number) {
    this.counts = new Float64Array(classes * classes);
  }

  /** logits [B, C, H, W] (B = `batch`), labels [B*H*W]; pixels labelled `ignoreIndex` are skipped. */
  addSegmentation(logits: Float32Array, labels: Int32Array, batch: number, ignoreIndex: number): void {
    const C = this.classes;
    // An ignore label that is a class (e.g. 0 for "background not scored") leaves that class out of the IoUs.
    if (ignoreIndex >= 0 && ignoreIndex < C) this.ignored = ignoreIndex;
    const P = labels.length / batch;
    for (let b = 0; b < batch; b++) {
      for (let p = 0; p < P; p++) {
        const label = labels[b * P + p];
        if (label === ignoreIndex) continue;
        let best = 0;
        let bestValue = -Infinity;
        for (let c = 0; c < C; c++) {
          const v = logits[(b * C + c) * P + p];
          if (v > bestValue) {
            bestValue = v;
            best = c;
          }
        }
        this.counts[label * C + best]++;
      }
    }
  }

  /** A class whose labels are ignored (an ignore index below `classes`): not scored. */
  private ignored = -1;

  /**
   * IoU per class: TP / (TP + FP + FN); NaN for a class absent from both labels and predictions,
   * and for an ignored class.
   */
  iou(): number[] {
    const C = this.classes;
    return Array.from({ length: C }, (_, c) => {
      if (c === this.ignored) return NaN;
      let tp = 0;
      let row = 0;
      let col = 0;
      for (let k = 0; k < C; k++) {
        row += this.counts[c * C + k];
        col += this.counts[k * C + c];
      }
      tp = this.counts[c * C + c];
      const union = row + col - tp;
      return union === 0 ? NaN : tp / union;
    });
  }

  /** Fraction of counted pixels predicted correctly (0 when none were counted). */
  pixelAccuracy(): number {
    let correct = 0;
    let total = 0;
    for (let c = 0; c < this.classes; c++) correct += this.counts[c * this.classes + c];
    for (const v of this.counts) total += v;
    return total ? correct / total : 0;
  }

  /** Mean IoU over the classes that occur (in labels or predictions). */
  meanIou(): number {
    const present = this.iou().filter((v) => !Number.isNaN(v));
    return present.length ? present.reduce((a, b) => a + b, 0) / present.length : 0;
  }
}
