/* Fusion grouping (passes.h, "fusion"; docs/FUSION.md): which
 * nodes are batch-local, and the greedy partition of a verified graph into
 * per-sample (SAMPLE) and elementwise-loop (LOOP) groups with their steps,
 * inputs, outputs and structural labels. The graph is not changed.
 *
 * Both phases walk the nodes once in graph order. A node that may join
 * groups joins (and so merges) the groups of its operands when that is
 * legal: a group runs at its last member, so no node outside the merged
 * groups may already use one of their members ("blockers", kept per group).
 * First SAMPLE groups over batch-local ops (cost rule: small convs and
 * matmuls only), then LOOP groups over the remaining elementwise nodes of
 * one output type. A SAMPLE group's members then get the execution order
 * with the fewest loop steps that order_members finds. Work is
 * O(edges * 96) at most. */
#include <stdlib.h>
#include <string.h>

#include "passes.h"

#define FUSE_MAX_MEMBERS 96    /* members of a group */
#define FUSE_MAX_LOOP_ARGS 16  /* outside inputs + outputs of a loop cluster */
#define FUSE_MAX_CONV_WEIGHT 512
#define FUSE_MAX_MATMUL_B 65536

enum { PHASE_SAMPLE, PHASE_LOOP };

static int is_source(const ir_node *n) { return ir_op_source(n->op); }

/* 1 for the elementwise ops (unary, binary, where, cast, the elementwise *_grad). */
static int is_elementwise(const ir_node *n) { return ir_op_elementwise(n->op); }

static const ir_type *operand_type(const ir_graph *g, const ir_node *n, int k) { return &g->nodes[n->in[k]]->type; }

/* Normalizes a possibly negative axis for 'rank'; -1 if out of range. */
static int norm_axis(int64_t axis, int rank) {
  if (axis < 0) axis += rank;
  return axis >= 0 && axis < rank ? (int)axis : -1;
}

/* Bit set of the axes reduced by reduction 'n' over an operand of 'rank'. */
static unsigned reduced_axes(const ir_node *n, int rank) {
  int na;
  const int64_t *axes = ir_get_ints(n, "axes", &na);
  unsigned bits = 0;
  for (int i = 0; i < na; i++) {
    int a = norm_axis(axes[i], rank);
    if (a >= 0) bits |= 1u << a;
  }
  return bits;
}

/* pass_fuse_batched for matmul: a [N,K] (not transposed) or [N,...,M,K]
 * batched; b shared when of rank 2, batched when of a's rank. */
static int matmul_batched(const ir_graph *g, const ir_node *n, int k) {
  const ir_type *a = operand_type(g, n, 0), *b = operand_type(g, n, 1);
  if (a->rank == 2) {
    if (ir_get_int(n, "trans_a") || b->rank != 2) return -1;
    return k == 0;
  }
  if (b->rank == 2) return k == 0;
  return b->rank == a->rank ? 1 : -1;
}

/* For a batch-local node: 1 if operand k is sliced per sample, 0 if read
 * whole, -1 if the node is not batch-local (rules of FUSION.md). */
int pass_fuse_batched(const ir_graph *g, const ir_node *n, int k, int64_t batch) {
  if (!g || !n || batch < 1 || k < 0 || k >= n->nin || is_source(n)) return -1;
  const ir_type *o = &n->type, *x = operand_type(g, n, k);
  if (o->rank < 1 || o->dims[0] != batch) return -1;
  if (is_elementwise(n)) return x->rank == o->rank && x->dims[0] == batch;
  if (ir_op_info_get(n->op)->flags & IR_OPF_REDUCTION)
    return x->rank >= 1 && !(reduced_axes(n, x->rank) & 1u) ? 1 : -1;
  switch (n->op) {
  case IR_OP_softmax:
  case IR_OP_log_softmax:
  case IR_OP_topk_mask: return norm_axis(ir_get_int(n, "axis"), x->rank) > 0 ? 1 : -1;
  case IR_OP_conv2d:
  case IR_OP_conv1d:
  case IR_OP_conv2d_grad_input:
  case IR_OP_conv1d_grad_input:
  case IR_OP_batchnorm_eval: return k == 0; /* running statistics: per channel, shared */
  case IR_OP_max_pool2d:
  case IR_OP_avg_pool2d:
  case IR_OP_avg_pool2d_grad:
  case IR_OP_max_pool2d_grad: return 1;
  case IR_OP_reshape: return x->rank >= 1 && x->dims[0] == batch ? 1 : -1;
  case IR_OP_transpose: {
    int np;
    const int64_t *perm = ir_get_ints(n, "perm", &np);
    return np >= 1 && perm[0] == 0 ? 1 : -1;
  }
  case IR_OP_slice:
  case IR_OP_slice_grad:
  case IR_OP_concat: return norm_axis(ir_get_int(n, "axis"), o->rank) > 0 ? 1 : -1;
  case IR_OP_pad: {
    int np;
    const int64_t *pads = ir_get_ints(n, "pads", &np);
    return np >= 2 && pads[0] == 0 && pads[1] == 0 ? 1 : -1;
  }
  case IR_OP_broadcast_to: return x->rank == o->rank && x->dims[0] == batch ? 1 : -1;
  case IR_OP_matmul: return matmul_batched(g, n, k);
  default: return -1;
  }
}

