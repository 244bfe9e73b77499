/* Simplification: constant folding, trivial shape ops, broadcast/reduce
 * pairs, broadcast operands read directly, division by a small divisor as a
 * multiply by its reciprocal, common subexpression elimination and dead
 * code elimination. Runs after autodiff so the backward graph is not
 * bloated. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir_interp.h"
#include "passes.h"

typedef struct {
  const ir_graph *old;
  ir_graph *ng;
  int *map;   /* old id -> new id */
  int *table; /* CSE hash table of new ids, -1 empty */
  size_t tcap;
  pass_simplify_stats *st;
  ir_diag *d;
} simp;

static int is_const(const ir_graph *g, int id) { return g->nodes[id]->op == IR_OP_const; }
static double const_value(const ir_graph *g, int id) { return ir_get_float(g->nodes[id], "value"); }

/* Hash of what makes two nodes compute the same value. */
static uint64_t node_hash(const ir_node *n) {
  uint64_t h = 1469598103934665603ull;
#define MIX(v) (h = (h ^ (uint64_t)(v)) * 1099511628211ull)
  MIX(n->op);
  MIX(n->nin);
  for (int i = 0; i < n->nin; i++) MIX(n->in[i]);
  for (int i = 0; i < n->type.rank; i++) MIX(n->type.dims[i]);
  MIX(n->type.dtype);
  for (int a = 0; a < IR_MAX_ATTRS; a++) {
    MIX(n->attrs[a].n);
    for (int k = 0; k < n->attrs[a].n; k++) MIX(n->attrs[a].ints[k]);
    uint64_t fb;
    memcpy(&fb, &n->attrs[a].f, sizeof fb);
    MIX(fb);
    for (const char *s = n->attrs[a].s; s && *s; s++) MIX(*s);
  }
#undef MIX
  return h;
}

/* Returns 1 if a and b compute the same value. */
static int node_same(const ir_node *a, const ir_node *b) {
  if (a->op != b->op || a->nin != b->nin || !ir_type_equal(&a->type, &b->type)) return 0;
  for (int i = 0; i < a->nin; i++)
    if (a->in[i] != b->in[i]) return 0;
  for (int k = 0; k < IR_MAX_ATTRS; k++) {
    const ir_attr *x = &a->attrs[k], *y = &b->attrs[k];
    if (x->n != y->n || memcmp(x->ints, y->ints, sizeof(int64_t) * (size_t)x->n)) return 0;
    if (memcmp(&x->f, &y->f, sizeof x->f)) return 0;
    if ((x->s == NULL) != (y->s == NULL) || (x->s && strcmp(x->s, y->s))) return 0;
  }
  return 1;
}

/* Finds an identical earlier node of the new graph, or records 'id'. */
static int cse_lookup(simp *s, int id) {
  const ir_node *n = s->ng->nodes[id];
  if (n->op == IR_OP_input || n->op == IR_OP_param || n->op == IR_OP_buffer) return id;
  if ((size_t)s->ng->nnodes * 2 >= s->tcap) {
    size_t cap = s->tcap ? s->tcap * 2 : 1024;
    while ((size_t)s->ng->nnodes * 2 >= cap) cap *= 2;
    int *t = malloc(cap * sizeof *t);
    if (!t) return id;
    for (size_t i = 0; i < cap; i++) t[i] = -1;
    for (size_t i = 0; i < s->tcap; i++)
      if (s->table[i] >= 0) {
        size_t j = node_hash(s->ng->nodes[s->table[i]]) & (cap - 1);
        while (t[j] >= 0) j = (j + 1) & (cap - 1);
        t[j] = s->table[i];
      }
    free(s->table);
    s->table = t;
    s->tcap = cap;
  }
  size_t j = node_hash(n) & (s->tcap - 1);
  while (s->table[j] >= 0) {
    if (s->table[j] != id && node_same(s->ng->nodes[s->table[j]], n)) return s->table[j];
    j = (j + 1) & (s->tcap - 1);
  }
  s->table[j] = id;
  return id;
}

/* Emits a const of type t and value v into the new graph. */
static int emit_const(simp *s, double v, ir_type t, ir_loc loc) {
  return ir_graph_source(s->ng, IR_OP_const, NULL, v, t, loc)->id;
}

/* Evaluates elementwise 'n' on scalar constants 'ins' (new ids) with the
 * interpreter, the one definition of every op; returns 0 and the value. */
