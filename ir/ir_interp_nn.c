/* Reference kernels of the network layers: matmul, conv2d and conv1d (direct
 * loops, zero padding, stride, dilation, groups), batch normalization in
 * training and evaluation form, and max/avg pooling. Layout NCHW. */
#include <math.h>
#include <stdlib.h>

#include "ir_interp_ops.h"

/* matmul: a[..., M, K] x b[..., K, N] (b rank 2 is shared by every batch);
 * trans_a / trans_b mean the operand is stored with its last two axes
 * swapped. */
int ir_interp_op_matmul(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in, ir_ival *out) {
  (void)c;
  const ir_ival *a = in[0], *b = in[1];
  int ta = (int)ir_get_int(n, "trans_a"), tb = (int)ir_get_int(n, "trans_b");
  int r = out->type.rank;
  int64_t m = out->type.dims[r - 2], nn = out->type.dims[r - 1];
  int64_t k = a->type.dims[r - 1 - ta];
  if (m == 0 || nn == 0) return 0;
  int64_t batch = out->numel / (m * nn);
  int64_t bstride = b->type.rank == 2 ? 0 : k * nn;
  for (int64_t p = 0; p < batch; p++) {
    const double *ap = a->data + p * m * k, *bp = b->data + p * bstride;
    double *yp = out->data + p * m * nn;
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < nn; j++) {
        double sum = 0;
        for (int64_t q = 0; q < k; q++)
          sum += (ta ? ap[q * m + i] : ap[i * k + q]) * (tb ? bp[j * k + q] : bp[q * nn + j]);
        yp[i * nn + j] = sum;
      }
  }
  return 0;
}

/* The sizes of one 2-D convolution (conv1d is the case h = kh = oh = 1). */
typedef struct {
  int64_t batch, chans, h, w;   /* x[batch, chans, h, w] */
  int64_t outs, kh, kw;         /* weight[outs, chans / groups, kh, kw] */
  int64_t oh, ow;               /* y[batch, outs, oh, ow] */
  int64_t sh, sw, ph, pw, dh, dw, groups;
} conv_shape;

/* y = conv(x, w) under 's': y[b,o,oy,ox] = sum over the input channels ci of
 * o's group and ky, kx of w[o,ci,ky,kx] * x[b, c, oy*sh-ph+ky*dh, ox*sw-pw+kx*dw]
 * where c = group(o) * (chans/groups) + ci, and x is 0 outside its bounds.
 * y must be zero on entry. */
static void conv_run(const conv_shape *s, const double *x, const double *w, double *y) {
  int64_t cg = s->chans / s->groups, og = s->outs / s->groups;
  for (int64_t b = 0; b < s->batch; b++)
    for (int64_t o = 0; o < s->outs; o++) {
      double *yo = y + (b * s->outs + o) * s->oh * s->ow;
      for (int64_t ci = 0; ci < cg; ci++) {
        int64_t ch = (o / og) * cg + ci;
        const double *xc = x + (b * s->chans + ch) * s->h * s->w;
        for (int64_t ky = 0; ky < s->kh; ky++)
          for (int64_t kx = 0; kx < s->kw; kx++) {
            double wv = w[((o * cg + ci) * s->kh + ky) * s->kw + kx];
            for (int64_t oy = 0; oy < s->oh; oy++) {
              int64_t iy = oy * s->sh - s->ph + ky * s->dh;
              if (iy < 0 || iy >= s->h) continue;
              const double *xr = xc + iy * s->w;
              double *yr = yo + oy * s->ow;
              for (int64_t ox = 0; ox < s->ow; ox++) {
                int64_t ix = ox * s->sw - s->pw + kx * s->dw;
                if (ix >= 0 && ix < s->w) yr[ox] += wv * xr[ix];
              }
            }
          }
      }
    }
}

/* conv2d: x[N,C,H,W] * w[O,C/groups,KH,KW] -> [N,O,OH,OW], no bias. */
int ir_interp_op_conv2d(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in, ir_ival *out) {
  (void)c;
  const ir_type *x = &in[0]->type, *w = &in[1]->type;
  const int64_t *st = ir_get_ints(n, "stride", NULL), *pd = ir_get_ints(n, "pad", NULL),
                *dl = ir_get_ints(n, "dilation", NULL);
  conv_shape s = {x->dims[0], x->dims[1], x->dims[2], x->dims[3], w->dims[0], w->dims[2], w->dims[3],
                  out->type.dims[2], out->type.dims[3], st[0], st[1], pd[0], pd[1], dl[0], dl[1],
                  ir_get_int(n, "groups")};
  conv_run(&s, in[0]->data, in[1]->data, out->data);
  return 0;
}