/* The batch of 'g': dims[0] of the float input "x", else of the first
 * rank-4 float input; -1 if neither exists. */
int64_t pass_fuse_graph_batch(const ir_graph *g) {
  int64_t first4 = -1;
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    if (n->op != IR_OP_input || n->type.dtype == IR_I64 || n->type.rank < 1) continue;
    const char *name = ir_node_name(n);
    if (name && strcmp(name, "x") == 0) return n->type.dims[0];
    if (first4 < 0 && n->type.rank == 4) first4 = n->type.dims[0];
  }
  return first4;
}

/* 1 if 'n' is batch-local for 'batch' and passes the cost rule (convs with
 * at most 512 weights, matmuls whose b has at most 65536 per sample). */
int pass_fuse_sample_eligible(const ir_graph *g, const ir_node *n, int64_t batch) {
  if (is_source(n)) return 0;
  for (int k = 0; k < n->nin; k++)
    if (pass_fuse_batched(g, n, k, batch) < 0) return 0;
  switch (n->op) {
  case IR_OP_conv2d:
  case IR_OP_conv1d:
  case IR_OP_conv2d_grad_input:
  case IR_OP_conv1d_grad_input: return ir_type_numel(operand_type(g, n, 1)) <= FUSE_MAX_CONV_WEIGHT;
  case IR_OP_matmul: {
    int64_t b = ir_type_numel(operand_type(g, n, 1));
    if (pass_fuse_batched(g, n, 1, batch) == 1) b /= batch;
    return b <= FUSE_MAX_MATMUL_B;
  }
  default: return 1;
  }
}

/* Working state of one pass_fuse run; per-group arrays are indexed by the
 * group's root (the node that last joined or started it). */
typedef struct {
  const ir_graph *g;
  int n;
  int64_t batch;
  int *ustart, *users;   /* users of each node (CSR, one entry per use) */
  unsigned char *named;  /* named by a graph output */
  unsigned char *param_out; /* named by an output called like a param or its momentum */
  unsigned char *done;   /* member of a group already emitted */
  int *gid;              /* root of the node's group in this phase, or -1 */
  int *next, *head, *tail, *size; /* member lists */
  int **blk, *nblk, *capblk;      /* blockers: outside users seen so far */
  unsigned char *closed;          /* too many blockers to ever merge */
  int *mark, *seen;      /* stamped scratch marks */
  int stamp;
  int *cand, *scratch;   /* candidate roots; a member list */
  pass_fusion *f;
  int gcap;
} fuse_state;

/* Appends blocker 'b' to the group rooted at 'r'; returns -1 if out of memory. */
static int push_blocker(fuse_state *s, int r, int b) {
  if (s->closed[r] || (s->nblk[r] && s->blk[r][s->nblk[r] - 1] == b)) return 0;
  if (s->nblk[r] >= FUSE_MAX_MEMBERS) {
    s->closed[r] = 1;
    return 0;
  }
  if (s->nblk[r] == s->capblk[r]) {
    int cap = s->capblk[r] ? 2 * s->capblk[r] : 4;
    int *p = realloc(s->blk[r], sizeof *p * (size_t)cap);
    if (!p) return -1;
    s->blk[r] = p;
    s->capblk[r] = cap;
  }
  s->blk[r][s->nblk[r]++] = b;
  return 0;
}

/* 1 if every blocker of group 'r' lies in a group marked with the stamp. */
static int legal(const fuse_state *s, int r) {
  if (s->closed[r]) return 0;
  for (int i = 0; i < s->nblk[r]; i++) {
    int b = s->gid[s->blk[r][i]];
    if (b < 0 || s->mark[b] != s->stamp) return 0;
  }
  return 1;
}

/* Collects node 'u' and the members of groups cand[0..nc) into s->scratch;
 * marks them with a fresh stamp in s->seen; returns their count. */
static int collect(fuse_state *s, int u, const int *cand, int nc) {
  int m = 0;
  s->stamp++;
  for (int i = 0; i < nc; i++)
    for (int x = s->head[cand[i]]; x >= 0; x = s->next[x]) s->scratch[m++] = x;
  s->scratch[m++] = u;
  for (int i = 0; i < m; i++) s->seen[s->scratch[i]] = s->stamp;
  return m;
}

/* Outside inputs + outputs of the member set list[0..m) marked in s->seen
 * with stamp 'in' (inputs are counted with marks of a later stamp). */
