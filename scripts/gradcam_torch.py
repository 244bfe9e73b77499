#!/usr/bin/env python3
"""Recomputes with PyTorch the Grad-CAM that `attnc gradcam --tensors T` wrote,
and prints how far attnc's numbers are from PyTorch's.

    build/attnc gradcam models/resnet_cifar.lua --weights ham.ckpt --data fashion-mnist \\
        --index 0-7 --out cam.png --tensors cam.safetensors
    /usr/bin/python3 scripts/gradcam_torch.py cam.safetensors

T holds the normalized batch ('input'), the classes explained, the layer and
the weights' path (metadata). The network is the reference's CIFAR ResNet
(torch_models.py in ../shared/reference) with the weights' state_dict; its
depth, attention, classes and input channels come from the checkpoint's
recorded -D options (attnc train) or from the options below. The layer's
output is taken with a forward hook that adds a zero tensor, whose gradient
is the gradient with respect to the layer, as attnc does in IR. Needs
PyTorch (scripts/setup.sh --bench). Both are compared with PyTorch in
float64, next to PyTorch's own float32 error (the attention modules differ in
how much rounding their gradients amplify); exits 1 if attnc's error is over
--tol and over 4 times PyTorch's.

    /usr/bin/python3 scripts/gradcam_torch.py --zoo [--depth 8]

does the same for every attention module of the reference (random weights
and inputs written by the script, the default layer and layers.1)."""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'bench'))
import bench_common  # noqa: E402

bench_common.ensure_torch('gradcam_torch.py')
import torch  # noqa: E402

DTYPES = {'F32': torch.float32, 'F64': torch.float64, 'I64': torch.int64}


def read_safetensors(path):
    """Returns ({name: tensor}, metadata) of a safetensors file (F32/F64/I64)."""
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop('__metadata__', {})
    out = {}
    for name, t in header.items():
        if t['dtype'] not in DTYPES:
            continue
        a, b = t['data_offsets']
        out[name] = torch.frombuffer(bytearray(data[a:b]), dtype=DTYPES[t['dtype']]).reshape(t['shape'])
    return out, meta


def compare(tm, tensors, weights=None, depth=None, attention=None):
    """Recomputes the Grad-CAM of attnc's --tensors file 'tensors' with PyTorch;
    returns (layer, images, attnc's errors, PyTorch float32's errors), each
    error list (map, alpha, logits) against PyTorch in float64."""
    t, meta = read_safetensors(tensors)
    w, wmeta = read_safetensors(weights or meta['weights'])
    model_file = wmeta.get('attnc.model', 'models/resnet_cifar.lua')
    if os.path.basename(model_file) != 'resnet_cifar.lua':
        sys.exit('gradcam_torch.py: only the CIFAR ResNets have a PyTorch peer, not %s' % model_file)
    defines = json.loads(wmeta.get('attnc.options', '{}')).get('defines', {})
    x = t['input']
    classes = t['logits'].shape[1]
    model = tm.resnet(depth or int(defines.get('depth', 20)), attention or defines.get('attention', 'none'),
                      classes, x.shape[1])
    state = model.state_dict()
    missing = [k for k in state if k not in w and not k.endswith('num_batches_tracked')]
    if missing:
        sys.exit('gradcam_torch.py: the weights lack %s' % ', '.join(missing[:5]))
    model.load_state_dict({k: w[k] for k in state if k in w}, strict=False)
    model.eval()
    layer = meta['layer']
    ref = gradcam(model.double(), layer, x.double(), t['explained'], classes)   # the truth, nearly
    f32 = gradcam(model.float(), layer, x.float(), t['explained'], classes)     # PyTorch's own rounding
    got = (t['cam'].double(), t['alpha'].double(), t['logits'].double())
    return layer, x.shape[0], [error(g, r) for g, r in zip(got, ref)], [error(f.double(), r) for f, r in zip(f32, ref)]


