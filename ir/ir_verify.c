/* The IR verifier: checks a whole graph (ids, opcodes, arity, attributes,
 * SSA dominance, source nodes, inferred types, outputs) and reports every
 * problem it finds, each naming the op, its operands with their shapes and
 * the Lua location of the node. A node whose operands are invalid is not
 * type-checked, so one bad value does not flood the report. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

typedef struct {
  const ir_graph *g;
  ir_diag *d;
  int errors;
  unsigned char *bad; /* per node: invalid or not type-checked */
} verifier;

/* Formats t like ir_type_format, but safely for a corrupt rank. */
static void format_type(const ir_type *t, char *buf, size_t size) {
  if (t->rank < 0 || t->rank > IR_MAX_RANK)
    snprintf(buf, size, "%s[<rank %d>]", ir_dtype_name(t->dtype), t->rank);
  else
    ir_type_format(t, buf, size);
}

/* Writes a description of node n ("%3 = add(%1: f32[2], %2: f32[2])", or
 * "%0 = param 'w' f32[3]" for a source) into buf. */
static void describe(const ir_graph *g, const ir_node *n, char *buf, size_t size) {
  const ir_op_info *info = ir_op_info_get(n->op);
  char t[128];
  format_type(&n->type, t, sizeof t);
  if (!info) {
    snprintf(buf, size, "%%%d = <op %d>", n->id, (int)n->op);
    return;
  }
  if (info->flags & IR_OPF_SOURCE) {
    if (n->op == IR_OP_const)
      snprintf(buf, size, "%%%d = const %g %s", n->id, n->attrs[0].f, t);
    else
      snprintf(buf, size, "%%%d = %s '%s' %s", n->id, info->name, n->attrs[0].s ? n->attrs[0].s : "", t);
    return;
  }
  size_t o = (size_t)snprintf(buf, size, "%%%d = %s(", n->id, info->name);
  for (int i = 0; i < n->nin && n->in && o + 64 < size; i++) {
    int id = n->in[i];
    char at[128] = "?";
    if (id >= 0 && id < g->nnodes && g->nodes[id]) format_type(&g->nodes[id]->type, at, sizeof at);
    o += (size_t)snprintf(buf + o, size - o, "%s%%%d: %s", i ? ", " : "", id, at);
  }
  if (o < size) snprintf(buf + o, size - o, ")");
}

/* Reports a problem with node n: "file:line: <description>: <message>",
 * followed by the module scope when the node has one. */
