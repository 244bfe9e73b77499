/* Graph-building helpers for cmocka tests: see util_build.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "util_build.h"

/* Reads 'rank' int dims from ap into a type of dtype dt. */
static ir_type type_from_va(ir_dtype dt, int rank, va_list ap) {
  if (rank < 0 || rank > IR_MAX_RANK) fail_msg("tb: rank %d out of 0..%d", rank, IR_MAX_RANK);
  int64_t dims[IR_MAX_RANK] = {0};
  for (int i = 0; i < rank; i++) dims[i] = va_arg(ap, int);
  return ir_type_make(dt, rank, dims);
}

/* Returns the type dt[dims...]. */
ir_type tb_type(ir_dtype dt, int rank, ...) {
  va_list ap;
  va_start(ap, rank);
  ir_type t = type_from_va(dt, rank, ap);
  va_end(ap);
  return t;
}

/* Appends a source of kind op named 'name' whose 'rank' dims are in ap. */
static int named_source(ir_graph *g, ir_opcode op, const char *name, ir_dtype dt, int rank, va_list ap) {
  ir_loc none = {NULL, 0, NULL};
  return ir_graph_source(g, op, name, 0, type_from_va(dt, rank, ap), none)->id;
}

/* The three named-source builders differ only in their op. */
#define TB_SOURCE(fn, op)                                                                          \
  int fn(ir_graph *g, const char *name, ir_dtype dt, int rank, ...) {                              \
    va_list ap;                                                                                    \
    va_start(ap, rank);                                                                            \
    int id = named_source(g, op, name, dt, rank, ap);                                              \
    va_end(ap);                                                                                    \
    return id;                                                                                     \
  }
TB_SOURCE(tb_input, IR_OP_input)
TB_SOURCE(tb_param, IR_OP_param)
TB_SOURCE(tb_buffer, IR_OP_buffer)

/* Appends a scalar const; returns its id. */
int tb_const(ir_graph *g, double value, ir_dtype dt) {
  ir_loc none = {NULL, 0, NULL};
  return ir_graph_source(g, IR_OP_const, NULL, value, ir_type_make(dt, 0, NULL), none)->id;
}

/* Appends op over 'in' without inferring; returns the node. */
ir_node *tb_node_n(ir_graph *g, ir_opcode op, const int *in, int nin) {
  ir_loc none = {NULL, 0, NULL};
  return ir_graph_append(g, op, in, nin, none);
}

/* Infers n's type or fails the test; returns n->id. */
int tb_infer(ir_graph *g, ir_node *n) {
  ir_diag *d = ir_diag_create();
  if (ir_infer_node(g, n, d)) {
    char msg[2048];
    snprintf(msg, sizeof msg, "%s", ir_diag_text(d));
    ir_diag_destroy(d);
    fail_msg("tb_infer: unexpected error: %s", msg);
  }
  ir_diag_destroy(d);
  return n->id;
}

/* Appends op over 'in' and infers it; returns its id. */
int tb_op_n(ir_graph *g, ir_opcode op, const int *in, int nin) {
  return tb_infer(g, tb_node_n(g, op, in, nin));
}

/* Sets an int attribute or fails. */
void tb_set_int(ir_node *n, const char *name, int64_t v) {
  if (ir_set_int(n, name, v)) fail_msg("tb_set_int: %s has no int attribute '%s'", ir_op_info_get(n->op)->name, name);
}

/* Sets an ints attribute or fails. */
void tb_set_ints_n(ir_node *n, const char *name, const int64_t *v, int count) {
  if (ir_set_ints(n, name, v, count))
    fail_msg("tb_set_ints: %s has no ints attribute '%s' (or %d values is too many)", ir_op_info_get(n->op)->name,
             name, count);
}

/* Sets a float attribute or fails. */
void tb_set_float(ir_node *n, const char *name, double v) {
  if (ir_set_float(n, name, v))
    fail_msg("tb_set_float: %s has no float attribute '%s'", ir_op_info_get(n->op)->name, name);
}

/* Sets a string attribute or fails. */
void tb_set_str(ir_node *n, const char *name, const char *v) {
  if (ir_set_str(n, name, v)) fail_msg("tb_set_str: %s has no str attribute '%s'", ir_op_info_get(n->op)->name, name);
}

/* Gives node 'id' a location. */
void tb_at(ir_graph *g, int id, const char *file, int line, const char *scope) {
  if (id < 0 || id >= g->nnodes) fail_msg("tb_at: no node %%%d", id);
  g->nodes[id]->loc = ir_graph_loc(g, file, line, scope);
}

/* Fails unless node 'id' has the type written 'want'. */
void tb_assert_type(const ir_graph *g, int id, const char *want) {
  if (id < 0 || id >= g->nnodes) fail_msg("tb_assert_type: no node %%%d", id);
  char got[256];
  ir_type_format(&g->nodes[id]->type, got, sizeof got);
  if (strcmp(got, want))
    fail_msg("%%%d = %s: type %s, expected %s", id, ir_op_info_get(g->nodes[id]->op)->name, got, want);
}

/* Expects inference of n to fail with one error; returns its message. */
const char *tb_infer_error(const ir_graph *g, const ir_node *n) {
  static char msg[2048];
  ir_diag *d = ir_diag_create();
  ir_type t;
  int rc = ir_infer_type(g, n, &t, d);
  int count = ir_diag_count(d);
  snprintf(msg, sizeof msg, "%s", count ? ir_diag_message(d, 0) : "");
  ir_diag_destroy(d);
  if (rc == 0) {
    char got[256];
    ir_type_format(&t, got, sizeof got);
    fail_msg("%%%d = %s: inference succeeded with %s, expected an error", n->id, ir_op_info_get(n->op)->name, got);
  }
  if (count != 1) fail_msg("%%%d: expected 1 error, got %d", n->id, count);
  return msg;
}

/* Fails unless 'text' contains 'needle'. */
int tb_output(const ir_graph *g, const char *name) {
  for (int i = 0; i < g->noutputs; i++)
    if (strcmp(g->outputs[i].name, name) == 0) return g->outputs[i].node;
  fail_msg("no output %s", name);
  return -1;
}

void tb_assert_contains(const char *text, const char *needle) {
  if (!text || !strstr(text, needle)) fail_msg("expected \"%s\" in: %s", needle, text ? text : "(null)");
}
