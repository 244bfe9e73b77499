/* Graph-building helpers for cmocka tests (prefix tb_).
 *
 * Every helper fails the running test (cmocka fail_msg) instead of returning
 * an error, so a test reads as a list of ops:
 *
 *   ir_graph *g = ir_graph_create("t");
 *   int x = tb_input(g, "x", IR_F32, 4, 2, 3, 8, 8);      // rank 4, dims 2,3,8,8
 *   int w = tb_param(g, "w", IR_F32, 4, 16, 3, 3, 3);
 *   ir_node *c = tb_node(g, IR_OP_conv2d, x, w);          // appended, not inferred
 *   tb_set_ints(c, "pad", 1, 1);
 *   int y = tb_infer(g, c);                               // infers; returns c->id
 *   int z = tb_op(g, IR_OP_relu, y);                      // append + infer in one
 *   tb_assert_type(g, z, "f32[2,16,8,8]");
 *   ir_graph_add_output(g, "z", z);
 *
 * Dims passed to tb_input/tb_param/tb_buffer/tb_type are plain ints (they
 * travel through '...'; do not pass int64_t). Nodes get no location unless
 * tb_at gives them one. The graph owns all nodes: ir_graph_destroy(g).
 */
#ifndef ATTNC_TESTS_UTIL_BUILD_H
#define ATTNC_TESTS_UTIL_BUILD_H

#include <stdint.h>

#include "ir.h"

/* Returns the type dt[dims...] with 'rank' int dims (0..IR_MAX_RANK). */
ir_type tb_type(ir_dtype dt, int rank, ...);

/* Append an input / param / buffer source named 'name' of type dt[dims...]
 * ('rank' int dims follow). Return the node id. */
int tb_input(ir_graph *g, const char *name, ir_dtype dt, int rank, ...);
int tb_param(ir_graph *g, const char *name, ir_dtype dt, int rank, ...);
int tb_buffer(ir_graph *g, const char *name, ir_dtype dt, int rank, ...);
/* Appends a scalar const of dtype dt holding 'value'; returns its id. */
int tb_const(ir_graph *g, double value, ir_dtype dt);

/* Appends op with operand ids 'in' (attributes at their defaults, type not
 * yet inferred); returns the node. Use the tb_node macro. */
ir_node *tb_node_n(ir_graph *g, ir_opcode op, const int *in, int nin);
/* Infers n's type (failing the test with the diagnostic if inference
 * fails) and returns n->id. */
int tb_infer(ir_graph *g, ir_node *n);
/* tb_node_n + tb_infer: for ops whose attributes all have defaults. */
int tb_op_n(ir_graph *g, ir_opcode op, const int *in, int nin);

/* tb_node(g, op, in0, in1, ...) / tb_op(g, op, in0, ...): at least one operand. */
#define TB_INS(...) ((const int[]){__VA_ARGS__}), ((int)(sizeof((int[]){__VA_ARGS__}) / sizeof(int)))
#define tb_node(g, op, ...) tb_node_n((g), (op), TB_INS(__VA_ARGS__))
#define tb_op(g, op, ...) tb_op_n((g), (op), TB_INS(__VA_ARGS__))

/* Attribute setters that fail the test when n's op has no such attribute
 * of that kind. tb_set_ints takes the values inline: tb_set_ints(n, "pad", 1, 1);
 * tb_set_ints_n sets 'count' values (use it for an empty list). */
void tb_set_int(ir_node *n, const char *name, int64_t v);
void tb_set_ints_n(ir_node *n, const char *name, const int64_t *v, int count);
#define tb_set_ints(n, name, ...)                                                                  \
  tb_set_ints_n((n), (name), ((const int64_t[]){__VA_ARGS__}),                                     \
                (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))
void tb_set_float(ir_node *n, const char *name, double v);
void tb_set_str(ir_node *n, const char *name, const char *v);

/* Gives node 'id' the location file:line in 'scope' (NULL allowed). */
void tb_at(ir_graph *g, int id, const char *file, int line, const char *scope);

/* Fails the test unless node 'id' has the type written as 'want' ("f32[4,5,3]",
 * "f32[]" for a scalar), as ir_type_format writes it. */
void tb_assert_type(const ir_graph *g, int id, const char *want);

/* Runs shape inference on n expecting it to fail; fails the test if it
 * succeeds or reports anything but exactly one error. Returns the message
 * (static buffer, valid until the next call). */
const char *tb_infer_error(const ir_graph *g, const ir_node *n);

/* The node of output 'name' of g; fails the test if there is none. */
int tb_output(const ir_graph *g, const char *name);

/* Fails the test unless 'text' contains 'needle' (prints both otherwise). */
void tb_assert_contains(const char *text, const char *needle);

#endif
