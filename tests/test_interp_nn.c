/* Reference-interpreter tests of the layer ops: matmul (batched, shared,
 * transposed), conv2d / conv1d against an im2col + matmul formulation
 * written here, batch normalization against an explicit computation,
 * pooling with padding by hand, and the speed of a ResNet-20 forward pass. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "util_build.h"
#include "util_interp.h"

/* ---- matmul ---- */

/* A 2x3 by 3x2 product worked by hand. */
static void test_matmul_hand(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int a = tb_input(g, "a", IR_F32, 2, 2, 3);
  int b = tb_input(g, "b", IR_F32, 2, 3, 2);
  ir_graph_add_output(g, "y", tb_op(g, IR_OP_matmul, a, b));
  ir_bundle *in = ir_bundle_create();
  ti_feed(in, g, a, (double[]){1, 2, 3, 4, 5, 6});
  ti_feed(in, g, b, (double[]){7, 8, 9, 10, 11, 12});
  ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
  ti_assert_output(out, "y", "f32[2,2]", (double[]){58, 64, 139, 154}, 0);
  ti_free(g, in, out);
}

/* Batched a[2,M,K] (stored [2,K,M] when trans_a) times b, either batched
 * [2,K,N] or shared [K,N] (stored transposed when trans_b), against the
 * triple loop over explicitly indexed logical matrices. */
static void check_matmul(int ta, int tb, int shared) {
  enum { B = 2, M = 3, K = 4, N = 5 };
  ir_graph *g = ir_graph_create("t");
  int a = ta ? tb_input(g, "a", IR_F64, 3, B, K, M) : tb_input(g, "a", IR_F64, 3, B, M, K);
  int b = shared ? (tb ? tb_input(g, "b", IR_F64, 2, N, K) : tb_input(g, "b", IR_F64, 2, K, N))
                 : (tb ? tb_input(g, "b", IR_F64, 3, B, N, K) : tb_input(g, "b", IR_F64, 3, B, K, N));
  ir_node *mm = tb_node(g, IR_OP_matmul, a, b);
  tb_set_int(mm, "trans_a", ta);
  tb_set_int(mm, "trans_b", tb);
  ir_graph_add_output(g, "y", tb_infer(g, mm));
  double av[B * M * K], bv[B * K * N], want[B * M * N];
  ti_fill(av, B * M * K, 3);
  ti_fill(bv, B * K * N, 4);
  for (int p = 0; p < B; p++)
    for (int i = 0; i < M; i++)
      for (int j = 0; j < N; j++) {
        double s = 0;
        for (int q = 0; q < K; q++) {
          double x = ta ? av[(p * K + q) * M + i] : av[(p * M + i) * K + q];
          int pb = shared ? 0 : p;
          double y = tb ? bv[(pb * N + j) * K + q] : bv[(pb * K + q) * N + j];
          s += x * y;
        }
        want[(p * M + i) * N + j] = s;
      }
  ir_bundle *in = ir_bundle_create();
  ti_feed(in, g, a, av);
  ti_feed(in, g, b, bv);
  ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
  ti_assert_output(out, "y", "f64[2,3,5]", want, 1e-14);
  ti_free(g, in, out);
}

/* Every combination of trans_a, trans_b and a shared rank-2 b. */
static void test_matmul_variants(void **state) {
  (void)state;
  for (int v = 0; v < 8; v++) check_matmul(v & 1, (v >> 1) & 1, (v >> 2) & 1);
}

/* ---- convolution ---- */

/* Runs conv2d on case 'k' with random data (f64) and compares with
 * ti_ref_conv2d. */
