/* Reference kernels of the elementwise ops: unary math, cast, binary
 * arithmetic and comparisons with numpy broadcasting, and where. Values are
 * doubles; the driver rounds f32 results. NaN propagates through maximum,
 * minimum, relu and relu6 (as in PyTorch). */
#include <math.h>
#include <stdint.h>

#include "ir_interp_ops.h"

typedef double (*unary_fn)(double);
typedef double (*binary_fn)(double, double);

/* out[i] = f(x[i]) for every element. */
static int map_unary(const ir_ival *x, ir_ival *out, unary_fn f) {
  for (int64_t i = 0; i < out->numel; i++) out->data[i] = f(x->data[i]);
  return 0;
}

/* out = f(a, b) under numpy broadcasting of a and b to out's shape. */
static void map_binary(const ir_ival *a, const ir_ival *b, ir_ival *out, binary_fn f) {
  if (a->numel == out->numel && b->numel == out->numel) {
    for (int64_t i = 0; i < out->numel; i++) out->data[i] = f(a->data[i], b->data[i]);
    return;
  }
  int64_t sa[IR_MAX_RANK], sb[IR_MAX_RANK];
  const ir_type *t = &out->type;
  ir_interp_bcast_strides(&a->type, t, sa);
  ir_interp_bcast_strides(&b->type, t, sb);
  for (int64_t i = 0; i < out->numel; i++)
    out->data[i] = f(a->data[ir_interp_offset(i, t->rank, t->dims, sa)],
                     b->data[ir_interp_offset(i, t->rank, t->dims, sb)]);
}

/* ---- scalar functions ---- */

static double f_neg(double x) { return -x; }
static double f_abs(double x) { return fabs(x); }
static double f_relu(double x) { return x < 0 ? 0.0 : x; }
static double f_relu6(double x) { return x < 0 ? 0.0 : (x > 6 ? 6.0 : x); }
static double f_sigmoid(double x) { return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x)); }
static double f_rsqrt(double x) { return 1.0 / sqrt(x); }
static double f_add(double a, double b) { return a + b; }
static double f_sub(double a, double b) { return a - b; }
static double f_mul(double a, double b) { return a * b; }
static double f_div(double a, double b) { return a / b; }
static double f_maximum(double a, double b) { return (a > b || isnan(a)) ? a : b; }
static double f_minimum(double a, double b) { return (a < b || isnan(a)) ? a : b; }
static double f_eq(double a, double b) { return a == b; }
static double f_ne(double a, double b) { return a != b; }
static double f_lt(double a, double b) { return a < b; }
static double f_le(double a, double b) { return a <= b; }
static double f_gt(double a, double b) { return a > b; }
static double f_ge(double a, double b) { return a >= b; }

/* Declares the kernel 'name' as out = fn(in[0]). */
#define UNARY_KERNEL(name, fn)                                                                      \
  int ir_interp_op_##name(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in,     \
                          ir_ival *out) {                                                           \
    (void)c;                                                                                        \
    (void)n;                                                                                        \
    return map_unary(in[0], out, fn);                                                               \
  }

/* Declares the kernel 'name' as out = fn(in[0], in[1]) with broadcasting. */
#define BINARY_KERNEL(name, fn)                                                                     \
  int ir_interp_op_##name(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in,     \
                          ir_ival *out) {                                                           \
    (void)c;                                                                                        \
    (void)n;                                                                                        \
    map_binary(in[0], in[1], out, fn);                                                              \
    return 0;                                                                                       \
  }

UNARY_KERNEL(neg, f_neg)
UNARY_KERNEL(abs, f_abs)
UNARY_KERNEL(relu, f_relu)
UNARY_KERNEL(relu6, f_relu6)
UNARY_KERNEL(sigmoid, f_sigmoid)
UNARY_KERNEL(tanh, tanh)
UNARY_KERNEL(exp, exp)
UNARY_KERNEL(log, log)
UNARY_KERNEL(sqrt, sqrt)
UNARY_KERNEL(rsqrt, f_rsqrt)

