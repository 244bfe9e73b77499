/* Binding named tensors to a graph's sources (see rt_bind.h). */
#include "rt_bind.h"

#include <string.h>

#define BIND_MAX_REPORTS 10 /* per kind of problem; then a count */

/* Returns 1 if dtypes a and b can be bound (both float, or both i64). */
static int dtype_compatible(ir_dtype a, ir_dtype b) { return (a == IR_I64) == (b == IR_I64); }

/* Counts one problem of a kind; returns 1 once past the reporting cap. */
static int over_cap(int *count) { return ++*count > BIND_MAX_REPORTS; }

/* Checks that every source node of 'g' whose op is in 'ops' (a bit mask of
 * 1 << opcode) has a tensor in 'b' of its shape and a compatible dtype.
 * Counts problems into *missing and *wrong. */
static void check_sources(const ir_graph *g, const ir_bundle *b, unsigned ops, const char *file,
                          int *missing, int *wrong, ir_diag *d) {
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    if ((unsigned)n->op >= 32 || !(ops & (1u << n->op))) continue; /* sources have low opcodes */
    const char *name = ir_node_name(n);
    const ir_tensor *t = name ? ir_bundle_get(b, name) : NULL;
    char want[128], got[128];
    ir_type_format(&n->type, want, sizeof want);
    if (!t) {
      if (!over_cap(missing))
        ir_diag_error(d, file, 0, "missing %s '%s' %s", ir_op_info_get(n->op)->name,
                      name ? name : "?", want);
      continue;
    }
    int same_shape = t->type.rank == n->type.rank;
    for (int k = 0; same_shape && k < t->type.rank; k++)
      same_shape = t->type.dims[k] == n->type.dims[k];
    if (!same_shape || !dtype_compatible(t->type.dtype, n->type.dtype)) {
      ir_type_format(&t->type, got, sizeof got);
      if (!over_cap(wrong))
        ir_diag_error(d, file, 0, "%s '%s' is %s, the graph expects %s",
                      ir_op_info_get(n->op)->name, name, got, want);
    }
  }
}

/* Reports the problems past the cap as counts; returns ATTNC_EINVAL if
 * there was any problem. */
static attnc_status summarize(int missing, int wrong, int extra, const char *file, ir_diag *d) {
  if (missing > BIND_MAX_REPORTS)
    ir_diag_error(d, file, 0, "... %d more missing", missing - BIND_MAX_REPORTS);
  if (wrong > BIND_MAX_REPORTS)
    ir_diag_error(d, file, 0, "... %d more with the wrong shape", wrong - BIND_MAX_REPORTS);
  if (extra > BIND_MAX_REPORTS)
    ir_diag_error(d, file, 0, "... %d more unknown names", extra - BIND_MAX_REPORTS);
  return missing || wrong || extra ? ATTNC_EINVAL : ATTNC_OK;
}

/* Checks that 'w' holds exactly the params and buffers of 'g'. */
attnc_status rt_check_weights(const ir_graph *g, const ir_bundle *w, const char *file, ir_diag *d) {
  int missing = 0, wrong = 0, extra = 0;
  check_sources(g, w, 1u << IR_OP_param | 1u << IR_OP_buffer, file, &missing, &wrong, d);
  for (int i = 0; i < w->count; i++) {
    const ir_node *p = ir_graph_find_source(g, IR_OP_param, w->names[i]);
    if (!p) p = ir_graph_find_source(g, IR_OP_buffer, w->names[i]);
    if (!p && !over_cap(&extra))
      ir_diag_error(d, file, 0, "'%s' is not a param or buffer of graph '%s'", w->names[i],
                    g->name ? g->name : "?");
  }
  return summarize(missing, wrong, extra, file, d);
}

/* Checks that 'x' holds every input of 'g' with its shape. */
attnc_status rt_check_inputs(const ir_graph *g, const ir_bundle *x, const char *file, ir_diag *d) {
  int missing = 0, wrong = 0;
  check_sources(g, x, 1u << IR_OP_input, file, &missing, &wrong, d);
  return summarize(missing, wrong, 0, file, d);
}

/* Copies every tensor of 'src' into 'dst'; returns -1 if out of memory. */
static int copy_into(ir_bundle *dst, const ir_bundle *src) {
  for (int i = 0; i < src->count; i++) {
    ir_tensor *t = ir_tensor_clone(src->tensors[i]);
    if (!t) return -1;
    ir_bundle_put(dst, src->names[i], t);
  }
  return 0;
}

/* Returns a new bundle holding copies of 'a' and 'b'. */
ir_bundle *rt_bundle_merge(const ir_bundle *a, const ir_bundle *b, ir_diag *d) {
  int clash = 0;
  for (int i = 0; i < b->count; i++)
    if (ir_bundle_get(a, b->names[i])) {
      ir_diag_error(d, NULL, 0, "tensor '%s' is given twice (in the inputs and in the weights)",
                    b->names[i]);
      clash++;
    }
  if (clash) return NULL;
  ir_bundle *m = ir_bundle_create();
  if (!m || copy_into(m, a) || copy_into(m, b)) {
    ir_bundle_destroy(m);
    ir_diag_error(d, NULL, 0, "out of memory merging tensors");
    return NULL;
  }
  for (int i = 0; i < a->nmeta; i++) ir_bundle_set_meta(m, a->meta_keys[i], a->meta_values[i]);
  return m;
}