static void check_conv2d(const ti_conv_case *k) {
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F64, 4, k->n, k->c, k->h, k->w);
  int w = tb_param(g, "w", IR_F64, 4, k->o, k->c / k->groups, k->kh, k->kw);
  ir_node *cv = tb_node(g, IR_OP_conv2d, x, w);
  tb_set_ints(cv, "stride", k->sh, k->sw);
  tb_set_ints(cv, "pad", k->ph, k->pw);
  tb_set_ints(cv, "dilation", k->dh, k->dw);
  tb_set_int(cv, "groups", k->groups);
  ir_graph_add_output(g, "y", tb_infer(g, cv));
  int nx = k->n * k->c * k->h * k->w, nw = k->o * (k->c / k->groups) * k->kh * k->kw;
  int oh = ti_conv_out(k->h, k->kh, k->sh, k->ph, k->dh), ow = ti_conv_out(k->w, k->kw, k->sw, k->pw, k->dw);
  double *xv = malloc(sizeof(double) * (size_t)nx), *wv = malloc(sizeof(double) * (size_t)nw);
  double *want = malloc(sizeof(double) * (size_t)(k->n * k->o * oh * ow));
  ti_fill(xv, nx, 5);
  ti_fill(wv, nw, 6);
  ti_ref_conv2d(k, xv, wv, want);
  ir_bundle *in = ir_bundle_create();
  ti_feed(in, g, x, xv);
  ti_feed(in, g, w, wv);
  ir_bundle *out = ti_run(g, in, IR_INTERP_F64);
  char type[64];
  snprintf(type, sizeof type, "f64[%d,%d,%d,%d]", k->n, k->o, oh, ow);
  ti_assert_output(out, "y", type, want, 1e-13);
  ti_free(g, in, out);
  free(xv);
  free(wv);
  free(want);
}

/* conv2d: padding, stride, dilation, groups, depthwise, odd shapes. */
static void test_conv2d_vs_im2col(void **state) {
  (void)state;
  static const ti_conv_case cases[] = {
      /* n c  h  w  o kh kw sh sw ph pw dh dw groups */
      {2, 3, 5, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1}, /* same padding */
      {1, 2, 7, 6, 3, 3, 3, 2, 2, 1, 1, 1, 1, 1}, /* stride 2 */
      {1, 2, 7, 7, 2, 3, 3, 1, 1, 2, 2, 2, 2, 1}, /* dilation 2 */
      {2, 4, 5, 5, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2}, /* groups 2 */
      {1, 4, 6, 6, 4, 3, 3, 2, 2, 1, 1, 1, 1, 4}, /* depthwise */
      {1, 3, 6, 5, 2, 2, 3, 2, 1, 0, 2, 1, 2, 1}, /* rectangular, mixed */
      {1, 3, 4, 4, 8, 1, 1, 1, 1, 0, 0, 1, 1, 1}, /* pointwise */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_conv2d(&cases[i]);
}

/* A 3x3 image of 1..9 with the 2x2 kernel [[1,0],[0,1]]: sums of
 * diagonal pairs, by hand; with pad 1 the corners see single pixels. */
static void test_conv2d_hand(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F32, 4, 1, 1, 3, 3);
  int w = tb_param(g, "w", IR_F32, 4, 1, 1, 2, 2);
  ir_graph_add_output(g, "y", tb_op(g, IR_OP_conv2d, x, w));
  ir_node *p = tb_node(g, IR_OP_conv2d, x, w);
  tb_set_ints(p, "pad", 1, 1);
  tb_set_ints(p, "stride", 2, 2);
  ir_graph_add_output(g, "p", tb_infer(g, p));
  ir_bundle *in = ir_bundle_create();
  ti_feed(in, g, x, (double[]){1, 2, 3, 4, 5, 6, 7, 8, 9});
  ti_feed(in, g, w, (double[]){1, 0, 0, 1});
  ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
  ti_assert_output(out, "y", "f32[1,1,2,2]", (double[]){6, 8, 12, 14}, 0);
  /* windows start at rows/cols -1 and 1; y = x[r, c] + x[r+1, c+1]:
   * pad + 1, pad + 3, pad + 7, 5 + 9 */
  ti_assert_output(out, "p", "f32[1,1,2,2]", (double[]){1, 3, 7, 14}, 0);
  ti_free(g, in, out);
}

/* conv1d over the channel axis of x[N,C,L] equals the conv2d reference
 * with height 1 (padding, stride, dilation and groups along L). */
static void test_conv1d(void **state) {
  (void)state;
  const ti_conv_case k = {2, 4, 1, 9, 6, 1, 3, 1, 2, 0, 2, 1, 2, 2};
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F64, 3, k.n, k.c, k.w);
  int w = tb_param(g, "w", IR_F64, 3, k.o, k.c / k.groups, k.kw);
  ir_node *cv = tb_node(g, IR_OP_conv1d, x, w);
  tb_set_ints(cv, "stride", k.sw);
  tb_set_ints(cv, "pad", k.pw);
  tb_set_ints(cv, "dilation", k.dw);
  tb_set_int(cv, "groups", k.groups);
  ir_graph_add_output(g, "y", tb_infer(g, cv));
  int ol = ti_conv_out(k.w, k.kw, k.sw, k.pw, k.dw); /* (9 + 4 - 4 - 1) / 2 + 1 = 5 */
  double xv[2 * 4 * 9], wv[6 * 2 * 3], want[2 * 6 * 5];
  ti_fill(xv, 72, 7);
  ti_fill(wv, 36, 8);
  ti_ref_conv2d(&k, xv, wv, want);
  ir_bundle *in = ir_bundle_create();
  ti_feed(in, g, x, xv);
  ti_feed(in, g, w, wv);
  ir_bundle *out = ti_run(g, in, IR_INTERP_F64);
  assert_int_equal(ol, 5);
  ti_assert_output(out, "y", "f64[2,6,5]", want, 1e-13);
  ti_free(g, in, out);
}

