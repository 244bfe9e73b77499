/* Reference kernels of the backward ops that autodiff emits: convolution
 * input and weight gradients, pooling gradients, the batch-norm input
 * gradient, the cross-entropy gradient and the slice gradient. Each is the
 * adjoint of its forward kernel written as the same loops run backwards. */
#include <math.h>
#include <stdlib.h>

#include "ir_interp_ops.h"

/* The sizes of one 2-D convolution (conv1d: h = kh = oh = 1). */
typedef struct {
  int64_t batch, chans, h, w; /* x */
  int64_t outs, kh, kw;       /* weight [outs, chans/groups, kh, kw] */
  int64_t oh, ow;             /* y */
  int64_t sh, sw, ph, pw, dh, dw, groups;
} grad_conv;

/* Fills 's' from the attributes of a conv backward node, the x dims and the
 * dy dims, for 'sp' spatial dims. */
static void conv_sizes(const ir_node *n, int sp, const int64_t *x, const int64_t *k, const int64_t *y,
                       int64_t outs, grad_conv *s) {
  const int64_t *st = ir_get_ints(n, "stride", NULL), *pd = ir_get_ints(n, "pad", NULL),
                *dl = ir_get_ints(n, "dilation", NULL);
  int64_t g = ir_get_int(n, "groups");
  if (sp == 2)
    *s = (grad_conv){x[0], x[1], x[2], x[3], outs, k[0], k[1], y[2], y[3], st[0], st[1], pd[0], pd[1], dl[0], dl[1], g};
  else
    *s = (grad_conv){x[0], x[1], 1, x[2], outs, 1, k[0], 1, y[2], 1, st[0], 0, pd[0], 1, dl[0], g};
}

/* For every (x element, w element, y element) triple the forward conv
 * multiplies, accumulates dx += w*dy (want_dx) or dw += x*dy. */
static void conv_adjoint(const grad_conv *s, const double *x, const double *w, const double *dy, double *out,
                         int want_dx) {
  int64_t cg = s->chans / s->groups, og = s->outs / s->groups;
  for (int64_t b = 0; b < s->batch; b++)
    for (int64_t o = 0; o < s->outs; o++) {
      const double *dyo = dy + (b * s->outs + o) * s->oh * s->ow;
      for (int64_t ci = 0; ci < cg; ci++) {
        int64_t ch = (o / og) * cg + ci;
        int64_t xoff = (b * s->chans + ch) * s->h * s->w;
        for (int64_t ky = 0; ky < s->kh; ky++)
          for (int64_t kx = 0; kx < s->kw; kx++) {
            int64_t widx = ((o * cg + ci) * s->kh + ky) * s->kw + kx;
            double acc = 0;
            for (int64_t oy = 0; oy < s->oh; oy++) {
              int64_t iy = oy * s->sh - s->ph + ky * s->dh;
              if (iy < 0 || iy >= s->h) continue;
              for (int64_t ox = 0; ox < s->ow; ox++) {
                int64_t ix = ox * s->sw - s->pw + kx * s->dw;
                if (ix < 0 || ix >= s->w) continue;
                double g = dyo[oy * s->ow + ox];
                if (want_dx)
                  out[xoff + iy * s->w + ix] += w[widx] * g;
                else
                  acc += x[xoff + iy * s->w + ix] * g;
              }
            }
            if (!want_dx) out[widx] += acc;
          }
      }
    }
}

/* (dy, w) -> dx. */
static int conv_grad_input(const ir_node *n, int sp, const ir_ival *const *in, ir_ival *out) {
  grad_conv s;
  conv_sizes(n, sp, out->type.dims, in[1]->type.dims + 2, in[0]->type.dims, in[1]->type.dims[0], &s);
  conv_adjoint(&s, NULL, in[1]->data, in[0]->data, out->data, 1);
  return 0;
}

/* (x, dy) -> dw. */
static int conv_grad_weight(const ir_node *n, int sp, const ir_ival *const *in, ir_ival *out) {
  grad_conv s;
  conv_sizes(n, sp, in[0]->type.dims, out->type.dims + 2, in[1]->type.dims, out->type.dims[0], &s);
  conv_adjoint(&s, in[0]->data, NULL, in[1]->data, out->data, 0);
  return 0;
}

int ir_interp_op_conv2d_grad_input(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in,
                                   ir_ival *out) {
  (void)c;
  return conv_grad_input(n, 2, in, out);
}

int ir_interp_op_conv2d_grad_weight(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in,
                                    ir_ival *out) {
  (void)c;
  return conv_grad_weight(n, 2, in, out);
}

int ir_interp_op_conv1d_grad_input(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in,
                                   ir_ival *out) {
  (void)c;
  return conv_grad_input(n, 1, in, out);
}

int ir_interp_op_conv1d_grad_weight(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in,
                                    ir_ival *out) {
  (void)c;
  return conv_grad_weight(n, 1, in, out);
}

/* Spreads each dy entry over its pooling window of dx: to the first maximum
 * of x (max) or evenly over the kernel area (avg, padding counted). */