static int count_args(fuse_state *s, const int *list, int m, int in) {
  int args = 0, outside = ++s->stamp;
  for (int i = 0; i < m; i++) {
    const ir_node *n = s->g->nodes[list[i]];
    for (int k = 0; k < n->nin; k++) {
      int o = n->in[k];
      if (s->seen[o] != in && s->mark[o] != outside) {
        s->mark[o] = outside;
        args++;
      }
    }
    int out = s->named[list[i]];
    for (int j = s->ustart[list[i]]; j < s->ustart[list[i] + 1] && !out; j++) out = s->seen[s->users[j]] != in;
    args += out;
  }
  return args;
}

/* Drops candidate groups until merging 'u' with the rest is legal and
 * within the caps; returns how many remain (compacted in cand). */
static int choose(fuse_state *s, int u, int *cand, int nc, int phase) {
  while (nc > 0) {
    int changed = 1;
    while (changed && nc > 0) {
      changed = 0;
      s->stamp++;
      for (int i = 0; i < nc; i++) s->mark[cand[i]] = s->stamp;
      for (int i = 0; i < nc && !changed; i++)
        if (!legal(s, cand[i])) {
          memmove(cand + i, cand + i + 1, sizeof *cand * (size_t)(nc - i - 1));
          nc--;
          changed = 1;
        }
    }
    if (nc == 0) break;
    int total = 1;
    for (int i = 0; i < nc; i++) total += s->size[cand[i]];
    if (total <= FUSE_MAX_MEMBERS) {
      if (phase != PHASE_LOOP) return nc;
      int m = collect(s, u, cand, nc);
      if (count_args(s, s->scratch, m, s->stamp) <= FUSE_MAX_LOOP_ARGS) return nc;
    }
    nc--;
  }
  return 0;
}

/* Makes 'u' the root of a group holding it and the groups cand[0..nc);
 * returns -1 if out of memory. */
static int merge(fuse_state *s, int u, const int *cand, int nc) {
  s->gid[u] = s->head[u] = s->tail[u] = u;
  s->next[u] = -1;
  s->size[u] = 1;
  for (int i = 0; i < nc; i++) {
    int r = cand[i];
    for (int x = s->head[r]; x >= 0; x = s->next[x]) s->gid[x] = u;
    s->next[s->tail[u]] = s->head[r];
    s->tail[u] = s->tail[r];
    s->size[u] += s->size[r];
  }
  int st = ++s->stamp;
  for (int i = 0; i < nc; i++) {
    int r = cand[i];
    for (int j = 0; j < s->nblk[r]; j++) {
      int b = s->blk[r][j];
      if (s->gid[b] == u || s->seen[b] == st) continue;
      s->seen[b] = st;
      if (push_blocker(s, u, b)) return -1;
    }
    free(s->blk[r]);
    s->blk[r] = NULL;
    s->nblk[r] = s->capblk[r] = 0;
  }
  return 0;
}

/* Candidate groups node 'u' may join in 'phase' (distinct roots in s->cand);
 * returns their count, or -1 if 'u' cannot be a member at all. */
static int candidates(fuse_state *s, int u, int phase) {
  const ir_node *n = s->g->nodes[u];
  int nc = 0;
  if (phase == PHASE_SAMPLE) {
    if (s->batch < 1 || !pass_fuse_sample_eligible(s->g, n, s->batch)) return -1;
    int ex = ++s->stamp; /* groups read whole by u cannot hold u */
    for (int k = 0; k < n->nin; k++)
      if (s->gid[n->in[k]] >= 0 && pass_fuse_batched(s->g, n, k, s->batch) != 1) s->mark[s->gid[n->in[k]]] = ex;
    for (int k = 0; k < n->nin; k++) {
      int r = s->gid[n->in[k]], dup = 0;
      if (r < 0 || s->mark[r] == ex) continue;
      for (int i = 0; i < nc; i++) dup |= s->cand[i] == r;
      if (!dup) s->cand[nc++] = r;
    }
    return nc;
  }
  if (s->done[u] || is_source(n) || !is_elementwise(n)) return -1;
  for (int k = 0; k < n->nin; k++) {
    int r = s->gid[n->in[k]], dup = 0;
    if (r < 0 || !ir_type_equal(operand_type(s->g, n, k), &n->type)) continue;
    for (int i = 0; i < nc; i++) dup |= s->cand[i] == r;
    if (!dup) s->cand[nc++] = r;
  }
  return nc;
}

/* Runs one grouping phase over all nodes; returns -1 if out of memory. */
static int run_phase(fuse_state *s, int phase) {
  for (int i = 0; i < s->n; i++) {
    s->gid[i] = -1;
    s->nblk[i] = 0;
    s->closed[i] = 0;
  }
  for (int u = 0; u < s->n; u++) {
    const ir_node *n = s->g->nodes[u];
    int nc = candidates(s, u, phase);
    if (nc >= 0) {
      nc = choose(s, u, s->cand, nc, phase);
      if (merge(s, u, s->cand, nc)) return -1;
    }
    for (int k = 0; k < n->nin; k++) {
      int r = s->gid[n->in[k]];
      if (r >= 0 && r != s->gid[u] && push_blocker(s, r, u)) return -1;
    }
  }
  return 0;
}

