/* Rematerialization, run on the training step after simplification:
 * recomputes a cheap feature map where it is used again later instead of
 * keeping it in memory.
 *
 * HAM's masked maps F1 = x*A_C*mask and F2 = x*A_C*(1-mask) are products
 * of the block's input, which the backward keeps anyway, and two [N,C,1,1]
 * gates. Stored, each costs a write in the forward, a read wherever it is
 * used after the batch-norm barrier (the spatial apply, the backward), and
 * a buffer that lives from the forward to the backward. Recomputed next to
 * such a use, inside the same fused loop, it costs two multiplies per
 * element and no memory traffic of its own.
 *
 * A use is far when a node that cannot join a sample group (batch-norm
 * statistics or gradient, a large convolution, a weight gradient) lies
 * between the value and its user: the two can never be in one fused
 * kernel. For each far use by an elementwise op or a reduction, the chain
 * of elementwise ops that computes the value is cloned just before the
 * user, down to leaves that are small (at most a quarter of its size),
 * sources, or one feature map that is alive at the user anyway (so the
 * recomputation reads no more than the stored value would); otherwise the
 * value is left as it is. A feature map alive at the user is a leaf only
 * when it has to be stored anyway: one that is itself recomputable at all
 * its far uses (a batch norm's output, alive only because the backward
 * reads it) is recomputed through, from the map below it, where a chain
 * reaches one within MAX_CHAIN ops, so that it is kept in no buffer
 * across the barrier. A value no longer
 * used is then dropped. Values are unchanged (the same ops on the same
 * operands), only computed more than once. */
#include <stdlib.h>
#include <string.h>

#include "passes.h"

enum { MAX_CHAIN = 6 }; /* elementwise ops recomputed per use */

/* One far use to recompute: operand k of node 'user' gets a clone of the
 * chain (node ids, ascending) ending at the value it reads. */
typedef struct {
  int user, k, n;
  int chain[MAX_CHAIN];
} use_plan;

typedef struct {
  const ir_graph *g;
  int64_t batch;
  int *bc;       /* bc[i]: barriers among nodes [0, i) */
  int *last_use; /* last user's id; nnodes for a graph output */
  unsigned char *output;
  int *ustart, *ulist; /* users (pass_users) */
} remat;

static int is_source(const ir_node *n) { return ir_op_source(n->op); }

static int is_elementwise(const ir_node *n) { return ir_op_elementwise(n->op); }

/* 1 if 'n' is a value of the batch (rank >= 2, axis 0 the batch). */
static int batched(const remat *r, const ir_node *n) { return n->type.rank >= 2 && n->type.dims[0] == r->batch; }

/* 1 if 'w' reads a batched value but can never join a sample group. */
static int barrier(const remat *r, const ir_node *w) {
  if (is_source(w) || pass_fuse_sample_eligible(r->g, w, r->batch)) return 0;
  for (int k = 0; k < w->nin; k++)
    if (batched(r, r->g->nodes[w->in[k]])) return 1;
  return 0;
}

/* 1 if node 'u' reads operand k in a way that fuses with a recomputation:
 * an elementwise op or a reduction, batch-local. */
static int fusing_user(const remat *r, const ir_node *u, int k) {
  if (!is_elementwise(u) && !(ir_op_info_get(u->op)->flags & IR_OPF_REDUCTION)) return 0;
  return pass_fuse_batched(r->g, u, k, r->batch) == 1;
}

/* 1 if value 'v' may be recomputed at all: a batched elementwise value,
 * not a graph output. */
static int recomputable(const remat *r, int v) {
  const ir_node *vn = r->g->nodes[v];
  return is_elementwise(vn) && batched(r, vn) && !r->output[v];
}

/* 1 if value 'v' is a candidate for recomputation at its use by operand k
 * of 'u': recomputable, with a barrier between it and a user that fuses
 * with the recomputation. */
static int far_use(const remat *r, int v, const ir_node *u, int k) {
  return recomputable(r, v) && r->bc[u->id] - r->bc[v + 1] > 0 && fusing_user(r, u, k);
}

/* 1 if every use of 'y' across a barrier is a far use (so that, all of
 * them recomputed, 'y' need not be kept past it). */
static int recomputed_everywhere(const remat *r, int y) {
  if (!recomputable(r, y)) return 0;
  for (int i = r->ustart[y]; i < r->ustart[y + 1]; i++) {
    const ir_node *u = r->g->nodes[r->ulist[i]];
    if (r->bc[u->id] - r->bc[y + 1] <= 0) continue;
    for (int k = 0; k < u->nin; k++)
      if (u->in[k] == y && !far_use(r, y, u, k)) return 0;
  }
  return 1;
}

/* Fills *p with the chain computing 'v' for 'user' (see the file comment),
 * with 'through' recomputing through alive maps that need no buffer of
 * their own; returns 0, or -1 if 'v' should stay stored for this use. */
