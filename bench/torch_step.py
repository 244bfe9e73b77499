#!/usr/bin/python3
"""PyTorch peer of `attnc bench`: times one training step or one inference
forward of a CIFAR ResNet (../shared/reference/torch_models.py, the same
definitions attnc reproduces) with each attention module, and prints one JSON
object per (model, mode).

    /usr/bin/python3 bench/torch_step.py --models none,ham --modes train,infer \\
        --batch 128 --threads 2 --steps 20

Measurement (see bench/README.md):
  * train step = zero_grad, forward, cross-entropy, backward, SGD step
    (lr 0.1, momentum 0.9, weight decay 5e-4); infer = eval mode, no_grad forward.
  * warm-up steps, then --steps timed steps (perf_counter around each step);
    ms_per_step is the median, with min/max and the quartiles as the spread.
  * FLOPs: Conv1d/Conv2d/Linear multiply-accumulates counted by forward hooks
    (torch_models.count_macs) x 2 = forward FLOPs; a training step counts
    3x the forward FLOPs (forward + input gradient + weight gradient, the usual
    convention). BN, ReLU, pooling and attention elementwise work not counted.
  * peak_bytes: growth of the process's peak RSS from just before the first
    step to the end, measured in a fresh subprocess per (model, mode):
    activations, gradients, optimizer state, workspaces. The peak (VmHWM) is
    reset to the current RSS before the first step (/proc/self/clear_refs),
    so an earlier peak (import, model build) does not hide part of the
    growth; where that is refused, the ru_maxrss delta.
  * process_peak_bytes: the whole process's peak RSS (ru_maxrss): Python,
    libtorch, the model and the steps; what `attnc bench` reports as its
    peak RSS.
  * --baseline B: each model is built beside model B (e.g. 'none') in the same
    process, and the two run alternately, step by step (A B, then B A, ...),
    so both see the same load of the machine; the result gains 'baseline'
    (B's own times) and ratio_median/q1/q3/min/max, the per-pair step ratios
    A/B (the attention overhead with B = none). peak_bytes is then null (the
    process holds both models).
  * kernels_per_step: ATen ops dispatched in one step (torch.profiler CPU
    events named aten::* whose parent is not itself an aten:: op, i.e. nested
    dispatch such as conv2d -> convolution -> mkldnn_convolution counts once;
    median of 3 profiled steps, after the timed ones).
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

from bench_common import ensure_torch, import_torch_models

ensure_torch('torch_step.py')
import torch
import torch.nn.functional as F


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--models', default='none,se,eca,cbam,ham',
                   help="comma list of attention modules, or 'all' (default: %(default)s)")
    p.add_argument('--modes', '--mode', default='train',
                   help='comma list of train,infer (default: %(default)s)')
    p.add_argument('--depth', type=int, default=20)
    p.add_argument('--batch', type=int, default=128)
    p.add_argument('--channels', type=int, default=3)
    p.add_argument('--size', type=int, default=32)
    p.add_argument('--classes', type=int, default=10)
    p.add_argument('--threads', type=int, default=os.cpu_count())
    p.add_argument('--steps', type=int, default=20, help='timed steps (default %(default)s)')
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--no-profile', action='store_true', help='skip kernels_per_step')
    p.add_argument('--baseline', help='also time this attention module (e.g. none), '
                   'alternating steps with each model, and report the per-pair ratios')
    p.add_argument('--in-process', action='store_true',
                   help='no subprocess per model (peak_bytes then not comparable)')
    p.add_argument('--reference', help='directory holding torch_models.py')
    p.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    a.mode_list = [m for m in a.modes.split(',') if m]
    for m in a.mode_list:
        if m not in ('train', 'infer'):
            p.error("mode must be train or infer, not '%s'" % m)
    if a.steps < 1 or a.batch < 1 or a.threads < 1 or a.warmup < 0:
        p.error('--steps, --batch, --threads must be >= 1, --warmup >= 0')
    return a


def maxrss_bytes():
    """Peak resident set size of this process so far, in bytes (Linux: KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def proc_status_bytes(field):
    """A 'VmXXX:' line of /proc/self/status in bytes, or None."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def step_memory_start():
    """Starts measuring the steps' memory. Where Linux lets a process reset
    its peak RSS (writing 5 to /proc/self/clear_refs), the peak is set to the
    current RSS, which is returned with the method 'hwm': the growth is then
    not hidden by an earlier, higher peak (import, model build). Otherwise
    returns the peak so far with the method 'maxrss'."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        rss = proc_status_bytes('VmRSS')
        if rss is not None and proc_status_bytes('VmHWM') is not None:
            return rss, 'hwm'
    except OSError:
        pass
    return maxrss_bytes(), 'maxrss'


def step_memory_end(start):
    """Growth of the peak RSS since step_memory_start returned 'start'."""
    base, method = start
    peak = proc_status_bytes('VmHWM') if method == 'hwm' else None
    return (peak if peak is not None else maxrss_bytes()) - base


def count_aten_ops(prof):
    """ATen ops dispatched by user code or autograd, not their nested
    re-dispatches: aten:: events whose CPU parent is not an aten:: event."""
    n = 0
    for ev in prof.events():
        if not ev.name.startswith('aten::'):
            continue
        par = ev.cpu_parent
        if par is None or not par.name.startswith('aten::'):
            n += 1
    return n


def make_step(tm, a, attention, mode):
    """Builds the model and its data; returns (step function, forward FLOPs)."""
    torch.manual_seed(a.seed)
    model = tm.resnet(a.depth, attention, a.classes, a.channels)
    macs, _ = tm.count_macs(model, (1, a.channels, a.size, a.size))
    fwd_flops = 2 * macs * a.batch
    flops = 3 * fwd_flops if mode == 'train' else fwd_flops
    x = torch.randn(a.batch, a.channels, a.size, a.size)
    y = torch.randint(0, a.classes, (a.batch,))
    if mode == 'train':
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
    else:
        model.eval()

        def step():
            with torch.no_grad():
                model(x)
    return step, flops


def timed(step):
    """Runs step() once; returns its time in milliseconds."""
    t0 = time.perf_counter()
    step()
    return (time.perf_counter() - t0) * 1e3


def spread(times):
    """Sorted copy, median and quartiles of a list of times or ratios."""
    times = sorted(times)
    med = statistics.median(times)
    if len(times) >= 4:
        q = statistics.quantiles(times, n=4)
        q1, q3 = q[0], q[2]
    else:
        q1, q3 = times[0], times[-1]
    return times, med, q1, q3


def run_one(tm, a, attention, mode):
    """Builds the model (and the baseline's, with --baseline), times `mode`
    steps and returns the result dict."""
    torch.set_num_threads(a.threads)
    step, flops = make_step(tm, a, attention, mode)
    base = make_step(tm, a, a.baseline, mode)[0] if a.baseline else None
    mem0 = step_memory_start()
    times, btimes = [], []
    for s in range(a.warmup + a.steps):
        if base is None:
            t = timed(step)
        elif s % 2 == 0:
            t = timed(step)
            b = timed(base)
        else:
            b = timed(base)
            t = timed(step)
        if s >= a.warmup:
            times.append(t)
            if base is not None:
                btimes.append(b)
    peak = step_memory_end(mem0)
    process_peak = maxrss_bytes()
    kernels = None
    if not a.no_profile:
        try:
            from torch.profiler import profile, ProfilerActivity
            counts = []
            for _ in range(3):  # the count wobbles by a few ops: median of 3
                with profile(activities=[ProfilerActivity.CPU]) as prof:
                    step()
                counts.append(count_aten_ops(prof))
            kernels = sorted(counts)[1]
        except Exception as e:  # profiler is optional
            print('torch_step.py: profiler failed: %s' % e, file=sys.stderr)
    ratios = [t / b for t, b in zip(times, btimes)]
    times, med, q1, q3 = spread(times)
    r = {
        'impl': 'torch', 'torch': torch.__version__,
        'model': 'resnet%d' % a.depth, 'attention': attention, 'mode': mode,
        'batch': a.batch, 'input': [a.channels, a.size, a.size], 'threads': a.threads,
        'steps': a.steps, 'warmup': a.warmup,
        'ms_per_step': round(med, 3), 'ms_min': round(times[0], 3),
        'ms_max': round(times[-1], 3), 'ms_q1': round(q1, 3), 'ms_q3': round(q3, 3),
        'images_per_s': round(a.batch / (med / 1e3), 1),
        'flops_per_step': flops,
        'gflops': round(flops / (med / 1e3) / 1e9, 2),
        'flops_convention': 'conv+linear MACs x2 (hooks); train = 3x forward',
        'peak_bytes': None if base else peak,
        'peak_method': ('peak RSS (VmHWM, reset before the steps) minus RSS before the steps'
                        if mem0[1] == 'hwm' else 'ru_maxrss delta over the steps') +
                       (' (in-process: not comparable)' if a.in_process else ', fresh process'),
        'process_peak_bytes': None if (base or a.in_process) else process_peak,
        'kernels_per_step': kernels,
    }
    if base is not None:
        btimes, bmed, _, _ = spread(btimes)
        ratios, rmed, rq1, rq3 = spread(ratios)
        r['baseline'] = {'attention': a.baseline, 'ms_per_step': round(bmed, 3),
                         'ms_min': round(btimes[0], 3), 'ms_max': round(btimes[-1], 3)}
        r.update(ratio_median=round(rmed, 4), ratio_q1=round(rq1, 4), ratio_q3=round(rq3, 4),
                 ratio_min=round(ratios[0], 4), ratio_max=round(ratios[-1], 4))
    return r


def child_argv(a, attention, mode):
    """Command line that runs one (model, mode) in a fresh interpreter."""
    argv = [sys.executable, os.path.abspath(__file__), '--child',
            '--models', attention, '--modes', mode, '--depth', str(a.depth),
            '--batch', str(a.batch), '--channels', str(a.channels), '--size', str(a.size),
            '--classes', str(a.classes), '--threads', str(a.threads),
            '--steps', str(a.steps), '--warmup', str(a.warmup), '--seed', str(a.seed)]
    if a.no_profile:
        argv.append('--no-profile')
    if a.baseline:
        argv += ['--baseline', a.baseline]
    if a.reference:
        argv += ['--reference', a.reference]
    return argv


def main(argv):
    a = parse_args(argv)
    tm = import_torch_models('torch_step.py', a.reference)
    if a.models == 'all':
        models = list(tm.ATTENTION)
    else:
        models = [m for m in a.models.split(',') if m]
    for m in models + ([a.baseline] if a.baseline else []):
        if m not in tm.ATTENTION:
            sys.exit("torch_step.py: unknown attention '%s' (torch_models has: %s)"
                     % (m, ', '.join(tm.ATTENTION)))
    status = 0
    for m in models:
        for mode in a.mode_list:
            if a.child or a.in_process:
                print(json.dumps(run_one(tm, a, m, mode)), flush=True)
                continue
            r = subprocess.run(child_argv(a, m, mode), stdout=subprocess.PIPE, text=True)
            if r.returncode != 0:
                print('torch_step.py: %s %s failed (exit %d)' % (m, mode, r.returncode),
                      file=sys.stderr)
                status = 1
                continue
            sys.stdout.write(r.stdout)
            sys.stdout.flush()
    return status


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