/* ---- normalization ---- */

/* batchnorm_train on x[2,3,2,2] and x[4,3]: per channel, the mean and the
 * biased variance over every other axis, computed here. */
static void test_batchnorm_train(void **state) {
  (void)state;
  for (int rank2 = 0; rank2 < 2; rank2++) {
    int n = rank2 ? 4 : 2, c = 3, sp = rank2 ? 1 : 4, total = n * c * sp;
    ir_graph *g = ir_graph_create("t");
    int x = rank2 ? tb_input(g, "x", IR_F64, 2, n, c) : tb_input(g, "x", IR_F64, 4, n, c, 2, 2);
    int gm = tb_param(g, "gamma", IR_F64, 1, c);
    int bt = tb_param(g, "beta", IR_F64, 1, c);
    ir_node *bn = tb_node(g, IR_OP_batchnorm_train, x, gm, bt);
    tb_set_float(bn, "eps", 0.01);
    ir_graph_add_output(g, "y", tb_infer(g, bn));
    double xv[24], gv[3] = {1, 2, -0.5}, bv[3] = {0, 1, 3}, want[24];
    ti_fill(xv, total, 9);
    for (int ch = 0; ch < c; ch++) {
      double mean = 0, var = 0;
      for (int b = 0; b < n; b++)
        for (int s = 0; s < sp; s++) mean += xv[(b * c + ch) * sp + s] / (n * sp);
      for (int b = 0; b < n; b++)
        for (int s = 0; s < sp; s++) var += pow(xv[(b * c + ch) * sp + s] - mean, 2) / (n * sp);
      for (int b = 0; b < n; b++)
        for (int s = 0; s < sp; s++) {
          int i = (b * c + ch) * sp + s;
          want[i] = (xv[i] - mean) / sqrt(var + 0.01) * gv[ch] + bv[ch];
        }
    }
    ir_bundle *in = ir_bundle_create();
    ti_feed(in, g, x, xv);
    ti_feed(in, g, gm, gv);
    ti_feed(in, g, bt, bv);
    ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
    ti_assert_output(out, "y", rank2 ? "f64[4,3]" : "f64[2,3,2,2]", want, 1e-13);
    ti_free(g, in, out);
  }
}

/* batchnorm_stats of x[2,2,1,2] and x[3,2]: mean and biased variance per
 * channel, worked out by hand. */
static void test_batchnorm_stats(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F32, 4, 2, 2, 1, 2);
  int x2 = tb_input(g, "x2", IR_F64, 2, 3, 2);
  ir_graph_add_output(g, "s", tb_op(g, IR_OP_batchnorm_stats, x));
  ir_graph_add_output(g, "s2", tb_op(g, IR_OP_batchnorm_stats, x2));
  ir_bundle *in = ir_bundle_create();
  /* channel 0: 1, 2, 5, 8 (mean 4, var (9+4+1+16)/4); channel 1: 3, 3, -1, 3 (mean 2, var 3) */
  ti_feed(in, g, x, (double[]){1, 2, 3, 3, 5, 8, -1, 3});
  /* channel 0: 1, 2, 6 (mean 3, var 14/3); channel 1: 0, 0, 0 */
  ti_feed(in, g, x2, (double[]){1, 0, 2, 0, 6, 0});
  ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
  ti_assert_output(out, "s", "f32[2,2]", (double[]){4, 2, 7.5, 3}, 1e-6);
  ti_assert_output(out, "s2", "f64[2,2]", (double[]){3, 0, 14.0 / 3, 0}, 1e-13);
  ti_free(g, in, out);
}

