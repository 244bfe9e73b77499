/* Reference-interpreter tests of the backward ops autodiff emits, each
 * against an independent formulation: elementwise derivatives by hand, the
 * convolution gradients as the exact transpose of the im2col convolution
 * (built one basis vector at a time), pooling and slice gradients by hand,
 * the batch-norm input gradient against central differences of an explicit
 * batch norm, and the cross-entropy gradient by hand. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "util_build.h"
#include "util_interp.h"

/* relu_grad(x, dy), relu6_grad(x, dy), sigmoid_grad(y, dy), tanh_grad(y, dy). */
static void test_elementwise_grads(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F64, 1, 4);
  int dy = tb_input(g, "dy", IR_F64, 1, 4);
  ir_graph_add_output(g, "relu", tb_op(g, IR_OP_relu_grad, x, dy));
  ir_graph_add_output(g, "relu6", tb_op(g, IR_OP_relu6_grad, x, dy));
  ir_graph_add_output(g, "sigmoid", tb_op(g, IR_OP_sigmoid_grad, x, dy));
  ir_graph_add_output(g, "tanh", tb_op(g, IR_OP_tanh_grad, x, dy));
  ir_bundle *in = ir_bundle_create();
  ti_feed(in, g, x, (double[]){-1, 0.5, 7, 0.25});
  ti_feed(in, g, dy, (double[]){2, 3, 4, 8});
  ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
  ti_assert_output(out, "relu", "f64[4]", (double[]){0, 3, 4, 8}, 0);
  ti_assert_output(out, "relu6", "f64[4]", (double[]){0, 3, 0, 8}, 0);
  /* dy * y * (1 - y) and dy * (1 - y^2) with y the forward output */
  ti_assert_output(out, "sigmoid", "f64[4]", (double[]){2 * -1 * 2, 3 * 0.5 * 0.5, 4 * 7 * -6, 8 * 0.25 * 0.75}, 1e-15);
  ti_assert_output(out, "tanh", "f64[4]", (double[]){0, 3 * 0.75, 4 * -48, 8 * (1 - 0.0625)}, 1e-15);
  ti_free(g, in, out);
}