static int fold_elementwise(simp *s, const ir_node *n, const int *ins, double *out) {
  ir_graph *t = ir_graph_create("fold");
  int ids[3];
  for (int i = 0; i < n->nin && i < 3; i++) {
    ir_type ty = ir_type_make(s->ng->nodes[ins[i]]->type.dtype, 0, NULL);
    ids[i] = ir_graph_source(t, IR_OP_const, NULL, const_value(s->ng, ins[i]), ty, (ir_loc){0})->id;
  }
  ir_node *m = ir_graph_append(t, n->op, ids, n->nin, (ir_loc){0});
  for (int a = 0; a < IR_MAX_ATTRS; a++)
    if (n->attrs[a].s) ir_set_str(m, ir_op_info_get(n->op)->attrs[a].name, n->attrs[a].s);
  int rc = -1;
  if (!ir_infer_node(t, m, NULL)) {
    ir_graph_add_output(t, "y", m->id);
    ir_bundle *in = ir_bundle_create(), *res = ir_bundle_create();
    ir_diag *d = ir_diag_create();
    if (ir_interp_run(t, in, IR_INTERP_NATIVE, res, d) == ATTNC_OK) {
      *out = ir_tensor_get(ir_bundle_get(res, "y"), 0);
      rc = 0;
    }
    ir_diag_destroy(d);
    ir_bundle_destroy(in);
    ir_bundle_destroy(res);
  }
  ir_graph_destroy(t);
  return rc;
}

/* Returns the new id that 'n' (with new operands 'ins') simplifies to, or -1. */
static int simplify_node(simp *s, const ir_node *n, const int *ins) {
  const ir_op_info *info = ir_op_info_get(n->op);
  int all_const = n->nin > 0;
  for (int i = 0; i < n->nin; i++) all_const &= is_const(s->ng, ins[i]);
  const ir_type *x = n->nin ? &s->ng->nodes[ins[0]]->type : NULL;
  double v;
  if (all_const && (info->flags & (IR_OPF_UNARY | IR_OPF_BINARY | IR_OPF_ELEMENTWISE)) &&
      !fold_elementwise(s, n, ins, &v))
    return emit_const(s, v, n->type, n->loc);
  if (all_const && (n->op == IR_OP_reshape || n->op == IR_OP_broadcast_to || n->op == IR_OP_transpose ||
                    n->op == IR_OP_slice || n->op == IR_OP_reduce_mean || n->op == IR_OP_reduce_max ||
                    n->op == IR_OP_reduce_min))
    return emit_const(s, const_value(s->ng, ins[0]), n->type, n->loc);
  if (all_const && n->op == IR_OP_reduce_sum)
    return emit_const(s, const_value(s->ng, ins[0]) * (double)(ir_type_numel(x) / ir_type_numel(&n->type)),
                      n->type, n->loc);
  if ((n->op == IR_OP_reshape || n->op == IR_OP_broadcast_to) && ir_type_equal(x, &n->type)) return ins[0];
  if (n->op == IR_OP_transpose) {
    int np, id = 1;
    const int64_t *p = ir_get_ints(n, "perm", &np);
    for (int i = 0; i < np; i++) id &= p[i] == i;
    if (id) return ins[0];
  }
  /* x*1, 1*x, x/1, x+0, 0+x, x-0 when the result has x's type. */
  if (info->flags & IR_OPF_BINARY) {
    for (int side = 0; side < 2; side++) {
      int c = ins[side], other = ins[1 - side];
      if (!is_const(s->ng, c) || !ir_type_equal(&s->ng->nodes[other]->type, &n->type)) continue;
      double cv = const_value(s->ng, c);
      if ((n->op == IR_OP_mul && cv == 1) || (n->op == IR_OP_add && cv == 0) ||
          (side == 1 && ((n->op == IR_OP_div && cv == 1) || (n->op == IR_OP_sub && cv == 0))))
        return other;
    }
  }
  return -1;
}

/* Replaces each operand of elementwise 'n' that is a broadcast_to by the
 * value it broadcasts, when the operands still broadcast to n's type: the
 * kernel then reads the small value with a zero stride instead of a
 * materialized copy of the feature map. Counts the operands it replaced. */
static int fold_broadcast_operands(simp *s, const ir_node *n, int *ins) {
  if (!ir_op_elementwise(n->op) || n->nin < 2) return 0;
  int folded = 0;
  for (int k = 0; k < n->nin; k++) {
    const ir_node *b = s->ng->nodes[ins[k]];
    if (b->op != IR_OP_broadcast_to || b->nin != 1) continue;
    ir_type acc = s->ng->nodes[b->in[0]]->type, o;
    int ok = 1;
    for (int j = 0; ok && j < n->nin; j++) {
      if (j == k) continue;
      ok = ir_broadcast_shapes(&acc, &s->ng->nodes[ins[j]]->type, &o) == 0;
      acc = o;
    }
    acc.dtype = n->type.dtype;
    if (!ok || acc.rank != n->type.rank || memcmp(acc.dims, n->type.dims, sizeof acc.dims[0] * (size_t)acc.rank))
      continue;
    ins[k] = b->in[0];
    folded++;
  }
  return folded;
}

/* Appends 'op' on operands a, b to the new graph with its inferred type,
 * merged with an identical node; returns its id or -1. */
static int emit_binary(simp *s, ir_opcode op, int a, int b, ir_loc loc) {
  ir_node *m = ir_graph_append(s->ng, op, (int[]){a, b}, 2, loc);
  if (ir_infer_node(s->ng, m, NULL)) return -1;
  return cse_lookup(s, m->id);
}

