/* Fusion groups in the JIT: one kernel per pass_fuse group (ABI in
 * cg_internal.h: args = [outs..., ins...]).
 *
 * PASS_FUSE_LOOP: one merged loop nest over the group type (the layout of
 * cg_ops_elementwise.c over every out and in), each element's members
 * computed in registers by cg_elementwise_value, only the outs stored.
 *
 * PASS_FUSE_SAMPLE: par = N; for each sample of the share, the steps in
 * order on that sample's slices. A one-member step calls the op's own
 * kernel, built from a temporary graph whose batched types have dims[0] = 1
 * (one internal, not inlined function per distinct step, shared by every
 * group that has it), over its whole range; a step of
 * several members is a loop nest as above on per-sample shapes, its
 * reductions accumulated as it goes: in memory at each element, or, for a
 * sum over the last axis (a channel's sum over H,W), in a local f64 sum
 * along each row, added to the result at the row's end. Members
 * that are not outs live in this thread's scratch, sized for one sample
 * (then the largest step scratch), so a sample's intermediates stay in L2. */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include "cg_internal.h"
#include "cg_reduce.h"

/* One step of a SAMPLE group. */
typedef struct {
  int start, count; /* members [start, start + count) */
  ir_graph *tg;     /* one-member step: its per-sample graph (sources, the node) */
  cg_plan plan;     /* one-member step: the plan of its kernel; else the loop's par */
} fstep;

struct cg_fused {
  const ir_graph *g;
  const pass_fuse_group *grp;
  int64_t batch;        /* SAMPLE: N */
  int nsteps;
  fstep *steps;
  int64_t *slot;        /* SAMPLE, per member: scratch offset of an internal member, -1 if none */
  int64_t inter_bytes;  /* SAMPLE: scratch of the internal members */
  cg_plan plan;
};

/* ---- group structure ---- */

static int index_of(const int *a, int n, int id) {
  for (int i = 0; i < n; i++)
    if (a[i] == id) return i;
  return -1;
}

static int member_ix(const pass_fuse_group *gr, int id) { return index_of(gr->members, gr->nmembers, id); }
static int out_ix(const pass_fuse_group *gr, int id) { return index_of(gr->outs, gr->nouts, id); }
static int in_ix(const pass_fuse_group *gr, int id) { return index_of(gr->ins, gr->nins, id); }

static int64_t align64(int64_t x) { return (x + 63) & ~(int64_t)63; }

/* 't' with its batch axis of size 1 (one sample). */
static ir_type sample_type(const ir_type *t) {
  ir_type s = *t;
  if (s.rank > 0) s.dims[0] = 1;
  return s;
}

static int64_t type_bytes(const ir_type *t) { return ir_type_numel(t) * (int64_t)ir_dtype_size(t->dtype); }

/* 1 if operand k of member 'n' is sliced per sample: pass_fuse_batched, or
 * when it does not call 'n' batch-local (hand-made groups), the rule of
 * FUSION.md (the weight of a conv / matmul is shared; otherwise same rank
 * and axis 0 of size N). */
static int batched_of(const ir_graph *g, const ir_node *n, int k, int64_t batch) {
  int r = pass_fuse_batched(g, n, k, batch);
  if (r >= 0) return r;
  const ir_type *t = &g->nodes[n->in[k]]->type;
  int weight_op = n->op == IR_OP_conv2d || n->op == IR_OP_conv1d || n->op == IR_OP_conv2d_grad_input ||
                  n->op == IR_OP_conv1d_grad_input || n->op == IR_OP_matmul;
  if (weight_op && k == 1) return 0;
  return t->rank == n->type.rank && t->rank > 0 && t->dims[0] == batch;
}

/* 1 if cg_elementwise_value computes 'op' (a LOOP member). */
static int loop_op(ir_opcode op) {
  if (op == IR_OP_broadcast_to || op == IR_OP_reshape) return 0;
  unsigned fl = ir_op_info_get(op)->flags;
  return (fl & (IR_OPF_UNARY | IR_OPF_BINARY | IR_OPF_ELEMENTWISE)) || op == IR_OP_cast || op == IR_OP_where;
}

/* 1 if 'a' broadcasts to exactly 't'. */
static int broadcasts_to(const ir_type *a, const ir_type *t) {
  ir_type o;
  return a->rank <= t->rank && ir_broadcast_shapes(a, t, &o) == 0 && ir_type_equal(&o, t);
}

/* ---- loop clusters (LOOP groups and multi-member SAMPLE steps) ---- */

enum { MAX_CLUSTER = 128 }; /* members of one loop nest */

