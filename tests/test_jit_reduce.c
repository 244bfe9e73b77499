/* The JIT's reductions, softmax, log_softmax, topk_mask, cross_entropy and
 * cross_entropy_grad against the interpreter: every axes subset of rank-4
 * tensors (keepdims 0/1, negative and unsorted axes), the training-sized
 * per-channel and spatial reductions, NaN and infinities, f64 and i64,
 * large-magnitude softmax inputs, top-k ties, losses at several batch and
 * class counts, f32 sums rounded once, and bitwise equal results for 1
 * and 2 threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util_jitr.h"

static const char *const red_ops[] = {"reduce_sum", "reduce_mean", "reduce_max", "reduce_min"};

/* Writes "[d0,d1,...]" of dims[0..rank) into buf. */
static const char *shape_text(const int64_t *dims, int rank, char *buf) {
  int n = sprintf(buf, "[");
  for (int i = 0; i < rank; i++) n += sprintf(buf + n, "%s%lld", i ? "," : "", (long long)dims[i]);
  sprintf(buf + n, "]");
  return buf;
}

/* Appends node %name = op(%x) over the axes of bit mask 'mask' of x's dims
 * (listed in reverse with negative numbers when 'twist'), and its output. */
static void add_reduce(tjr_text *t, const char *in, const char *dt, const char *op, const int64_t *dims, int rank,
                       unsigned mask, int keep, int twist, const char *name) {
  int64_t od[8];
  int orank = 0;
  char axes[64] = "", sh[128];
  int n = 0;
  for (int k = 0; k < rank; k++) {
    int i = twist ? rank - 1 - k : k;
    if (mask >> i & 1) n += sprintf(axes + n, "%s%d", n ? "," : "", twist ? i - rank : i);
  }
  for (int i = 0; i < rank; i++) {
    if (!(mask >> i & 1))
      od[orank++] = dims[i];
    else if (keep)
      od[orank++] = 1;
  }
  tjr_printf(t, "  %%%s = %s(%%%s) axes=[%s] keepdims=%d : %s%s\n  output \"%s\" = %%%s\n", name, op, in, axes, keep,
             dt, shape_text(od, orank, sh), name, name);
}

/* A graph reducing x : dt[dims] over every axes subset: with every op in
 * red_ops[first .. first + nops) when 'all', else with one of them per
 * subset in turn. */
static void subsets_graph(tjr_text *t, const char *dt, const int64_t *dims, int rank, int keep, int first, int nops,
                          int all) {
  char sh[128], name[32];
  tjr_printf(t, "graph @t {\n  %%x = input name=\"x\" : %s%s\n", dt, shape_text(dims, rank, sh));
  for (int o = 0; o < nops; o++)
    for (unsigned m = 0; m < 1u << rank; m++) {
      if (!all && (int)(m % (unsigned)nops) != o) continue;
      snprintf(name, sizeof name, "r%d_%u", o, m);
      add_reduce(t, "x", dt, red_ops[first + o], dims, rank, m, keep, m % 3 == 1, name);
    }
  tjr_printf(t, "}\n");
}

/* Every op over every axes subset of an odd rank-4 shape; a shape with
 * size-1 axes with keepdims=1. */
static void test_axes_subsets(void **state) {
  (void)state;
  const int64_t a[4] = {3, 5, 7, 9}, b[4] = {2, 1, 6, 33};
  tjr_text t = {0};
  subsets_graph(&t, "f32", a, 4, 0, 0, 4, 1);
  tjr_compare(t.s, NULL, 3, 2, 1e-5);
  tjr_text_free(&t);
  subsets_graph(&t, "f32", b, 4, 1, 0, 4, 0);
  tjr_compare(t.s, NULL, 5, 1, 1e-5);
  tjr_text_free(&t);
}

/* f64 subsets (tight tolerance) and i64 reductions (exact). */
static void test_f64_i64(void **state) {
  (void)state;
  const int64_t a[4] = {4, 6, 5, 19}, c[3] = {6, 10, 7};
  tjr_text t = {0};
  subsets_graph(&t, "f64", a, 4, 1, 0, 4, 0);
  tjr_compare(t.s, NULL, 9, 2, 1e-12);
  tjr_text_free(&t);
  subsets_graph(&t, "i64", c, 3, 0, 0, 4, 0);
  tjr_compare(t.s, NULL, 10, 2, 0);
  tjr_text_free(&t);
  /* a sum over an empty axis is 0; a scalar with axes=[] is itself */
  tjr_compare("graph @t {\n  %x = input name=\"x\" : f32[3,0,4]\n  %s = input name=\"s\" : f64[]\n"
              "  %a = reduce_sum(%x) axes=[1] keepdims=0 : f32[3,4]\n  %b = reduce_max(%s) axes=[] keepdims=0 : f64[]\n"
              "  output \"a\" = %a\n  output \"b\" = %b\n}\n",
              NULL, 11, 2, 0);
}