static int cmp_int(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

/* 1 if a running reduction 'op' may reduce the last axis (passes.h). */
int pass_fuse_row_reduction(ir_opcode op) { return op == IR_OP_reduce_sum || op == IR_OP_reduce_mean; }

/* 1 if member 'b' of a SAMPLE step can end its loop nest as a running
 * reduction: a sum, mean, max or min over axes other than the first of a
 * value of the step's type 't' computed earlier in the step (mem[i..j)),
 * so the loop nest accumulates it row by row with whole vectors; over the
 * last axis a sum or mean only, which the loop adds along each row (in
 * f64, reassociated: cg_fuse.c), as a channel's sum over H,W. */
static int absorbable_reduction(fuse_state *s, const ir_node *b, const int *mem, int i, int j,
                                const ir_type *t) {
  if (b->op != IR_OP_reduce_sum && b->op != IR_OP_reduce_mean && b->op != IR_OP_reduce_max &&
      b->op != IR_OP_reduce_min)
    return 0;
  const ir_type *x = operand_type(s->g, b, 0);
  if (!ir_type_equal(x, t) || x->rank < 2 || b->type.dtype != x->dtype || x->dtype == IR_I64) return 0;
  unsigned bits = reduced_axes(b, x->rank);
  if (!bits || (bits & 1u)) return 0;
  if ((bits & (1u << (x->rank - 1))) && !pass_fuse_row_reduction(b->op)) return 0;
  for (int q = i; q < j; q++)
    if (mem[q] == b->in[0]) return 1;
  return 0;
}

/* 1 if 'b' reads one of the reductions among mem[i..j) (not ready until
 * the loop nest ends). */
static int reads_reduction(fuse_state *s, const ir_node *b, const int *mem, int i, int j) {
  for (int q = i; q < j; q++)
    if (!is_elementwise(s->g->nodes[mem[q]]))
      for (int k = 0; k < b->nin; k++)
        if (b->in[k] == mem[q]) return 1;
  return 0;
}

/* Splits the members of a SAMPLE group into steps: maximal runs of
 * consecutive elementwise members of one output type, with channel-style
 * reductions of run members folded in, within the argument cap; every
 * other member alone. Fills step_start; returns nsteps. */
static int split_steps(fuse_state *s, const int *mem, int m, int *step_start) {
  int nsteps = 0;
  for (int i = 0; i < m;) {
    step_start[nsteps++] = i;
    int j = i + 1;
    const ir_node *a = s->g->nodes[mem[i]];
    if (is_elementwise(a))
      for (; j < m; j++) {
        const ir_node *b = s->g->nodes[mem[j]];
        int ew = is_elementwise(b) && ir_type_equal(&a->type, &b->type);
        if (!ew && !absorbable_reduction(s, b, mem, i, j, &a->type)) break;
        if (reads_reduction(s, b, mem, i, j)) break;
        int st = ++s->stamp;
        for (int t = i; t <= j; t++) s->seen[mem[t]] = st;
        if (count_args(s, mem + i, j - i + 1, st) > FUSE_MAX_LOOP_ARGS) break;
      }
    i = j;
  }
  return nsteps;
}

/* Index of node 'id' among the ascending mem[0..m), or -1. */
static int ascending_index(const int *mem, int m, int id) {
  const int *p = bsearch(&id, mem, (size_t)m, sizeof *mem, cmp_int);
  return p ? (int)(p - mem) : -1;
}

/* Members of a SAMPLE group as order_members sees them. */
typedef struct {
  const ir_type *loop[FUSE_MAX_MEMBERS]; /* the loop nest's type of a member that can be in one, else NULL */
  int ew[FUSE_MAX_MEMBERS];              /* 1: elementwise (else a running reduction, if in a loop) */
} loop_members;

/* 1 if member i can be in the loop nest that computes its operand j. */
static int same_loop(const loop_members *o, int j, int i) {
  return o->loop[i] && o->loop[j] && o->ew[j] && ir_type_equal(o->loop[i], o->loop[j]);
}

/* 1 if member i runs at a later level than its operand j: j is in a loop
 * nest, and not in i's nor in one of a smaller type than i's (which runs
 * first in a level). */
static int later_level(const loop_members *o, int j, int i) {
  if (!o->loop[j] || same_loop(o, j, i)) return 0;
  return !o->loop[i] || ir_type_numel(o->loop[j]) >= ir_type_numel(o->loop[i]);
}

/* Reorders the members of a SAMPLE group (ascending on entry) so that its
 * loop steps are as few as its reductions allow. Each member gets a level:
 * the lowest that its operands allow (later_level), then, unless it is a
 * reduction, the highest that its readers allow, so that an elementwise
 * value is computed in the pass that reads it instead of being stored, and
 * the small nodes between two passes run together. The order is level by
 * level: the members that are in no loop nest first, then the loop
 * members of each type, the smallest type first. Autodiff emits a block's
 * backward one gradient at a time: HAM's two spatial maps each counted
 * their channel ties in a pass of their own, then each added its share in
 * another. Any topological order is a valid execution order of a group,
 * which runs as one kernel. Keeps the order and returns 'nsteps' unless
 * the new one has fewer steps. */
static int order_members(fuse_state *s, int *mem, int m, int *step_start, int nsteps) {
  const ir_graph *g = s->g;
  if (m > FUSE_MAX_MEMBERS) return nsteps;
  loop_members o;
  int lv[FUSE_MAX_MEMBERS], order[FUSE_MAX_MEMBERS], start[FUSE_MAX_MEMBERS];
  for (int i = 0; i < m; i++) {
    const ir_node *n = g->nodes[mem[i]];
    o.ew[i] = is_elementwise(n);
    o.loop[i] = o.ew[i] ? &n->type : NULL;
    int j = n->nin == 1 ? ascending_index(mem, i, n->in[0]) : -1;
    if (!o.ew[i] && j >= 0 && o.ew[j] && absorbable_reduction(s, n, mem, 0, i, o.loop[j])) o.loop[i] = o.loop[j];
  }
  for (int i = 0; i < m; i++) { /* as early as the operands allow */
    const ir_node *n = g->nodes[mem[i]];
    lv[i] = 0;
    for (int k = 0; k < n->nin; k++) {
      int j = ascending_index(mem, i, n->in[k]), at = j >= 0 ? lv[j] + later_level(&o, j, i) : 0;
      if (at > lv[i]) lv[i] = at;
    }
  }
  for (int i = m - 1; i >= 0; i--) { /* then as late as the readers allow */
    if (o.loop[i] && !o.ew[i]) continue;
    int late = -1;
    for (int u = i + 1; u < m; u++) {
      const ir_node *n = g->nodes[mem[u]];
      int at = lv[u] - later_level(&o, i, u);
      for (int k = 0; k < n->nin; k++)
        if (n->in[k] == mem[i] && (late < 0 || at < late)) late = at;
    }
    if (late > lv[i]) lv[i] = late;
  }
  int top = 0, k = 0; /* every member is placed once below: k ends at m */
  for (int i = 0; i < m; i++)
    if (lv[i] > top) top = lv[i];
  for (int l = 0; l <= top; l++) {
    for (int i = 0; i < m; i++)
      if (lv[i] == l && !o.loop[i]) order[k++] = mem[i];
    for (;;) { /* the loop members of each type, the smallest type first */
      int at = -1;
      for (int i = 0; i < m; i++)
        if (lv[i] == l && o.loop[i] && (at < 0 || ir_type_numel(o.loop[i]) < ir_type_numel(o.loop[at]))) at = i;
      if (at < 0) break;
      const ir_type *t = o.loop[at];
      for (int j = at; j < m; j++)
        if (lv[j] == l && o.loop[j] && ir_type_equal(o.loop[j], t)) {
          order[k++] = mem[j];
          lv[j] = -1; /* placed */
        }
    }
  }
  int n2 = split_steps(s, order, m, start);
  if (n2 >= nsteps) return nsteps;
  memcpy(mem, order, sizeof *mem * (size_t)m);
  memcpy(step_start, start, sizeof *step_start * (size_t)n2);
  return n2;
}

/* Label pieces found among the members of a group. */
typedef struct {
  int spatial_reduce; /* reduction over [2,3] of a rank-4 value */
  int pooled_grad;    /* a sigmoid_grad of the spatial reduction, through reshapes */
  int channel_reduce; /* reduction over [1] of a rank-4 value, keepdims */
  int channel_sum;    /* reduction over [1] of a rank-4 value, any keepdims */
  int gate;           /* sigmoid (forward) */
  int gate_grad;      /* sigmoid_grad */
  int channel_gated;  /* rank-4 value times an [N,C,1,1]-like sigmoid (a gate) */
  int conv_one_out;   /* conv2d with one output channel (or its input gradient) */
} label_parts;

/* 1 if 'a' is [N,C,1,1]-like against the rank-4 output 'o' with H*W > 1. */
static int per_channel_like(const ir_type *a, const ir_type *o) {
  return a->rank == 4 && o->rank == 4 && a->dims[2] == 1 && a->dims[3] == 1 && a->dims[1] == o->dims[1] &&
         o->dims[1] > 1 && o->dims[2] * o->dims[3] > 1;
}

/* 1 if operand 'k' of 'n' is [N,C,1,1]-like against n's output and comes
 * from a sigmoid of group 'gr', through reshapes only: a per-channel gate
 * computed in the group (not one computed earlier, which a recomputed
 * product reads). */
static int channel_gate(const ir_graph *g, const pass_fuse_group *gr, const ir_node *n, int k) {
  if (!per_channel_like(operand_type(g, n, k), &n->type)) return 0;
  const ir_node *a = g->nodes[n->in[k]];
  for (int hops = 0; a->op == IR_OP_reshape && hops < 4; hops++) a = g->nodes[a->in[0]];
  if (a->op != IR_OP_sigmoid) return 0;
  for (int i = 0; i < gr->nmembers; i++)
    if (gr->members[i] == a->id) return 1;
  return 0;
}

/* 1 if the gradient operand of sigmoid_grad 'n' is a reduction over [2,3]
 * of a rank-4 value, through reshapes only: a channel gate's gradient (a
 * batch-norm's per-sample sums over [2,3] feed no gate). */
static int gate_of_pooling(const ir_graph *g, const ir_node *n) {
  const ir_node *a = g->nodes[n->in[1]];
  for (int hops = 0; a->op == IR_OP_reshape && hops < 4; hops++) a = g->nodes[a->in[0]];
  return (ir_op_info_get(a->op)->flags & IR_OPF_REDUCTION) && operand_type(g, a, 0)->rank == 4 &&
         reduced_axes(a, 4) == 0xcu;
}

/* The structural label of a group of kind 'kind' (from op kinds only; the
 * LOOP "sgd" label from the names of the outputs its outs write). */
static const char *group_label(const fuse_state *s, const pass_fuse_group *gr) {
  if (gr->kind == PASS_FUSE_LOOP) {
    for (int i = 0; i < gr->nouts; i++)
      if (s->param_out[gr->outs[i]]) return "sgd";
    return "elementwise";
  }
  label_parts p = {0};
  for (int i = 0; i < gr->nmembers; i++) {
    const ir_node *n = s->g->nodes[gr->members[i]];
    const ir_type *x = n->nin ? operand_type(s->g, n, 0) : NULL;
    if ((ir_op_info_get(n->op)->flags & IR_OPF_REDUCTION) && x->rank == 4) {
      unsigned ax = reduced_axes(n, 4);
      p.spatial_reduce |= ax == 0xcu;
      p.channel_reduce |= ax == 0x2u && ir_get_int(n, "keepdims");
      p.channel_sum |= ax == 0x2u;
    }
    p.gate |= n->op == IR_OP_sigmoid;
    p.gate_grad |= n->op == IR_OP_sigmoid_grad;
    p.pooled_grad |= n->op == IR_OP_sigmoid_grad && gate_of_pooling(s->g, n);
    if (n->op == IR_OP_mul) {
      p.channel_gated |= channel_gate(s->g, gr, n, 0) || channel_gate(s->g, gr, n, 1);
    }
    if (n->op == IR_OP_conv2d) p.conv_one_out |= n->type.dims[1] == 1;
    if (n->op == IR_OP_conv2d_grad_input) p.conv_one_out |= operand_type(s->g, n, 1)->dims[0] == 1;
  }
  /* a backward group may hold the spatial reduction of dy * x without the
   * per-channel product dy * s (it can land in a neighbouring group), and
   * autodiff sums over the channels without keepdims; its spatial
   * reduction must feed the gate's gradient */
  int grad = p.gate_grad, gate = grad ? p.gate_grad : p.gate;
  int ca = p.spatial_reduce && gate && (grad ? p.pooled_grad : p.channel_gated);
  int sa = (grad ? p.channel_sum : p.channel_reduce) && p.conv_one_out && gate;
  if (ca && sa) return grad ? "attention-grad" : "attention";
  if (ca) return grad ? "channel-attention-grad" : "channel-attention";
  if (sa) return grad ? "spatial-attention-grad" : "spatial-attention";
  return "sample";
}

/* 1 if every member is elementwise of one output type. */
static int all_elementwise(const fuse_state *s, const int *mem, int m) {
  for (int i = 0; i < m; i++) {
    const ir_node *n = s->g->nodes[mem[i]];
    if (!is_elementwise(n) || !ir_type_equal(&n->type, &s->g->nodes[mem[0]]->type)) return 0;
  }
  return 1;
}

/* Emits the group rooted at 'r' found in 'phase' if it holds at least two
 * nodes needing a kernel; returns -1 if out of memory. */
static int emit_group(fuse_state *s, int r, int phase) {
  int m = 0, kernels = 0;
  for (int x = s->head[r]; x >= 0; x = s->next[x]) {
    s->scratch[m++] = x;
    kernels += !pass_plan_is_alias(s->g->nodes[x]);
  }
  if (kernels < 2) return 0;
  if (s->f->ngroups == s->gcap) {
    int cap = s->gcap ? 2 * s->gcap : 16;
    pass_fuse_group *p = realloc(s->f->groups, sizeof *p * (size_t)cap);
    if (!p) return -1;
    s->f->groups = p;
    s->gcap = cap;
  }
  pass_fuse_group *gr = &s->f->groups[s->f->ngroups];
  memset(gr, 0, sizeof *gr);
  qsort(s->scratch, (size_t)m, sizeof *s->scratch, cmp_int);
  gr->members = malloc(sizeof *gr->members * (size_t)m);
  gr->step_start = malloc(sizeof *gr->step_start * (size_t)m);
  gr->outs = malloc(sizeof *gr->outs * (size_t)m);
  int maxin = 0;
  for (int i = 0; i < m; i++) maxin += s->g->nodes[s->scratch[i]]->nin;
  gr->ins = malloc(sizeof *gr->ins * (size_t)(maxin ? maxin : 1));
  s->f->ngroups++; /* freed with the rest on failure */
  if (!gr->members || !gr->step_start || !gr->outs || !gr->ins) return -1;
  memcpy(gr->members, s->scratch, sizeof *gr->members * (size_t)m);
  gr->nmembers = m;
  int in = ++s->stamp;
  for (int i = 0; i < m; i++) s->seen[gr->members[i]] = in;
  int outside = ++s->stamp;
  for (int i = 0; i < m; i++) {
    int id = gr->members[i];
    const ir_node *n = s->g->nodes[id];
    for (int k = 0; k < n->nin; k++)
      if (s->seen[n->in[k]] != in && s->mark[n->in[k]] != outside) {
        s->mark[n->in[k]] = outside;
        gr->ins[gr->nins++] = n->in[k];
      }
    int out = s->named[id];
    for (int j = s->ustart[id]; j < s->ustart[id + 1] && !out; j++) out = s->seen[s->users[j]] != in;
    if (out) gr->outs[gr->nouts++] = id;
    s->done[id] = 1;
  }
  qsort(gr->ins, (size_t)gr->nins, sizeof *gr->ins, cmp_int);
  if (phase == PHASE_SAMPLE) {
    gr->kind = PASS_FUSE_SAMPLE;
    gr->nsteps = split_steps(s, gr->members, m, gr->step_start);
    gr->nsteps = order_members(s, gr->members, m, gr->step_start, gr->nsteps);
    if (gr->nsteps == 1 && all_elementwise(s, gr->members, m)) gr->kind = PASS_FUSE_LOOP;
  } else {
    gr->kind = PASS_FUSE_LOOP;
    gr->nsteps = 1;
    gr->step_start[0] = 0;
  }
  gr->label = group_label(s, gr);
  return 0;
}

/* Emits every group of 'phase' with two or more kernels; -1 if out of memory. */
static int emit_phase(fuse_state *s, int phase) {
  for (int r = 0; r < s->n; r++)
    if (s->gid[r] == r && emit_group(s, r, phase)) return -1;
  return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* 1 if 'name' is in the sorted list of param names. */
static int is_param_name(char **names, int n, const char *name) {
  return n > 0 && bsearch(&name, names, (size_t)n, sizeof *names, cmp_str) != NULL;
}

/* Marks the nodes named by outputs, and those whose output is named like a
 * param or "optim.<param>.momentum" (what pass_sgd writes); -1 if out of memory. */
static int mark_outputs(fuse_state *s) {
  const ir_graph *g = s->g;
  int np = 0;
  char **names = malloc(sizeof *names * (size_t)(g->nnodes ? g->nnodes : 1));
  if (!names) return -1;
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == IR_OP_param && ir_node_name(g->nodes[i])) names[np++] = (char *)ir_node_name(g->nodes[i]);
  qsort(names, (size_t)np, sizeof *names, cmp_str);
  for (int i = 0; i < g->noutputs; i++) {
    const char *name = g->outputs[i].name;
    int id = g->outputs[i].node, hit = is_param_name(names, np, name);
    size_t len = strlen(name);
    if (!hit && len > 15 && strncmp(name, "optim.", 6) == 0 && strcmp(name + len - 9, ".momentum") == 0) {
      char *p = strndup(name + 6, len - 15);
      if (!p) {
        free(names);
        return -1;
      }
      hit = is_param_name(names, np, p);
      free(p);
    }
    s->named[id] = 1;
    s->param_out[id] |= (unsigned char)hit;
  }
  free(names);
  return 0;
}

/* Frees the working state (not the fusion result). */
static void state_free(fuse_state *s) {
  if (s->blk)
    for (int i = 0; i < s->n; i++) free(s->blk[i]);
  free(s->blk);
  free(s->ustart), free(s->users), free(s->named), free(s->param_out), free(s->done);
  free(s->gid), free(s->next), free(s->head), free(s->tail), free(s->size);
  free(s->nblk), free(s->capblk), free(s->closed), free(s->mark), free(s->seen);
  free(s->cand), free(s->scratch);
}

/* Allocates the working state for 'g'; -1 if out of memory. */
static int state_init(fuse_state *s, const ir_graph *g, pass_fusion *f) {
  memset(s, 0, sizeof *s);
  s->g = g;
  s->f = f;
  s->n = g->nnodes;
  s->batch = pass_fuse_graph_batch(g);
  size_t n = (size_t)(g->nnodes ? g->nnodes : 1);
  int maxin = 1;
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->nin > maxin) maxin = g->nodes[i]->nin;
  s->named = calloc(n, 1), s->param_out = calloc(n, 1), s->done = calloc(n, 1), s->closed = calloc(n, 1);
  s->gid = malloc(sizeof(int) * n), s->next = malloc(sizeof(int) * n), s->head = malloc(sizeof(int) * n);
  s->tail = malloc(sizeof(int) * n), s->size = malloc(sizeof(int) * n);
  s->nblk = calloc(n, sizeof(int)), s->capblk = calloc(n, sizeof(int)), s->blk = calloc(n, sizeof(int *));
  s->mark = calloc(n, sizeof(int)), s->seen = calloc(n, sizeof(int));
  s->cand = malloc(sizeof(int) * (size_t)maxin), s->scratch = malloc(sizeof(int) * (FUSE_MAX_MEMBERS + 1 > n ? FUSE_MAX_MEMBERS + 1 : n));
  if (!s->named || !s->param_out || !s->done || !s->closed || !s->gid || !s->next || !s->head || !s->tail ||
      !s->size || !s->nblk || !s->capblk || !s->blk || !s->mark || !s->seen || !s->cand || !s->scratch)
    return -1;
  return pass_users(s->g, &s->ustart, &s->users) || mark_outputs(s) ? -1 : 0;
}

