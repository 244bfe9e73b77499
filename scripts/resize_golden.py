#!/usr/bin/python3
"""Writes tests/data/resize/: a 37x29 RGB PNG of noise and edges, and what
torchvision 0.14 (Pillow) makes of it, the values test_image checks
attnc's resampling against byte for byte:
  cases.txt     one case a line: 'center RESIZE SIZE' (Resize(RESIZE) +
                CenterCrop(SIZE)) or 'crop TOP LEFT H W SIZE'
                (F.resized_crop to SIZE x SIZE, bilinear), and 'gray ...' for
                the same on the image's green channel as an 'L' image
  expected.bin  the outputs in that order, CHW bytes each
Run by hand when the cases change (needs python3-torchvision):
    scripts/resize_golden.py tests/data/resize"""
import os
import sys

import numpy as np
from PIL import Image
import torchvision.transforms as T
import torchvision.transforms.functional as F

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(7)
h, w = 29, 37
y, x = np.mgrid[0:h, 0:w]
img = np.stack([(x * 7 + y * 3) % 256, (x * y) % 256, np.where((x // 5 + y // 4) % 2, 230, 20)], axis=2)
img = np.clip(img + rng.integers(-30, 31, size=img.shape), 0, 255).astype(np.uint8)
pil = Image.fromarray(img)
pil.save(os.path.join(out, 'image.png'))
gray = Image.fromarray(img[:, :, 1])
cases = [('center', 29, 29), ('center', 16, 16), ('center', 13, 8), ('center', 40, 33), ('center', 7, 7),
         ('center', 60, 51), ('center', 10, 7), ('center', 11, 8),
         ('crop', 3, 5, 20, 11, 16), ('crop', 0, 0, 29, 37, 9), ('crop', 10, 20, 5, 7, 24),
         ('crop', 1, 2, 27, 33, 31), ('crop', 4, 4, 1, 1, 3)]
lines, blobs = [], []
for src, mode in ((pil, ''), (gray, 'gray ')):
    for c in cases:
        if c[0] == 'center':
            r = T.CenterCrop(c[2])(T.Resize(c[1])(src))
        else:
            r = F.resized_crop(src, c[1], c[2], c[3], c[4], [c[5], c[5]], T.InterpolationMode.BILINEAR)
        a = np.asarray(r)
        a = a.transpose(2, 0, 1) if a.ndim == 3 else a[None]
        lines.append(mode + ' '.join(map(str, c)))
        blobs.append(np.ascontiguousarray(a).tobytes())
open(os.path.join(out, 'cases.txt'), 'w').write('\n'.join(lines) + '\n')
open(os.path.join(out, 'expected.bin'), 'wb').write(b''.join(blobs))
