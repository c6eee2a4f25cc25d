"""PyTorch peer of Octet's segmentation training (issue 24): the same UNet / Fast-SCNN, trained from
the same initial weights on the same batches in the same order, with the same optimizer and
schedule, so the two learning curves can be compared step by step.

Run by examples/segmentation_reference.ts, which exports everything this script reads into DIR:
  DIR/meta.json              data shape, classes, ignore label, normalization, training settings
  DIR/{train,test}-images.u8 N x C x H x W bytes;  DIR/{train,test}-masks.u8 N x H x W labels
  DIR/order.i32              the training example of each step's batch (steps x batch)
  DIR/init.safetensors       Octet's initial weights and batch-norm buffers (reference names)
Writes DIR/torch.jsonl: one {"type":"train","step","loss","lr"} per step, one {"type":"eval",...}
per epoch end (mIoU, pixel accuracy, per-class IoU, test loss) and a final {"type":"done"} line.

    python3 examples/segmentation_torch.py DIR

Needs torch (Debian's python3-torch 1.13 works; run with /usr/bin/python3). Written for this
project; the architectures follow milesial/Pytorch-UNet (bilinear = False) and
Tramac/Fast-SCNN-pytorch (aux = False, first convolution padded by 1), as Octet's models do.
"""
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def read_safetensors(path):
    with open(path, 'rb') as f:
        raw = f.read()
    (size,) = struct.unpack('<Q', raw[:8])
    header = json.loads(raw[8:8 + size])
    body = raw[8 + size:]
    out = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        if info['dtype'] != 'F32':
            raise ValueError(f'{path}: tensor {name} is {info["dtype"]}; expected F32')
        begin, end = info['data_offsets']
        out[name] = torch.from_numpy(np.frombuffer(body[begin:end], dtype='<f4').copy().reshape(info['shape']))
    return out


# --- the models: scripts/torch_models.py (shared with `octet bench train`'s PyTorch peer) ------
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'scripts'))
from torch_models import FastSCNN, UNet  # noqa: E402


# --- training ------------------------------------------------------------------------------
def cosine_with_warmup(step, base, total, warmup):
    if step < warmup:
        return base * (step + 1) / warmup
    span = total - warmup
    progress = 1.0 if span == 0 else min(1.0, (step - warmup) / span)
    return base * (1 + math.cos(math.pi * progress)) / 2


def class_weights_tensor(meta):
    w = meta.get('classWeights')
    return None if w is None else torch.tensor(w, dtype=torch.float32)


def evaluate(model, images, masks, meta, batch):
    classes, ignore = meta['classes'], meta['ignoreIndex']
    weights = class_weights_tensor(meta)
    conf = np.zeros((classes, classes), dtype=np.int64)
    loss_sum, examples = 0.0, 0
    model.eval()
    with torch.no_grad():
        for start in range(0, images.shape[0], batch):
            x = images[start:start + batch]
            y = masks[start:start + batch]
            logits = model(x)
            # Octet's test loss: the training criterion (class weights included), averaged per batch and
            # weighted by the batch's example count.
            loss_sum += F.cross_entropy(logits, y, weight=weights, ignore_index=ignore).item() * x.shape[0]
            pred = logits.argmax(1)
            keep = y != ignore
            examples += x.shape[0]
            idx = (y[keep] * classes + pred[keep]).numpy()
            conf += np.bincount(idx, minlength=classes * classes).reshape(classes, classes)
    model.train()
    tp = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - tp
    present = union > 0
    iou = np.where(present, tp / np.maximum(union, 1), 0.0)
    return {
        'miou': float(iou[present].mean()) if present.any() else 0.0,
        'pixelAccuracy': float(tp.sum() / max(conf.sum(), 1)),
        'iou': [float(v) for v in iou],
        'loss': loss_sum / max(examples, 1),
    }


def main(folder):
    meta = json.load(open(f'{folder}/meta.json'))
    torch.set_num_threads(meta.get('threads', 2))
    torch.manual_seed(meta['seed'])
    c, h, w = meta['channels'], meta['height'], meta['width']
    # Octet's batches: v * (1 / (255 std)) - mean / std in double precision, stored as float32.
    scale = (1.0 / (255.0 * np.array(meta['std'], dtype=np.float64))).reshape(1, c, 1, 1)
    shift = (np.array(meta['mean'], dtype=np.float64) / np.array(meta['std'], dtype=np.float64)).reshape(1, c, 1, 1)

    def load(split):
        n = meta[f'{split}Count']
        x = np.fromfile(f'{folder}/{split}-images.u8', dtype=np.uint8).reshape(n, c, h, w)
        y = np.fromfile(f'{folder}/{split}-masks.u8', dtype=np.uint8).reshape(n, h, w)
        xf = torch.from_numpy((x.astype(np.float64) * scale - shift).astype(np.float32))
        return xf, torch.from_numpy(y.astype(np.int64))

    train_x, train_y = load('train')
    test_x, test_y = load('test')
    steps, batch = meta['steps'], meta['batchSize']
    order = np.fromfile(f'{folder}/order.i32', dtype='<i4').reshape(steps, batch)
    if meta['model'] == 'unet':
        model = UNet(c, meta['classes'], meta.get('modelWidth') or 64, meta.get('modelDepth') or 4)
    elif meta['model'] == 'fastscnn':
        model = FastSCNN(c, meta['classes'])
    else:
        raise ValueError(f'model {meta["model"]}: this peer builds unet and fastscnn')
    state = read_safetensors(f'{folder}/init.safetensors')
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.endswith('num_batches_tracked')]
    extra = [k for k in state if k not in own]
    if missing or extra:
        raise ValueError(f'init.safetensors does not match the peer model: missing {missing[:5]}, unexpected {extra[:5]}')
    model.load_state_dict({k: state.get(k, v) for k, v in own.items()})
    opt = torch.optim.AdamW(model.parameters(), lr=meta['lr'], weight_decay=meta['weightDecay'], betas=(0.9, 0.999), eps=1e-8)
    weights = class_weights_tensor(meta)
    out = open(f'{folder}/torch.jsonl', 'w')
    model.train()
    start = time.time()
    steps_per_epoch = meta['stepsPerEpoch']
    for step in range(steps):
        lr = cosine_with_warmup(step, meta['lr'], steps, meta['warmupSteps'])
        for g in opt.param_groups:
            g['lr'] = lr
        idx = torch.from_numpy(order[step].astype(np.int64))
        logits = model(train_x[idx])
        loss = F.cross_entropy(logits, train_y[idx], weight=weights, ignore_index=meta['ignoreIndex'])
        opt.zero_grad()
        loss.backward()
        opt.step()
        out.write(json.dumps({'type': 'train', 'step': step, 'loss': loss.item(), 'lr': lr}) + '\n')
        out.flush()
        if (step + 1) % steps_per_epoch == 0 or step + 1 == steps:
            r = evaluate(model, test_x, test_y, meta, meta.get('evalBatch', 64))
            out.write(json.dumps({'type': 'eval', 'step': step + 1, **r}) + '\n')
            out.flush()
    out.write(json.dumps({'type': 'done', 'seconds': time.time() - start, 'torch': torch.__version__}) + '\n')
    out.close()


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit('usage: python3 examples/segmentation_torch.py DIR (a folder written by examples/segmentation_reference.ts)')
    main(sys.argv[1])