static int plan_chain(const remat *r, int v, int user, int through, use_plan *p) {
  const ir_graph *g = r->g;
  int64_t small = ir_type_numel(&g->nodes[v]->type) / 4;
  p->n = 0;
  int todo[MAX_CHAIN * 4], nt = 0, big = -1;
  todo[nt++] = v;
  while (nt > 0) {
    int x = todo[--nt], dup = 0;
    for (int i = 0; i < p->n; i++) dup |= p->chain[i] == x;
    if (dup) continue;
    const ir_node *n = g->nodes[x];
    if (!is_elementwise(n) || n->nin > 8 || !batched(r, n) || r->output[x] || p->n == MAX_CHAIN) return -1;
    p->chain[p->n++] = x;
    for (int k = 0; k < n->nin; k++) {
      const ir_node *y = g->nodes[n->in[k]];
      if (is_source(y) || ir_type_numel(&y->type) <= small) continue;
      if (r->last_use[y->id] >= user && !(through && recomputed_everywhere(r, y->id))) {
        /* one feature map read, as the stored value would be */
        if (big >= 0 && big != y->id) return -1;
        big = y->id;
        continue;
      }
      if (nt == (int)(sizeof todo / sizeof todo[0])) return -1;
      todo[nt++] = y->id;
    }
  }
  for (int i = 1; i < p->n; i++) /* ascending: the clones' order */
    for (int j = i; j > 0 && p->chain[j - 1] > p->chain[j]; j--) {
      int t = p->chain[j];
      p->chain[j] = p->chain[j - 1];
      p->chain[j - 1] = t;
    }
  return 0;
}

/* The clones to insert: plans sorted by user, the next one, the graph
 * they refer to. */
typedef struct {
  const ir_graph *g;
  const use_plan *plans;
  int np, q;
} clone_state;

/* pass_emit: node n, after the clones of the plans whose user it is, each
 * in place of the operand it recomputes. */
static int emit(ir_graph *ng, const ir_node *n, int *in, const int *map, void *ctx) {
  clone_state *cs = ctx;
  for (; cs->q < cs->np && cs->plans[cs->q].user == n->id; cs->q++) {
    const use_plan *p = &cs->plans[cs->q];
    int cl[MAX_CHAIN];
    for (int j = 0; j < p->n; j++) {
      const ir_node *m = cs->g->nodes[p->chain[j]];
      int cin[8];
      for (int k = 0; k < m->nin && k < 8; k++) {
        int x = m->in[k], at = -1;
        for (int t = 0; t < j; t++)
          if (p->chain[t] == x) at = t;
        cin[k] = at >= 0 ? cl[at] : map[x];
      }
      cl[j] = ir_graph_copy_node(ng, m, cin)->id;
    }
    in[p->k] = cl[p->n - 1];
  }
  return -2;
}

/* Recomputes far uses of cheap feature maps in 'g' (see the file comment);
 * *cloned (if given) counts the uses recomputed. */
attnc_status pass_remat(ir_graph *g, int *cloned, ir_diag *d) {
  if (cloned) *cloned = 0;
  int nn = g->nnodes;
  remat r = {g, pass_fuse_graph_batch(g), calloc((size_t)nn + 1, sizeof(int)), malloc(sizeof(int) * (size_t)(nn + 1)),
             calloc((size_t)nn + 1, 1), NULL, NULL};
  use_plan *plans = NULL;
  int np = 0, cap = 0;
  attnc_status st = ATTNC_OK;
  if (!r.bc || !r.last_use || !r.output || pass_users(g, &r.ustart, &r.ulist)) goto oom;
  if (r.batch < 1) goto done;
  for (int i = 0; i < g->noutputs; i++) r.output[g->outputs[i].node] = 1;
  for (int i = 0; i < nn; i++) {
    r.bc[i + 1] = r.bc[i] + barrier(&r, g->nodes[i]);
    r.last_use[i] = r.output[i] ? nn : -1;
    for (int k = 0; k < g->nodes[i]->nin; k++)
      if (r.last_use[g->nodes[i]->in[k]] < i) r.last_use[g->nodes[i]->in[k]] = i;
  }
  for (int u = 0; u < nn; u++) { /* users in order: plans come out sorted */
    const ir_node *n = g->nodes[u];
    for (int k = 0; k < n->nin; k++) {
      int v = n->in[k];
      if (!far_use(&r, v, n, k)) continue;
      use_plan p = {u, k, 0, {0}};
      if (plan_chain(&r, v, u, 1, &p) && plan_chain(&r, v, u, 0, &p)) continue;
      if (np == cap) {
        cap = cap ? 2 * cap : 64;
        use_plan *t = realloc(plans, sizeof *plans * (size_t)cap);
        if (!t) goto oom;
        plans = t;
      }
      plans[np++] = p;
    }
  }
  if (np > 0) {
    clone_state cs = {g, plans, np, 0};
    st = pass_rebuild(g, emit, &cs, "rematerialization", d);
    if (st != ATTNC_OK) goto done;
    int dropped = 0;
    ir_graph *live = pass_copy_live(g, &dropped); /* the values no longer used go */
    if (!live) goto oom;
    ir_graph_take(g, live);
  }
  if (cloned) *cloned = np;
  goto done;
oom:
  ir_diag_error(d, NULL, 0, "rematerialization: out of memory");
  st = ATTNC_ENOMEM;
done:
  free(r.bc);
  free(r.last_use);
  free(r.output);
  free(r.ustart);
  free(r.ulist);
  free(plans);
  return st;
}