static void pool_adjoint(const ir_node *n, const ir_ival *x, const ir_ival *dy, ir_ival *dx) {
  const int64_t *k = ir_get_ints(n, "kernel", NULL), *s = ir_get_ints(n, "stride", NULL),
                *p = ir_get_ints(n, "pad", NULL);
  int64_t planes = dx->type.dims[0] * dx->type.dims[1];
  int64_t h = dx->type.dims[2], w = dx->type.dims[3], oh = dy->type.dims[2], ow = dy->type.dims[3];
  double area = (double)(k[0] * k[1]);
  for (int64_t pl = 0; pl < planes; pl++)
    for (int64_t oy = 0; oy < oh; oy++)
      for (int64_t ox = 0; ox < ow; ox++) {
        double g = dy->data[(pl * oh + oy) * ow + ox], best = -INFINITY;
        int64_t arg = -1;
        for (int64_t ky = 0; ky < k[0]; ky++)
          for (int64_t kx = 0; kx < k[1]; kx++) {
            int64_t iy = oy * s[0] - p[0] + ky, ix = ox * s[1] - p[1] + kx;
            if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
            int64_t at = (pl * h + iy) * w + ix;
            if (!x)
              dx->data[at] += g / area;
            else if (arg < 0 || x->data[at] > best || isnan(x->data[at]))
              best = x->data[at], arg = at;
          }
        if (x && arg >= 0) dx->data[arg] += g;
      }
}

int ir_interp_op_max_pool2d_grad(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in,
                                 ir_ival *out) {
  (void)c;
  pool_adjoint(n, in[0], in[1], out);
  return 0;
}

int ir_interp_op_avg_pool2d_grad(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in,
                                 ir_ival *out) {
  (void)c;
  pool_adjoint(n, NULL, in[0], out);
  return 0;
}

/* dx = gamma*rstd*(dy - mean(dy) - xhat*mean(dy*xhat)) per channel. */
int ir_interp_op_batchnorm_train_grad(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in,
                                      ir_ival *out) {
  const ir_ival *x = in[0], *dy = in[2];
  const double *gamma = in[1]->data;
  int64_t outer, chans, inner;
  ir_interp_split(&x->type, 1, &outer, &chans, &inner);
  double cnt = (double)(outer * inner), eps = ir_get_float(n, "eps");
  (void)c;
  for (int64_t ch = 0; ch < chans; ch++) {
    double mean = 0, var = 0, mdy = 0, mdyx = 0;
#define EACH(body)                                                                                 \
  for (int64_t o = 0; o < outer; o++)                                                              \
    for (int64_t i = 0; i < inner; i++) {                                                          \
      int64_t at = (o * chans + ch) * inner + i;                                                   \
      body;                                                                                        \
    }
    EACH(mean += x->data[at]);
    mean /= cnt;
    EACH(var += (x->data[at] - mean) * (x->data[at] - mean));
    double rstd = 1.0 / sqrt(var / cnt + eps);
    EACH(mdy += dy->data[at]; mdyx += dy->data[at] * (x->data[at] - mean) * rstd);
    mdy /= cnt;
    mdyx /= cnt;
    EACH(out->data[at] = gamma[ch] * rstd * (dy->data[at] - mdy - (x->data[at] - mean) * rstd * mdyx));
#undef EACH
  }
  return 0;
}

/* (softmax(logits) - onehot(labels)) * dloss / N. */
int ir_interp_op_cross_entropy_grad(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in,
                                    ir_ival *out) {
  const ir_ival *l = in[0], *y = in[1];
  int64_t rows = l->type.dims[0], k = l->type.dims[1];
  double scale = in[2]->data[0] / (double)rows;
  for (int64_t r = 0; r < rows; r++) {
    double label = y->data[r];
    if (!(label >= 0 && label < (double)k))
      return ir_interp_fail(c, n, "label %g of row %lld outside [0, %lld)", label, (long long)r, (long long)k);
    const double *lr = l->data + r * k;
    double mx = -INFINITY, sum = 0;
    for (int64_t j = 0; j < k; j++) mx = lr[j] > mx ? lr[j] : mx;
    for (int64_t j = 0; j < k; j++) sum += exp(lr[j] - mx);
    for (int64_t j = 0; j < k; j++)
      out->data[r * k + j] = (exp(lr[j] - mx) / sum - (j == (int64_t)label ? 1.0 : 0.0)) * scale;
  }
  return 0;
}

/* Scatters dy into zeros at start, start+step, ... along axis. */
int ir_interp_op_slice_grad(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in, ir_ival *out) {
  (void)c;
  int axis = ir_interp_axis(ir_get_int(n, "axis"), out->type.rank);
  int64_t start = ir_get_int(n, "start"), step = ir_get_int(n, "step");
  int64_t outer, len, inner, dlen = in[0]->type.dims[axis];
  ir_interp_split(&out->type, axis, &outer, &len, &inner);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j = 0; j < dlen; j++)
      for (int64_t i = 0; i < inner; i++)
        out->data[(o * len + start + j * step) * inner + i] = in[0]->data[(o * dlen + j) * inner + i];
  return 0;
}
