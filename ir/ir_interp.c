/* The reference interpreter's driver: verifies the graph, runs one kernel per
 * node in program order over double-valued tensors, frees each value after
 * its last use, binds source nodes from the input bundle and converts the
 * graph outputs back into host tensors. Also the source-op kernels and the
 * shape helpers shared by the kernels in ir_interp_*.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir_interp_ops.h"

/* Largest value the interpreter allocates, in bytes: beyond this a graph is
 * reported as too large rather than handed to malloc. */
#define INTERP_MAX_BYTES ((int64_t)1 << 36)

/* The kernel of every op, indexed by opcode. */
static const ir_interp_kernel kernels[IR_OP_COUNT] = {
#define IR_OP(name, mi, ma, fl, at) ir_interp_op_##name,
#include "ops.def"
#undef IR_OP
};

/* Reports a runtime error about node 'n' at its location; returns -1. */
int ir_interp_fail(const ir_interp_ctx *c, const ir_node *n, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  char scope[300] = "";
  if (n->loc.scope) snprintf(scope, sizeof scope, " (in %s)", n->loc.scope);
  ir_diag_error(c->d, n->loc.file, n->loc.line, "%%%d = %s%s: %s", n->id, ir_op_info_get(n->op)->name,
                scope, msg);
  return -1;
}

/* Fills st with the row-major strides of 't'. */
void ir_interp_strides(const ir_type *t, int64_t *st) {
  int64_t s = 1;
  for (int i = t->rank - 1; i >= 0; i--) {
    st[i] = s;
    s *= t->dims[i];
  }
}

/* Fills st with the strides of 'in' broadcast to 'out' (0 on broadcast axes). */
void ir_interp_bcast_strides(const ir_type *in, const ir_type *out, int64_t *st) {
  int64_t own[IR_MAX_RANK];
  ir_interp_strides(in, own);
  for (int i = 0; i < out->rank; i++) {
    int j = in->rank - out->rank + i;
    st[i] = (j < 0 || in->dims[j] == 1) ? 0 : own[j];
  }
}

/* Returns the offset under strides 'st' of linear index 'i' of shape 'dims'. */
int64_t ir_interp_offset(int64_t i, int rank, const int64_t *dims, const int64_t *st) {
  int64_t off = 0;
  for (int k = rank - 1; k >= 0; k--) {
    if (dims[k] == 0) return 0;
    off += (i % dims[k]) * st[k];
    i /= dims[k];
  }
  return off;
}

/* Returns 'axis' normalized into [0, rank). */
int ir_interp_axis(int64_t axis, int rank) { return (int)(axis < 0 ? axis + rank : axis); }

/* Splits 't' around 'axis' into outer * len * inner. */
void ir_interp_split(const ir_type *t, int axis, int64_t *outer, int64_t *len, int64_t *inner) {
  *outer = 1;
  *inner = 1;
  for (int i = 0; i < axis; i++) *outer *= t->dims[i];
  for (int i = axis + 1; i < t->rank; i++) *inner *= t->dims[i];
  *len = t->dims[axis];
}

/* ---- source kernels ---- */

static int is_float(ir_dtype t) { return t == IR_F32 || t == IR_F64; }

/* Binds a named source (input, param, buffer) to its tensor in c->inputs:
 * same shape, and either both float or both i64. */
static int bind_source(const ir_interp_ctx *c, const ir_node *n, ir_ival *out) {
  const char *name = ir_node_name(n) ? ir_node_name(n) : "";
  const char *kind = ir_op_info_get(n->op)->name;
  char want[160], got[160];
  ir_type_format(&n->type, want, sizeof want);
  const ir_tensor *t = c->inputs ? ir_bundle_get(c->inputs, name) : NULL;
  if (!t) return ir_interp_fail(c, n, "%s '%s' (%s) is missing from the inputs", kind, name, want);
  ir_type_format(&t->type, got, sizeof got);
  int same = t->type.rank == n->type.rank &&
             (t->type.dtype == n->type.dtype || (is_float(t->type.dtype) && is_float(n->type.dtype)));
  for (int i = 0; same && i < n->type.rank; i++) same = t->type.dims[i] == n->type.dims[i];
  if (!same) return ir_interp_fail(c, n, "%s '%s' expects %s, the inputs give %s", kind, name, want, got);
  for (int64_t i = 0; i < out->numel; i++) out->data[i] = ir_tensor_get(t, i);
  return 0;
}

/* input: a tensor from the input bundle. */
int ir_interp_op_input(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in, ir_ival *out) {
  (void)in;
  return bind_source(c, n, out);
}

/* param: a tensor from the input bundle. */
int ir_interp_op_param(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in, ir_ival *out) {
  (void)in;
  return bind_source(c, n, out);
}

/* buffer: a tensor from the input bundle. */
int ir_interp_op_buffer(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in, ir_ival *out) {
  (void)in;
  return bind_source(c, n, out);
}

/* const: every element is the attribute 'value' (truncated for i64). */
int ir_interp_op_const(const ir_interp_ctx *c, const ir_node *n, const ir_ival *const *in, ir_ival *out) {
  (void)c;
  (void)in;
  double v = ir_get_float(n, "value");
  if (out->type.dtype == IR_I64) v = trunc(v);
  for (int64_t i = 0; i < out->numel; i++) out->data[i] = v;
  return 0;
}

/* ---- driver ---- */

/* Allocates the zero-filled value of node 'n' into *v; returns 0, or -1
 * after reporting when it is too large or memory runs out. */