/* The operands of one loop nest: stored members, then loaded values. */
typedef struct {
  const ir_graph *g;
  const int *mem; /* member node ids of the cluster */
  int count;
  int nops;
  int node[CG_EW_MAX_OPS];
  int store[CG_EW_MAX_OPS]; /* 1: a member stored, 0: a value loaded */
  int red[CG_EW_MAX_OPS];   /* stored reductions: 1 + cg_red_kind, else 0 */
  ir_type type[CG_EW_MAX_OPS];
  LLVMValueRef ptr[CG_EW_MAX_OPS];
  LLVMValueRef pre[CG_EW_MAX_OPS]; /* loaded operands invariant along the row, loaded before it */
  int rowred;                      /* 1: a sum reduces the last axis (accumulated along each row) */
  LLVMValueRef racc[CG_EW_MAX_OPS]; /* a reduction's local sum along the current row, else NULL */
} cluster;

/* The running combine of a reduction member, or -1 for other ops. */
static int red_kind(ir_opcode op) {
  switch (op) {
  case IR_OP_reduce_sum:
  case IR_OP_reduce_mean: return CG_RED_SUM;
  case IR_OP_reduce_max: return CG_RED_MAX;
  case IR_OP_reduce_min: return CG_RED_MIN;
  default: return -1;
  }
}

/* Reduction 'n' of an operand of (per-sample) type 't': its result with
 * the reduced axes kept as size 1, in *kt; the count of elements reduced
 * into each result. */
static int64_t kept_type(const ir_node *n, const ir_type *t, ir_type *kt) {
  int na;
  const int64_t *axes = ir_get_ints(n, "axes", &na);
  *kt = *t;
  kt->dtype = n->type.dtype;
  int64_t count = 1;
  for (int i = 0; i < na; i++) {
    int a = (int)(axes[i] < 0 ? axes[i] + t->rank : axes[i]);
    if (a < 0 || a >= t->rank || kt->dims[a] == 1) continue;
    count *= kt->dims[a];
    kt->dims[a] = 1;
  }
  return count;
}

/* Adds operand 'node' to 'c' unless there; returns its index or -1 if full. */
static int cluster_add(cluster *c, int node, int store, const ir_type *t) {
  for (int k = 0; k < c->nops; k++)
    if (c->node[k] == node && c->store[k] == store) return k;
  if (c->nops == CG_EW_MAX_OPS) return -1;
  c->node[c->nops] = node;
  c->store[c->nops] = store;
  c->type[c->nops] = *t;
  return c->nops++;
}

/* Per-row part of a cluster: loads the operands that stay the same along
 * the row (per-channel gates and scales) once. A row writes buffers in the
 * same arena or scratch as these, so LLVM could neither hoist the loads
 * nor vectorize the row with them inside (it has no run-time check for a
 * loop-invariant address). */
static void cluster_row(cg_emit *e, void *ctx, LLVMValueRef *idx, const int *inv) {
  cluster *c = ctx;
  for (int k = 0; k < c->nops; k++) {
    c->pre[k] = !c->store[k] && inv[k] ? cg_load(e, c->ptr[k], idx[k]) : NULL;
    c->racc[k] = NULL;
    /* the whole row adds into one result, in f64 as in the reduce_sum
     * kernel (cg_ops_reduce.c): both round nearly the same sum once,
     * whatever order they add in */
    if (c->rowred && c->red[k] && inv[k]) c->racc[k] = cg_var_new(e, e->t_f64, cg_const(e, IR_F64, 0));
  }
}

/* End of a row of a cluster with sums along its rows: adds each row's sum
 * into its result. */
static void cluster_row_end(cg_emit *e, void *ctx, LLVMValueRef *idx, const int *inv) {
  cluster *c = ctx;
  (void)inv;
  for (int k = 0; k < c->nops; k++)
    if (c->racc[k]) {
      ir_dtype dt = c->type[k].dtype;
      LLVMValueRef before = cg_convert(e, cg_load(e, c->ptr[k], idx[k]), IR_F64);
      LLVMValueRef sum = LLVMBuildFAdd(e->b, before, cg_var_get(e, c->racc[k]), "");
      cg_store(e, c->ptr[k], idx[k], cg_convert(e, sum, dt));
    }
}

