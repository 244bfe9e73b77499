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

/* Fills 's' for conv node 'n' from the dims of x, the weight and y. */
void ir_interp_conv_shape_of(const ir_node *n, int sp, const int64_t *x, const int64_t *w, const int64_t *y,
                             ir_interp_conv_shape *s) {
  const int64_t *st = ir_get_ints(n, "stride", NULL), *pd = ir_get_ints(n, "pad", NULL),
                *dl = ir_get_ints(n, "dilation", NULL);
  int64_t g = ir_get_int(n, "groups");
  if (sp == 2)
    *s = (ir_interp_conv_shape){x[0], x[1], x[2], x[3], w[0], w[2], w[3], y[2], y[3],
                                st[0], st[1], pd[0], pd[1], dl[0], dl[1], g};
  else
    *s = (ir_interp_conv_shape){x[0], x[1], 1, x[2], w[0], 1, w[2], 1, y[2], 1, st[0], 0, pd[0], 1, dl[0], g};
}

/* For y[b,o,oy,ox] += w[o,ci,ky,kx] * x[b, c, oy*sh-ph+ky*dh, ox*sw-pw+kx*dw]
 * with c = group(o) * (chans/groups) + ci, accumulates the product of 'mode'. */
void ir_interp_conv(const ir_interp_conv_shape *s, ir_interp_conv_mode mode, const double *a, const double *b,
                    double *out) {
  int64_t cg = s->chans / s->groups, og = s->outs / s->groups;
  for (int64_t n = 0; n < s->batch; n++)
    for (int64_t o = 0; o < s->outs; o++) {
      int64_t yoff = (n * s->outs + o) * s->oh * s->ow;
      for (int64_t ci = 0; ci < cg; ci++) {
        int64_t xoff = (n * s->chans + (o / og) * cg + ci) * s->h * s->w;
        for (int64_t ky = 0; ky < s->kh; ky++)
          for (int64_t kx = 0; kx < s->kw; kx++) {
            int64_t wi = ((o * cg + ci) * s->kh + ky) * s->kw + kx;
            double acc = 0, wv = mode == IR_CONV_GRAD_WEIGHT ? 0 : b[wi];
            for (int64_t oy = 0; oy < s->oh; oy++) {
              int64_t iy = oy * s->sh - s->ph + ky * s->dh;
              if (iy < 0 || iy >= s->h) continue;
              int64_t xrow = xoff + iy * s->w, yrow = yoff + oy * s->ow;
              /* ox runs over the outputs whose input column ix is in bounds */
              int64_t first = 0, last = s->ow;
              while (first < last && first * s->sw - s->pw + kx * s->dw < 0) first++;
              while (last > first && (last - 1) * s->sw - s->pw + kx * s->dw >= s->w) last--;
              int64_t ix0 = first * s->sw - s->pw + kx * s->dw;
              switch (mode) {
              case IR_CONV_FORWARD:
                for (int64_t ox = first, ix = ix0; ox < last; ox++, ix += s->sw) out[yrow + ox] += wv * a[xrow + ix];
                break;
              case IR_CONV_GRAD_INPUT:
                for (int64_t ox = first, ix = ix0; ox < last; ox++, ix += s->sw) out[xrow + ix] += wv * a[yrow + ox];
                break;
              case IR_CONV_GRAD_WEIGHT:
                for (int64_t ox = first, ix = ix0; ox < last; ox++, ix += s->sw) acc += a[xrow + ix] * b[yrow + ox];
                break;
              }
            }
            if (mode == IR_CONV_GRAD_WEIGHT) out[wi] += acc;
          }
      }
    }
}

/* conv2d/conv1d: x[N,C,...] * w[O,C/groups,...] -> [N,O,...], no bias. */
static int conv_forward(const ir_node *n, int sp, const ir_ival *const *in, ir_ival *out) {
  ir_interp_conv_shape s;
  ir_interp_conv_shape_of(n, sp, in[0]->type.dims, in[1]->type.dims, out->type.dims, &s);
  ir_interp_conv(&s, IR_CONV_FORWARD, in[0]->data, in[1]->data, out->data);
  return 0;
}

/* conv2d: x[N,C,H,W] * w[O,C/groups,KH,KW] -> [N,O,OH,OW], no bias. */
int ir_interp_op_conv2d(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in, ir_ival *out) {
  (void)c;
  return conv_forward(n, 2, in, out);
}

/* conv1d: x[N,C,L] * w[O,C/groups,K] -> [N,O,OL], no bias. */
int ir_interp_op_conv1d(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in, ir_ival *out) {
  (void)c;
  return conv_forward(n, 1, in, out);
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

/* Batch mean and biased batch variance of each channel of x, taken over
 * every axis but 1, into mean[C] and var[C]. */
static void bn_batch_stats(const ir_ival *x, double *mean, double *var) {
  int64_t outer, chans, inner;
  ir_interp_split(&x->type, 1, &outer, &chans, &inner);
  double count = (double)(outer * inner);
  for (int64_t ch = 0; ch < chans; ch++) {
    double sum = 0, sq = 0;
    for (int64_t o = 0; o < outer; o++)
      for (int64_t i = 0; i < inner; i++) sum += x->data[(o * chans + ch) * inner + i];
    mean[ch] = sum / count;
    for (int64_t o = 0; o < outer; o++)
      for (int64_t i = 0; i < inner; i++) {
        double dv = x->data[(o * chans + ch) * inner + i] - mean[ch];
        sq += dv * dv;
      }
    var[ch] = sq / count;
  }
}

/* batchnorm_train(x, gamma, beta): normalizes with the batch mean and the
 * biased batch variance of each channel, taken over every axis but 1. */
int ir_interp_op_batchnorm_train(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in,
                                 ir_ival *out) {
  int64_t chans = in[0]->type.dims[1];
  double *mean = calloc((size_t)(2 * chans + 1), sizeof(double));
  if (!mean) return ir_interp_fail(c, n, "out of memory");
  bn_batch_stats(in[0], mean, mean + chans);
  bn_apply(in[0], in[1]->data, in[2]->data, mean, mean + chans, ir_get_float(n, "eps"), out);
  free(mean);
  return 0;
}

/* batchnorm_stats(x): [mean; biased variance] of each channel, as
 * batchnorm_train computes them. */
int ir_interp_op_batchnorm_stats(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in, ir_ival *out) {
  (void)c, (void)n;
  bn_batch_stats(in[0], out->data, out->data + in[0]->type.dims[1]);
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
