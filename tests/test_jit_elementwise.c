/* The JIT's elementwise kernels against the interpreter: every unary,
 * binary, comparison, where, cast and elementwise backward op over odd
 * shapes and broadcasting patterns, with 1 and 2 threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
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
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