/* Per-element body of a cluster: loads, members in order, stores. */
static attnc_status cluster_element(cg_emit *e, void *ctx, LLVMValueRef *idx) {
  cluster *c = ctx;
  LLVMValueRef loaded[CG_EW_MAX_OPS], val[CG_EW_MAX_OPS + MAX_CLUSTER];
  int valnode[CG_EW_MAX_OPS + MAX_CLUSTER], nval = 0;
  for (int k = 0; k < c->nops; k++)
    if (!c->store[k]) {
      loaded[k] = c->pre[k] ? c->pre[k] : cg_load(e, c->ptr[k], idx[k]);
      valnode[nval] = c->node[k];
      val[nval++] = loaded[k];
    }
  for (int j = 0; j < c->count; j++) {
    const ir_node *n = c->g->nodes[c->mem[j]];
    if (red_kind(n->op) >= 0) { /* its operand's value, accumulated at the store */
      int at = index_of(valnode, nval, n->in[0]);
      if (at < 0) return cg_error(e, "fused reduction %%%d has no operand value", n->id);
      valnode[nval] = n->id;
      val[nval++] = val[at];
      continue;
    }
    LLVMValueRef v[IR_MAX_IN_EW];
    for (int k = 0; k < n->nin && k < IR_MAX_IN_EW; k++) {
      int at = index_of(valnode, nval, n->in[k]);
      if (at < 0) return cg_error(e, "fused operand %%%d has no value", n->in[k]);
      v[k] = val[at];
    }
    ir_dtype in_dt = c->g->nodes[n->in[n->nin - 1]]->type.dtype;
    const ir_node *keep = e->n;
    e->n = n;
    LLVMValueRef r = cg_elementwise_value(e, n, in_dt, n->type.dtype, v);
    if (!r) return cg_error(e, "no elementwise kernel for this op");
    e->n = keep;
    valnode[nval] = n->id;
    val[nval++] = r;
  }
  for (int k = 0; k < c->nops; k++) {
    if (!c->store[k]) continue;
    LLVMValueRef v = val[index_of(valnode, nval, c->node[k])];
    if (c->racc[k]) {
      cg_var_set(e, c->racc[k], LLVMBuildFAdd(e->b, cg_var_get(e, c->racc[k]), cg_convert(e, v, IR_F64), ""));
      continue;
    }
    if (c->red[k]) v = cg_red_combine(e, (cg_red_kind)(c->red[k] - 1), cg_load(e, c->ptr[k], idx[k]), v);
    cg_store(e, c->ptr[k], idx[k], v);
  }
  return ATTNC_OK;
}

/* The layout of cluster 'c' over member type 't'. */
static void cluster_layout(const cluster *c, const ir_type *t, cg_ew_layout *l) {
  int64_t s[CG_EW_MAX_OPS][IR_MAX_RANK];
  for (int k = 0; k < c->nops; k++) {
    if (c->store[k] && !c->red[k])
      cg_strides(t, s[k]);
    else
      cg_broadcast_strides(&c->type[k], t, s[k]);
  }
  cg_ew_layout_make(t, c->nops, s, l);
}

/* Fills the operands of the cluster of members mem[0..count) of group
 * 'gr', all of type 't' (per-sample when 'batch' > 0): members stored when
 * 'stored' says so, every other operand loaded with its (per-sample) type.
 * Returns 0, or -1 if the members cannot form one loop nest. */
static int cluster_make(const ir_graph *g, const pass_fuse_group *gr, const int *mem, int count,
                        const int *stored, int64_t batch, const ir_type *t, cluster *c) {
  memset(c, 0, sizeof *c);
  c->g = g;
  c->mem = mem;
  c->count = count;
  if (count > MAX_CLUSTER) return -1;
  for (int j = 0; j < count; j++) {
    const ir_node *n = g->nodes[mem[j]];
    ir_type nt = batch > 0 ? sample_type(&n->type) : n->type;
    if (red_kind(n->op) >= 0) { /* a running reduction of an earlier member */
      ir_type kt;
      if (batch <= 0 || n->nin != 1 || index_of(mem, j, n->in[0]) < 0) return -1;
      ir_type xt = sample_type(&g->nodes[n->in[0]]->type);
      if (!ir_type_equal(&xt, t)) return -1;
      kept_type(n, t, &kt);
      int along_row = kt.dims[t->rank - 1] != t->dims[t->rank - 1];
      if (along_row && !pass_fuse_row_reduction(n->op)) return -1; /* only sums reassociate */
      int k = cluster_add(c, mem[j], 1, &kt);
      if (k < 0) return -1;
      c->rowred |= along_row;
      c->red[k] = 1 + red_kind(n->op);
      continue;
    }
    if (!loop_op(n->op) || !ir_type_equal(&nt, t) || n->nin < 1 || n->nin > 3) return -1;
    for (int k = 0; k < n->nin; k++) {
      int x = n->in[k];
      if (index_of(mem, j, x) >= 0) continue; /* computed earlier in the cluster */
      if (member_ix(gr, x) < 0 && in_ix(gr, x) < 0) return -1;
      const ir_type *xt = &g->nodes[x]->type;
      ir_type lt = *xt;
      if (batch > 0 && (member_ix(gr, x) >= 0 || batched_of(g, n, k, batch))) lt = sample_type(xt);
      if (member_ix(gr, x) >= 0 && batch <= 0) return -1; /* LOOP: members come from the cluster */
      if (!broadcasts_to(&lt, t) || cluster_add(c, x, 0, &lt) < 0) return -1;
    }
  }
  for (int j = 0; j < count; j++)
    if (stored[j] && red_kind(g->nodes[mem[j]]->op) < 0 && cluster_add(c, mem[j], 1, t) < 0) return -1;
  return 0;
}

/* ---- preparing ---- */

/* Copies node 'n' of 'g' into a new graph of per-sample operand types
 * (sources) and returns it, the node last; NULL if its per-sample type is
 * not the sample of its type. */