def gradcam(model, layer, x, explained, classes):
    """Grad-CAM of 'model' at module 'layer' (its last call): (cam, alpha, logits)."""
    feats, probes = [], []

    def hook(module, inputs, output):
        probe = torch.zeros_like(output, requires_grad=True)
        feats.append(output)
        probes.append(probe)
        return output + probe

    handle = model.get_submodule(layer).register_forward_hook(hook)
    logits = model(x)
    handle.remove()
    onehot = torch.nn.functional.one_hot(explained, classes).to(logits.dtype)
    (logits * onehot).sum().backward()
    # a module called more than once (HAM's shared 7x7 convolution): its last call, as in attnc
    alpha = probes[-1].grad.mean((2, 3))
    cam = torch.relu((alpha[:, :, None, None] * feats[-1]).sum(1)).detach()
    return cam, alpha.detach(), logits.detach()


def error(got, ref):
    """Largest |got - ref| over the largest |ref| (per sample for maps)."""
    if got.dim() == 3:
        top = ref.flatten(1).abs().max(1).values.clamp_min(1e-30)
        return ((got - ref).abs().flatten(1).max(1).values / top).max().item()
    return ((got - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item()


def zoo(tm, depth, attnc):
    """Runs attnc gradcam on every attention module of the reference with
    seeded random weights and inputs, at the default layer and at layers.1;
    yields compare()'s result per (module, layer)."""
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        x = os.path.join(tmp, 'x.safetensors')
        write_safetensors(x, {'input': torch.randn(4, 3, 32, 32)})
        for att in tm.ATTENTION:
            model = tm.resnet(depth, att, 10, 3)
            for m in model.modules():
                if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                    m.running_mean.normal_(0, 0.1)
                    m.running_var.uniform_(0.5, 1.5)
                    m.weight.data.uniform_(0.5, 1.5)
                    m.bias.data.normal_(0, 0.1)
            w = os.path.join(tmp, att + '.safetensors')
            write_safetensors(w, {k: v for k, v in model.state_dict().items()
                                  if not k.endswith('num_batches_tracked')})
            for layer in (None, 'layers.1'):
                t = os.path.join(tmp, 't.safetensors')
                cmd = [attnc, 'gradcam', 'models/resnet_cifar.lua', '-D', 'depth=%d' % depth, '-D',
                       'attention=' + att, '--weights', w, '--input', x, '--tensors', t, '--class', '3']
                subprocess.run(cmd + (['--layer', layer] if layer else []), check=True, stdout=subprocess.DEVNULL)
                yield (att,) + compare(tm, t, w, depth, att)


def write_safetensors(path, tensors):
    """Writes {name: float32 tensor} as a safetensors file."""
    header, blobs, off = {}, [], 0
    for name, v in tensors.items():
        b = v.detach().contiguous().float().numpy().tobytes()
        header[name] = {'dtype': 'F32', 'shape': list(v.shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b' ' * (-len(h) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h + b''.join(blobs))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('tensors', nargs='?', help="the --tensors file of attnc gradcam")
    ap.add_argument('--zoo', action='store_true',
                    help="instead: every attention module of the reference, random weights, two layers each")
    ap.add_argument('--weights', help="the weights (default: the path recorded in the file)")
    ap.add_argument('--depth', type=int, help="ResNet depth (default: the checkpoint's, else 20)")
    ap.add_argument('--attention', help="attention module (default: the checkpoint's, else none)")
    ap.add_argument('--reference', help="directory of torch_models.py (default: ../shared/reference)")
    ap.add_argument('--tol', type=float, default=1e-4,
                    help="error allowed even where PyTorch's float32 is closer to float64 (default 1e-4)")
    a = ap.parse_args()
    tm = bench_common.import_torch_models('gradcam_torch.py', a.reference)
    if a.zoo:
        root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
        os.chdir(root)
        attnc = os.environ.get('ATTNC_BIN', os.path.join(root, 'build', 'attnc'))
        results = list(zoo(tm, a.depth or 20, attnc))
    else:
        if not a.tensors:
            ap.error('give a --tensors file of attnc gradcam, or --zoo')
        results = [('',) + compare(tm, a.tensors, a.weights, a.depth, a.attention)]
    print('errors against PyTorch in float64, relative to the largest magnitude (a map: its own maximum);')
    print('attnc / PyTorch float32:')
    ok = True
    for att, layer, n, mine, theirs in results:
        print('%-16s %-9s %3d images: map %.1e / %.1e, alpha %.1e / %.1e, logits %.1e / %.1e'
              % ((att, layer, n) + tuple(v for pair in zip(mine, theirs) for v in pair)))
        ok = ok and all(m <= max(a.tol, 4 * p) for m, p in zip(mine, theirs))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
