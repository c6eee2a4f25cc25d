import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfusionMatrix, topKCorrect } from '../../src/train/index.js';

describe('metrics', () => {
  test('top-1 and top-k', () => {
    const logits = Float32Array.of(0.1, 0.7, 0.2, 0.5, 0.3, 0.2);
    assert.equal(topKCorrect(logits, 3, Int32Array.of(1, 0), 1), 2);
    assert.equal(topKCorrect(logits, 3, Int32Array.of(2, 2), 1), 0);
    assert.equal(topKCorrect(logits, 3, Int32Array.of(2, 2), 2), 1);
  });

  test('IoU per class and mIoU from a pixel confusion matrix; ignored pixels are left out', () => {
    // One 1x4 image, 2 classes: logits [C=2, P=4]; predictions 0, 1, 1, 0.
    const logits = Float32Array.of(1, 0, 0, 1, 0, 1, 1, 0);
    const cm = new ConfusionMatrix(2);
    cm.addSegmentation(logits, Int32Array.of(0, 1, 0, 255), 1, 255);
    // class 0: TP 1, FN 1 (pixel 2 predicted 1), FP 0 -> 1/2; class 1: TP 1, FP 1 -> 1/2
    assert.deepEqual(cm.iou(), [0.5, 0.5]);
    assert.equal(cm.meanIou(), 0.5);
    assert.equal(cm.pixelAccuracy(), 2 / 3);
    assert.equal(new ConfusionMatrix(2).pixelAccuracy(), 0);
    const absent = new ConfusionMatrix(3);
    absent.addSegmentation(Float32Array.of(1, 0, 0, 1, 0, 1, 1, 0, -1, -1, -1, -1), Int32Array.of(0, 1, 1, 0), 1, 255);
    assert.ok(Number.isNaN(absent.iou()[2]));
  });

  test('an ignore label that is a class (0) leaves that class out of the IoUs and the mean', () => {
    // Predictions 0, 1, 1, 0; labels 0 (ignored), 1, 0 (ignored), 1.
    const cm = new ConfusionMatrix(2);
    cm.addSegmentation(Float32Array.of(1, 0, 0, 1, 0, 1, 1, 0), Int32Array.of(0, 1, 0, 1), 1, 0);
    assert.ok(Number.isNaN(cm.iou()[0]));
    // Class 1: TP 1 (pixel 1), FN 1 (pixel 3 predicted 0); the pixels predicted 1 on ignored labels are not counted.
    assert.equal(cm.iou()[1], 0.5);
    assert.equal(cm.meanIou(), 0.5);
    assert.equal(cm.pixelAccuracy(), 0.5);
  });
});