static int value_alloc(const ir_interp_ctx *c, const ir_node *n, ir_ival *v) {
  v->type = n->type;
  v->numel = ir_type_numel(&n->type);
  if (v->numel < 0 || v->numel > INTERP_MAX_BYTES / (int64_t)sizeof(double)) {
    char t[160];
    ir_type_format(&n->type, t, sizeof t);
    return ir_interp_fail(c, n, "value %s is too large for the interpreter", t);
  }
  v->data = calloc(v->numel ? (size_t)v->numel : 1, sizeof(double));
  if (!v->data) {
    char t[160];
    ir_type_format(&n->type, t, sizeof t);
    return ir_interp_fail(c, n, "out of memory allocating %s", t);
  }
  return 0;
}

/* Rounds every element of an f32 value to float (IR_INTERP_NATIVE). */
static void round_to_float(ir_ival *v) {
  for (int64_t i = 0; i < v->numel; i++) v->data[i] = (double)(float)v->data[i];
}

/* Returns last[i] = index of the last node using value i, g->nnodes for
 * graph outputs, -1 for values nobody uses (caller frees); NULL if out of
 * memory. */
static int *last_uses(const ir_graph *g) {
  int *last = malloc((size_t)(g->nnodes ? g->nnodes : 1) * sizeof *last);
  if (!last) return NULL;
  for (int i = 0; i < g->nnodes; i++) last[i] = -1;
  for (int i = 0; i < g->nnodes; i++)
    for (int k = 0; k < g->nodes[i]->nin; k++) last[g->nodes[i]->in[k]] = i;
  for (int i = 0; i < g->noutputs; i++) last[g->outputs[i].node] = g->nnodes;
  return last;
}

/* Converts value 'v' into a host tensor of the output dtype of 'mode'; NULL
 * if out of memory. */
static ir_tensor *value_to_tensor(const ir_ival *v, ir_interp_mode mode) {
  ir_type t = v->type;
  if (mode == IR_INTERP_F64 && is_float(t.dtype)) t.dtype = IR_F64;
  ir_tensor *x = ir_tensor_create(t);
  if (!x) return NULL;
  for (int64_t i = 0; i < v->numel; i++) ir_tensor_set(x, i, v->data[i]);
  return x;
}

/* Runs every node of c->g in order into vals; returns a status. */
static attnc_status run_nodes(const ir_interp_ctx *c, ir_ival *vals, const int *last) {
  const ir_graph *g = c->g;
  int maxin = 1;
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->nin > maxin) maxin = g->nodes[i]->nin;
  const ir_ival **args = malloc((size_t)maxin * sizeof *args);
  if (!args) {
    ir_diag_error(c->d, NULL, 0, "interpreter: out of memory");
    return ATTNC_ENOMEM;
  }
  attnc_status st = ATTNC_OK;
  for (int i = 0; i < g->nnodes && st == ATTNC_OK; i++) {
    const ir_node *n = g->nodes[i];
    if (value_alloc(c, n, &vals[i])) {
      st = ATTNC_ENOMEM;
      break;
    }
    for (int k = 0; k < n->nin; k++) args[k] = &vals[n->in[k]];
    if (kernels[n->op](c, n, args, &vals[i])) {
      st = (ir_op_info_get(n->op)->flags & IR_OPF_SOURCE) ? ATTNC_EINVAL : ATTNC_ERUNTIME;
      break;
    }
    if (c->mode == IR_INTERP_NATIVE && n->type.dtype == IR_F32) round_to_float(&vals[i]);
    for (int k = 0; k < n->nin; k++) {
      ir_ival *a = &vals[n->in[k]];
      if (last[n->in[k]] == i && a->data) {
        free(a->data);
        a->data = NULL;
      }
    }
    if (last[i] < 0) {
      free(vals[i].data);
      vals[i].data = NULL;
    }
  }
  free(args);
  return st;
}

/* Runs graph 'g' on 'inputs' and fills 'outputs' (see ir_interp.h). */
attnc_status ir_interp_run(const ir_graph *g, const ir_bundle *inputs, ir_interp_mode mode,
                           ir_bundle *outputs, ir_diag *d) {
  if (!g || !outputs) {
    ir_diag_error(d, NULL, 0, "interpreter: no graph or no output bundle");
    return ATTNC_EINVAL;
  }
  ir_interp_ctx c = {g, inputs, mode, d};
  if (ir_verify(g, d)) return ATTNC_EVERIFY; /* kernels trust types and attributes */
  int *last = last_uses(g);
  ir_ival *vals = calloc((size_t)(g->nnodes ? g->nnodes : 1), sizeof *vals);
  ir_tensor **res = calloc((size_t)(g->noutputs ? g->noutputs : 1), sizeof *res);
  attnc_status st = ATTNC_OK;
  if (!last || !vals || !res) {
    ir_diag_error(d, NULL, 0, "interpreter: out of memory");
    st = ATTNC_ENOMEM;
  }
  if (st == ATTNC_OK) st = run_nodes(&c, vals, last);
  for (int i = 0; st == ATTNC_OK && i < g->noutputs; i++) {
    res[i] = value_to_tensor(&vals[g->outputs[i].node], mode);
    if (!res[i]) {
      ir_diag_error(d, NULL, 0, "interpreter: out of memory converting output '%s'", g->outputs[i].name);
      st = ATTNC_ENOMEM;
    }
  }
  for (int i = 0; res && i < g->noutputs; i++) {
    if (st == ATTNC_OK)
      ir_bundle_put(outputs, g->outputs[i].name, res[i]);
    else
      ir_tensor_destroy(res[i]);
  }
  for (int i = 0; vals && i < g->nnodes; i++) free(vals[i].data);
  free(vals);
  free(res);
  free(last);
  return st;
}