/* A float division a / b whose divisor is smaller than the result (a
 * per-channel or per-pixel count, a scalar) becomes a * (1/b): the
 * reciprocal is taken once per divisor element, and the feature-map loop
 * multiplies (a vector division costs several times a multiply, and HAM's
 * attention gradient divides a map by the channel max's tie count). A
 * constant divisor folds to its reciprocal. Returns the new id or -1. */
static int reciprocal_div(simp *s, const ir_node *n, const int *ins) {
  if (n->op != IR_OP_div || n->nin != 2 || (n->type.dtype != IR_F32 && n->type.dtype != IR_F64)) return -1;
  const ir_node *b = s->ng->nodes[ins[1]];
  if (ir_type_numel(&b->type) >= ir_type_numel(&n->type)) return -1;
  ir_type scalar = {.dtype = b->type.dtype, .rank = 0};
  int r = is_const(s->ng, ins[1]) ? emit_const(s, 1.0 / const_value(s->ng, ins[1]), b->type, n->loc)
                                  : emit_binary(s, IR_OP_div, emit_const(s, 1.0, scalar, n->loc), ins[1], n->loc);
  return r < 0 ? -1 : emit_binary(s, IR_OP_mul, ins[0], r, n->loc);
}

/* Copies 'n' into graph 'to' with operands 'ins'; returns its new id. */
static int copy_node(ir_graph *to, const ir_node *n, const int *ins) { return ir_graph_copy_node(to, n, ins)->id; }

/* Rewrites the old graph into s->ng, folding and merging as it goes. */
static int rewrite(simp *s) {
  int ins[64];
  for (int i = 0; i < s->old->nnodes; i++) {
    const ir_node *n = s->old->nodes[i];
    int *in = n->nin <= 64 ? ins : malloc((size_t)n->nin * sizeof(int));
    if (!in) return -1;
    for (int k = 0; k < n->nin; k++) in[k] = s->map[n->in[k]];
    s->st->folded += fold_broadcast_operands(s, n, in);
    int r = simplify_node(s, n, in);
    if (r < 0) r = reciprocal_div(s, n, in);
    if (r >= 0) {
      s->st->folded++;
    } else {
      int id = copy_node(s->ng, n, in);
      r = cse_lookup(s, id);
      if (r != id) s->st->cse++;
    }
    if (in != ins) free(in);
    s->map[i] = r;
  }
  for (int i = 0; i < s->old->noutputs; i++)
    ir_graph_add_output(s->ng, s->old->outputs[i].name, s->map[s->old->outputs[i].node]);
  return 0;
}

/* Returns a copy of 'g' without the nodes no output depends on. */
ir_graph *pass_copy_live(const ir_graph *g, int *removed) {
  char *live = calloc((size_t)g->nnodes + 1, 1);
  int *map = malloc(((size_t)g->nnodes + 1) * sizeof(int));
  if (!live || !map) {
    free(live);
    free(map);
    return NULL;
  }
  for (int i = 0; i < g->noutputs; i++) live[g->outputs[i].node] = 1;
  for (int i = g->nnodes - 1; i >= 0; i--) {
    const ir_node *n = g->nodes[i];
    if (n->op == IR_OP_input || n->op == IR_OP_param || n->op == IR_OP_buffer) live[i] = 1;
    if (live[i])
      for (int k = 0; k < n->nin; k++) live[n->in[k]] = 1;
  }
  ir_graph *c = ir_graph_create(g->name);
  int ins[64];
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    if (!live[i]) {
      map[i] = -1;
      (*removed)++;
      continue;
    }
    int *in = n->nin <= 64 ? ins : malloc((size_t)n->nin * sizeof(int));
    for (int k = 0; in && k < n->nin; k++) in[k] = map[n->in[k]];
    map[i] = copy_node(c, n, in ? in : ins);
    if (in != ins) free(in);
  }
  for (int i = 0; i < g->noutputs; i++) ir_graph_add_output(c, g->outputs[i].name, map[g->outputs[i].node]);
  free(live);
  free(map);
  return c;
}

/* Simplifies 'g' in place. */
attnc_status pass_simplify(ir_graph *g, pass_simplify_stats *stats, ir_diag *d) {
  pass_simplify_stats local;
  if (!stats) stats = &local;
  memset(stats, 0, sizeof *stats);
  stats->before = g->nnodes;
  simp s = {g, ir_graph_create(g->name), malloc(((size_t)g->nnodes + 1) * sizeof(int)), NULL, 0, stats, d};
  if (!s.map || rewrite(&s)) {
    free(s.map);
    free(s.table);
    ir_graph_destroy(s.ng);
    ir_diag_error(d, NULL, 0, "simplify: out of memory");
    return ATTNC_ENOMEM;
  }
  free(s.map);
  free(s.table);
  ir_graph *c = pass_copy_live(s.ng, &stats->dead);
  ir_graph_destroy(s.ng);
  if (!c) return ATTNC_ENOMEM;
  ir_graph_take(g, c);
  stats->after = g->nnodes;
  return ATTNC_OK;
}
