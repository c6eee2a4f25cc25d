/**
 * The PyTorch peer of `octet bench train`: the same architecture, batch, input and optimizer
 * (AdamW), fp32, on the same number of threads, in its own process. torchvision's models where
 * they exist (ResNet-18/101, the CIFAR ResNet-18 as torchvision's with a 3x3 stem and no max pool,
 * SqueezeNet); ResNet-20, U-Net and Fast-SCNN defined here to Octet's layer lists (the parameter
 * count is reported on both sides, so a mismatch shows).
 */
import { runPython } from './peers.js';

export interface TorchJob {
  model: string;
  batch: number;
  input: [number, number, number];
  classes: number;
  width?: number;
  steps: number;
  threads: number;
  segmentation: boolean;
}

export interface TorchMeasurement {
  images_per_s: number;
  peak_rss_mb: number;
  params: number;
}

const MODELS = String.raw`
import torch, torchvision
from torch import nn
import torch.nn.functional as F

def conv_bn_relu(i, o, k, s):
    return nn.Sequential(nn.Conv2d(i, o, k, s, (k - 1) // 2, bias=False), nn.BatchNorm2d(o), nn.ReLU(True))

class CifarBlock(nn.Module):
    def __init__(self, i, o, s):
        super().__init__()
        self.i, self.o, self.s = i, o, s
        self.conv1 = nn.Conv2d(i, o, 3, s, 1, bias=False); self.bn1 = nn.BatchNorm2d(o)
        self.conv2 = nn.Conv2d(o, o, 3, 1, 1, bias=False); self.bn2 = nn.BatchNorm2d(o)
    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)), inplace=True)))
        if self.s != 1 or self.i != self.o:
            x = x[:, :, ::self.s, ::self.s]
            before = (self.o - self.i) // 2
            x = F.pad(x, (0, 0, 0, 0, before, self.o - self.i - before))
        return F.relu(out + x, inplace=True)

class CifarResNet(nn.Module):
    def __init__(self, depth, channels, classes, width=16):
        super().__init__()
        n = (depth - 2) // 6
        layers = [nn.Conv2d(channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(True)]
        i = width
        for stage in range(3):
            o = width << stage
            for b in range(n):
                layers.append(CifarBlock(i, o, 2 if b == 0 and stage > 0 else 1)); i = o
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(i, classes)]
        self.body = nn.Sequential(*layers)
    def forward(self, x):
        return self.body(x)

def double_conv(i, o):
    return nn.Sequential(nn.Conv2d(i, o, 3, 1, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU(True),
                         nn.Conv2d(o, o, 3, 1, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU(True))

class Up(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.up = nn.ConvTranspose2d(i, i // 2, 2, 2); self.conv = double_conv(i, o)
    def forward(self, x, skip):
        return self.conv(torch.cat([skip, self.up(x)], 1))

class UNet(nn.Module):
    def __init__(self, channels, classes, width=64, depth=4):
        super().__init__()
        self.inc = double_conv(channels, width)
        self.downs = nn.ModuleList([nn.Sequential(nn.MaxPool2d(2), double_conv(width << i, width << (i + 1))) for i in range(depth)])
        self.ups = nn.ModuleList([Up(width << i, width << (i - 1)) for i in range(depth, 0, -1)])
        self.outc = nn.Conv2d(width, classes, 1)
    def forward(self, x):
        skips = [self.inc(x)]
        for d in self.downs: skips.append(d(skips[-1]))
        y = skips.pop()
        for u in self.ups: y = u(y, skips.pop())
        return self.outc(y)

def dw_conv(c, o, s):
    return nn.Sequential(nn.Conv2d(c, o, 3, s, 1, groups=c, bias=False), nn.BatchNorm2d(o), nn.ReLU(True))

def ds_conv(c, o, s):
    return nn.Sequential(nn.Conv2d(c, c, 3, s, 1, groups=c, bias=False), nn.BatchNorm2d(c), nn.ReLU(True),
                         nn.Conv2d(c, o, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU(True))

class LinearBottleneck(nn.Module):
    def __init__(self, i, o, t, s):
        super().__init__()
        h = i * t
        self.shortcut = s == 1 and i == o
        self.block = nn.Sequential(conv_bn_relu(i, h, 1, 1), dw_conv(h, h, s), nn.Conv2d(h, o, 1, bias=False), nn.BatchNorm2d(o))
    def forward(self, x):
        out = self.block(x)
        return x + out if self.shortcut else out

class PPM(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.bins = [1, 2, 3, 6]
        self.convs = nn.ModuleList([conv_bn_relu(i, i // 4, 1, 1) for _ in self.bins])
        self.out = conv_bn_relu(i * 2, o, 1, 1)
    def forward(self, x):
        size = x.shape[2:]
        feats = [F.interpolate(c(F.adaptive_avg_pool2d(x, b)), size, mode='bilinear', align_corners=True) for b, c in zip(self.bins, self.convs)]
        return self.out(torch.cat([x] + feats, 1))

class FastSCNN(nn.Module):
    def __init__(self, channels, classes):
        super().__init__()
        self.ltd = nn.Sequential(conv_bn_relu(channels, 32, 3, 2), ds_conv(32, 48, 2), ds_conv(48, 64, 2))
        blocks, i = [], 64
        for o, s in zip([64, 96, 128], [2, 2, 1]):
            for b in range(3):
                blocks.append(LinearBottleneck(i, o, 6, s if b == 0 else 1)); i = o
        self.gfe = nn.Sequential(*blocks, PPM(128, 128))
        self.dwconv = dw_conv(128, 128, 1)
        self.lower = nn.Sequential(nn.Conv2d(128, 128, 1), nn.BatchNorm2d(128))
        self.higher = nn.Sequential(nn.Conv2d(64, 128, 1), nn.BatchNorm2d(128))
        self.classifier = nn.Sequential(ds_conv(128, 128, 1), ds_conv(128, 128, 1), nn.Dropout(0.1), nn.Conv2d(128, classes, 1))
    def forward(self, x):
        higher = self.ltd(x)
        lower = self.gfe(higher)
        up = F.interpolate(lower, higher.shape[2:], mode='bilinear', align_corners=True)
        fused = F.relu(self.higher(higher) + self.lower(self.dwconv(up)))
        return F.interpolate(self.classifier(fused), x.shape[2:], mode='bilinear', align_corners=True)

def build(name, channels, classes, width):
    if name == 'resnet20':
        return CifarResNet(20, channels, classes, width or 16)
    if name in ('resnet18', 'resnet101', 'resnet18-cifar', 'resnet101-cifar'):
        base = name.split('-')[0]
        m = getattr(torchvision.models, base)(num_classes=classes)
        w = width or 64
        if w != 64:
            raise SystemExit('the torch peer builds ResNet-18/101 at width 64 only')
        if name.endswith('-cifar'):
            m.conv1 = nn.Conv2d(channels, 64, 3, 1, 1, bias=False); m.maxpool = nn.Identity()
        elif channels != 3:
            m.conv1 = nn.Conv2d(channels, 64, 7, 2, 3, bias=False)
        return m
    if name.startswith('squeezenet'):
        m = getattr(torchvision.models, name)(num_classes=classes)
        if channels != 3:
            first = m.features[0]
            m.features[0] = nn.Conv2d(channels, first.out_channels, first.kernel_size, first.stride)
        return m
    if name == 'unet':
        return UNet(channels, classes, width or 64)
    if name == 'fastscnn':
        return FastSCNN(channels, classes)
    raise SystemExit('no torch peer for ' + name)
`;

/** Python source of the peer's model definitions (exported for the tests, which read it). */
export const TORCH_MODELS = MODELS;

/** PyTorch's training step on `job`, best of `job.steps`, or null where torch does not import. */
export function torchTrainStep(python: string, job: TorchJob): TorchMeasurement | null {
  const [c, h, w] = job.input;
  const labels = job.segmentation ? `(${job.batch}, ${h}, ${w})` : `(${job.batch},)`;
  const result = runPython(
    `${MODELS}
import json, resource, time
torch.set_num_threads(${job.threads})
torch.manual_seed(1)
m = build(${JSON.stringify(job.model)}, ${c}, ${job.classes}, ${job.width ?? 0})
opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
x = torch.randn(${job.batch}, ${c}, ${h}, ${w}); y = torch.randint(0, ${job.classes}, ${labels})
def step():
    opt.zero_grad(); F.cross_entropy(m(x), y).backward(); opt.step()
step(); best = 1e9
for _ in range(${job.steps}):
    t = time.perf_counter(); step(); best = min(best, time.perf_counter() - t)
print(json.dumps({"images_per_s": ${job.batch} / best, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "params": sum(p.numel() for p in m.parameters())}))
`,
    python,
  );
  return result as TorchMeasurement | null;
}