static ir_graph *step_graph(const ir_graph *g, const ir_node *n, int64_t batch) {
  ir_graph *tg = ir_graph_create("step");
  if (!tg) return NULL;
  int ins[64];
  if (n->nin > 64) {
    ir_graph_destroy(tg);
    return NULL;
  }
  ir_loc loc = ir_graph_loc(tg, n->loc.file, n->loc.line, n->loc.scope);
  for (int k = 0; k < n->nin; k++) {
    const ir_type *t = &g->nodes[n->in[k]]->type;
    ir_type st = batched_of(g, n, k, batch) ? sample_type(t) : *t;
    char name[16];
    snprintf(name, sizeof name, "a%d", k);
    ins[k] = ir_graph_source(tg, IR_OP_input, name, 0, st, loc)->id;
  }
  ir_node *c = ir_graph_append(tg, n->op, ins, n->nin, loc);
  const ir_op_info *info = ir_op_info_get(n->op);
  for (int a = 0; a < info->nattrs; a++) {
    c->attrs[a] = n->attrs[a];
    if (n->attrs[a].s) c->attrs[a].s = strdup(n->attrs[a].s);
    /* target shapes name the batch: one sample */
    int shape = !strcmp(info->attrs[a].name, "shape") || !strcmp(info->attrs[a].name, "in_shape");
    if (shape && c->attrs[a].set && c->attrs[a].n > 0 && c->attrs[a].ints[0] == batch) c->attrs[a].ints[0] = 1;
  }
  ir_diag *d = ir_diag_create();
  ir_type want = sample_type(&n->type);
  int ok = d && ir_infer_node(tg, c, d) == 0 && ir_type_equal(&c->type, &want);
  ir_diag_destroy(d);
  if (!ok) {
    ir_graph_destroy(tg);
    return NULL;
  }
  return tg;
}

/* Prepares a LOOP group: its plan. */
static int prepare_loop(cg_fused *k) {
  const pass_fuse_group *gr = k->grp;
  const ir_type *t = &k->g->nodes[gr->members[gr->nmembers - 1]]->type;
  int stored[4096];
  if (gr->nmembers > 4096) return -1;
  for (int j = 0; j < gr->nmembers; j++) stored[j] = out_ix(gr, gr->members[j]) >= 0;
  cluster c;
  if (cluster_make(k->g, gr, gr->members, gr->nmembers, stored, 0, t, &c)) return -1;
  cg_ew_layout l;
  cluster_layout(&c, t, &l);
  k->plan.par = l.outer * l.blocks;
  k->plan.flops = (double)gr->nmembers * (double)ir_type_numel(t);
  return 0;
}

/* 1 if member j of a SAMPLE group must be in memory: an out, or read by a
 * member of another step. */
static int needs_store(const cg_fused *k, int step, int j) {
  const pass_fuse_group *gr = k->grp;
  int id = gr->members[j];
  if (out_ix(gr, id) >= 0 || k->steps[step].count == 1) return 1;
  for (int s = 0; s < k->nsteps; s++) {
    if (s == step) continue;
    for (int m = k->steps[s].start; m < k->steps[s].start + k->steps[s].count; m++) {
      const ir_node *n = k->g->nodes[gr->members[m]];
      if (index_of(n->in, n->nin, id) >= 0) return 1;
    }
  }
  return 0;
}

/* The step of member index j. */
static int step_of(const cg_fused *k, int j) {
  int s = 0;
  while (s + 1 < k->nsteps && k->steps[s + 1].start <= j) s++;
  return s;
}

/* Gives every internal member that must be in memory a scratch slot for one
 * sample, reusing the slots of members no later step reads (first fit, so
 * a sample's working set stays small); sets k->inter_bytes. Returns 0 or -1. */
static int place_slots(cg_fused *k) {
  const pass_fuse_group *gr = k->grp;
  int m = gr->nmembers;
  int *from = malloc((size_t)m * sizeof *from), *to = malloc((size_t)m * sizeof *to);
  int64_t *size = malloc((size_t)m * sizeof *size);
  if (!from || !to || !size) {
    free(from);
    free(to);
    free(size);
    return -1;
  }
  for (int j = 0; j < m; j++) {
    from[j] = to[j] = step_of(k, j);
    k->slot[j] = -1;
    ir_type t = sample_type(&k->g->nodes[gr->members[j]]->type);
    size[j] = align64(type_bytes(&t));
    for (int u = j + 1; u < m; u++) { /* live until its last reader's step */
      const ir_node *n = k->g->nodes[gr->members[u]];
      if (index_of(n->in, n->nin, gr->members[j]) >= 0 && step_of(k, u) > to[j]) to[j] = step_of(k, u);
    }
  }
  for (int j = 0; j < m; j++) {
    if (out_ix(gr, gr->members[j]) >= 0 || !needs_store(k, from[j], j)) continue;
    int64_t at = 0;
    for (int moved = 1; moved;) {
      moved = 0;
      for (int i = 0; i < j; i++)
        if (k->slot[i] >= 0 && from[i] <= to[j] && from[j] <= to[i] && k->slot[i] < at + size[j] &&
            at < k->slot[i] + size[i]) {
          at = k->slot[i] + size[i];
          moved = 1;
        }
    }
    k->slot[j] = at;
    if (at + size[j] > k->inter_bytes) k->inter_bytes = at + size[j];
  }
  free(from);
  free(to);
  free(size);
  return 0;
}