static void node_error(verifier *v, const ir_node *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void node_error(verifier *v, const ir_node *n, const char *fmt, ...) {
  char desc[1024], msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  describe(v->g, n, desc, sizeof desc);
  if (n->loc.scope && n->loc.scope[0])
    ir_diag_error(v->d, n->loc.file, n->loc.line, "%s: %s (in %s)", desc, msg, n->loc.scope);
  else
    ir_diag_error(v->d, n->loc.file, n->loc.line, "%s: %s", desc, msg);
  v->errors++;
}

/* Reports a problem that belongs to no node (graph outputs). */
static void graph_error(verifier *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void graph_error(verifier *v, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ir_diag_verror(v->d, NULL, 0, fmt, ap);
  va_end(ap);
  v->errors++;
}

static const char *const kind_names[] = {"int", "ints", "float", "str"};

/* Checks that every attribute of n is set and well formed. Returns 0 if so. */
static int check_attrs(verifier *v, const ir_node *n, const ir_op_info *info) {
  int before = v->errors;
  for (int i = 0; i < IR_MAX_ATTRS; i++) {
    const ir_attr *a = &n->attrs[i];
    if (i >= info->nattrs) {
      if (a->set) node_error(v, n, "attribute slot %d is set but %s has %d attributes", i, info->name, info->nattrs);
      continue;
    }
    const ir_attr_spec *s = &info->attrs[i];
    if (!a->set) {
      node_error(v, n, "attribute %s (%s%s) is missing", s->name, kind_names[s->kind],
                 s->has_default ? ", its default was cleared" : ", no default");
      continue;
    }
    if (s->kind == IR_ATTR_INT && a->n != 1)
      node_error(v, n, "int attribute %s holds %d values", s->name, a->n);
    else if (s->kind == IR_ATTR_INTS && (a->n < 0 || a->n > IR_MAX_INTS))
      node_error(v, n, "ints attribute %s has a count of %d (0..%d)", s->name, a->n, IR_MAX_INTS);
    else if (s->kind == IR_ATTR_STR && !a->s)
      node_error(v, n, "str attribute %s is set but has no string", s->name);
    else if (s->kind == IR_ATTR_FLOAT && n->op != IR_OP_const && isnan(a->f))
      node_error(v, n, "float attribute %s is NaN", s->name);
  }
  return v->errors > before ? -1 : 0;
}

/* Checks the given type of a source node and its name or value. Returns 0
 * if its type is usable by its users (a bad name does not taint them). */
static int check_source(verifier *v, const ir_node *n) {
  const ir_type *t = &n->type;
  int before = v->errors;
  if ((unsigned)t->dtype > IR_I64) node_error(v, n, "invalid dtype %d", (int)t->dtype);
  if (t->rank < 0 || t->rank > IR_MAX_RANK) {
    node_error(v, n, "rank %d outside 0..%d", t->rank, IR_MAX_RANK);
  } else {
    for (int i = 0; i < t->rank; i++)
      if (t->dims[i] < 0) node_error(v, n, "dimension %d is negative (%lld)", i, (long long)t->dims[i]);
  }
  int type_ok = v->errors == before;
  if (n->op == IR_OP_const) {
    double x = n->attrs[0].f;
    if (t->dtype == IR_I64 && (!isfinite(x) || x != floor(x)))
      node_error(v, n, "an i64 const needs an integral value, has %g", x);
  } else if (!n->attrs[0].s || !n->attrs[0].s[0]) {
    node_error(v, n, "%s has an empty name", ir_op_info_get(n->op)->name);
  }
  return type_ok ? 0 : -1;
}

/* Reports input/param/buffer nodes that share a name, naming both ids. */
static void check_source_names(verifier *v) {
  const ir_graph *g = v->g;
  for (int i = 0; i < g->nnodes; i++) {
    const char *a = g->nodes[i] ? ir_node_name(g->nodes[i]) : NULL;
    if (!a || !a[0]) continue;
    for (int j = 0; j < i; j++) {
      const char *b = g->nodes[j] ? ir_node_name(g->nodes[j]) : NULL;
      if (b && !strcmp(a, b)) {
        node_error(v, g->nodes[i], "name '%s' is already used by %%%d (%s)", a, j,
                   ir_op_info_get(g->nodes[j]->op)->name);
        break;
      }
    }
  }
}

/* Checks operand ids of n: in range and defined before n. Returns 0 if so;
 * sets *tainted when an operand is itself invalid. */
static int check_operands(verifier *v, const ir_node *n, int index, int *tainted) {
  int before = v->errors;
  if (n->nin > 0 && !n->in) {
    node_error(v, n, "has %d operands but no operand list", n->nin);
    return -1;
  }
  for (int k = 0; k < n->nin; k++) {
    int id = n->in[k];
    if (id < 0 || id >= v->g->nnodes || !v->g->nodes[id])
      node_error(v, n, "operand %%%d of %%%d refers to no node (graph has %d)", id, index, v->g->nnodes);
    else if (id >= index)
      node_error(v, n, "operand %%%d of %%%d is defined after its use", id, index);
    else if (v->bad[id])
      *tainted = 1;
  }
  return v->errors > before ? -1 : 0;
}

/* Checks a non-source node's stored type against shape inference. */
static void check_type(verifier *v, const ir_node *n) {
  ir_type t;
  if (ir_infer_type(v->g, n, &t, v->d)) { /* inference reported the reason */
    v->errors++;
    v->bad[n->id] = 1;
    return;
  }
  if (!ir_type_equal(&t, &n->type)) {
    char want[128], got[128];
    v->bad[n->id] = 1;
    format_type(&n->type, got, sizeof got);
    ir_type_format(&t, want, sizeof want);
    node_error(v, n, "declared %s but operands give %s", got, want);
  }
}

/* Verifies node 'index'. */
static void check_node(verifier *v, int index) {
  const ir_node *n = v->g->nodes[index];
  if (!n) {
    graph_error(v, "node %%%d is missing (NULL)", index);
    v->bad[index] = 1;
    return;
  }
  int ok = 1;
  v->bad[index] = 1; /* until proven usable */
  if (n->id != index) {
    node_error(v, n, "node at index %d has id %d", index, n->id);
    return; /* every other message would name the wrong id */
  }
  const ir_op_info *info = ir_op_info_get(n->op);
  if (!info) {
    node_error(v, n, "invalid opcode %d (valid: 0..%d)", (int)n->op, IR_OP_COUNT - 1);
    return;
  }
  if (n->nin < info->min_in || (info->max_in >= 0 && n->nin > info->max_in)) {
    if (info->max_in < 0)
      node_error(v, n, "%s takes %d or more operands, has %d", info->name, info->min_in, n->nin);
    else if (info->min_in == info->max_in)
      node_error(v, n, "%s takes %d operands, has %d", info->name, info->min_in, n->nin);
    else
      node_error(v, n, "%s takes %d..%d operands, has %d", info->name, info->min_in, info->max_in, n->nin);
    ok = 0;
  }
  if (check_attrs(v, n, info)) ok = 0;
  if (info->flags & IR_OPF_SOURCE) {
    if (check_source(v, n) == 0 && ok) v->bad[index] = 0;
    return;
  }
  int tainted = 0;
  if (n->nin > 0 && check_operands(v, n, index, &tainted)) ok = 0;
  if (ok && !tainted) { /* else not type-checked, and so neither are its users */
    v->bad[index] = 0;
    check_type(v, n);
  }
}

/* Checks the graph outputs: at least one, named uniquely, on existing nodes. */
static void check_outputs(verifier *v) {
  const ir_graph *g = v->g;
  if (g->noutputs < 1) graph_error(v, "graph '%s' has no outputs", g->name ? g->name : "");
  for (int i = 0; i < g->noutputs; i++) {
    const ir_output *o = &g->outputs[i];
    if (!o->name || !o->name[0]) graph_error(v, "output %d (%%%d) has an empty name", i, o->node);
    if (o->node < 0 || o->node >= g->nnodes)
      graph_error(v, "output %d '%s' refers to %%%d, but the graph has nodes %%0..%%%d", i, o->name ? o->name : "",
                  o->node, g->nnodes - 1);
    for (int j = 0; j < i && o->name && o->name[0]; j++)
      if (g->outputs[j].name && !strcmp(g->outputs[j].name, o->name)) {
        graph_error(v, "outputs %d (%%%d) and %d (%%%d) are both named '%s'", j, g->outputs[j].node, i, o->node,
                    o->name);
        break;
      }
  }
}

/* Checks every node and output of g; reports each problem; returns the count. */
int ir_verify(const ir_graph *g, ir_diag *d) {
  verifier v = {g, d, 0, NULL};
  if (!g) {
    ir_diag_error(d, NULL, 0, "no graph to verify");
    return 1;
  }
  v.bad = calloc((size_t)(g->nnodes > 0 ? g->nnodes : 1), 1);
  if (!v.bad) {
    ir_diag_error(d, NULL, 0, "verifier: out of memory");
    return 1;
  }
  for (int i = 0; i < g->nnodes; i++) check_node(&v, i);
  check_source_names(&v);
  check_outputs(&v);
  free(v.bad);
  return v.errors;
}