BINARY_KERNEL(add, f_add)
BINARY_KERNEL(sub, f_sub)
BINARY_KERNEL(mul, f_mul)
BINARY_KERNEL(maximum, f_maximum)
BINARY_KERNEL(minimum, f_minimum)
BINARY_KERNEL(eq, f_eq)
BINARY_KERNEL(ne, f_ne)
BINARY_KERNEL(lt, f_lt)
BINARY_KERNEL(le, f_le)
BINARY_KERNEL(gt, f_gt)
BINARY_KERNEL(ge, f_ge)

/* div: IEEE division for floats; for i64, C division (truncating toward
 * zero) with division by zero reported as an error. */
int ir_interp_op_div(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in, ir_ival *out) {
  if (out->type.dtype != IR_I64) {
    map_binary(in[0], in[1], out, f_div);
    return 0;
  }
  for (int64_t i = 0; out->numel > 0 && i < in[1]->numel; i++)
    if (in[1]->data[i] == 0) return ir_interp_fail(c, n, "integer division by zero");
  int64_t sa[IR_MAX_RANK], sb[IR_MAX_RANK];
  const ir_type *t = &out->type;
  ir_interp_bcast_strides(&in[0]->type, t, sa);
  ir_interp_bcast_strides(&in[1]->type, t, sb);
  for (int64_t i = 0; i < out->numel; i++) {
    int64_t a = (int64_t)in[0]->data[ir_interp_offset(i, t->rank, t->dims, sa)];
    int64_t b = (int64_t)in[1]->data[ir_interp_offset(i, t->rank, t->dims, sb)];
    out->data[i] = (double)(a / b);
  }
  return 0;
}

/* cast: to f32/f64 keeps the value (the driver rounds f32); to i64
 * truncates toward zero, and NaN, infinities and values outside the i64
 * range are errors. */
int ir_interp_op_cast(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in, ir_ival *out) {
  const ir_ival *x = in[0];
  for (int64_t i = 0; i < out->numel; i++) {
    double v = x->data[i];
    if (out->type.dtype == IR_I64) {
      if (!(v >= -9223372036854775808.0 && v < 9223372036854775808.0))
        return ir_interp_fail(c, n, "cannot cast %g (element %lld) to i64", v, (long long)i);
      v = trunc(v);
    }
    out->data[i] = v;
  }
  return 0;
}

/* where(cond, a, b): a where cond != 0, else b; all three broadcast. */
int ir_interp_op_where(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in, ir_ival *out) {
  (void)c;
  (void)n;
  int64_t s[3][IR_MAX_RANK];
  const ir_type *t = &out->type;
  for (int k = 0; k < 3; k++) ir_interp_bcast_strides(&in[k]->type, t, s[k]);
  for (int64_t i = 0; i < out->numel; i++) {
    double cond = in[0]->data[ir_interp_offset(i, t->rank, t->dims, s[0])];
    int k = cond != 0 ? 1 : 2;
    out->data[i] = in[k]->data[ir_interp_offset(i, t->rank, t->dims, s[k])];
  }
  return 0;
}

/* ---- backward elementwise ops: (x or y, dy) -> dx ---- */

static double f_relu_grad(double x, double dy) { return x > 0 ? dy : 0.0; }
static double f_relu6_grad(double x, double dy) { return x > 0 && x < 6 ? dy : 0.0; }
static double f_sigmoid_grad(double y, double dy) { return dy * y * (1.0 - y); }
static double f_tanh_grad(double y, double dy) { return dy * (1.0 - y * y); }

BINARY_KERNEL(relu_grad, f_relu_grad)
BINARY_KERNEL(relu6_grad, f_relu6_grad)
BINARY_KERNEL(sigmoid_grad, f_sigmoid_grad)
BINARY_KERNEL(tanh_grad, f_tanh_grad)