/* Prepares a SAMPLE group: steps, scratch slots, plan. */
static int prepare_sample(cg_fused *k) {
  const pass_fuse_group *gr = k->grp;
  const ir_graph *g = k->g;
  const cg_kernel_impl *table = cg_kernel_table();
  k->batch = g->nodes[gr->members[0]]->type.rank > 0 ? g->nodes[gr->members[0]]->type.dims[0] : 0;
  if (k->batch < 1) return -1;
  k->nsteps = pass_fuse_nsteps(gr);
  k->steps = calloc((size_t)k->nsteps, sizeof *k->steps);
  k->slot = malloc((size_t)gr->nmembers * sizeof *k->slot);
  if (!k->steps || !k->slot) return -1;
  for (int j = 0; j < gr->nmembers; j++) {
    const ir_type *t = &g->nodes[gr->members[j]]->type;
    if (t->rank < 1 || t->dims[0] != k->batch) return -1;
  }
  for (int s = 0; s < k->nsteps; s++) {
    fstep *st = &k->steps[s];
    int end;
    pass_fuse_step(gr, s, &st->start, &end);
    st->count = end - st->start;
    if (st->count < 1) return -1;
  }
  double flops = 0;
  int64_t step_scratch = 0;
  for (int s = 0; s < k->nsteps; s++) {
    fstep *st = &k->steps[s];
    const ir_node *n = g->nodes[gr->members[st->start]];
    ir_type t = sample_type(&n->type);
    for (int j = st->start; j < st->start + st->count; j++) {
      const ir_node *m = g->nodes[gr->members[j]];
      for (int q = 0; q < m->nin; q++) { /* operands: earlier members or ins */
        int x = m->in[q], mx = member_ix(gr, x);
        if (mx >= j || (mx < 0 && in_ix(gr, x) < 0)) return -1;
      }
    }
    if (st->count == 1) {
      if (!table[n->op].emit) return -1;
      st->tg = step_graph(g, n, k->batch);
      if (!st->tg) return -1;
      st->plan.par = 1;
      st->plan.algo = NULL;
      table[n->op].plan(st->tg, st->tg->nodes[st->tg->nnodes - 1], &st->plan);
      if (st->plan.par < 1) st->plan.par = 1;
      if (st->plan.par2 > 0 || st->plan.shared_bytes > 0) return -1; /* a step is one call */
      if (st->plan.scratch_bytes > step_scratch) step_scratch = st->plan.scratch_bytes;
      flops += st->plan.flops * (double)k->batch;
    } else {
      int stored[4096];
      if (st->count > 4096) return -1;
      for (int j = 0; j < st->count; j++) stored[j] = needs_store(k, s, st->start + j);
      cluster c;
      if (cluster_make(g, gr, gr->members + st->start, st->count, stored, k->batch, &t, &c)) return -1;
      cg_ew_layout l;
      cluster_layout(&c, &t, &l);
      st->plan.par = l.outer * l.blocks;
      flops += (double)st->count * (double)ir_type_numel(&n->type);
    }
  }
  if (place_slots(k)) return -1;
  k->plan.par = k->batch;
  k->plan.scratch_bytes = k->inter_bytes + align64(step_scratch);
  k->plan.flops = flops;
  return 0;
}

/* Prepares group 'grp' of 'g'. */
cg_fused *cg_fused_prepare(const ir_graph *g, const pass_fuse_group *grp, cg_plan *plan) {
  cg_fused *k = calloc(1, sizeof *k);
  if (!k) return NULL;
  k->g = g;
  k->grp = grp;
  int bad = grp->nmembers < 1 || grp->nouts < 1 || grp->nouts + grp->nins > 4096;
  for (int j = 0; !bad && j < grp->nouts; j++) bad = member_ix(grp, grp->outs[j]) < 0;
  if (!bad) bad = grp->kind == PASS_FUSE_LOOP ? prepare_loop(k) : grp->kind == PASS_FUSE_SAMPLE ? prepare_sample(k) : -1;
  if (bad) {
    cg_fused_free(k);
    return NULL;
  }
  *plan = k->plan;
  return k;
}

/* Frees a prepared group. */
void cg_fused_free(cg_fused *k) {
  if (!k) return;
  for (int s = 0; k->steps && s < k->nsteps; s++) ir_graph_destroy(k->steps[s].tg);
  free(k->steps);
  free(k->slot);
  free(k);
}