/* Sort order of groups: by last member. */
static int by_last(const void *a, const void *b) {
  int x = pass_fuse_last(a), y = pass_fuse_last(b);
  return (x > y) - (x < y);
}

/* Partitions 'g' into fusion groups (see passes.h). */
attnc_status pass_fuse(const ir_graph *g, pass_fusion *f, ir_diag *d) {
  memset(f, 0, sizeof *f);
  f->nnodes = g->nnodes;
  f->group_of = malloc(sizeof *f->group_of * (size_t)(g->nnodes ? g->nnodes : 1));
  fuse_state s;
  int bad = !f->group_of || state_init(&s, g, f);
  if (!bad) bad = run_phase(&s, PHASE_SAMPLE) || emit_phase(&s, PHASE_SAMPLE) || run_phase(&s, PHASE_LOOP) ||
                  emit_phase(&s, PHASE_LOOP);
  if (f->group_of) state_free(&s);
  if (bad) {
    pass_fusion_free(f);
    ir_diag_error(d, NULL, 0, "pass_fuse: out of memory");
    return ATTNC_ENOMEM;
  }
  if (f->ngroups) qsort(f->groups, (size_t)f->ngroups, sizeof *f->groups, by_last);
  for (int i = 0; i < g->nnodes; i++) f->group_of[i] = -1;
  for (int i = 0; i < f->ngroups; i++)
    for (int j = 0; j < f->groups[i].nmembers; j++) f->group_of[f->groups[i].members[j]] = i;
  return ATTNC_OK;
}