/* conv1d: x[N,C,L] * w[O,C/groups,K] -> [N,O,OL], no bias. */
int ir_interp_op_conv1d(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in, ir_ival *out) {
  (void)c;
  const ir_type *x = &in[0]->type, *w = &in[1]->type;
  const int64_t *st = ir_get_ints(n, "stride", NULL), *pd = ir_get_ints(n, "pad", NULL),
                *dl = ir_get_ints(n, "dilation", NULL);
  conv_shape s = {x->dims[0], x->dims[1], 1, x->dims[2], w->dims[0], 1, w->dims[2],
                  1, out->type.dims[2], 1, st[0], 0, pd[0], 1, dl[0], ir_get_int(n, "groups")};
  conv_run(&s, in[0]->data, in[1]->data, out->data);
  return 0;
}

/* y = (x - mean[ch]) / sqrt(var[ch] + eps) * gamma[ch] + beta[ch] for the
 * channel ch (axis 1) of every element. */
static void bn_apply(const ir_ival *x, const double *gamma, const double *beta, const double *mean,
                     const double *var, double eps, ir_ival *y) {
  int64_t outer, chans, inner;
  ir_interp_split(&x->type, 1, &outer, &chans, &inner);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t ch = 0; ch < chans; ch++) {
      double scale = gamma[ch] / sqrt(var[ch] + eps);
      int64_t base = (o * chans + ch) * inner;
      for (int64_t i = 0; i < inner; i++) y->data[base + i] = (x->data[base + i] - mean[ch]) * scale + beta[ch];
    }
}

/* batchnorm_train(x, gamma, beta): normalizes with the batch mean and the
 * biased batch variance of each channel, taken over every axis but 1. */
int ir_interp_op_batchnorm_train(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in,
                                 ir_ival *out) {
  const ir_ival *x = in[0];
  int64_t outer, chans, inner;
  ir_interp_split(&x->type, 1, &outer, &chans, &inner);
  int64_t count = outer * inner;
  double *mean = calloc((size_t)(2 * chans + 1), sizeof(double));
  if (!mean) return ir_interp_fail(c, n, "out of memory");
  double *var = mean + chans;
  for (int64_t ch = 0; ch < chans; ch++) {
    double sum = 0, sq = 0;
    for (int64_t o = 0; o < outer; o++)
      for (int64_t i = 0; i < inner; i++) sum += x->data[(o * chans + ch) * inner + i];
    mean[ch] = sum / (double)count;
    for (int64_t o = 0; o < outer; o++)
      for (int64_t i = 0; i < inner; i++) {
        double dv = x->data[(o * chans + ch) * inner + i] - mean[ch];
        sq += dv * dv;
      }
    var[ch] = sq / (double)count;
  }
  bn_apply(x, in[1]->data, in[2]->data, mean, var, ir_get_float(n, "eps"), out);
  free(mean);
  return 0;
}

/* batchnorm_eval(x, gamma, beta, mean, var): normalizes with the given
 * per-channel statistics. */
int ir_interp_op_batchnorm_eval(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in,
                                ir_ival *out) {
  (void)c;
  bn_apply(in[0], in[1]->data, in[2]->data, in[3]->data, in[4]->data, ir_get_float(n, "eps"), out);
  return 0;
}

/* Pools x[N,C,H,W] over kernel windows: the max (padding counts as -inf) or
 * the sum divided by the kernel area (padding counts as 0, PyTorch's
 * count_include_pad=True). */
static void pool(const ir_node *n, const ir_ival *x, ir_ival *y, int is_max) {
  const int64_t *k = ir_get_ints(n, "kernel", NULL), *s = ir_get_ints(n, "stride", NULL),
                *p = ir_get_ints(n, "pad", NULL);
  int64_t planes = x->type.dims[0] * x->type.dims[1];
  int64_t h = x->type.dims[2], w = x->type.dims[3], oh = y->type.dims[2], ow = y->type.dims[3];
  for (int64_t pl = 0; pl < planes; pl++) {
    const double *xp = x->data + pl * h * w;
    double *yp = y->data + pl * oh * ow;
    for (int64_t oy = 0; oy < oh; oy++)
      for (int64_t ox = 0; ox < ow; ox++) {
        double acc = is_max ? -INFINITY : 0.0;
        for (int64_t ky = 0; ky < k[0]; ky++)
          for (int64_t kx = 0; kx < k[1]; kx++) {
            int64_t iy = oy * s[0] - p[0] + ky, ix = ox * s[1] - p[1] + kx;
            if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue; /* padding */
            double v = xp[iy * w + ix];
            if (!is_max)
              acc += v;
            else if (v > acc || isnan(v))
              acc = v;
          }
        yp[oy * ow + ox] = is_max ? acc : acc / (double)(k[0] * k[1]);
      }
  }
}

/* max_pool2d(kernel, stride, pad) with -inf padding. */
int ir_interp_op_max_pool2d(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in, ir_ival *out) {
  (void)c;
  pool(n, in[0], out, 1);
  return 0;
}

/* avg_pool2d(kernel, stride, pad), dividing by the kernel area. */
int ir_interp_op_avg_pool2d(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in, ir_ival *out) {
  (void)c;
  pool(n, in[0], out, 0);
  return 0;
}