/* Appends text to a growing string; returns 0 or -1. */
static int append(char **buf, size_t *len, size_t *cap, const char *s) {
  size_t n = strlen(s);
  if (*len + n + 1 > *cap) {
    size_t nc = (*cap + n + 1) * 2;
    char *nb = realloc(*buf, nc);
    if (!nb) return -1;
    *buf = nb;
    *cap = nc;
  }
  memcpy(*buf + *len, s, n + 1);
  *len += n;
  return 0;
}

/* The dedup key of a group. */
char *cg_fused_key(const ir_graph *g, const pass_fuse_group *gr) {
  char *buf = NULL, tmp[1100];
  size_t len = 0, cap = 0;
  snprintf(tmp, sizeof tmp, "fused %d/%d/%d steps", (int)gr->kind, gr->nouts, gr->nins);
  int err = append(&buf, &len, &cap, tmp);
  for (int s = 0; !err && s < gr->nsteps; s++) {
    snprintf(tmp, sizeof tmp, ",%d", gr->step_start[s]);
    err = append(&buf, &len, &cap, tmp);
  }
  for (int j = 0; !err && j < gr->nmembers; j++) {
    const ir_node *n = g->nodes[gr->members[j]];
    cg_kernel_key(g, n, tmp, 1024);
    err = append(&buf, &len, &cap, " [") || append(&buf, &len, &cap, tmp);
    for (int k = 0; !err && k < n->nin; k++) {
      int m = member_ix(gr, n->in[k]);
      snprintf(tmp, sizeof tmp, " %c%d", m >= 0 ? 'm' : 'i', m >= 0 ? m : in_ix(gr, n->in[k]));
      err = append(&buf, &len, &cap, tmp);
    }
    snprintf(tmp, sizeof tmp, " o%d]", out_ix(gr, n->id));
    if (!err) err = append(&buf, &len, &cap, tmp);
  }
  if (err) {
    free(buf);
    return NULL;
  }
  return buf;
}

/* ---- emitting ---- */


/* Element pointer 'p' advanced by 'n' samples of 'per' elements. */
static LLVMValueRef sample_ptr(cg_emit *e, LLVMValueRef p, LLVMValueRef n, int64_t per) {
  return cg_gep(e, p, cg_mul(e, n, cg_i64(e, per)));
}

/* Pointer to the value of node 'x' for sample 'n' of a SAMPLE group (as an
 * operand of member 'user' at 'k', or as a member when user is NULL). */
static LLVMValueRef value_ptr(cg_emit *e, cg_fused *fk, int x, const ir_node *user, int k, LLVMValueRef n) {
  const pass_fuse_group *gr = fk->grp;
  const ir_type *t = &fk->g->nodes[x]->type;
  int m = member_ix(gr, x);
  int64_t per = t->rank > 0 && t->dims[0] > 0 ? ir_type_numel(t) / t->dims[0] : 1;
  if (m >= 0 && fk->slot[m] >= 0) return cg_scratch(e, fk->slot[m], t->dtype);
  if (m >= 0) return sample_ptr(e, e->arg[out_ix(gr, x)], n, per);
  LLVMValueRef base = e->arg[gr->nouts + in_ix(gr, x)];
  return user && batched_of(fk->g, user, k, fk->batch) ? sample_ptr(e, base, n, per) : base;
}

/* Emits one-member step s for sample 'n': a call of its kernel. */
static void emit_call_step(cg_emit *e, cg_fused *fk, int s, LLVMValueRef n, LLVMValueRef argv,
                           LLVMValueRef fn) {
  const ir_node *m = fk->g->nodes[fk->grp->members[fk->steps[s].start]];
  LLVMTypeRef i8p = LLVMPointerType(e->t_i8, 0);
  for (int k = 0; k <= m->nin; k++) {
    LLVMValueRef p = k == 0 ? value_ptr(e, fk, m->id, NULL, 0, n) : value_ptr(e, fk, m->in[k - 1], m, k - 1, n);
    LLVMValueRef slot = LLVMBuildInBoundsGEP2(e->b, i8p, argv, (LLVMValueRef[]){cg_i64(e, k)}, 1, "");
    LLVMBuildStore(e->b, LLVMBuildBitCast(e->b, p, i8p, ""), slot);
  }
  LLVMValueRef off = cg_i64(e, fk->inter_bytes);
  LLVMValueRef scratch = LLVMBuildInBoundsGEP2(e->b, e->t_i8, e->scratch, &off, 1, "");
  LLVMValueRef args[4] = {argv, cg_i64(e, 0), cg_i64(e, fk->steps[s].plan.par), scratch};
  LLVMBuildCall2(e->b, cg_kernel_abi_type(e), fn, args, 4, "");
}

/* Sets the running reductions of cluster 'c' to their identity. */
static void reductions_init(cg_emit *e, const cluster *c) {
  for (int k = 0; k < c->nops; k++) {
    if (!c->red[k]) continue;
    cg_loop lp;
    LLVMValueRef i = cg_loop_begin(e, &lp, cg_i64(e, 0), cg_i64(e, ir_type_numel(&c->type[k])), 1);
    cg_store(e, c->ptr[k], i, cg_red_identity(e, (cg_red_kind)(c->red[k] - 1), c->type[k].dtype, 0));
    cg_loop_end(e, &lp);
  }
}