/* Returns sum_i a[i] * b[i]. */
static double dot(const double *a, const double *b, int n) {
  double s = 0;
  for (int i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

/* Checks conv{1,2}d_grad_input(dy, w) and conv{1,2}d_grad_weight(x, dy) on
 * case 'k' (sp = 1: height 1, tensors of rank 3) against the transpose of
 * ti_ref_conv2d: dx[i] = <conv(e_i, w), dy>, dw[j] = <conv(x, e_j), dy>. */
static void check_conv_grads(const ti_conv_case *k, int sp) {
  int oh = ti_conv_out(k->h, k->kh, k->sh, k->ph, k->dh), ow = ti_conv_out(k->w, k->kw, k->sw, k->pw, k->dw);
  int cg = k->c / k->groups;
  int nx = k->n * k->c * k->h * k->w, nw = k->o * cg * k->kh * k->kw, ny = k->n * k->o * oh * ow;
  double *xv = malloc(sizeof(double) * (size_t)nx), *wv = malloc(sizeof(double) * (size_t)nw);
  double *dyv = malloc(sizeof(double) * (size_t)ny), *y = malloc(sizeof(double) * (size_t)ny);
  double *e = calloc((size_t)(nx > nw ? nx : nw), sizeof(double));
  double *want_dx = malloc(sizeof(double) * (size_t)nx), *want_dw = malloc(sizeof(double) * (size_t)nw);
  ti_fill(xv, nx, 11);
  ti_fill(wv, nw, 12);
  ti_fill(dyv, ny, 13);
  for (int i = 0; i < nx; i++) {
    e[i] = 1;
    ti_ref_conv2d(k, e, wv, y);
    want_dx[i] = dot(y, dyv, ny);
    e[i] = 0;
  }
  for (int j = 0; j < nw; j++) {
    e[j] = 1;
    ti_ref_conv2d(k, xv, e, y);
    want_dw[j] = dot(y, dyv, ny);
    e[j] = 0;
  }
  ir_graph *g = ir_graph_create("t");
  int x, w, dy;
  ir_node *gi, *gw;
  if (sp == 2) {
    x = tb_input(g, "x", IR_F64, 4, k->n, k->c, k->h, k->w);
    w = tb_param(g, "w", IR_F64, 4, k->o, cg, k->kh, k->kw);
    dy = tb_input(g, "dy", IR_F64, 4, k->n, k->o, oh, ow);
    gi = tb_node(g, IR_OP_conv2d_grad_input, dy, w);
    gw = tb_node(g, IR_OP_conv2d_grad_weight, x, dy);
    for (int t = 0; t < 2; t++) {
      ir_node *n = t ? gw : gi;
      tb_set_ints(n, "stride", k->sh, k->sw);
      tb_set_ints(n, "pad", k->ph, k->pw);
      tb_set_ints(n, "dilation", k->dh, k->dw);
      tb_set_int(n, "groups", k->groups);
    }
    tb_set_ints(gi, "in_shape", k->n, k->c, k->h, k->w);
    tb_set_ints(gw, "kernel", k->kh, k->kw);
  } else {
    x = tb_input(g, "x", IR_F64, 3, k->n, k->c, k->w);
    w = tb_param(g, "w", IR_F64, 3, k->o, cg, k->kw);
    dy = tb_input(g, "dy", IR_F64, 3, k->n, k->o, ow);
    gi = tb_node(g, IR_OP_conv1d_grad_input, dy, w);
    gw = tb_node(g, IR_OP_conv1d_grad_weight, x, dy);
    for (int t = 0; t < 2; t++) {
      ir_node *n = t ? gw : gi;
      tb_set_ints(n, "stride", k->sw);
      tb_set_ints(n, "pad", k->pw);
      tb_set_ints(n, "dilation", k->dw);
      tb_set_int(n, "groups", k->groups);
    }
    tb_set_ints(gi, "in_shape", k->n, k->c, k->w);
    tb_set_ints(gw, "kernel", k->kw);
  }
  ir_graph_add_output(g, "dx", tb_infer(g, gi));
  ir_graph_add_output(g, "dw", tb_infer(g, gw));
  ir_bundle *in = ir_bundle_create();
  ti_feed(in, g, x, xv);
  ti_feed(in, g, w, wv);
  ti_feed(in, g, dy, dyv);
  ir_bundle *out = ti_run(g, in, IR_INTERP_F64);
  char tx[64], tw[64];
  if (sp == 2) {
    snprintf(tx, sizeof tx, "f64[%d,%d,%d,%d]", k->n, k->c, k->h, k->w);
    snprintf(tw, sizeof tw, "f64[%d,%d,%d,%d]", k->o, cg, k->kh, k->kw);
  } else {
    snprintf(tx, sizeof tx, "f64[%d,%d,%d]", k->n, k->c, k->w);
    snprintf(tw, sizeof tw, "f64[%d,%d,%d]", k->o, cg, k->kw);
  }
  ti_assert_output(out, "dx", tx, want_dx, 1e-13);
  ti_assert_output(out, "dw", tw, want_dw, 1e-13);
  ti_free(g, in, out);
  free(xv), free(wv), free(dyv), free(y), free(e), free(want_dx), free(want_dw);
}

/* conv2d gradients with padding, stride, dilation, groups, depthwise. */
static void test_conv2d_grads(void **state) {
  (void)state;
  static const ti_conv_case cases[] = {
      /* n c  h  w  o kh kw sh sw ph pw dh dw groups */
      {2, 2, 5, 5, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1},
      {1, 2, 6, 7, 2, 3, 2, 2, 3, 1, 0, 1, 1, 1},
      {1, 2, 7, 7, 2, 3, 3, 1, 1, 2, 2, 2, 2, 1},
      {2, 4, 4, 4, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2},
      {1, 3, 5, 5, 3, 3, 3, 2, 2, 1, 1, 1, 1, 3},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_conv_grads(&cases[i], 2);
}

/* conv1d gradients along L (stride, padding, dilation, groups). */
static void test_conv1d_grads(void **state) {
  (void)state;
  static const ti_conv_case cases[] = {
      {2, 4, 1, 9, 6, 1, 3, 1, 2, 0, 2, 1, 2, 2},
      {1, 3, 1, 8, 2, 1, 3, 1, 1, 0, 1, 1, 1, 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_conv_grads(&cases[i], 1);
}

/* Appends a pooling gradient node with square kernel k, stride s, pad p. */
static ir_node *pool_grad(ir_graph *g, ir_opcode op, const int *in, int nin, int k, int s, int p) {
  ir_node *n = tb_node_n(g, op, in, nin);
  tb_set_ints(n, "kernel", k, k);
  tb_set_ints(n, "stride", s, s);
  tb_set_ints(n, "pad", p, p);
  return n;
}

/* max_pool2d_grad routes dy to the first maximum of each window
 * (accumulating over overlapping windows); avg_pool2d_grad spreads dy /
 * kernel area, padding counted. */
static void test_pool_grads(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F32, 4, 1, 1, 3, 3);
  int dy = tb_input(g, "dy", IR_F32, 4, 1, 1, 2, 2);
  /* kernel 2, stride 1 over 3x3: four overlapping windows */
  ir_graph_add_output(g, "max", tb_infer(g, pool_grad(g, IR_OP_max_pool2d_grad, (int[]){x, dy}, 2, 2, 1, 0)));
  /* kernel 2, stride 2, pad 1 over an input of 2x2: one pixel per window */
  ir_node *avg = pool_grad(g, IR_OP_avg_pool2d_grad, (int[]){dy}, 1, 2, 2, 1);
  tb_set_ints(avg, "in_shape", 1, 1, 2, 2);
  ir_graph_add_output(g, "avg", tb_infer(g, avg));
  /* kernel 2, stride 1, no padding over 3x3: the centre is in all four */
  ir_node *avg3 = pool_grad(g, IR_OP_avg_pool2d_grad, (int[]){dy}, 1, 2, 1, 0);
  tb_set_ints(avg3, "in_shape", 1, 1, 3, 3);
  ir_graph_add_output(g, "avg3", tb_infer(g, avg3));
  ir_bundle *in = ir_bundle_create();
  ti_feed(in, g, x, (double[]){1, 5, 2, 5, 0, 5, 3, 4, 9});
  ti_feed(in, g, dy, (double[]){1, 2, 4, 8});
  ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
  /* window (0,0) = {1,5,5,0}: first max at (0,1) gets 1; window (0,1) =
   * {5,2,0,5}: (0,1) gets 2; window (1,0) = {5,0,3,4}: (1,0) gets 4;
   * window (1,1) = {0,5,4,9}: (2,2) gets 8 */
  ti_assert_output(out, "max", "f32[1,1,3,3]", (double[]){0, 3, 0, 4, 0, 0, 0, 0, 8}, 0);
  ti_assert_output(out, "avg", "f32[1,1,2,2]", (double[]){0.25, 0.5, 1, 2}, 0);
  ti_assert_output(out, "avg3", "f32[1,1,3,3]",
                   (double[]){0.25, 0.75, 0.5, 1.25, 3.75, 2.5, 1, 3, 2}, 0);
  ti_free(g, in, out);
}

/* Explicit batchnorm_train of x[n, c, sp] (f64, eps), as in PyTorch. */
static void ref_batchnorm(const double *x, const double *gamma, const double *beta, int n, int c, int sp, double eps,
                          double *y) {
  for (int ch = 0; ch < c; ch++) {
    double mean = 0, var = 0;
    for (int b = 0; b < n; b++)
      for (int s = 0; s < sp; s++) mean += x[(b * c + ch) * sp + s];
    mean /= n * sp;
    for (int b = 0; b < n; b++)
      for (int s = 0; s < sp; s++) var += pow(x[(b * c + ch) * sp + s] - mean, 2);
    var /= n * sp;
    for (int b = 0; b < n; b++)
      for (int s = 0; s < sp; s++) {
        int i = (b * c + ch) * sp + s;
        y[i] = (x[i] - mean) / sqrt(var + eps) * gamma[ch] + beta[ch];
      }
  }
}

/* batchnorm_train_grad(x, gamma, dy) equals the central difference of
 * sum(ref_batchnorm(x) * dy) with respect to each x. */
static void test_batchnorm_train_grad(void **state) {
  (void)state;
  enum { N = 3, C = 2, SP = 4, T = N * C * SP };
  double xv[T], dyv[T], gv[C] = {1.5, -0.5}, bv[C] = {0.2, 0.3}, y[T], want[T];
  ti_fill(xv, T, 21);
  ti_fill(dyv, T, 22);
  const double h = 1e-6, eps = 1e-3;
  for (int i = 0; i < T; i++) {
    double save = xv[i], lp, lm;
    xv[i] = save + h;
    ref_batchnorm(xv, gv, bv, N, C, SP, eps, y);
    lp = dot(y, dyv, T);
    xv[i] = save - h;
    ref_batchnorm(xv, gv, bv, N, C, SP, eps, y);
    lm = dot(y, dyv, T);
    xv[i] = save;
    want[i] = (lp - lm) / (2 * h);
  }
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F64, 4, N, C, 2, 2);
  int gm = tb_param(g, "gamma", IR_F64, 1, C);
  int dy = tb_input(g, "dy", IR_F64, 4, N, C, 2, 2);
  ir_node *n = tb_node(g, IR_OP_batchnorm_train_grad, x, gm, dy);
  tb_set_float(n, "eps", eps);
  ir_graph_add_output(g, "dx", tb_infer(g, n));
  ir_bundle *in = ir_bundle_create();
  ti_feed(in, g, x, xv);
  ti_feed(in, g, gm, gv);
  ti_feed(in, g, dy, dyv);
  ir_bundle *out = ti_run(g, in, IR_INTERP_F64);
  ti_assert_output(out, "dx", "f64[3,2,2,2]", want, 1e-6);
  ti_free(g, in, out);
}

/* batchnorm_param_grad(x, dy) equals the central differences of
 * sum(ref_batchnorm(x) * dy) with respect to gamma (row 0) and beta (row 1). */
static void test_batchnorm_param_grad(void **state) {
  (void)state;
  enum { N = 3, C = 2, SP = 4, T = N * C * SP };
  double xv[T], dyv[T], gv[C] = {1.5, -0.5}, bv[C] = {0.2, 0.3}, y[T], want[2 * C];
  ti_fill(xv, T, 23);
  ti_fill(dyv, T, 24);
  const double h = 1e-6, eps = 1e-3;
  for (int r = 0; r < 2; r++)
    for (int ch = 0; ch < C; ch++) {
      double *p = r ? &bv[ch] : &gv[ch], save = *p, lp, lm;
      *p = save + h;
      ref_batchnorm(xv, gv, bv, N, C, SP, eps, y);
      lp = dot(y, dyv, T);
      *p = save - h;
      ref_batchnorm(xv, gv, bv, N, C, SP, eps, y);
      lm = dot(y, dyv, T);
      *p = save;
      want[r * C + ch] = (lp - lm) / (2 * h);
    }
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F64, 4, N, C, 2, 2);
  int dy = tb_input(g, "dy", IR_F64, 4, N, C, 2, 2);
  ir_node *n = tb_node(g, IR_OP_batchnorm_param_grad, x, dy);
  tb_set_float(n, "eps", eps);
  ir_graph_add_output(g, "pg", tb_infer(g, n));
  ir_bundle *in = ir_bundle_create();
  ti_feed(in, g, x, xv);
  ti_feed(in, g, dy, dyv);
  ir_bundle *out = ti_run(g, in, IR_INTERP_F64);
  ti_assert_output(out, "pg", "f64[2,2]", want, 1e-6);
  ti_free(g, in, out);
}

/* cross_entropy_grad(logits, labels, dloss) = (softmax - onehot) * dloss / N
 * by hand; a bad label is an error. */
static void test_cross_entropy_grad(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int l = tb_input(g, "l", IR_F64, 2, 2, 2);
  int y = tb_input(g, "y", IR_I64, 1, 2);
  int d = tb_input(g, "d", IR_F64, 0);
  ir_graph_add_output(g, "dl", tb_op(g, IR_OP_cross_entropy_grad, l, y, d));
  ir_bundle *in = ir_bundle_create();
  ti_feed(in, g, l, (double[]){0, 0, log(3.0), 0});
  ti_feed(in, g, y, (double[]){0, 1});
  ti_feed(in, g, d, (double[]){2});
  ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
  /* rows: softmax [0.5, 0.5] - [1, 0]; [0.75, 0.25] - [0, 1]; times 2 / 2 */
  ti_assert_output(out, "dl", "f64[2,2]", (double[]){-0.5, 0.5, 0.75, -0.75}, 1e-15);
  ir_bundle_destroy(out);
  ti_feed(in, g, y, (double[]){0, 2});
  tb_assert_contains(ti_run_error(g, in, IR_INTERP_NATIVE, ATTNC_ERUNTIME), "label 2");
  ir_bundle_destroy(in);
  ir_graph_destroy(g);
}

/* slice_grad scatters dy to start, start+step, ... of a zero tensor. */
static void test_slice_grad(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int dy = tb_input(g, "dy", IR_F32, 2, 2, 2);
  ir_node *n = tb_node(g, IR_OP_slice_grad, dy);
  tb_set_int(n, "axis", -1);
  tb_set_int(n, "start", 1);
  tb_set_int(n, "end", 5);
  tb_set_int(n, "step", 2);
  tb_set_int(n, "size", 5);
  ir_graph_add_output(g, "dx", tb_infer(g, n));
  ir_bundle *in = ir_bundle_create();
  ti_feed(in, g, dy, (double[]){1, 2, 3, 4});
  ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
  ti_assert_output(out, "dx", "f32[2,5]", (double[]){0, 1, 0, 2, 0, 0, 3, 0, 4, 0}, 0);
  ti_free(g, in, out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_elementwise_grads), cmocka_unit_test(test_conv2d_grads),
      cmocka_unit_test(test_conv1d_grads),      cmocka_unit_test(test_pool_grads),
      cmocka_unit_test(test_batchnorm_train_grad), cmocka_unit_test(test_batchnorm_param_grad), cmocka_unit_test(test_cross_entropy_grad),
      cmocka_unit_test(test_slice_grad),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
