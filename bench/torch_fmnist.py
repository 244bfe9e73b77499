#!/usr/bin/python3
"""PyTorch reference recipe of issue 7: ResNet-20 + HAM (torch_models, 1 input
channel, 28x28) trained on Fashion-MNIST, to compare with `attnc train ... --json`.

    /usr/bin/python3 bench/torch_fmnist.py --epochs 1 --threads 2

Recipe: SGD lr 0.1, momentum 0.9, weight decay 5e-4 (constant lr), batch 128,
reshuffled every epoch (torch.Generator seeded with --seed), last partial
batch kept, no augmentation, inputs x/255 normalized with mean 0.2860 std
0.3530. Data: the gzip'd IDX files of Debian's dataset-fashion-mnist
(/usr/share/datasets/fashion-mnist), parsed here with gzip + numpy.

Prints one line per epoch (train wall time, train loss and accuracy, test
top-1), then one JSON object with the keys of `attnc train --json`:
test_top1, test_top5 (fractions in [0, 1]), test_loss (mean cross-entropy),
train_wall_s (training time only, evaluation excluded), images_per_s
(training images / train_wall_s), epochs; plus a few descriptive keys.
"""
import argparse
import gzip
import json
import os
import sys
import time

from bench_common import ensure_torch, import_torch_models

ensure_torch('torch_fmnist.py')
import numpy as np
import torch
import torch.nn.functional as F

DEFAULT_DATA = '/usr/share/datasets/fashion-mnist'
MEAN, STD = 0.2860, 0.3530


def read_idx(path):
    """Reads a gzip'd IDX file of unsigned bytes; returns a uint8 array of its
    shape. Exits with a message on a bad magic number or a truncated file."""
    with gzip.open(path, 'rb') as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        sys.exit('%s: not an IDX file of unsigned bytes' % path)
    ndim = raw[3]
    if ndim < 1 or len(raw) < 4 + 4 * ndim:
        sys.exit('%s: truncated IDX header' % path)
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], 'big') for i in range(ndim)]
    off = 4 + 4 * ndim
    n = int(np.prod(dims))
    if len(raw) != off + n:
        sys.exit('%s: %d data bytes, header says %d' % (path, len(raw) - off, n))
    return np.frombuffer(raw, dtype=np.uint8, offset=off).reshape(dims)


def load_split(d, prefix):
    """Images as normalized float32 (N, 1, 28, 28) and labels as int64 (N,)."""
    x = read_idx(os.path.join(d, '%s-images-idx3-ubyte.gz' % prefix))
    y = read_idx(os.path.join(d, '%s-labels-idx1-ubyte.gz' % prefix))
    if x.ndim != 3 or y.ndim != 1 or x.shape[0] != y.shape[0]:
        sys.exit('%s/%s: images %s and labels %s do not match' % (d, prefix, x.shape, y.shape))
    xt = torch.from_numpy(x.astype(np.float32) / 255.0).unsqueeze(1)
    xt = (xt - MEAN) / STD
    return xt.contiguous(), torch.from_numpy(y.astype(np.int64))


def evaluate(model, x, y, batch, max_batches):
    """Eval-mode top-1, top-5 (fractions) and mean cross-entropy."""
    model.eval()
    n = top1 = top5 = 0
    loss = 0.0
    with torch.no_grad():
        for b, i in enumerate(range(0, x.shape[0], batch)):
            if max_batches and b >= max_batches:
                break
            xb, yb = x[i:i + batch], y[i:i + batch]
            out = model(xb)
            loss += float(F.cross_entropy(out, yb, reduction='sum'))
            t5 = out.topk(5, dim=1).indices
            top1 += int((t5[:, 0] == yb).sum())
            top5 += int((t5 == yb[:, None]).any(1).sum())
            n += yb.shape[0]
    return top1 / n, top5 / n, loss / n


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--epochs', type=int, default=1)
    p.add_argument('--threads', type=int, default=os.cpu_count())
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--batch', type=int, default=128)
    p.add_argument('--lr', type=float, default=0.1)
    p.add_argument('--depth', type=int, default=20)
    p.add_argument('--attention', default='ham')
    p.add_argument('--data', default=DEFAULT_DATA, help='directory of the IDX .gz files')
    p.add_argument('--max-batches', type=int, default=0,
                   help='train on at most this many batches per epoch (quick checks)')
    p.add_argument('--max-test-batches', type=int, default=0,
                   help='evaluate on at most this many batches of 1000 (quick checks)')
    p.add_argument('--reference', help='directory holding torch_models.py')
    a = p.parse_args(argv)
    if a.epochs < 1 or a.threads < 1 or a.batch < 1:
        p.error('--epochs, --threads and --batch must be >= 1')

    tm = import_torch_models('torch_fmnist.py', a.reference)
    torch.set_num_threads(a.threads)
    xtr, ytr = load_split(a.data, 'train')
    xte, yte = load_split(a.data, 't10k')
    torch.manual_seed(a.seed)
    model = tm.resnet(a.depth, a.attention, 10, 1)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9, weight_decay=5e-4)
    gen = torch.Generator().manual_seed(a.seed)
    print('ResNet-%d + %s, Fashion-MNIST %d train / %d test, batch %d, %d threads, torch %s'
          % (a.depth, a.attention, xtr.shape[0], xte.shape[0], a.batch, a.threads,
             torch.__version__), flush=True)

    train_wall = 0.0
    images = 0
    for epoch in range(1, a.epochs + 1):
        model.train()
        perm = torch.randperm(xtr.shape[0], generator=gen)
        loss_sum = 0.0
        correct = seen = 0
        t0 = time.perf_counter()
        for b, i in enumerate(range(0, xtr.shape[0], a.batch)):
            if a.max_batches and b >= a.max_batches:
                break
            idx = perm[i:i + a.batch]
            xb, yb = xtr[idx], ytr[idx]
            opt.zero_grad(set_to_none=True)
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            loss.backward()
            opt.step()
            loss_sum += float(loss) * yb.shape[0]
            correct += int((out.argmax(1) == yb).sum())
            seen += yb.shape[0]
        dt = time.perf_counter() - t0
        train_wall += dt
        images += seen
        top1, top5, tloss = evaluate(model, xte, yte, 1000, a.max_test_batches)
        print('epoch %d: %.1f s (%.1f images/s), train loss %.4f acc %.2f %%, '
              'test loss %.4f top-1 %.2f %% top-5 %.2f %%'
              % (epoch, dt, seen / dt, loss_sum / seen, 100.0 * correct / seen,
                 tloss, 100.0 * top1, 100.0 * top5), flush=True)
    print(json.dumps({
        'test_top1': round(top1, 6), 'test_top5': round(top5, 6),
        'test_loss': round(tloss, 6), 'train_wall_s': round(train_wall, 3),
        'images_per_s': round(images / train_wall, 1), 'epochs': a.epochs,
        'impl': 'torch', 'torch': torch.__version__, 'model': 'resnet%d' % a.depth,
        'attention': a.attention, 'batch': a.batch, 'threads': a.threads, 'seed': a.seed,
        'train_images': images,
    }))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
