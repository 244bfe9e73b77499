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
PyTorch (scripts/setup.sh --bench); exits 1 if a difference exceeds --tol."""
import argparse
import json
import os
import struct
import sys

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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('tensors', help="the --tensors file of attnc gradcam")
    ap.add_argument('--weights', help="the weights (default: the path recorded in the file)")
    ap.add_argument('--depth', type=int, help="ResNet depth (default: the checkpoint's, else 20)")
    ap.add_argument('--attention', help="attention module (default: the checkpoint's, else none)")
    ap.add_argument('--reference', help="directory of torch_models.py (default: ../shared/reference)")
    ap.add_argument('--tol', type=float, default=1e-4,
                    help="largest difference allowed, relative to each map's maximum (default 1e-4)")
    a = ap.parse_args()
    tm = bench_common.import_torch_models('gradcam_torch.py', a.reference)
    t, meta = read_safetensors(a.tensors)
    weights, wmeta = read_safetensors(a.weights or meta['weights'])
    model_file = wmeta.get('attnc.model', 'models/resnet_cifar.lua')
    if os.path.basename(model_file) != 'resnet_cifar.lua':
        sys.exit('gradcam_torch.py: only the CIFAR ResNets have a PyTorch peer, not %s' % model_file)
    defines = json.loads(wmeta.get('attnc.options', '{}')).get('defines', {})
    x = t['input']
    classes = t['logits'].shape[1]
    model = tm.resnet(a.depth or int(defines.get('depth', 20)), a.attention or defines.get('attention', 'none'),
                      classes, x.shape[1])
    state = model.state_dict()
    missing = [k for k in state if k not in weights and not k.endswith('num_batches_tracked')]
    if missing:
        sys.exit('gradcam_torch.py: the weights lack %s' % ', '.join(missing[:5]))
    model.load_state_dict({k: weights[k] for k in state if k in weights}, strict=False)
    model.eval()
    layer = meta['layer']
    feats, probes = [], []

    def hook(module, inputs, output):
        probe = torch.zeros_like(output, requires_grad=True)
        feats.append(output)
        probes.append(probe)
        return output + probe

    model.get_submodule(layer).register_forward_hook(hook)
    logits = model(x)
    onehot = torch.nn.functional.one_hot(t['explained'], classes).to(logits.dtype)
    (logits * onehot).sum().backward()
    # a module called more than once (HAM's shared 7x7 convolution): its last call, as in attnc
    alpha = probes[-1].grad.mean((2, 3))
    cam = torch.relu((alpha[:, :, None, None] * feats[-1]).sum(1)).detach()
    top = torch.maximum(cam.flatten(1).max(1).values, t['cam'].flatten(1).max(1).values).clamp_min(1e-30)
    d_cam = ((cam - t['cam']).abs().flatten(1).max(1).values / top).max().item()
    d_alpha = ((alpha - t['alpha']).abs().max() / alpha.abs().max()).item()
    d_logits = ((logits.detach() - t['logits']).abs().max() / logits.abs().max()).item()
    print('Grad-CAM of %s, %d images: largest difference from PyTorch %.2e of a map\'s maximum; '
          'alpha %.2e, logits %.2e (relative to their largest magnitude)' % (layer, x.shape[0], d_cam, d_alpha,
                                                                             d_logits))
    return 0 if max(d_cam, d_alpha, d_logits) <= a.tol else 1


if __name__ == '__main__':
    sys.exit(main())