/* batchnorm_eval(x, gamma, beta, mean, var) uses the given statistics. */
static void test_batchnorm_eval(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F32, 2, 2, 2);
  int gm = tb_param(g, "gamma", IR_F32, 1, 2);
  int bt = tb_param(g, "beta", IR_F32, 1, 2);
  int mu = tb_buffer(g, "mean", IR_F32, 1, 2);
  int var = tb_buffer(g, "var", IR_F32, 1, 2);
  ir_node *bn = tb_node(g, IR_OP_batchnorm_eval, x, gm, bt, mu, var);
  tb_set_float(bn, "eps", 0);
  ir_graph_add_output(g, "y", tb_infer(g, bn));
  ir_bundle *in = ir_bundle_create();
  ti_feed(in, g, x, (double[]){1, 2, 3, 4});
  ti_feed(in, g, gm, (double[]){2, 1});
  ti_feed(in, g, bt, (double[]){0.5, -1});
  ti_feed(in, g, mu, (double[]){1, 0});
  ti_feed(in, g, var, (double[]){4, 0.25});
  ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
  /* channel 0: (x - 1) / 2 * 2 + 0.5; channel 1: x / 0.5 - 1 */
  ti_assert_output(out, "y", "f32[2,2]", (double[]){0.5, 3, 2.5, 7}, 0);
  ti_free(g, in, out);
}

/* ---- pooling ---- */

/* Appends op(x) with kernel k, stride s, pad p (square) as output 'name'. */
static void add_pool(ir_graph *g, ir_opcode op, int x, int k, int s, int p, const char *name) {
  ir_node *n = tb_node(g, op, x);
  tb_set_ints(n, "kernel", k, k);
  tb_set_ints(n, "stride", s, s);
  tb_set_ints(n, "pad", p, p);
  ir_graph_add_output(g, name, tb_infer(g, n));
}

/* max_pool2d pads with -inf (an all-negative image keeps its own maxima),
 * avg_pool2d divides by the kernel area including padding. */
static void test_pooling(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F32, 4, 1, 1, 4, 4);
  add_pool(g, IR_OP_max_pool2d, x, 3, 2, 1, "max_pad");
  add_pool(g, IR_OP_max_pool2d, x, 2, 2, 0, "max");
  add_pool(g, IR_OP_avg_pool2d, x, 2, 2, 0, "avg");
  add_pool(g, IR_OP_avg_pool2d, x, 2, 2, 1, "avg_pad");
  /* x = -(1..16) row-major */
  double xv[16];
  for (int i = 0; i < 16; i++) xv[i] = -(i + 1);
  ir_bundle *in = ir_bundle_create();
  ti_feed(in, g, x, xv);
  ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
  /* 3x3 windows at rows/cols {-1,0,1} and {1,2,3}: the top-left element of
   * each window that is inside the image is its maximum */
  ti_assert_output(out, "max_pad", "f32[1,1,2,2]", (double[]){-1, -2, -5, -6}, 0);
  ti_assert_output(out, "max", "f32[1,1,2,2]", (double[]){-1, -3, -9, -11}, 0);
  ti_assert_output(out, "avg", "f32[1,1,2,2]", (double[]){-3.5, -5.5, -11.5, -13.5}, 0);
  /* pad 1: windows at rows/cols {-1,0}, {1,2}, {3,4}; corner windows hold
   * one pixel, edges two, the centre four; always divided by 4 */
  ti_assert_output(out, "avg_pad", "f32[1,1,3,3]",
                   (double[]){-1 / 4.0, -(2 + 3) / 4.0, -4 / 4.0, -(5 + 9) / 4.0, -(6 + 7 + 10 + 11) / 4.0,
                              -(8 + 12) / 4.0, -13 / 4.0, -(14 + 15) / 4.0, -16 / 4.0},
                   1e-7);
  ti_free(g, in, out);
}

/* ---- speed ---- */

/* Appends a named f32 param of 'rank' dims; returns its id and feeds it
 * random values scaled by 'scale' into 'in'. */
static int rn_param(ir_graph *g, ir_bundle *in, int *counter, double scale, int rank, int d0, int d1, int d2,
                    int d3) {
  char name[32];
  snprintf(name, sizeof name, "p%d", (*counter)++);
  int id = rank == 1 ? tb_param(g, name, IR_F32, 1, d0)
           : rank == 2 ? tb_param(g, name, IR_F32, 2, d0, d1)
                       : tb_param(g, name, IR_F32, 4, d0, d1, d2, d3);
  int64_t n = ir_type_numel(&g->nodes[id]->type);
  double *v = malloc(sizeof(double) * (size_t)n);
  ti_fill(v, n, (unsigned)*counter);
  for (int64_t i = 0; i < n; i++) v[i] = rank == 1 && scale == 0 ? 1 + 0.1 * v[i] : v[i] * scale;
  ti_feed(in, g, id, v);
  free(v);
  return id;
}

