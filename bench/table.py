#!/usr/bin/python3
"""Side-by-side tables for bench/run.sh and bench/fmnist.sh (formatting only).

    table.py step DIR   DIR holds torch.jsonl (bench/torch_step.py output),
                        attnc-<attention>-<mode>.out (stdout of `attnc bench
                        --json`), optionally peak.json (bench/peak_fma output)
    table.py train DIR  DIR holds torch.out (bench/torch_fmnist.py output) and
                        attnc.out (stdout of `attnc train --json`)
    table.py paired DIR DIR holds torch.paired.jsonl (bench/torch_step.py
                        --baseline none) and attnc-<attention>.paired
                        (`attnc bench --baseline attention=none --json`),
                        written by bench/overhead.sh

A missing, failed or unparsable attnc result shows as n/a; the torch column is
printed regardless. Ratio = torch ms / attnc ms (> 1: attnc faster); overhead =
step time with the module / step time of the plain network, per side.

With several rounds (bench/run.sh --rounds R: one JSON line per round in each
file, in round order) every time is the median over the rounds, and every
ratio the median of the rounds' own ratios (each round's numbers were
measured minutes apart, so a slow spell of the machine cancels out); the
per-round step times are listed under the table.
"""
import json
import os
import statistics
import sys


def last_json(path):
    """The last line of `path` that parses as a JSON object, or None."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        line = line.strip()
        if line.startswith('{'):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                return obj
    return None


def all_json(path):
    """Every line of `path` that parses as a JSON object."""
    out = []
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line.startswith('{'):
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass
    except OSError:
        pass
    return out


def num(d, key):
    """d[key] as a float, or None when absent / not a number."""
    if not d:
        return None
    v = d.get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def fmt(v, spec):
    return 'n/a' if v is None else format(v, spec)


def ratio(a, b):
    return a / b if a is not None and b else None


def render(header, rows):
    """Plain-text table, columns right-aligned except the first two."""
    w = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    lines = []
    for r in [header, None] + rows:
        if r is None:
            lines.append('  '.join('-' * x for x in w))
            continue
        cells = [str(c).ljust(w[i]) if i < 2 else str(c).rjust(w[i]) for i, c in enumerate(r)]
        lines.append('  '.join(cells).rstrip())
    return '\n'.join(lines)


def mib(v):
    return None if v is None else v / 2**20


def median(values):
    """Median of the values that are not None, or None."""
    v = [x for x in values if x is not None]
    return statistics.median(v) if v else None


def med_row(rows):
    """The row of the median ms_per_step (the lower one of an even count),
    for the columns other than times; None if no row has a time."""
    timed = sorted((r for r in rows if num(r, 'ms_per_step') is not None), key=lambda r: num(r, 'ms_per_step'))
    return timed[(len(timed) - 1) // 2] if timed else None


def least(values):
    """Minimum of the values that are not None, or None."""
    v = [x for x in values if x is not None]
    return min(v) if v else None


def times(rows):
    return [num(r, 'ms_per_step') for r in rows]


def round_ratio(num_rows, den_rows):
    """Median over rounds of num ms / den ms, the i-th line of each being
    round i."""
    return median([ratio(a, b) for a, b in zip(times(num_rows), times(den_rows))])


def unfused_rows(rows):
    """The --no-fuse program's rows of 'attnc bench --baseline-no-fuse'
    lines (its 'baseline' object, with 1 / the paired ratio as 'gain'); a
    line of a plain --no-fuse run is its own row."""
    out = []
    for r in rows:
        b = r.get('baseline')
        if isinstance(b, dict):
            b = dict(b)
            q = num(r, 'ratio_median')
            b['gain'] = 1 / q if q else None
            out.append(b)
        else:
            out.append(r)
    return out


def nofuse_cells(a, nf, nf_base):
    """The fused-vs-unfused columns of one attnc row (lists of rounds): the
    --no-fuse step time, fused speed-up (the paired ratio when the unfused
    program ran beside the fused one), --no-fuse overhead, feature-map
    traffic per step (fused / unfused), arena and unplanned buffer sum."""
    nf, nf_base = unfused_rows(nf), unfused_rows(nf_base)
    ar, nr = med_row(a), med_row(nf)
    gains = [num(r, 'gain') for r in nf]
    gain = median(gains) if gains and all(g is not None for g in gains) else round_ratio(nf, a)
    return [fmt(median(times(nf)), '.1f'), fmt(gain, '.2f'), fmt(round_ratio(nf, nf_base), '.3f'),
            fmt(mib(num(ar, 'traffic_bytes')), '.0f'), fmt(mib(num(nr, 'traffic_bytes')), '.0f'),
            fmt(mib(num(ar, 'arena_bytes')), '.0f'), fmt(mib(num(ar, 'buffer_bytes')), '.0f')]


def step_table(d):
    """Prints the per-step comparison of bench/run.sh from directory d."""
    torch_rows = {}
    for r in all_json(os.path.join(d, 'torch.jsonl')):
        torch_rows.setdefault((r.get('attention'), r.get('mode')), []).append(r)
    keys = list(torch_rows)
    for name in sorted(os.listdir(d)):
        if name.startswith('attnc-') and name.endswith('.out'):
            att, _, mode = name[6:-4].rpartition('-')
            if (att, mode) not in keys:
                keys.append((att, mode))
    order = os.environ.get('BENCH_ORDER', '')
    rank = {m: i for i, m in enumerate(order.split(',')) if m}
    keys.sort(key=lambda k: (0 if k[1] == 'train' else 1, rank.get(k[0], 99), k[0]))
    attnc_rows = {k: all_json(os.path.join(d, 'attnc-%s-%s.out' % k)) for k in keys}
    nofuse_rows = {k: all_json(os.path.join(d, 'attnc-%s-%s.nofuse' % k)) for k in keys}
    nrounds = max([len(v) for v in list(torch_rows.values()) + list(attnc_rows.values())] + [1])

    peak = last_json(os.path.join(d, 'peak.json'))
    any_row = next(iter(torch_rows.values()), [{}])[0]
    print('ResNet-%s, batch %s, input %s, %s threads; torch %s%s' % (
        str(any_row.get('model', 'resnet20'))[6:] or '20', any_row.get('batch', '?'),
        'x'.join(str(x) for x in any_row.get('input', [])) or '?',
        any_row.get('threads', '?'), any_row.get('torch', '?'),
        '; median of %d interleaved rounds' % nrounds if nrounds > 1 else ''))
    if peak:
        print('FP32 FMA peak (bench/peak_fma, %s-bit): %.1f GFLOP/s on %s threads, %.1f on 1' % (
            peak.get('vector_bits'), peak.get('gflops_all', 0), peak.get('threads'),
            peak.get('gflops_1core', 0)))
    header = ['model', 'mode', 'attnc ms', 'torch ms', 'torch/attnc', 'attnc GF/s',
              'torch GF/s', 'attnc ovh', 'torch ovh', 'attnc MB', 'torch MB', 'attnc RSS', 'torch RSS',
              'attnc kern', 'torch kern', 'compile s', 'no-fuse ms', 'fuse gain',
              'no-fuse ovh', 'traffic MB', 'no-fuse MB', 'arena MB', 'unplanned MB']
    rows, per_round, fastest = [], [], []
    for k in keys:
        ts, as_ = torch_rows.get(k, []), attnc_rows.get(k, [])
        base_t, base_a = torch_rows.get(('none', k[1]), []), attnc_rows.get(('none', k[1]), [])
        t, a = med_row(ts), med_row(as_)
        am, tm = median(times(as_)), median(times(ts))
        ab, tb = num(a, 'step_bytes'), num(t, 'peak_bytes')
        arss, trss = num(a, 'peak_bytes'), num(t, 'process_peak_bytes')
        tspread = '' if t is None else ' [%s-%s]' % (fmt(num(t, 'ms_min'), '.0f'), fmt(num(t, 'ms_max'), '.0f'))
        name = 'resnet20+%s' % k[0] if k[0] != 'none' else 'resnet20'
        rows.append([
            name, k[1],
            fmt(am, '.1f'), fmt(tm, '.1f') + tspread, fmt(round_ratio(ts, as_), '.2f'),
            fmt(num(a, 'gflops'), '.1f'), fmt(num(t, 'gflops'), '.1f'),
            fmt(round_ratio(as_, base_a), '.3f'), fmt(round_ratio(ts, base_t), '.3f'),
            fmt(mib(ab), '.1f'), fmt(mib(tb), '.1f'), fmt(mib(arss), '.0f'), fmt(mib(trss), '.0f'),
            fmt(num(a, 'kernels_per_step'), '.0f'), fmt(num(t, 'kernels_per_step'), '.0f'),
            fmt(num(a, 'compile_s'), '.2f'),
        ] + nofuse_cells(as_, nofuse_rows.get(k, []), nofuse_rows.get(('none', k[1]), [])))
        per_round.append('  %s %s: attnc %s; torch %s' % (
            name, k[1], ' '.join(fmt(x, '.1f') for x in times(as_)), ' '.join(fmt(x, '.1f') for x in times(ts))))
        amin, tmin = least(times(as_)), least(times(ts))
        fastest.append('  %s %s: attnc %s ms (ovh %s); torch %s ms (ovh %s); torch/attnc %s' % (
            name, k[1], fmt(amin, '.1f'), fmt(ratio(amin, least(times(base_a))), '.3f'), fmt(tmin, '.1f'),
            fmt(ratio(tmin, least(times(base_t))), '.3f'), fmt(ratio(tmin, amin), '.2f')))
    print(render(header, rows))
    print('torch ms: median [min-max]; ratio > 1 = attnc faster; ovh = step / plain '
          'step; GF/s: each side\'s own FLOP count (torch: conv+linear MACs x2, train = 3x '
          'forward); MB: the step\'s memory (attnc: its buffer arena and thread scratch; torch: '
          'growth of the peak RSS over the steps); RSS: the whole process\'s peak RSS in MiB '
          '(attnc: with the compiler; torch: with Python and libtorch); fuse gain = '
          'no-fuse ms / ms, paired (the two programs alternating step by step); traffic: feature-map bytes read+written per step; arena: '
          'attnc\'s planned buffers; unplanned: sum of all buffers without reuse')
    if nrounds > 1:
        print('ms per step in each round (ratios and overheads above are medians of per-round ratios):')
        print('\n'.join(per_round))
        print('fastest round of each case (the least disturbed; overheads and ratio from these minima):')
        print('\n'.join(fastest))


def train_table(d):
    """Prints the Fashion-MNIST training comparison of bench/fmnist.sh."""
    t = last_json(os.path.join(d, 'torch.out'))
    a = last_json(os.path.join(d, 'attnc.out'))
    header = ['impl', 'epochs', 'train wall s', 'images/s', 'test top-1 %', 'test top-5 %',
              'test loss']
    rows = []

    def pct(v):
        if v is None:
            return None
        return v * 100 if v <= 1.0 else v  # accept fractions or percentages

    for name, r in (('attnc', a), ('torch', t)):
        rows.append([name, fmt(num(r, 'epochs'), '.0f'), fmt(num(r, 'train_wall_s'), '.1f'),
                     fmt(num(r, 'images_per_s'), '.1f'), fmt(pct(num(r, 'test_top1')), '.2f'),
                     fmt(pct(num(r, 'test_top5')), '.2f'), fmt(num(r, 'test_loss'), '.4f')])
    print(render(header, rows))
    tw, aw = num(t, 'train_wall_s'), num(a, 'train_wall_s')
    print('wall-time ratio torch/attnc: %s (> 1 = attnc faster)' % fmt(ratio(tw, aw), '.2f'))


def base_ms(r):
    """The baseline's median step time of a paired result, or None."""
    return num(r.get('baseline') if r else None, 'ms_per_step')


