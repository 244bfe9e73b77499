/* The JIT's elementwise kernels against the interpreter: every unary,
 * binary, comparison, where, cast and elementwise backward op over odd
 * shapes and broadcasting patterns, with 1 and 2 threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cg_internal.h"
#include "util_jit.h"

static const char *const shapes[] = {"[1]", "[7]", "[3,5]", "[2,3,17,9]", "[128,16,8,8]", "[40000]"};

/* Every unary op on every shape. */
static void test_unary(void **state) {
  (void)state;
  const char *ops[] = {"neg", "abs", "relu", "relu6", "sigmoid", "tanh", "exp", "log", "sqrt", "rsqrt"};
  char text[1024];
  for (size_t o = 0; o < sizeof ops / sizeof *ops; o++)
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
      snprintf(text, sizeof text,
               "graph @t {\n  %%x = input name=\"x\" : f32%s\n  %%y = %s(%%x) : f32%s\n  output \"y\" = %%y\n}\n",
               shapes[s], ops[o], shapes[s]);
      tj_compare_text(text, 7 + s, 1 + (int)(s % 2), 1e-5);
    }
}

/* Binary ops under broadcasting: [a] op [b] -> [out]. */
static void test_binary_broadcast(void **state) {
  (void)state;
  const char *ops[] = {"add", "sub", "mul", "div", "maximum", "minimum", "eq", "ne", "lt", "le",
                       "gt", "ge", "relu_grad", "relu6_grad", "sigmoid_grad", "tanh_grad"};
  const char *cases[][3] = {
      {"[4,16,8,8]", "[4,16,8,8]", "[4,16,8,8]"}, {"[4,16,8,8]", "[16,1,1]", "[4,16,8,8]"},
      {"[4,16,8,8]", "[4,16,1,1]", "[4,16,8,8]"}, {"[3,1,5]", "[1,7,1]", "[3,7,5]"},
      {"[]", "[2,3]", "[2,3]"},                   {"[5,1]", "[5]", "[5,5]"},
      {"[2,17,9]", "[9]", "[2,17,9]"},            {"[70000]", "[70000]", "[70000]"},
  };
  char text[1024];
  for (size_t o = 0; o < sizeof ops / sizeof *ops; o++)
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
      snprintf(text, sizeof text,
               "graph @t {\n  %%a = input name=\"a\" : f32%s\n  %%b = input name=\"b\" : f32%s\n"
               "  %%y = %s(%%a, %%b) : f32%s\n  output \"y\" = %%y\n}\n",
               cases[c][0], cases[c][1], ops[o], cases[c][2]);
      tj_compare_text(text, 11 + c, 2, 1e-5);
    }
}

/* where with all three broadcast, casts, broadcast_to and reshape. */
static void test_where_cast_layout(void **state) {
  (void)state;
  tj_compare_text("graph @t {\n  %c = input name=\"c\" : f32[3,1,5]\n  %a = input name=\"a\" : f32[1,4,5]\n"
                  "  %b = input name=\"b\" : f32[3,4,1]\n  %z = const value=0 : f32[]\n"
                  "  %m = gt(%c, %z) : f32[3,1,5]\n  %y = where(%m, %a, %b) : f32[3,4,5]\n  output \"y\" = %y\n}\n",
                  3, 2, 0);
  tj_compare_text("graph @t {\n  %x = input name=\"x\" : f32[6,7]\n  %s = const value=3.5 : f32[]\n"
                  "  %m = mul(%x, %s) : f32[6,7]\n  %i = cast(%m) to=\"i64\" : i64[6,7]\n"
                  "  %f = cast(%i) to=\"f64\" : f64[6,7]\n  output \"i\" = %i\n  output \"f\" = %f\n}\n",
                  4, 1, 0);
  tj_compare_text("graph @t {\n  %x = input name=\"x\" : f32[16,1,1]\n"
                  "  %y = broadcast_to(%x) shape=[3,16,5,5] : f32[3,16,5,5]\n"
                  "  %r = reshape(%y) shape=[48,25] : f32[48,25]\n  %s = exp(%r) : f32[48,25]\n"
                  "  output \"y\" = %y\n  output \"s\" = %s\n}\n",
                  5, 2, 1e-6);
}

/* A long chain with a per-channel affine (the batchnorm apply pattern), in
 * f64 too, and the same graph with 1 and 2 threads giving equal bits. */
static void test_chain_f64(void **state) {
  (void)state;
  tj_compare_text("graph @t {\n  %x = input name=\"x\" : f64[8,24,13,13]\n  %g = param name=\"g\" : f64[24,1,1]\n"
                  "  %b = param name=\"b\" : f64[24,1,1]\n  %m = mul(%x, %g) : f64[8,24,13,13]\n"
                  "  %a = add(%m, %b) : f64[8,24,13,13]\n  %r = relu(%a) : f64[8,24,13,13]\n"
                  "  output \"r\" = %r\n}\n",
                  6, 2, 1e-12);
}

/* The float's position on the number line in representable steps (-0 and
 * +0 both 0), so that a difference counts ulps, subnormals included. */
static int64_t float_rank(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return (u & 0x80000000u) ? -(int64_t)(u & 0x7fffffffu) : (int64_t)u;
}

