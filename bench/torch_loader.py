#!/usr/bin/python3
"""The PyTorch side of bench/loader.sh: torchvision's ImageFolder with
RandomResizedCrop(SIZE) + RandomHorizontalFlip + ToTensor + Normalize
through a DataLoader in the main process (num_workers=0, one thread: the
work attnc's one loader thread does), images per second over BATCHES
batches after a warm-up batch; one JSON object.

  torch_loader.py DIR SIZE [--batches N] [--batch B] [--center]
  torch_loader.py --make DIR --classes C --per-class N [--val V]
      writes DIR/train/<class>/*.JPEG (and DIR/val/...) of ImageNet's
      typical sizes (500x375, 375x500, 500x333 ...), quality 90."""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_common  # noqa: E402

bench_common.ensure_torch('torch_loader.py')
import torch  # noqa: E402


def make(root, classes, per_class, val):
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(0)
    sizes = [(500, 375), (375, 500), (500, 333), (500, 400), (333, 500), (640, 480)]
    for split, n in (('train', per_class), ('val', val)):
        for c in range(classes):
            d = os.path.join(root, split, 'n%08d' % c)
            os.makedirs(d, exist_ok=True)
            for i in range(n):
                w, h = sizes[rng.integers(len(sizes))]
                y, x = np.mgrid[0:h, 0:w].astype(np.float32)
                f = rng.uniform(0.005, 0.05, size=3)
                img = np.stack([128 + 100 * np.sin(f[k] * x + (c + 1) * f[(k + 1) % 3] * y + k)
                                for k in range(3)], axis=2)
                img += rng.normal(0, 12, size=img.shape)
                Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(
                    os.path.join(d, 'img_%05d.JPEG' % i), quality=90)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('dir')
    ap.add_argument('size', type=int, nargs='?')
    ap.add_argument('--batches', type=int, default=8)
    ap.add_argument('--batch', type=int, default=128)
    ap.add_argument('--center', action='store_true')
    ap.add_argument('--make', action='store_true')
    ap.add_argument('--classes', type=int, default=10)
    ap.add_argument('--per-class', type=int, default=130)
    ap.add_argument('--val', type=int, default=10)
    a = ap.parse_args()
    if a.make:
        make(a.dir, a.classes, a.per_class, a.val)
        return
    from torchvision import datasets, transforms
    torch.set_num_threads(1)
    norm = transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    if a.center:
        t = transforms.Compose([transforms.Resize(a.size), transforms.CenterCrop(a.size), transforms.ToTensor(), norm])
    else:
        t = transforms.Compose([transforms.RandomResizedCrop(a.size), transforms.RandomHorizontalFlip(),
                                transforms.ToTensor(), norm])
    ds = datasets.ImageFolder(os.path.join(a.dir, 'train'), transform=t)
    dl = torch.utils.data.DataLoader(ds, batch_size=a.batch, shuffle=True, num_workers=0, drop_last=True)
    it = iter(dl)
    next(it)  # warm-up, as attnc's side
    t0 = time.perf_counter()
    for _ in range(a.batches):
        next(it)
    dt = time.perf_counter() - t0
    print(json.dumps({'images': len(ds), 'size': a.size,
                      'transform': 'center' if a.center else 'resized-crop+flip',
                      'loader_images_per_s': round(a.batches * a.batch / dt, 1),
                      'loader_ms_per_image': round(1e3 * dt / (a.batches * a.batch), 3)}))


if __name__ == '__main__':
    main()
