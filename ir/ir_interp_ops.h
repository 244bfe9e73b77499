/* Internals of the reference interpreter: the value representation, the
 * per-op kernels (one function per row of ops.def, declared by an X-macro so
 * an op without a kernel fails to link) and small shape helpers shared by
 * the op-family files ir_interp_*.c. */
#ifndef ATTNC_IR_INTERP_OPS_H
#define ATTNC_IR_INTERP_OPS_H

#include "ir_interp.h"

/* A value: its type and its elements as doubles (i64 stored exactly, as long
 * as |v| <= 2^53). Row-major, numel = ir_type_numel(&type). */
typedef struct {
  ir_type type;
  int64_t numel;
  double *data;
} ir_ival;

/* What a kernel may need besides its operands. */
typedef struct {
  const ir_graph *g;
  const ir_bundle *inputs;
  ir_interp_mode mode;
  ir_diag *d;
} ir_interp_ctx;

/* A kernel computes node 'n' from its operands 'in' (n->nin of them) into
 * 'out', whose type is n->type and whose data is allocated (zero-filled) by
 * the driver. Returns 0, or -1 after reporting a runtime error to c->d. The
 * driver rounds f32 results to float afterwards in IR_INTERP_NATIVE mode. */
typedef int (*ir_interp_kernel)(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in,
                                ir_ival *out);

#define IR_OP(name, mi, ma, fl, at)                                                                \
  int ir_interp_op_##name(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in,    \
                          ir_ival *out);
#include "ops.def"
#undef IR_OP

/* Reports a runtime error about node 'n' at its location ("%id = op: msg");
 * returns -1. */
int ir_interp_fail(const ir_interp_ctx *c, const ir_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fills st[0..t->rank) with the row-major strides (in elements) of 't'. */
void ir_interp_strides(const ir_type *t, int64_t *st);

/* Fills st[0..out->rank) with the strides of 'in' seen through a numpy
 * broadcast to 'out' (0 along broadcast axes; 'in' aligned to the right). */
void ir_interp_bcast_strides(const ir_type *in, const ir_type *out, int64_t *st);

/* Returns the offset, under strides 'st', of the element of rank 'rank' at
 * row-major linear index 'i' of the shape 'dims'. */
int64_t ir_interp_offset(int64_t i, int rank, const int64_t *dims, const int64_t *st);

/* Returns 'axis' normalized into [0, rank) (negative counts from the end). */
int ir_interp_axis(int64_t axis, int rank);

/* Splits 't' around 'axis' into outer (product of dims before), len (the
 * axis) and inner (product of dims after). */
void ir_interp_split(const ir_type *t, int axis, int64_t *outer, int64_t *len, int64_t *inner);

/* The sizes of one 2-D convolution (conv1d is the case h = kh = oh = 1). */
typedef struct {
  int64_t batch, chans, h, w; /* x[batch, chans, h, w] */
  int64_t outs, kh, kw;       /* weight[outs, chans / groups, kh, kw] */
  int64_t oh, ow;             /* y[batch, outs, oh, ow] */
  int64_t sh, sw, ph, pw, dh, dw, groups;
} ir_interp_conv_shape;

/* Fills 's' for conv node 'n' (conv*d or one of its gradients) with 'sp'
 * spatial dims from the dims of x, the weight and y. */
void ir_interp_conv_shape_of(const ir_node *n, int sp, const int64_t *x, const int64_t *w, const int64_t *y,
                             ir_interp_conv_shape *s);

/* Which product of the convolution to accumulate into 'out'. */
typedef enum {
  IR_CONV_FORWARD,     /* y += w * x      (a = x, b = w) */
  IR_CONV_GRAD_INPUT,  /* dx += w * dy    (a = dy, b = w) */
  IR_CONV_GRAD_WEIGHT, /* dw += x * dy    (a = x, b = dy) */
} ir_interp_conv_mode;

/* Visits every (x, w, y) element triple the convolution multiplies (x is 0
 * outside its bounds) and accumulates the product 'mode' names into 'out',
 * which must be zero on entry. */
void ir_interp_conv(const ir_interp_conv_shape *s, ir_interp_conv_mode mode, const double *a, const double *b,
                    double *out);

#endif
