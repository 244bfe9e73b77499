/* Reference kernels of the ops that reduce along axes: reduce_sum/mean/max/
 * min over any set of axes, softmax and log_softmax (max-subtracted, so
 * stable for large inputs), topk_mask, and the cross-entropy loss. */
#include <math.h>
#include <stdlib.h>

#include "ir_interp_ops.h"

typedef enum { RED_SUM, RED_MEAN, RED_MAX, RED_MIN } reduce_kind;

/* Reduces in[0] over the node's 'axes' into out (keepdims only changes the
 * type, not the layout). Max and min propagate NaN. */
static int reduce(const ir_node *n, const ir_ival *x, ir_ival *out, reduce_kind kind) {
  int na;
  const int64_t *axes = ir_get_ints(n, "axes", &na);
  ir_type kept = x->type; /* x's shape with the reduced axes set to 1 */
  int64_t count = 1;
  for (int i = 0; i < na; i++) {
    int a = ir_interp_axis(axes[i], x->type.rank);
    count *= x->type.dims[a];
    kept.dims[a] = 1;
  }
  int64_t st[IR_MAX_RANK];
  ir_interp_bcast_strides(&kept, &x->type, st); /* 0 along reduced axes */
  double init = kind == RED_MAX ? -INFINITY : kind == RED_MIN ? INFINITY : 0.0;
  for (int64_t o = 0; o < out->numel; o++) out->data[o] = init;
  for (int64_t i = 0; i < x->numel; i++) {
    double *acc = &out->data[ir_interp_offset(i, x->type.rank, x->type.dims, st)];
    double v = x->data[i];
    switch (kind) {
    case RED_SUM:
    case RED_MEAN: *acc += v; break;
    case RED_MAX:
      if (v > *acc || isnan(v)) *acc = v;
      break;
    case RED_MIN:
      if (v < *acc || isnan(v)) *acc = v;
      break;
    }
  }
  if (kind == RED_MEAN)
    for (int64_t o = 0; o < out->numel; o++) out->data[o] /= (double)count;
  return 0;
}

/* reduce_sum over 'axes' (an empty axis sums to 0). */
int ir_interp_op_reduce_sum(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in, ir_ival *out) {
  (void)c;
  return reduce(n, in[0], out, RED_SUM);
}

/* reduce_mean over 'axes': the sum divided by the number of reduced elements. */
int ir_interp_op_reduce_mean(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in, ir_ival *out) {
  (void)c;
  return reduce(n, in[0], out, RED_MEAN);
}

/* reduce_max over 'axes'. */
int ir_interp_op_reduce_max(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in, ir_ival *out) {
  (void)c;
  return reduce(n, in[0], out, RED_MAX);
}

/* reduce_min over 'axes'. */
int ir_interp_op_reduce_min(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in, ir_ival *out) {
  (void)c;
  return reduce(n, in[0], out, RED_MIN);
}

/* Softmax (or log-softmax when 'log') of x along the node's 'axis':
 * exp(x - max) / sum exp(x - max), or x - max - log(sum exp(x - max)). */
static int softmax(const ir_node *n, const ir_ival *x, ir_ival *out, int log_form) {
  int axis = ir_interp_axis(ir_get_int(n, "axis"), x->type.rank);
  int64_t outer, len, inner;
  ir_interp_split(&x->type, axis, &outer, &len, &inner);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t in = 0; in < inner; in++) {
      const double *xs = x->data + o * len * inner + in;
      double *ys = out->data + o * len * inner + in;
      double m = -INFINITY;
      for (int64_t j = 0; j < len; j++)
        if (xs[j * inner] > m || isnan(xs[j * inner])) m = xs[j * inner];
      double sum = 0;
      for (int64_t j = 0; j < len; j++) sum += exp(xs[j * inner] - m);
      for (int64_t j = 0; j < len; j++)
        ys[j * inner] = log_form ? xs[j * inner] - m - log(sum) : exp(xs[j * inner] - m) / sum;
    }
  return 0;
}

/* softmax along 'axis'. */
int ir_interp_op_softmax(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in, ir_ival *out) {
  (void)c;
  return softmax(n, in[0], out, 0);
}

/* log_softmax along 'axis'. */
int ir_interp_op_log_softmax(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in, ir_ival *out) {
  (void)c;
  return softmax(n, in[0], out, 1);
}

/* qsort order: descending. */
static int cmp_desc(const void *pa, const void *pb) {
  double a = *(const double *)pa, b = *(const double *)pb;
  return (a < b) - (a > b);
}

/* topk_mask(axis, k): 1 where x >= the k-th largest value of its lane along
 * 'axis' (ties all kept), else 0. */
int ir_interp_op_topk_mask(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in, ir_ival *out) {
  const ir_ival *x = in[0];
  int axis = ir_interp_axis(ir_get_int(n, "axis"), x->type.rank);
  int64_t k = ir_get_int(n, "k");
  int64_t outer, len, inner;
  ir_interp_split(&x->type, axis, &outer, &len, &inner);
  double *lane = malloc((size_t)(len ? len : 1) * sizeof *lane);
  if (!lane) return ir_interp_fail(c, n, "out of memory");
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      const double *xs = x->data + o * len * inner + i;
      double *ys = out->data + o * len * inner + i;
      for (int64_t j = 0; j < len; j++) lane[j] = xs[j * inner];
      qsort(lane, (size_t)len, sizeof *lane, cmp_desc);
      double kth = lane[k - 1];
      for (int64_t j = 0; j < len; j++) ys[j * inner] = xs[j * inner] >= kth ? 1.0 : 0.0;
    }
  free(lane);
  return 0;
}

/* cross_entropy(logits[N,K], labels[N]) = mean over n of
 * logsumexp(logits[n]) - logits[n, labels[n]]; a label outside [0, K) is an
 * error. */
int ir_interp_op_cross_entropy(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in,
                               ir_ival *out) {
  const ir_ival *logits = in[0], *labels = in[1];
  int64_t rows = logits->type.dims[0], k = logits->type.dims[1];
  double total = 0;
  for (int64_t r = 0; r < rows; r++) {
    double y = labels->data[r];
    if (!(y >= 0 && y < (double)k))
      return ir_interp_fail(c, n, "label %g of row %lld is outside [0, %lld)", y, (long long)r, (long long)k);
    const double *l = logits->data + r * k;
    double m = -INFINITY;
    for (int64_t j = 0; j < k; j++)
      if (l[j] > m || isnan(l[j])) m = l[j];
    double sum = 0;
    for (int64_t j = 0; j < k; j++) sum += exp(l[j] - m);
    total += m + log(sum) - l[(int64_t)y];
  }
  out->data[0] = total / (double)rows; /* NaN for an empty batch, like a mean */
  return 0;
}