/* The training-sized patterns: per-channel sums over N,H,W, global average
 * pooling, channel mean/max, a full sum; 1 and 2 threads; bitwise equal. */
static void test_large(void **state) {
  (void)state;
  const int64_t a[4] = {128, 64, 8, 8}, b[4] = {128, 16, 32, 32};
  const struct {
    const int64_t *dims;
    int op;
    unsigned mask;
    int keep;
  } cases[] = {{a, 0, 0xd, 0}, {a, 1, 0xd, 1}, {b, 0, 0xd, 0}, {b, 1, 0xd, 0}, {a, 1, 0xc, 1},
               {a, 2, 0xc, 1}, {a, 1, 0x2, 1}, {a, 2, 0x2, 1}, {b, 3, 0x2, 0}, {b, 0, 0xf, 0},
               {b, 2, 0x1, 0}};
  char sh[128], name[16];
  for (int th = 1; th <= 2; th++) {
    tjr_text t = {0};
    tjr_printf(&t, "graph @t {\n  %%a = input name=\"a\" : f32%s\n", shape_text(a, 4, sh));
    if (th == 2) tjr_printf(&t, "  %%b = input name=\"b\" : f32%s\n", shape_text(b, 4, sh));
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
      if (th == 1 && cases[c].dims == b) continue; /* the big shape once, with 2 threads */
      snprintf(name, sizeof name, "r%zu", c);
      add_reduce(&t, cases[c].dims == a ? "a" : "b", "f32", red_ops[cases[c].op], cases[c].dims, 4, cases[c].mask,
                 cases[c].keep, th == 2, name);
    }
    tjr_printf(&t, "}\n");
    tjr_compare(t.s, NULL, 21, th, 1e-5);
    if (th == 2) tjr_same_bits(t.s, 22);
    tjr_text_free(&t);
  }
}

/* A value with NaN and infinities sprinkled in. */
static double with_nan(int64_t i, double arg) {
  (void)arg;
  if (i % 97 == 13) return NAN;
  if (i % 89 == 5) return INFINITY;
  if (i % 83 == 7) return -INFINITY;
  return sin((double)i * 0.7) * 3;
}

/* max and min propagate NaN like the interpreter; sums of infinities. */
static void test_nan(void **state) {
  (void)state;
  const int64_t d[4] = {3, 4, 10, 21};
  ir_bundle *b = ir_bundle_create();
  tjr_put(b, "x", ir_type_make(IR_F32, 4, d), with_nan, 0);
  tjr_text t = {0};
  subsets_graph(&t, "f32", d, 4, 0, 0, 4, 0);
  tjr_compare(t.s, b, 1, 2, 1e-5);
  tjr_text_free(&t);
  subsets_graph(&t, "f32", d, 4, 1, 2, 2, 0);
  tjr_compare(t.s, b, 1, 1, 1e-5);
  tjr_text_free(&t);
  ir_bundle_destroy(b);
  /* f64, and runs of 2, 4 and 8 floats: every register width of the
   * max / min instructions (128, 256 and 512 bits) */
  const int64_t d64[4] = {3, 4, 10, 21}, small[3][4] = {{5, 3, 2, 3}, {5, 3, 4, 3}, {5, 3, 8, 3}};
  b = ir_bundle_create();
  tjr_put(b, "x", ir_type_make(IR_F64, 4, d64), with_nan, 0);
  subsets_graph(&t, "f64", d64, 4, 0, 2, 2, 1);
  tjr_compare(t.s, b, 1, 2, 1e-12);
  tjr_text_free(&t);
  ir_bundle_destroy(b);
  for (int k = 0; k < 3; k++) {
    b = ir_bundle_create();
    tjr_put(b, "x", ir_type_make(IR_F32, 4, small[k]), with_nan, 0);
    subsets_graph(&t, "f32", small[k], 4, 0, 2, 2, 1);
    tjr_compare(t.s, b, 1, 1 + k % 2, 1e-5);
    tjr_text_free(&t);
    ir_bundle_destroy(b);
  }
}

/* Element i scaled by arg with an offset: large logits. */
static double big(int64_t i, double arg) { return arg * sin((double)i * 1.3) + arg / 2; }