/* Divides the running sums of the means of cluster 'c' (over type 't') by
 * their counts. */
static void reductions_finish(cg_emit *e, const cluster *c, const ir_type *t) {
  for (int k = 0; k < c->nops; k++) {
    const ir_node *n = c->g->nodes[c->node[k]];
    if (!c->red[k] || n->op != IR_OP_reduce_mean) continue;
    ir_type kt;
    int64_t count = kept_type(n, t, &kt);
    LLVMValueRef inv = LLVMConstReal(cg_type(e, kt.dtype), 1.0 / (double)count);
    cg_loop lp;
    LLVMValueRef i = cg_loop_begin(e, &lp, cg_i64(e, 0), cg_i64(e, ir_type_numel(&kt)), 1);
    cg_store(e, c->ptr[k], i, LLVMBuildFMul(e->b, cg_load(e, c->ptr[k], i), inv, ""));
    cg_loop_end(e, &lp);
  }
}

/* Emits multi-member step s for sample 'n': the loop nest of its cluster. */
static attnc_status emit_loop_step(cg_emit *e, cg_fused *fk, int s, LLVMValueRef n) {
  const pass_fuse_group *gr = fk->grp;
  fstep *st = &fk->steps[s];
  int stored[4096];
  for (int j = 0; j < st->count; j++) stored[j] = needs_store(fk, s, st->start + j);
  ir_type t = sample_type(&fk->g->nodes[gr->members[st->start]]->type);
  cluster c;
  if (cluster_make(fk->g, gr, gr->members + st->start, st->count, stored, fk->batch, &t, &c))
    return cg_error(e, "fused step %d is not one loop nest", s);
  for (int k = 0; k < c.nops; k++) {
    const ir_node *user = NULL;
    int at = 0;
    for (int j = 0; !c.store[k] && !user && j < st->count; j++) { /* first member reading it */
      const ir_node *m = fk->g->nodes[gr->members[st->start + j]];
      at = index_of(m->in, m->nin, c.node[k]);
      if (at >= 0) user = m;
    }
    c.ptr[k] = value_ptr(e, fk, c.node[k], user, at, n);
  }
  cg_ew_layout l;
  cluster_layout(&c, &t, &l);
  reductions_init(e, &c);
  attnc_status rc = cg_ew_loops(e, &l, cg_i64(e, 0), cg_i64(e, l.outer * l.blocks), cluster_row,
                                c.rowred ? cluster_row_end : NULL, cluster_element, &c);
  if (rc == ATTNC_OK) reductions_finish(e, &c, &t);
  return rc;
}

/* Adds the cycles since 'start' to the counter at host address 'at'. */
static void add_cycles(cg_emit *e, LLVMValueRef start, int64_t *at) {
  LLVMValueRef dt = LLVMBuildSub(e->b, cg_cycle_count(e), start, "");
  LLVMValueRef ptr = LLVMConstIntToPtr(LLVMConstInt(e->t_i64, (unsigned long long)(uintptr_t)at, 0),
                                       LLVMPointerType(e->t_i64, 0));
  LLVMBuildAtomicRMW(e->b, LLVMAtomicRMWBinOpAdd, ptr, dt, LLVMAtomicOrderingMonotonic, 0);
}

/* Emits the body of a SAMPLE kernel (counting each step's cycles into
 * step_cycles when not NULL). */
