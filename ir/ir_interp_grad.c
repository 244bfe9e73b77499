/* Reference kernels of the backward ops that autodiff emits: convolution
 * input and weight gradients, pooling gradients, the batch-norm input
 * gradient, the cross-entropy gradient and the slice gradient. The
 * convolution gradients run the forward kernel's loops (ir_interp_conv)
 * accumulating the other two products. */
#include <math.h>
#include <stdlib.h>

#include "ir_interp_ops.h"

/* (dy, w) -> dx. */
static int conv_grad_input(const ir_node *n, int sp, const ir_ival *const *in, ir_ival *out) {
  ir_interp_conv_shape s;
  ir_interp_conv_shape_of(n, sp, out->type.dims, in[1]->type.dims, in[0]->type.dims, &s);
  ir_interp_conv(&s, IR_CONV_GRAD_INPUT, in[0]->data, in[1]->data, out->data);
  return 0;
}

/* (x, dy) -> dw. */
static int conv_grad_weight(const ir_node *n, int sp, const ir_ival *const *in, ir_ival *out) {
  ir_interp_conv_shape s;
  ir_interp_conv_shape_of(n, sp, in[0]->type.dims, out->type.dims, in[1]->type.dims, &s);
  ir_interp_conv(&s, IR_CONV_GRAD_WEIGHT, in[0]->data, in[1]->data, out->data);
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

/* Batch statistics of channel ch of x ([outer, chans, inner]) and the
 * sums sum(dy) and sum(dy*xhat) of the backward pass. */
typedef struct {
  double mean, rstd, sdy, sdyx;
} bn_sums;

static bn_sums bn_channel_sums(const ir_ival *x, const ir_ival *dy, int64_t ch, double eps) {
  int64_t outer, chans, inner;
  ir_interp_split(&x->type, 1, &outer, &chans, &inner);
  double cnt = (double)(outer * inner), var = 0;
  bn_sums r = {0, 0, 0, 0};
#define EACH(body)                                                                                 \
  for (int64_t o = 0; o < outer; o++)                                                              \
    for (int64_t i = 0; i < inner; i++) {                                                          \
      int64_t at = (o * chans + ch) * inner + i;                                                   \
      body;                                                                                        \
    }
  EACH(r.mean += x->data[at]);
  r.mean /= cnt;
  EACH(var += (x->data[at] - r.mean) * (x->data[at] - r.mean));
  r.rstd = 1.0 / sqrt(var / cnt + eps);
  EACH(r.sdy += dy->data[at]; r.sdyx += dy->data[at] * (x->data[at] - r.mean) * r.rstd);
#undef EACH
  return r;
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
    bn_sums b = bn_channel_sums(x, dy, ch, eps);
    double mdy = b.sdy / cnt, mdyx = b.sdyx / cnt;
    for (int64_t o = 0; o < outer; o++)
      for (int64_t i = 0; i < inner; i++) {
        int64_t at = (o * chans + ch) * inner + i;
        double xhat = (x->data[at] - b.mean) * b.rstd;
        out->data[at] = gamma[ch] * b.rstd * (dy->data[at] - mdy - xhat * mdyx);
      }
  }
  return 0;
}

/* [sum(dy*xhat); sum(dy)] per channel, xhat = (x - mean)*rstd with x's
 * batch statistics. */
int ir_interp_op_batchnorm_param_grad(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in,
                                      ir_ival *out) {
  const ir_ival *x = in[0], *dy = in[1];
  int64_t chans = x->type.dims[1];
  (void)c;
  for (int64_t ch = 0; ch < chans; ch++) {
    bn_sums b = bn_channel_sums(x, dy, ch, ir_get_float(n, "eps"));
    out->data[ch] = b.sdyx;
    out->data[chans + ch] = b.sdy;
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
