"""Trainable parameter counts of the zoo backbones, computed by PyTorch
reimplementations written independently of the Lua specs (torchvision is not
installed; ResNet and MobileNetV2 follow torchvision's definitions, WRN the
xternalz/WideResNet-pytorch port, ResNeXt the prlz77/ResNeXt.pytorch port).
tests/test_zoo.c holds the numbers this prints.

    /usr/bin/python3 scripts/zoo_param_counts.py
"""
import torch.nn as nn


def count(m):
    return sum(p.numel() for p in m.parameters() if p.requires_grad)


class Basic(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        if stride != 1 or cin != planes:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        if stride != 1 or cin != planes * 4:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes * 4, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes * 4))


def resnet(block, layers, classes=1000, cifar_stem=False):
    m = nn.Module()
    m.conv1 = nn.Conv2d(3, 64, 3 if cifar_stem else 7, 1 if cifar_stem else 2, 1 if cifar_stem else 3, bias=False)
    m.bn1 = nn.BatchNorm2d(64)
    cin = 64
    for i, n in enumerate(layers):
        planes = 64 * 2 ** i
        blocks = []
        for j in range(n):
            blocks.append(block(cin, planes, 2 if (i > 0 and j == 0) else 1))
            cin = planes * block.expansion
        setattr(m, 'layer%d' % (i + 1), nn.Sequential(*blocks))
    m.fc = nn.Linear(cin, classes)
    return m


class WideBasic(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        if cin != cout:
            self.convShortcut = nn.Conv2d(cin, cout, 1, stride, 0, bias=False)


def wrn(depth=16, k=8, classes=10):
    n = (depth - 4) // 6
    w = [16, 16 * k, 32 * k, 64 * k]
    m = nn.Module()
    m.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
    for g in range(3):
        blk = nn.Module()
        blk.layer = nn.Sequential(*[WideBasic(w[g] if i == 0 else w[g + 1], w[g + 1],
                                              (1 if g == 0 else 2) if i == 0 else 1) for i in range(n)])
        setattr(m, 'block%d' % (g + 1), blk)
    m.bn1 = nn.BatchNorm2d(w[3])
    m.fc = nn.Linear(w[3], classes)
    return m


class NeXtBlock(nn.Module):
    def __init__(self, cin, cout, stride, card, width, widen):
        super().__init__()
        d = card * int(width * (cout / (widen * 64.0)))
        self.conv_reduce = nn.Conv2d(cin, d, 1, bias=False)
        self.bn_reduce = nn.BatchNorm2d(d)
        self.conv_conv = nn.Conv2d(d, d, 3, stride, 1, groups=card, bias=False)
        self.bn = nn.BatchNorm2d(d)
        self.conv_expand = nn.Conv2d(d, cout, 1, bias=False)
        self.bn_expand = nn.BatchNorm2d(cout)
        if cin != cout:
            self.shortcut_conv = nn.Conv2d(cin, cout, 1, stride, bias=False)
            self.shortcut_bn = nn.BatchNorm2d(cout)


def resnext29(card=8, width=64, widen=4, classes=10):
    n = (29 - 2) // 9
    st = [64, 64 * widen, 128 * widen, 256 * widen]
    m = nn.Module()
    m.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    m.bn1 = nn.BatchNorm2d(64)
    for s in range(3):
        setattr(m, 'stage%d' % (s + 1), nn.Sequential(*[
            NeXtBlock(st[s] if j == 0 else st[s + 1], st[s + 1], (1 if s == 0 else 2) if j == 0 else 1, card, width, widen)
            for j in range(n)]))
    m.fc = nn.Linear(st[3], classes)
    return m


def make_divisible(v, d=8):
    new_v = max(d, int(v + d / 2) // d * d)
    if new_v < 0.9 * v:
        new_v += d
    return new_v


def cbr(cin, cout, k, s, g):
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, (k - 1) // 2, groups=g, bias=False), nn.BatchNorm2d(cout), nn.ReLU6())


class InvRes(nn.Module):
    def __init__(self, cin, cout, s, t):
        super().__init__()
        h = int(round(cin * t))
        layers = [] if t == 1 else [cbr(cin, h, 1, 1, 1)]
        layers += [cbr(h, h, 3, s, h), nn.Conv2d(h, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)


def mobilenetv2(classes=1000, wm=1.0):
    cin = make_divisible(32 * wm)
    last = make_divisible(1280 * max(1.0, wm))
    feats = [cbr(3, cin, 3, 2, 1)]
    for t, c, n, s in [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]:
        cout = make_divisible(c * wm)
        for i in range(n):
            feats.append(InvRes(cin, cout, s if i == 0 else 1, t))
            cin = cout
    feats.append(cbr(cin, last, 1, 1, 1))
    m = nn.Module()
    m.features = nn.Sequential(*feats)
    m.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, classes))
    return m


if __name__ == '__main__':
    rows = [
        ('resnet18 (1000 classes)', resnet(Basic, [2, 2, 2, 2])),
        ('resnet34 (1000 classes)', resnet(Basic, [3, 4, 6, 3])),
        ('resnet50 (1000 classes)', resnet(Bottleneck, [3, 4, 6, 3])),
        ('resnet101 (1000 classes)', resnet(Bottleneck, [3, 4, 23, 3])),
        ('resnet18 cifar_stem (10 classes)', resnet(Basic, [2, 2, 2, 2], 10, True)),
        ('resnet50 cifar_stem (10 classes)', resnet(Bottleneck, [3, 4, 6, 3], 10, True)),
        ('wrn-16-8 (10 classes)', wrn(16, 8)),
        ('wrn-16-2 (10 classes)', wrn(16, 2)),
        ('wrn-28-10 (10 classes)', wrn(28, 10)),
        ('resnext29 8x64d (10 classes)', resnext29(8, 64)),
        ('resnext29 32x4d (10 classes)', resnext29(32, 4)),
        ('resnext29 2x8d widen 1 (10 classes)', resnext29(2, 8, 1)),
        ('mobilenetv2 (1000 classes)', mobilenetv2()),
        ('mobilenetv2 (10 classes)', mobilenetv2(10)),
        ('mobilenetv2 width 0.5 (10 classes)', mobilenetv2(10, 0.5)),
    ]
    for name, m in rows:
        print('%-40s %10d' % (name, count(m)))