static attnc_status emit_sample(cg_emit *e, cg_fused *fk, int64_t *step_cycles, ir_diag *d) {
  const cg_kernel_impl *table = cg_kernel_table();
  LLVMValueRef *fns = calloc((size_t)fk->nsteps, sizeof *fns);
  if (!fns) return ATTNC_ENOMEM;
  int maxargs = 1;
  for (int s = 0; s < fk->nsteps; s++) {
    fstep *st = &fk->steps[s];
    if (!st->tg) continue;
    /* one kernel per distinct per-sample step in the module, shared by
     * every group that has it (named by a hash of its kernel key) */
    const ir_node *n = st->tg->nodes[st->tg->nnodes - 1];
    char key[1024], sname[64];
    cg_kernel_key(st->tg, n, key, sizeof key);
    uint64_t h = 1469598103934665603ull;
    for (const char *c = key; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ull;
    snprintf(sname, sizeof sname, "step.%s.%016llx.%zu", ir_op_info_get(n->op)->name, (unsigned long long)h,
             strlen(key));
    if (!LLVMGetNamedFunction(e->mod, sname)) {
      attnc_status rc = cg_build_kernel(e->mod, sname, st->tg, n, &table[n->op], &st->plan, d);
      if (rc != ATTNC_OK) {
        free(fns);
        return rc;
      }
    }
    /* internal (the JIT exports only groups) but not inlined: a step
     * shared by many groups would be optimized and assembled once per
     * caller (ResNet-20+HAM eval: compile 84 s inlined, 37 s not); one call
     * per sample and step costs nothing next to the step's work */
    fns[s] = LLVMGetNamedFunction(e->mod, sname);
    LLVMSetLinkage(fns[s], LLVMInternalLinkage);
    unsigned kind = LLVMGetEnumAttributeKindForName("noinline", 8);
    LLVMAddAttributeAtIndex(fns[s], LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(e->ctx, kind, 0));
    if (n->nin + 1 > maxargs) maxargs = n->nin + 1;
  }
  LLVMTypeRef i8p = LLVMPointerType(e->t_i8, 0);
  LLVMValueRef argv = cg_var_new(e, LLVMArrayType(i8p, (unsigned)maxargs), NULL);
  argv = LLVMBuildBitCast(e->b, argv, LLVMPointerType(i8p, 0), "");
  cg_loop ln;
  LLVMValueRef n = cg_loop_begin(e, &ln, e->begin, e->end, 1);
  attnc_status st = ATTNC_OK;
  for (int s = 0; st == ATTNC_OK && s < fk->nsteps; s++) {
    LLVMValueRef start = step_cycles ? cg_cycle_count(e) : NULL;
    if (fns[s])
      emit_call_step(e, fk, s, n, argv, fns[s]);
    else
      st = emit_loop_step(e, fk, s, n);
    if (step_cycles && st == ATTNC_OK) add_cycles(e, start, &step_cycles[s]);
  }
  cg_loop_end(e, &ln);
  free(fns);
  return st;
}

/* Emits the group's kernel 'name'. */
attnc_status cg_fused_build(LLVMModuleRef m, const char *name, cg_fused *fk, int64_t *step_cycles, ir_diag *d) {
  const pass_fuse_group *gr = fk->grp;
  cg_emit e;
  memset(&e, 0, sizeof e);
  cg_emit_init(&e, m);
  e.g = fk->g;
  e.n = fk->g->nodes[pass_fuse_last(gr)];
  e.d = d;
  e.nargs = gr->nouts + gr->nins;
  e.arg = calloc((size_t)e.nargs, sizeof *e.arg);
  if (!e.arg) return ATTNC_ENOMEM;
  e.fn = LLVMAddFunction(m, name, cg_kernel_abi_type(&e));
  cg_kernel_attrs(e.ctx, e.fn);
  e.begin = LLVMGetParam(e.fn, 1);
  e.end = LLVMGetParam(e.fn, 2);
  e.scratch = LLVMGetParam(e.fn, 3);
  e.b = LLVMCreateBuilderInContext(e.ctx);
  e.entry = LLVMAppendBasicBlockInContext(e.ctx, e.fn, "entry");
  LLVMBasicBlockRef start = LLVMAppendBasicBlockInContext(e.ctx, e.fn, "start");
  LLVMPositionBuilderAtEnd(e.b, start);
  LLVMTypeRef i8p = LLVMPointerType(e.t_i8, 0);
  for (int k = 0; k < e.nargs; k++) {
    int x = k < gr->nouts ? gr->outs[k] : gr->ins[k - gr->nouts];
    LLVMValueRef slot = LLVMBuildInBoundsGEP2(e.b, i8p, LLVMGetParam(e.fn, 0), (LLVMValueRef[]){cg_i64(&e, k)}, 1, "");
    LLVMValueRef raw = LLVMBuildLoad2(e.b, i8p, slot, "");
    e.arg[k] = LLVMBuildBitCast(e.b, raw, LLVMPointerType(cg_type(&e, fk->g->nodes[x]->type.dtype), 0), "");
  }
  attnc_status st;
  if (gr->kind == PASS_FUSE_LOOP) {
    const ir_type *t = &fk->g->nodes[gr->members[gr->nmembers - 1]]->type;
    int stored[4096];
    for (int j = 0; j < gr->nmembers; j++) stored[j] = out_ix(gr, gr->members[j]) >= 0;
    cluster c;
    st = cluster_make(fk->g, gr, gr->members, gr->nmembers, stored, 0, t, &c) ? cg_error(&e, "not a loop group") : ATTNC_OK;
    for (int k = 0; st == ATTNC_OK && k < c.nops; k++)
      c.ptr[k] = c.store[k] ? e.arg[out_ix(gr, c.node[k])] : e.arg[gr->nouts + in_ix(gr, c.node[k])];
    cg_ew_layout l;
    if (st == ATTNC_OK) {
      cluster_layout(&c, t, &l);
      st = cg_ew_loops(&e, &l, e.begin, e.end, cluster_row, NULL, cluster_element, &c);
    }
  } else {
    st = emit_sample(&e, fk, step_cycles, d);
  }
  if (st == ATTNC_OK) {
    LLVMBuildRetVoid(e.b);
    LLVMPositionBuilderAtEnd(e.b, e.entry);
    LLVMBuildBr(e.b, start);
  }
  LLVMDisposeBuilder(e.b);
  free(e.arg);
  return st;
}
