#!/usr/bin/env python3
"""conv_ir.py — writes the IR text of a graph that holds only convolutions of
one layer shape (K forward convolutions, K input gradients and K weight
gradients, each with a weight of its own), for `build/bench/ab_step`: a
change to a convolution kernel then gets paired per-step ratios on that
shape alone, where `conv_kernels.c`'s single timings swing by a third on a
shared VM.

usage: bench/conv_ir.py [--channels C] [--out-channels CO] [--size H]
                        [--batch N] [--stride S] [--kernel K] [--count K]
                        [--ops fwd,gi,gw] > conv.ir
defaults: ResNet-20's third stage (64 -> 64 channels, 8x8, 3x3, stride 1),
batch 128, 4 of each op.

  bench/conv_ir.py --channels 16 --size 32 > /tmp/s1.ir
  build/bench/ab_step /tmp/s1.ir ATTNC_SWITCH 40 2
"""
import argparse
import sys


def conv_graph(c, co, h, n, s, k, count, ops):
    """The graph's text: inputs x [N,C,H,H] and dy [N,CO,OH,OH], one weight
    per op instance, every result a graph output."""
    pad = k // 2
    oh = (h + 2 * pad - k) // s + 1
    attrs = 'stride=[%d,%d] pad=[%d,%d] dilation=[1,1] groups=1' % (s, s, pad, pad)
    x = 'f32[%d,%d,%d,%d]' % (n, c, h, h)
    y = 'f32[%d,%d,%d,%d]' % (n, co, oh, oh)
    w = 'f32[%d,%d,%d,%d]' % (co, c, k, k)
    lines = ['graph @conv_%dx%d_%d_%d {' % (k, k, c, co),
             '  %%0 = input name="x" : %s' % x,
             '  %%1 = input name="dy" : %s' % y]
    # the text of each op instance on weight %wid, in this order
    forms = (('fwd', lambda wid: 'conv2d(%%0, %%%d) %s : %s' % (wid, attrs, y)),
             ('gi', lambda wid: 'conv2d_grad_input(%%1, %%%d) %s in_shape=[%d,%d,%d,%d] : %s'
              % (wid, attrs, n, c, h, h, x)),
             ('gw', lambda wid: 'conv2d_grad_weight(%%0, %%1) %s kernel=[%d,%d] : %s' % (attrs, k, k, w)))
    nid, outs = 2, []
    for i in range(count):
        wid = nid
        lines.append('  %%%d = param name="w%d" : %s' % (wid, i, w))
        nid += 1
        for op, form in forms:
            if op in ops:
                lines.append('  %%%d = %s' % (nid, form(wid)))
                outs.append(nid)
                nid += 1
    for j, o in enumerate(outs):
        lines.append('  output "o%d" = %%%d' % (j, o))
    lines.append('}')
    return '\n'.join(lines) + '\n'


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--channels', type=int, default=64)
    ap.add_argument('--out-channels', type=int, default=None, help='default: --channels')
    ap.add_argument('--size', type=int, default=8, help='input height and width')
    ap.add_argument('--batch', type=int, default=128)
    ap.add_argument('--stride', type=int, default=1)
    ap.add_argument('--kernel', type=int, default=3, help='odd window size; padding keeps the size at stride 1')
    ap.add_argument('--count', type=int, default=4, help='instances of each op')
    ap.add_argument('--ops', default='fwd,gi,gw', help='any of fwd, gi, gw, comma-separated')
    a = ap.parse_args()
    ops = set(a.ops.split(','))
    if ops - {'fwd', 'gi', 'gw'}:
        ap.error('--ops takes fwd, gi and gw, comma-separated')
    co = a.channels if a.out_channels is None else a.out_channels
    for name, v in (('channels', a.channels), ('out-channels', co), ('size', a.size), ('batch', a.batch),
                    ('stride', a.stride), ('count', a.count)):
        if v < 1:
            ap.error('--%s must be at least 1' % name)
    if a.kernel < 1 or a.kernel % 2 == 0 or a.kernel > a.size:
        ap.error('--kernel must be odd and at most --size')
    sys.stdout.write(conv_graph(a.channels, co, a.size, a.batch, a.stride, a.kernel, a.count, ops))


if __name__ == '__main__':
    main()