/* softmax and log_softmax along each axis, long rows, large magnitudes, f64. */
static void test_softmax(void **state) {
  (void)state;
  const int64_t d[4] = {3, 5, 7, 9};
  char sh[128];
  for (int pass = 0; pass < 2; pass++) {
    tjr_text t = {0};
    tjr_printf(&t, "graph @t {\n  %%x = input name=\"x\" : f32%s\n  %%w = input name=\"w\" : f32[6,1000]\n"
                   "  %%v = input name=\"v\" : f64[4,13,3]\n",
               shape_text(d, 4, sh));
    for (int a = -4; a < 4; a++) /* each axis once per pass, negative or not */
      for (int lg = 0; lg < 2; lg++) {
        int early_negative = (a < 0) == ((a + 4) % 4 < 2);
        if (early_negative != !pass) continue;
        tjr_printf(&t, "  %%s%d_%d = %s(%%x) axis=%d : f32%s\n  output \"s%d_%d\" = %%s%d_%d\n", a + 4, lg,
                   lg ? "log_softmax" : "softmax", a, sh, a + 4, lg, a + 4, lg);
      }
    for (int lg = 0; lg < 2; lg++) {
      const char *op = lg ? "log_softmax" : "softmax";
      tjr_printf(&t, "  %%w%d = %s(%%w) axis=1 : f32[6,1000]\n  output \"w%d\" = %%w%d\n", lg, op, lg, lg);
      tjr_printf(&t, "  %%c%d = %s(%%w) axis=0 : f32[6,1000]\n  output \"c%d\" = %%c%d\n", lg, op, lg, lg);
      for (int a = 0; a < 3; a++)
        tjr_printf(&t, "  %%v%d_%d = %s(%%v) axis=%d : f64[4,13,3]\n  output \"v%d_%d\" = %%v%d_%d\n", a, lg, op, a,
                   a, lg, a, lg);
    }
    tjr_printf(&t, "}\n");
    ir_bundle *b = ir_bundle_create();
    if (pass) { /* magnitudes where a naive exp overflows */
      tjr_put(b, "x", ir_type_make(IR_F32, 4, d), big, 1000);
      tjr_put(b, "w", ir_type_make(IR_F32, 2, (int64_t[]){6, 1000}), big, 300);
      tjr_put(b, "v", ir_type_make(IR_F64, 3, (int64_t[]){4, 13, 3}), big, 2000);
    }
    tjr_compare(t.s, b, 31, 1 + pass, 1e-5);
    ir_bundle_destroy(b);
    tjr_text_free(&t);
  }
}

/* Labels (7i + 3) mod K. */
static double label_of(int64_t i, double k) { return (double)((7 * i + 3) % (int64_t)k); }

/* cross_entropy and its gradient at N = 1, 5, 128 and K = 10, 100 (f32),
 * and one f64 case; labels given. */
static void test_cross_entropy(void **state) {
  (void)state;
  const int64_t ns[] = {1, 5, 128}, ks[] = {10, 100};
  tjr_text t = {0};
  ir_bundle *b = ir_bundle_create();
  tjr_printf(&t, "graph @t {\n  %%dl = param name=\"dl\" : f32[]\n  %%dd = param name=\"dd\" : f64[]\n");
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 2; j++) {
      long long n = ns[i], k = ks[j];
      tjr_printf(&t,
                 "  %%l%d%d = input name=\"l%d%d\" : f32[%lld,%lld]\n  %%y%d%d = input name=\"y%d%d\" : i64[%lld]\n"
                 "  %%e%d%d = cross_entropy(%%l%d%d, %%y%d%d) : f32[]\n"
                 "  %%g%d%d = cross_entropy_grad(%%l%d%d, %%y%d%d, %%dl) : f32[%lld,%lld]\n"
                 "  output \"e%d%d\" = %%e%d%d\n  output \"g%d%d\" = %%g%d%d\n",
                 i, j, i, j, n, k, i, j, i, j, n, i, j, i, j, i, j, i, j, i, j, i, j, n, k, i, j, i, j, i, j, i, j);
      char name[16];
      snprintf(name, sizeof name, "y%d%d", i, j);
      tjr_put(b, name, ir_type_make(IR_I64, 1, ns + i), label_of, (double)k);
    }
  tjr_printf(&t, "  %%lf = input name=\"lf\" : f64[7,12]\n  %%yf = input name=\"yf\" : i64[7]\n"
                 "  %%ef = cross_entropy(%%lf, %%yf) : f64[]\n"
                 "  %%gf = cross_entropy_grad(%%lf, %%yf, %%dd) : f64[7,12]\n"
                 "  output \"ef\" = %%ef\n  output \"gf\" = %%gf\n}\n");
  tjr_put(b, "yf", ir_type_make(IR_I64, 1, (int64_t[]){7}), label_of, 12);
  tjr_compare(t.s, b, 41, 2, 1e-5);
  tjr_put(b, "l21", ir_type_make(IR_F32, 2, (int64_t[]){128, 100}), big, 500);
  tjr_compare(t.s, b, 42, 1, 1e-5);
  ir_bundle_destroy(b);
  tjr_text_free(&t);
}

