"""PyTorch definitions of Octet's zoo models where torchvision has none, with Octet's parameter
paths (so Octet's safetensors load into them): U-Net (milesial/Pytorch-UNet, bilinear = False,
width and depth configurable), Fast-SCNN (Tramac/Fast-SCNN-pytorch, aux = False, first convolution
padded by 1) and the CIFAR ResNet of He et al. 2016 (option-A shortcuts); and `build(name, ...)`,
which also returns torchvision's models (ResNet-18/101, their CIFAR variants, SqueezeNet).

Used by examples/segmentation_torch.py and by `octet bench train`'s PyTorch peer
(src/bench/torch_train.ts). Written for this project. Needs torch (Debian's python3-torch 1.13).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


# --- UNet (milesial/Pytorch-UNet, bilinear = False), width and depth configurable -------------
class DoubleConv(nn.Module):
    def __init__(self, in_c, out_c):
        super().__init__()
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_c, out_c, 3, padding=1, bias=False), nn.BatchNorm2d(out_c), nn.ReLU(inplace=True),
            nn.Conv2d(out_c, out_c, 3, padding=1, bias=False), nn.BatchNorm2d(out_c), nn.ReLU(inplace=True))

    def forward(self, x):
        return self.double_conv(x)


class Down(nn.Module):
    def __init__(self, in_c, out_c):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(in_c, out_c))

    def forward(self, x):
        return self.maxpool_conv(x)


class Up(nn.Module):
    def __init__(self, in_c, out_c):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_c, in_c // 2, 2, stride=2)
        self.conv = DoubleConv(in_c, out_c)

    def forward(self, x, skip):
        return self.conv(torch.cat([skip, self.up(x)], 1))


class OutConv(nn.Module):
    def __init__(self, in_c, classes):
        super().__init__()
        self.conv = nn.Conv2d(in_c, classes, 1)

    def forward(self, x):
        return self.conv(x)


class UNet(nn.Module):
    def __init__(self, in_c, classes, width=64, depth=4):
        super().__init__()
        self.inc = DoubleConv(in_c, width)
        for i in range(depth):
            setattr(self, f'down{i + 1}', Down(width << i, width << (i + 1)))
        for j, i in enumerate(range(depth, 0, -1)):
            setattr(self, f'up{j + 1}', Up(width << i, width << (i - 1)))
        self.outc = OutConv(width, classes)
        self.depth = depth

    def forward(self, x):
        skips = [self.inc(x)]
        for i in range(self.depth):
            skips.append(getattr(self, f'down{i + 1}')(skips[-1]))
        y = skips.pop()
        for j in range(self.depth):
            y = getattr(self, f'up{j + 1}')(y, skips.pop())
        return self.outc(y)


# --- Fast-SCNN (Tramac/Fast-SCNN-pytorch, aux = False; first conv padded by 1) ---------------
def conv_bn_relu(in_c, out_c, k, stride):
    return nn.Sequential(nn.Conv2d(in_c, out_c, k, stride, (k - 1) // 2, bias=False), nn.BatchNorm2d(out_c), nn.ReLU(True))


class Wrapped(nn.Module):
    def __init__(self, seq):
        super().__init__()
        self.conv = seq

    def forward(self, x):
        return self.conv(x)


def dw_conv(c, out_c, stride):
    return Wrapped(nn.Sequential(nn.Conv2d(c, out_c, 3, stride, 1, groups=c, bias=False), nn.BatchNorm2d(out_c), nn.ReLU(True)))


def ds_conv(c, out_c, stride):
    return Wrapped(nn.Sequential(
        nn.Conv2d(c, c, 3, stride, 1, groups=c, bias=False), nn.BatchNorm2d(c), nn.ReLU(True),
        nn.Conv2d(c, out_c, 1, bias=False), nn.BatchNorm2d(out_c), nn.ReLU(True)))


class LinearBottleneck(nn.Module):
    def __init__(self, in_c, out_c, t, stride):
        super().__init__()
        self.use_shortcut = stride == 1 and in_c == out_c
        self.block = nn.Sequential(Wrapped(conv_bn_relu(in_c, in_c * t, 1, 1)), dw_conv(in_c * t, in_c * t, stride),
                                   nn.Conv2d(in_c * t, out_c, 1, bias=False), nn.BatchNorm2d(out_c))

    def forward(self, x):
        out = self.block(x)
        return x + out if self.use_shortcut else out


class PyramidPooling(nn.Module):
    def __init__(self, in_c, out_c):
        super().__init__()
        inter = in_c // 4
        self.bins = [1, 2, 3, 6]
        for i in range(4):
            setattr(self, f'conv{i + 1}', Wrapped(conv_bn_relu(in_c, inter, 1, 1)))
        self.out = Wrapped(conv_bn_relu(in_c * 2, out_c, 1, 1))

    def forward(self, x):
        size = x.shape[2:]
        feats = [x]
        for i, b in enumerate(self.bins):
            y = getattr(self, f'conv{i + 1}')(F.adaptive_avg_pool2d(x, b))
            feats.append(F.interpolate(y, size, mode='bilinear', align_corners=True))
        return self.out(torch.cat(feats, 1))


class GlobalFeatureExtractor(nn.Module):
    def __init__(self):
        super().__init__()
        in_c = 64
        for i, (out_c, stride) in enumerate(zip([64, 96, 128], [2, 2, 1])):
            blocks = []
            for b in range(3):
                blocks.append(LinearBottleneck(in_c, out_c, 6, stride if b == 0 else 1))
                in_c = out_c
            setattr(self, f'bottleneck{i + 1}', nn.Sequential(*blocks))
        self.ppm = PyramidPooling(128, 128)

    def forward(self, x):
        return self.ppm(self.bottleneck3(self.bottleneck2(self.bottleneck1(x))))


class FeatureFusion(nn.Module):
    def __init__(self, higher_c, lower_c, out_c):
        super().__init__()
        self.dwconv = dw_conv(lower_c, out_c, 1)
        self.conv_lower_res = nn.Sequential(nn.Conv2d(out_c, out_c, 1), nn.BatchNorm2d(out_c))
        self.conv_higher_res = nn.Sequential(nn.Conv2d(higher_c, out_c, 1), nn.BatchNorm2d(out_c))

    def forward(self, higher, lower):
        up = F.interpolate(lower, higher.shape[2:], mode='bilinear', align_corners=True)
        return F.relu(self.conv_higher_res(higher) + self.conv_lower_res(self.dwconv(up)))


class LearningToDownsample(nn.Module):
    def __init__(self, in_c):
        super().__init__()
        self.conv = Wrapped(conv_bn_relu(in_c, 32, 3, 2))
        self.dsconv1 = ds_conv(32, 48, 2)
        self.dsconv2 = ds_conv(48, 64, 2)

    def forward(self, x):
        return self.dsconv2(self.dsconv1(self.conv(x)))


class Classifier(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.dsconv1 = ds_conv(128, 128, 1)
        self.dsconv2 = ds_conv(128, 128, 1)
        self.conv = nn.Sequential(nn.Dropout(0.1), nn.Conv2d(128, classes, 1))

    def forward(self, x):
        return self.conv(self.dsconv2(self.dsconv1(x)))


class FastSCNN(nn.Module):
    def __init__(self, in_c, classes):
        super().__init__()
        self.learning_to_downsample = LearningToDownsample(in_c)
        self.global_feature_extractor = GlobalFeatureExtractor()
        self.feature_fusion = FeatureFusion(64, 128, 128)
        self.classifier = Classifier(classes)

    def forward(self, x):
        higher = self.learning_to_downsample(x)
        fused = self.feature_fusion(higher, self.global_feature_extractor(higher))
        return F.interpolate(self.classifier(fused), x.shape[2:], mode='bilinear', align_corners=True)


# --- CIFAR ResNet (He et al. 2016, option A) -------------------------------------------------
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


# --- by name ---------------------------------------------------------------------------------
def build(name, channels, classes, width):
    """A zoo model by Octet's name, for `octet bench train`'s peer (width 0: the model's default)."""
    import torchvision
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