/* The member id of 'gr' that 'sign' * id is largest for. */
static int extreme_member(const pass_fuse_group *gr, int sign) {
  int id = gr->members[0];
  for (int i = 1; i < gr->nmembers; i++)
    if (sign * gr->members[i] > sign * id) id = gr->members[i];
  return id;
}

/* The smallest member id of 'gr'. */
int pass_fuse_first(const pass_fuse_group *gr) { return extreme_member(gr, -1); }

/* The largest member id of 'gr': where the group runs. */
int pass_fuse_last(const pass_fuse_group *gr) { return extreme_member(gr, 1); }

/* The number of steps of 'gr'. */
int pass_fuse_nsteps(const pass_fuse_group *gr) { return gr->nsteps > 0 ? gr->nsteps : 1; }

/* The member range of step s of 'gr'. */
void pass_fuse_step(const pass_fuse_group *gr, int s, int *first, int *end) {
  *first = gr->nsteps > 0 ? gr->step_start[s] : 0;
  *end = s + 1 < gr->nsteps ? gr->step_start[s + 1] : gr->nmembers;
}

/* Frees the groups of 'f'. */
void pass_fusion_free(pass_fusion *f) {
  for (int i = 0; i < f->ngroups; i++) {
    free(f->groups[i].members);
    free(f->groups[i].step_start);
    free(f->groups[i].outs);
    free(f->groups[i].ins);
  }
  free(f->groups);
  free(f->group_of);
  memset(f, 0, sizeof *f);
}