/* Small integers (many ties), scaled by arg. */
static double tied(int64_t i, double arg) { return arg * (double)((i * 2654435761u >> 7) % 5) - 2 * arg; }

/* topk_mask along each axis with many ties, k from 1 to the axis size. */
static void test_topk(void **state) {
  (void)state;
  const int64_t d[3] = {4, 9, 6};
  char sh[128];
  tjr_text t = {0};
  tjr_printf(&t, "graph @t {\n  %%x = input name=\"x\" : f32%s\n  %%w = input name=\"w\" : f32[8,50]\n"
                 "  %%v = input name=\"v\" : f64[5,40,3]\n",
             shape_text(d, 3, sh));
  for (int a = 0; a < 3; a++)
    for (int64_t k = 1; k <= d[a]; k += 2)
      tjr_printf(&t, "  %%t%d_%lld = topk_mask(%%x) axis=%d k=%lld : f32%s\n  output \"t%d_%lld\" = %%t%d_%lld\n",
                 a, (long long)k, a - 3 * (k == 3), (long long)k, sh, a, (long long)k, a, (long long)k);
  tjr_printf(&t, "  %%w1 = topk_mask(%%w) axis=1 k=10 : f32[8,50]\n  output \"w1\" = %%w1\n"
                 "  %%w0 = topk_mask(%%w) axis=0 k=8 : f32[8,50]\n  output \"w0\" = %%w0\n"
                 "  %%v1 = topk_mask(%%v) axis=1 k=17 : f64[5,40,3]\n  output \"v1\" = %%v1\n}\n");
  for (int pass = 0; pass < 2; pass++) {
    ir_bundle *b = ir_bundle_create();
    if (pass) {
      tjr_put(b, "x", ir_type_make(IR_F32, 3, d), tied, 1);
      tjr_put(b, "w", ir_type_make(IR_F32, 2, (int64_t[]){8, 50}), tied, 0.5);
      tjr_put(b, "v", ir_type_make(IR_F64, 3, (int64_t[]){5, 40, 3}), tied, 3);
    }
    tjr_compare(t.s, b, 51, 1 + pass, 0);
    ir_bundle_destroy(b);
  }
  tjr_text_free(&t);
}

/* Each run of 4096: 1e8 first, -1e8 last, ones between. */
static double cancelling(int64_t i, double arg) {
  (void)arg;
  int64_t j = i % 4096;
  return j == 0 ? 1e8 : j == 4095 ? -1e8 : 1;
}

/* f32 sums and means over runs that cancel: accumulated in f64, the sum
 * of each run of 4096 is exactly 4094 as in the interpreter (in f32 partial
 * sums, 1 + 1e8 is 1e8 and the ones added to the two big values are lost),
 * so a fused loop that adds the same values in another order
 * (test_jit_fuse) rounds the same result. */
static void test_sum_rounding(void **state) {
  (void)state;
  const int64_t d[4] = {3, 2, 64, 64};
  ir_bundle *b = ir_bundle_create();
  tjr_put(b, "x", ir_type_make(IR_F32, 4, d), cancelling, 0);
  const char *text = "graph @r {\n"
                     "  %x = input name=\"x\" : f32[3,2,64,64]\n"
                     "  %s = reduce_sum(%x) axes=[2,3] keepdims=0 : f32[3,2]\n"
                     "  %m = reduce_mean(%x) axes=[2,3] keepdims=0 : f32[3,2]\n"
                     "  %c = reduce_sum(%x) axes=[0,2,3] keepdims=0 : f32[2]\n"
                     "  output \"s\" = %s\n  output \"m\" = %m\n  output \"c\" = %c\n}\n";
  for (int threads = 1; threads <= 2; threads++) assert_true(tjr_compare(text, b, 1, threads, 0) == 0);
  ir_bundle_destroy(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sum_rounding),
      cmocka_unit_test(test_axes_subsets), cmocka_unit_test(test_f64_i64),   cmocka_unit_test(test_large),
      cmocka_unit_test(test_nan),          cmocka_unit_test(test_softmax),   cmocka_unit_test(test_cross_entropy),
      cmocka_unit_test(test_topk),
  };
  if (getenv("TJR_FILTER")) cmocka_set_test_filter(getenv("TJR_FILTER"));
  return cmocka_run_group_tests(tests, NULL, NULL);
}