/* exp, sigmoid and tanh on [-110, 95] in steps of 1/1024 and at the special
 * values, against the correctly rounded double results: exp within 2 ulp
 * (down into the subnormals and up to overflow), sigmoid within 4 ulp,
 * tanh within 2e-7; exp(-inf) = 0, exp(inf) = inf, NaN stays NaN. Random
 * inputs in [-1, 1] (test_unary) never leave the polynomial's easy range. */
static void test_exp_range(void **state) {
  (void)state;
  enum { SWEEP = 205 * 1024 + 1, SPECIAL = 8 };
  const float special[SPECIAL] = {-INFINITY, INFINITY, NAN, 0.0f, -0.0f, 88.72f, -87.4f, -103.9f};
  char text[512];
  snprintf(text, sizeof text,
           "graph @t {\n  %%x = input name=\"x\" : f32[%d]\n  %%e = exp(%%x) : f32[%d]\n"
           "  %%s = sigmoid(%%x) : f32[%d]\n  %%t = tanh(%%x) : f32[%d]\n"
           "  output \"e\" = %%e\n  output \"s\" = %%s\n  output \"t\" = %%t\n}\n",
           SWEEP + SPECIAL, SWEEP + SPECIAL, SWEEP + SPECIAL, SWEEP + SPECIAL);
  ir_diag *d = ir_diag_create();
  ir_graph *g = ir_parse(text, "<exp>", d);
  assert_non_null(g);
  ir_type t = {.dtype = IR_F32, .rank = 1, .dims = {SWEEP + SPECIAL}};
  ir_tensor *x = ir_tensor_create(t);
  float *xv = x->data;
  for (int i = 0; i < SWEEP; i++) xv[i] = -110.0f + (float)i / 1024.0f;
  for (int i = 0; i < SPECIAL; i++) xv[SWEEP + i] = special[i];
  ir_bundle *in = ir_bundle_create(), *out = ir_bundle_create();
  ir_bundle_put(in, "x", x);
  cg_options o = {.threads = 2, .poison = 1};
  cg_program *p = NULL;
  if (cg_program_create(g, &o, &p, d) != ATTNC_OK) fail_msg("jit compile: %s", ir_diag_text(d));
  if (cg_program_run_bundle(p, in, out, d) != ATTNC_OK) fail_msg("jit run: %s", ir_diag_text(d));
  const float *ev = ir_bundle_get(out, "e")->data, *sv = ir_bundle_get(out, "s")->data,
              *tv = ir_bundle_get(out, "t")->data;
  int64_t worst_e = 0, worst_s = 0;
  double worst_t = 0;
  for (int i = 0; i < SWEEP + SPECIAL; i++) {
    double xd = xv[i];
    float re = (float)exp(xd), rs = (float)(1 / (1 + exp(-xd))), rt = (float)tanh(xd);
    if (isnan(xd)) {
      assert_true(isnan(ev[i]) && isnan(sv[i]) && isnan(tv[i]));
      continue;
    }
    int64_t de = llabs(float_rank(ev[i]) - float_rank(re)), ds = llabs(float_rank(sv[i]) - float_rank(rs));
    double dt = fabs((double)tv[i] - rt);
    if (de > 2 || ds > 4 || dt > 2e-7)
      fail_msg("x = %.9g: exp %.9g vs %.9g (%lld ulp), sigmoid %.9g vs %.9g (%lld ulp), tanh %.9g vs %.9g", xd,
               ev[i], re, (long long)de, sv[i], rs, (long long)ds, tv[i], rt);
    if (de > worst_e) worst_e = de;
    if (ds > worst_s) worst_s = ds;
    if (dt > worst_t) worst_t = dt;
  }
  print_message("exp %lld ulp, sigmoid %lld ulp, tanh %.3g at worst\n", (long long)worst_e, (long long)worst_s,
                worst_t);
  assert_true(ev[SWEEP] == 0.0f && isinf(ev[SWEEP + 1]) && ev[SWEEP + 3] == 1.0f && sv[SWEEP + 3] == 0.5f);
  cg_program_destroy(p);
  ir_bundle_destroy(in);
  ir_bundle_destroy(out);
  ir_graph_destroy(g);
  ir_diag_destroy(d);
}

/* Every op of ops.def has a JIT kernel generator, except the sources and
 * reshape (a view the driver handles); each family's test file checks its
 * ops against the interpreter. */
static void test_every_op_has_a_kernel(void **state) {
  (void)state;
  const cg_kernel_impl *t = cg_kernel_table();
  int missing = 0;
  for (int op = 0; op < IR_OP_COUNT; op++) {
    if (ir_op_info_get((ir_opcode)op)->flags & IR_OPF_SOURCE) continue;
    if (!t[op].emit || !t[op].plan) {
      print_error("no JIT kernel for %s\n", ir_op_info_get((ir_opcode)op)->name);
      missing++;
    }
  }
  assert_int_equal(missing, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_op_has_a_kernel),
      cmocka_unit_test(test_unary),
      cmocka_unit_test(test_binary_broadcast),
      cmocka_unit_test(test_where_cast_layout),
      cmocka_unit_test(test_chain_f64),
      cmocka_unit_test(test_exp_range),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