/* conv (k x k, stride s, pad k/2) + batchnorm_eval (+ relu). */
static int rn_conv_bn(ir_graph *g, ir_bundle *in, int *ctr, int x, int cin, int cout, int k, int s, int relu) {
  int w = rn_param(g, in, ctr, sqrt(2.0 / (cin * k * k)), 4, cout, cin, k, k);
  ir_node *cv = tb_node(g, IR_OP_conv2d, x, w);
  tb_set_ints(cv, "stride", s, s);
  tb_set_ints(cv, "pad", k / 2, k / 2);
  int y = tb_infer(g, cv);
  int gm = rn_param(g, in, ctr, 0, 1, cout, 0, 0, 0), bt = rn_param(g, in, ctr, 0.1, 1, cout, 0, 0, 0);
  int mu = rn_param(g, in, ctr, 0.1, 1, cout, 0, 0, 0), var = rn_param(g, in, ctr, 0, 1, cout, 0, 0, 0);
  y = tb_op(g, IR_OP_batchnorm_eval, y, gm, bt, mu, var);
  return relu ? tb_op(g, IR_OP_relu, y) : y;
}

/* ResNet-20 (3 stages of 3 basic blocks, 16/32/64 channels) at batch 4 on
 * 32x32 runs forward in well under the time budget, with finite logits. */
static void test_resnet20_speed(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("resnet20");
  ir_bundle *in = ir_bundle_create();
  int ctr = 0;
  int x = tb_input(g, "x", IR_F32, 4, 4, 3, 32, 32);
  double *xv = malloc(sizeof(double) * 4 * 3 * 32 * 32);
  ti_fill(xv, 4 * 3 * 32 * 32, 99);
  ti_feed(in, g, x, xv);
  free(xv);
  int h = rn_conv_bn(g, in, &ctr, x, 3, 16, 3, 1, 1), cin = 16;
  for (int stage = 0; stage < 3; stage++)
    for (int blk = 0; blk < 3; blk++) {
      int cout = 16 << stage, s = (stage > 0 && blk == 0) ? 2 : 1;
      int y = rn_conv_bn(g, in, &ctr, h, cin, cout, 3, s, 1);
      y = rn_conv_bn(g, in, &ctr, y, cout, cout, 3, 1, 0);
      int sc = (s != 1 || cin != cout) ? rn_conv_bn(g, in, &ctr, h, cin, cout, 1, s, 0) : h;
      h = tb_op(g, IR_OP_relu, tb_op(g, IR_OP_add, y, sc));
      cin = cout;
    }
  ir_node *gap = tb_node(g, IR_OP_reduce_mean, h);
  tb_set_ints(gap, "axes", 2, 3);
  int feat = tb_infer(g, gap);
  int fc = rn_param(g, in, &ctr, 0.1, 2, 64, 10, 0, 0);
  int logits = tb_op(g, IR_OP_matmul, feat, fc);
  tb_assert_type(g, logits, "f32[4,10]");
  ir_graph_add_output(g, "logits", logits);
  double t0 = ti_seconds();
  ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
  double dt = ti_seconds() - t0;
  printf("resnet20 forward, batch 4, 32x32: %.3f s\n", dt);
  const ir_tensor *y = ir_bundle_get(out, "logits");
  assert_non_null(y);
  for (int i = 0; i < 40; i++) assert_true(isfinite(ir_tensor_get(y, i)));
  assert_true(dt < 20.0); /* generous for sanitizer builds; ~0.3 s optimized */
  ti_free(g, in, out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_matmul_hand),      cmocka_unit_test(test_matmul_variants),
      cmocka_unit_test(test_conv2d_vs_im2col), cmocka_unit_test(test_conv2d_hand),
      cmocka_unit_test(test_conv1d),           cmocka_unit_test(test_batchnorm_train),
      cmocka_unit_test(test_batchnorm_eval), cmocka_unit_test(test_batchnorm_stats),   cmocka_unit_test(test_pooling),
      cmocka_unit_test(test_resnet20_speed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
