/* Reference-interpreter tests of the data-movement ops: concat, slice with
 * step, reshape, transpose, broadcast_to and pad, by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "util_build.h"
#include "util_interp.h"

/* concat along axis 1 (and -2 == 0) of differently sized operands. */
static void test_concat(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int a = tb_input(g, "a", IR_F32, 2, 2, 1);
  int b = tb_input(g, "b", IR_F32, 2, 2, 2);
  ir_node *c1 = tb_node(g, IR_OP_concat, a, b, a);
  tb_set_int(c1, "axis", 1);
  ir_graph_add_output(g, "cols", tb_infer(g, c1));
  ir_node *c0 = tb_node(g, IR_OP_concat, b, b);
  tb_set_int(c0, "axis", -2);
  ir_graph_add_output(g, "rows", tb_infer(g, c0));
  ir_bundle *in = ir_bundle_create();
  ti_feed(in, g, a, (double[]){1, 2});
  ti_feed(in, g, b, (double[]){10, 11, 20, 21});
  ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
  ti_assert_output(out, "cols", "f32[2,4]", (double[]){1, 10, 11, 1, 2, 20, 21, 2}, 0);
  ti_assert_output(out, "rows", "f32[4,2]", (double[]){10, 11, 20, 21, 10, 11, 20, 21}, 0);
  ti_free(g, in, out);
}

/* Appends slice(x, axis, start, end, step) as output 'name'. */
static void add_slice(ir_graph *g, int x, int axis, int start, int end, int step, const char *name) {
  ir_node *n = tb_node(g, IR_OP_slice, x);
  tb_set_int(n, "axis", axis);
  tb_set_int(n, "start", start);
  tb_set_int(n, "end", end);
  tb_set_int(n, "step", step);
  ir_graph_add_output(g, name, tb_infer(g, n));
}

/* slice with steps, along the last and the first axis. */
static void test_slice(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_I64, 2, 3, 6);
  add_slice(g, x, -1, 1, 6, 2, "odd");
  add_slice(g, x, 1, 0, 5, 3, "step3");
  add_slice(g, x, 0, 1, 3, 1, "rows");
  ir_bundle *in = ir_bundle_create();
  double xv[18];
  for (int i = 0; i < 18; i++) xv[i] = i;
  ti_feed(in, g, x, xv);
  ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
  ti_assert_output(out, "odd", "i64[3,3]", (double[]){1, 3, 5, 7, 9, 11, 13, 15, 17}, 0);
  ti_assert_output(out, "step3", "i64[3,2]", (double[]){0, 3, 6, 9, 12, 15}, 0);
  ti_assert_output(out, "rows", "i64[2,6]", xv + 6, 0);
  ti_free(g, in, out);
}

/* reshape keeps row-major order; transpose(perm) puts input axis perm[i]
 * at output axis i: out[i,j,k] = x[j,k,i] for perm [2,0,1]. */
static void test_reshape_transpose(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F64, 3, 2, 3, 4);
  ir_node *r = tb_node(g, IR_OP_reshape, x);
  tb_set_ints(r, "shape", 4, 6);
  ir_graph_add_output(g, "r", tb_infer(g, r));
  ir_node *t = tb_node(g, IR_OP_transpose, x);
  tb_set_ints(t, "perm", 2, 0, 1);
  ir_graph_add_output(g, "t", tb_infer(g, t));
  double xv[24], want[24];
  for (int i = 0; i < 24; i++) xv[i] = i;
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 2; j++)
      for (int k = 0; k < 3; k++) want[(i * 2 + j) * 3 + k] = xv[(j * 3 + k) * 4 + i];
  ir_bundle *in = ir_bundle_create();
  ti_feed(in, g, x, xv);
  ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
  ti_assert_output(out, "r", "f64[4,6]", xv, 0);
  ti_assert_output(out, "t", "f64[4,2,3]", want, 0);
  ti_free(g, in, out);
}

/* broadcast_to repeats along new leading axes and along size-1 axes. */
static void test_broadcast_to(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int v = tb_input(g, "v", IR_F32, 1, 3);
  int c = tb_input(g, "c", IR_F32, 2, 2, 1);
  ir_node *bv = tb_node(g, IR_OP_broadcast_to, v);
  tb_set_ints(bv, "shape", 2, 3);
  ir_graph_add_output(g, "v", tb_infer(g, bv));
  ir_node *bc = tb_node(g, IR_OP_broadcast_to, c);
  tb_set_ints(bc, "shape", 2, 2, 3);
  ir_graph_add_output(g, "c", tb_infer(g, bc));
  ir_bundle *in = ir_bundle_create();
  ti_feed(in, g, v, (double[]){1, 2, 3});
  ti_feed(in, g, c, (double[]){7, 8});
  ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
  ti_assert_output(out, "v", "f32[2,3]", (double[]){1, 2, 3, 1, 2, 3}, 0);
  ti_assert_output(out, "c", "f32[2,2,3]", (double[]){7, 7, 7, 8, 8, 8, 7, 7, 7, 8, 8, 8}, 0);
  ti_free(g, in, out);
}

/* pad [2,2] with pads [1,0, 0,2] and fill -1: one row above, two columns
 * to the right. */
static void test_pad(void **state) {
  (void)state;
  ir_graph *g = ir_graph_create("t");
  int x = tb_input(g, "x", IR_F32, 2, 2, 2);
  ir_node *p = tb_node(g, IR_OP_pad, x);
  tb_set_ints(p, "pads", 1, 0, 0, 2);
  tb_set_float(p, "value", -1);
  ir_graph_add_output(g, "y", tb_infer(g, p));
  ir_node *z = tb_node(g, IR_OP_pad, x);
  tb_set_ints(z, "pads", 0, 1, 1, 0);
  ir_graph_add_output(g, "z", tb_infer(g, z));
  ir_bundle *in = ir_bundle_create();
  ti_feed(in, g, x, (double[]){1, 2, 3, 4});
  ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
  ti_assert_output(out, "y", "f32[3,4]", (double[]){-1, -1, -1, -1, 1, 2, -1, -1, 3, 4, -1, -1}, 0);
  ti_assert_output(out, "z", "f32[3,3]", (double[]){0, 1, 2, 0, 3, 4, 0, 0, 0}, 0);
  ti_free(g, in, out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_concat),       cmocka_unit_test(test_slice), cmocka_unit_test(test_reshape_transpose),
      cmocka_unit_test(test_broadcast_to), cmocka_unit_test(test_pad),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