def paired_table(d):
    """Prints the attention overheads of bench/overhead.sh from directory d:
    per module and side, the median over rounds of each round's median
    per-pair ratio (module step / plain step, alternating in one process)."""
    torch_rows = {}
    for r in all_json(os.path.join(d, 'torch.paired.jsonl')):
        torch_rows.setdefault(r.get('attention'), []).append(r)
    order = [m for m in os.environ.get('BENCH_ORDER', '').split(',') if m]
    names = order or sorted(set(torch_rows) | {n[6:-7] for n in os.listdir(d)
                                               if n.startswith('attnc-') and n.endswith('.paired')})
    attnc_rows = {m: all_json(os.path.join(d, 'attnc-%s.paired' % m)) for m in names}
    nrounds = max([len(v) for v in list(torch_rows.values()) + list(attnc_rows.values())] + [1])
    any_row = next(iter(torch_rows.values()), [{}])[0]
    print('Attention overhead by paired steps: ResNet-%s training step, batch %s, %s threads; '
          'torch %s; %d round%s' % (
              str(any_row.get('model', 'resnet20'))[6:] or '20', any_row.get('batch', '?'),
              any_row.get('threads', '?'), any_row.get('torch', '?'), nrounds, 's' if nrounds > 1 else ''))
    header = ['module', 'attnc ms', 'attnc plain', 'attnc ovh', 'attnc q1-q3', 'torch ms',
              'torch plain', 'torch ovh', 'torch q1-q3', 'torch/attnc', 'plain torch/attnc']
    rows, per_round = [], []
    for m in names:
        a, t = attnc_rows.get(m, []), torch_rows.get(m, [])
        ra, rt = med_row(a), med_row(t)

        def q(r):
            return '%s-%s' % (fmt(num(r, 'ratio_q1'), '.3f'), fmt(num(r, 'ratio_q3'), '.3f'))

        rows.append([
            m, fmt(median(times(a)), '.1f'), fmt(median([base_ms(r) for r in a]), '.1f'),
            fmt(median([num(r, 'ratio_median') for r in a]), '.3f'), q(ra),
            fmt(median(times(t)), '.1f'), fmt(median([base_ms(r) for r in t]), '.1f'),
            fmt(median([num(r, 'ratio_median') for r in t]), '.3f'), q(rt),
            fmt(round_ratio(t, a), '.2f'),
            fmt(median([ratio(base_ms(x), base_ms(y)) for x, y in zip(t, a)]), '.2f')])
        per_round.append('  %s: attnc %s; torch %s' % (
            m, ' '.join(fmt(num(r, 'ratio_median'), '.3f') for r in a),
            ' '.join(fmt(num(r, 'ratio_median'), '.3f') for r in t)))
    print(render(header, rows))
    print('ovh = median over the steps of (module step / plain step), the two models '
          'alternating step by step in one process (A B, B A, ...); q1-q3: quartiles of '
          'those per-pair ratios (the median round); ms: median step times; torch/attnc: '
          'module step (and plain step), > 1 = attnc faster')
    if nrounds > 1:
        print('overhead in each round (the table shows the median over rounds):')
        print('\n'.join(per_round))


def main(argv):
    tables = {'step': step_table, 'train': train_table, 'paired': paired_table}
    if len(argv) != 2 or argv[0] not in tables:
        sys.exit('usage: table.py step|train|paired DIR')
    tables[argv[0]](argv[1])


if __name__ == '__main__':
    main(sys.argv[1:])
