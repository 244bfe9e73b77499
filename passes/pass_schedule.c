/* Scheduling, run on the training step after simplification: reorders the
 * step so that fusion (pass_fuse.c) can group the batch-local work of an
 * attention block's backward and forward into one sample group each. The
 * order of the members inside a group is fusion's own (pass_fuse orders
 * each group's passes over the feature map); this pass only moves nodes
 * across group boundaries.
 *
 * Small batch reductions (the weight gradient of a 1D conv over a
 * [N,1,C] gate or of a spatial attention's 7x7 conv, the sum over the
 * batch of a [N,C] product: what a per-sample gate's own parameters need)
 * sink below the batch-local nodes after them. Emitted by autodiff right
 * after the gate's gradient, such a node reads a member of the sample group
 * that computes the gradient, so the group had to end there (a group runs
 * at its last member) and the rest of the block's backward, a pass over
 * the same samples' feature map, became a second group that read the map
 * again. Their operands are small maps (small_map: at most
 * SINK_PER_SAMPLE values per sample, or at most two channels at any
 * resolution; a [N,1,H,W] map, not a feature map) and live only across
 * those nodes.
 * Small nodes of no batched operand (at most HOIST_SMALL values: the
 * slices of a one-channel BN's parameter gradient, the add of its two
 * uses' gradients) sink likewise: between a block's attention gradient
 * and the per-sample sums of the BN before it, they ended its group.
 * Then a batch-local node hoists above the small batch-wide nodes before
 * it (the statistics of a spatial attention's [N,1,H,W] map: batchnorm
 * stats, slices, the per-channel arithmetic; at most HOIST_SMALL values
 * each) and above the small batch-local nodes that depend on those
 * (small maps), up to its operands: HAM's second masked pooling and conv
 * came after the first's BN statistics and so formed a group of their
 * own, reading the block's feature map again;
 * hoisted, they join the first pooling's group. A hoisted node read only
 * by batch-local nodes below such a statistic goes back next to its first
 * user (a map pass_remat recomputes there would otherwise be stored).
 * Then a cluster that ends in a small map read only by batch-wide nodes
 * gathers up to the end of the run of batch-local nodes it reads, past the
 * batch-wide nodes after that run and anything else it does not need, even
 * feature-map ops: HAM's backward computes the gradients of its two
 * spatial maps, each before its own batch norm's gradient, and autodiff
 * emits the second's batch norm and the feature-map ops that use it before
 * the first's gradient, which so read the block's maps again in a group of
 * its own; gathered, both gradients are one group.
 * Last, a batch-local elementwise feature map read only by batch-local
 * nodes after a batch-wide one, of at most one feature-map operand, goes
 * down next to its first user (settles): a batch norm's dy*A and x - mean
 * come before its batch sums and so joined the sample group that makes
 * them, which stored them for the dx loop after the sums, where they are
 * now computed from dy and x.
 * Constants go first, right after the sources, so that the groups of two
 * blocks alike number their inputs alike and share one kernel.
 * Values are unchanged: this is only a different topological order. */
#include <stdlib.h>

#include "passes.h"

#define SINK_PER_SAMPLE 4096 /* values per sample of a small map of any channel count (small_map) */
#define SMALL_MAP_CHANNELS 2 /* channels of a map that is small at any resolution */
#define HOIST_SMALL 4096     /* largest non-batch-local node a hoisted node passes */
#define HOIST_WINDOW 64      /* nodes a hoisted node passes at most */
#define GATHER_WINDOW 256    /* nodes a gathered cluster's walk looks back over */
#define GATHER_MAX 48        /* members of a gathered cluster */

/* Order being built: a doubly linked list over node ids. */
typedef struct {
  const ir_graph *g;
  int *prev, *next; /* -1 at the ends */
  int head, tail;
  int64_t *numel;
  char *used; /* scratch: 1 for the operands / users of the node moving */
  int *mark;  /* scratch: stamped nodes */
  int stamp;
  char *local; /* per node: batch-local (pass_fuse_sample_eligible), fixed while reordering */
} order;

static void unlink_node(order *o, int id) {
  if (o->prev[id] >= 0) o->next[o->prev[id]] = o->next[id];
  else o->head = o->next[id];
  if (o->next[id] >= 0) o->prev[o->next[id]] = o->prev[id];
  else o->tail = o->prev[id];
}

/* Links 'id' just before 'at'. */
static void link_before(order *o, int id, int at) {
  o->prev[id] = o->prev[at];
  o->next[id] = at;
  if (o->prev[at] >= 0) o->next[o->prev[at]] = id;
  else o->head = id;
  o->prev[at] = id;
}

/* Links 'id' just after 'at'. */
static void link_after(order *o, int id, int at) {
  o->next[id] = o->next[at];
  o->prev[id] = at;
  if (o->next[at] >= 0) o->prev[o->next[at]] = id;
  else o->tail = id;
  o->next[at] = id;
}

/* 1 if value 'id' is small per sample: at most SINK_PER_SAMPLE values, or
 * a map of at most SMALL_MAP_CHANNELS channels (a spatial attention's
 * [N,1,H,W] map or its [N,2,H,W] pooled pair), whatever its resolution:
 * such a map is a small part of the feature maps beside it at 32x32 and
 * at 224x224 alike. A count alone took the [N,2,56,56] pair of a
 * ResNet-18's first stage (or of ResNet-20 at STL-10's 96x96) for a
 * feature map, and its attention's backward split in two groups. */
static int small_map(const order *o, int id, int64_t batch) {
  const ir_type *t = &o->g->nodes[id]->type;
  if (o->numel[id] <= SINK_PER_SAMPLE * batch) return 1;
  return t->rank == 4 && t->dims[0] == batch && t->dims[1] <= SMALL_MAP_CHANNELS;
}

/* 1 if node 'n' is a small batch-wide node that should sink: not
 * batch-local for 'batch', not a source, and either a batch reduction of
 * batched operands that are all small maps (small_map), or of no batched
 * operand and at most HOIST_SMALL values (a slice of a statistic, a
 * parameter's update). */
static int sinkable(const order *o, const ir_node *n, int64_t batch) {
  if (batch < 1 || ir_op_source(n->op) || n->op == IR_OP_const || !n->nin || o->local[n->id]) return 0;
  int batched = 0, small = 1; /* some / every operand batched and small per sample */
  for (int k = 0; k < n->nin; k++) {
    const ir_type *t = &o->g->nodes[n->in[k]]->type;
    int b = t->rank >= 1 && t->dims[0] == batch;
    batched |= b;
    small &= b && small_map(o, n->in[k], batch);
  }
  return batched ? small : o->numel[n->id] <= HOIST_SMALL; /* else parameter-sized arithmetic */
}

/* Moves node 'id' down past the batch-local nodes, constants and other
 * sinkable nodes after it (past any node if 'any'), stopping above its
 * first user or any other node; returns 1 if it moved. */
static int sink(order *o, int id, int64_t batch, int any, const int *ustart, const int *users) {
  for (int j = ustart[id]; j < ustart[id + 1]; j++) o->used[users[j]] = 1;
  int q = o->next[id], last = id;
  while (q >= 0 && !o->used[q]) {
    const ir_node *n = o->g->nodes[q];
    if (!any && n->op != IR_OP_const && !o->local[q] && !sinkable(o, n, batch)) break;
    last = q;
    q = o->next[q];
  }
  for (int j = ustart[id]; j < ustart[id + 1]; j++) o->used[users[j]] = 0;
  if (last == id) return 0;
  unlink_node(o, id);
  link_after(o, id, last);
  return 1;
}

/* Kinds of the nodes a hoisted node passes. */
enum { PASS_WIDE, PASS_LOCAL, PASS_CONST, PASS_CARRY /* a constant operand: moves along */ };

/* 1 if L[0..k] (nearest first) may all be passed by a hoisted node: each
 * is a constant, a small batch-wide node, or a batch-local node reading
 * one of those wide nodes (or such a dependent) among L[k..0], and at
 * least one is wide; kind[j] says which L[j] is. */
static int passable_span(order *o, const int *L, const char *kind, int k) {
  int st = ++o->stamp, wide = 0;
  for (int j = k; j >= 0; j--) {
    if (kind[j] == PASS_CONST || kind[j] == PASS_CARRY) continue;
    const ir_node *n = o->g->nodes[L[j]];
    int dep = kind[j] == PASS_WIDE;
    wide |= dep;
    for (int q = 0; q < n->nin && !dep; q++) dep = o->mark[n->in[q]] == st;
    if (!dep) return 0;
    o->mark[L[j]] = st;
  }
  return wide;
}

/* Moves batch-local node 'id' up past a span of small batch-wide nodes and
 * their batch-local dependents, to just below the node above that span
 * (never past an operand other than a constant, which moves along, nor a
 * source or a larger batch-wide node); returns 1 if it moved. */
static int hoist(order *o, int id, int64_t batch) {
  const ir_node *n = o->g->nodes[id];
  if (!o->local[id]) return 0;
  int L[HOIST_WINDOW], nl = 0;
  char kind[HOIST_WINDOW];
  for (int k = 0; k < n->nin; k++) o->used[n->in[k]] = 1;
  for (int p = o->prev[id]; p >= 0 && nl < HOIST_WINDOW; p = o->prev[p]) {
    const ir_node *pn = o->g->nodes[p];
    if (o->used[p] && pn->op != IR_OP_const) break;
    if (pn->op == IR_OP_const) kind[nl] = o->used[p] ? PASS_CARRY : PASS_CONST;
    else if (o->local[p]) {
      if (!small_map(o, p, batch)) break; /* a feature-map op: not passed */
      kind[nl] = PASS_LOCAL;
    } else if (o->numel[p] <= HOIST_SMALL && !ir_op_source(pn->op)) kind[nl] = PASS_WIDE;
    else break;
    L[nl++] = p;
  }
  for (int k = 0; k < n->nin; k++) o->used[n->in[k]] = 0;
  for (int k = nl - 1; k >= 0; k--)
    if (passable_span(o, L, kind, k)) {
      unlink_node(o, id);
      link_before(o, id, L[k]);
      for (int j = 0; j <= k; j++)
        if (kind[j] == PASS_CARRY) {
          unlink_node(o, L[j]);
          link_before(o, L[j], id);
        }
      return 1;
    }
  return 0;
}

/* 1 if hoisted node 'u' should go back next to its first user: all its
 * users are batch-local and a batch-wide node now lies between it and the
 * first, so it would be stored for them where it was computed next to them
 * (a map pass_remat recomputes for its user). */
static int hoist_undone(order *o, int u, const int *ustart, const int *users) {
  if (ustart[u] == ustart[u + 1]) return 0;
  for (int j = ustart[u]; j < ustart[u + 1]; j++)
    if (!o->local[users[j]]) return 0; /* stored for that user anyway */
  for (int j = ustart[u]; j < ustart[u + 1]; j++) o->used[users[j]] = 1;
  int wide = 0;
  for (int q = o->next[u]; q >= 0 && !wide && !o->used[q]; q = o->next[q])
    wide = o->g->nodes[q]->op != IR_OP_const && !o->local[q];
  for (int j = ustart[u]; j < ustart[u + 1]; j++) o->used[users[j]] = 0;
  return wide;
}

/* 1 if node 'v' is a batch-local elementwise feature map (not a small
 * map) of at most one such map operand, read only by batch-local nodes,
 * with a batch-wide node between it and its first user: computed where it
 * is, in the sample group before that node, it would be stored for its
 * users; next to them it is computed in their loop from its operand
 * instead (a batch norm's dy*A and x - mean, which its dx reads after the
 * batch sums). */
static int settles(order *o, int v, int64_t batch, const int *ustart, const int *users) {
  const ir_node *n = o->g->nodes[v];
  if (!o->local[v] || !ir_op_elementwise(n->op) || small_map(o, v, batch)) return 0;
  int maps = 0;
  for (int k = 0; k < n->nin; k++) maps += !small_map(o, n->in[k], batch);
  if (maps > 1) return 0;
  return hoist_undone(o, v, ustart, users);
}

/* 1 if batch-local node 'r' ends a cluster worth gathering: a small map,
 * read only by batch-wide nodes (the gradient of a spatial attention map,
 * read by its batch norm's gradient). */
static int gather_root(const order *o, int r, int64_t batch, const int *ustart, const int *users) {
  if (!o->local[r] || !small_map(o, r, batch) || ustart[r] == ustart[r + 1]) return 0;
  for (int j = ustart[r]; j < ustart[r + 1]; j++)
    if (o->local[users[j]]) return 0;
  return 1;
}

/* Moves the cluster ending at root 'r' (r and the batch-local nodes it
 * needs that lie after the run R it reads) up to the end of R, past the
 * batch-wide nodes after R and whatever else it does not need; returns 1
 * if it moved. R is the run of batch-local nodes before the first
 * batch-wide node the cluster passes; none of the cluster may read a
 * batch-wide node after R, and none but r, unless a small map, may be
 * read outside the cluster (it would be stored). */
static int gather(order *o, int r, int64_t batch, const int *ustart, const int *users) {
  const ir_graph *g = o->g;
  int st = ++o->stamp, K[GATHER_MAX], nk = 0, wide_first = -1, found = 0, steps = 0;
  K[nk++] = r;
  for (int k = 0; k < g->nodes[r]->nin; k++) o->mark[g->nodes[r]->in[k]] = st;
  /* walking up, wide_first is the highest batch-wide node passed so far,
   * so all between it and the first needed node above it are batch-local
   * or constants: that node's run R ends right above wide_first */
  for (int p = o->prev[r]; p >= 0 && steps < GATHER_WINDOW && !found; p = o->prev[p], steps++) {
    const ir_node *pn = g->nodes[p];
    int wide = pn->op != IR_OP_const && !o->local[p];
    if (o->mark[p] != st) {
      if (wide) wide_first = p;
    } else if (wide) {
      return 0; /* needs a batch-wide node after R */
    } else if (wide_first >= 0 && pn->op != IR_OP_const) {
      found = 1; /* a member of R */
    } else {
      if (nk == GATHER_MAX) return 0;
      K[nk++] = p;
      for (int k = 0; k < pn->nin; k++) o->mark[pn->in[k]] = st;
    }
  }
  if (!found) return 0;
  int in = ++o->stamp;
  for (int i = 0; i < nk; i++) o->mark[K[i]] = in;
  for (int i = 1; i < nk; i++)
    if (!small_map(o, K[i], batch))
      for (int j = ustart[K[i]]; j < ustart[K[i] + 1]; j++)
        if (o->mark[users[j]] != in) return 0;
  for (int i = nk - 1; i >= 0; i--) { /* K is nearest first: insert the farthest first */
    unlink_node(o, K[i]);
    link_before(o, K[i], wide_first);
  }
  return 1;
}

/* Moves every constant up to the end of the graph's leading run of
 * sources and constants, keeping their order; returns how many moved. A
 * constant has no operands and no kernel, but it is an input of the fusion
 * group that reads it, and a group's inputs are numbered in graph order:
 * where autodiff emitted a constant, right above its first user, decided
 * whether the groups of two blocks alike numbered their inputs alike and
 * shared a kernel (ResNet-20+HAM's training step: 126 distinct kernels
 * with this, 138 without). */
static int consts_first(order *o) {
  int last = -1; /* the end of the leading run */
  for (int id = o->head; id >= 0; id = o->next[id]) {
    ir_opcode op = o->g->nodes[id]->op;
    if (op != IR_OP_const && !ir_op_source(op)) break;
    last = id;
  }
  if (last < 0) return 0;
  int moved = 0;
  for (int id = o->next[last], nx; id >= 0; id = nx) {
    nx = o->next[id];
    if (o->g->nodes[id]->op != IR_OP_const) continue;
    if (o->prev[id] != last) {
      unlink_node(o, id);
      link_after(o, id, last);
      moved++;
    }
    last = id;
  }
  return moved;
}

/* Writes the current order's node ids to 'ids'; returns their count. */
static int snapshot(const order *o, int *ids) {
  int n = 0;
  for (int id = o->head; id >= 0; id = o->next[id]) ids[n++] = id;
  return n;
}

/* Reorders 'g' in place (see the file comment); *moved (if given) counts
 * the nodes that moved. */
attnc_status pass_schedule(ir_graph *g, int *moved, ir_diag *d) {
  int nn = g->nnodes;
  order o = {g,      malloc(sizeof(int) * (size_t)(nn + 1)), malloc(sizeof(int) * (size_t)(nn + 1)),
             nn ? 0 : -1, nn - 1, malloc(sizeof(int64_t) * (size_t)(nn + 1)), calloc((size_t)nn + 1, 1),
             calloc((size_t)nn + 1, sizeof(int)), 0, malloc((size_t)nn + 1)};
  int *ustart = NULL, *users = NULL, count = 0;
  int *hoisted = malloc(sizeof(int) * (size_t)(nn + 1)), *map = malloc(sizeof(int) * (size_t)(nn + 1));
  attnc_status st = ATTNC_OK;
  if (!o.prev || !o.next || !o.numel || !o.used || !o.mark || !o.local || !hoisted || !map ||
      pass_users(g, &ustart, &users)) {
    ir_diag_error(d, NULL, 0, "schedule: out of memory");
    st = ATTNC_ENOMEM;
    goto done;
  }
  for (int i = 0; i < nn; i++) {
    o.prev[i] = i - 1;
    o.next[i] = i + 1 < nn ? i + 1 : -1;
    o.numel[i] = ir_type_numel(&g->nodes[i]->type);
  }
  count += consts_first(&o);
  int64_t batch = pass_fuse_graph_batch(g);
  for (int i = 0; i < nn; i++) o.local[i] = (char)(batch >= 1 && pass_fuse_sample_eligible(g, g->nodes[i], batch));
  for (int i = nn - 1; i >= 0; i--) /* last first: a sunk node's user may sink too */
    if (sinkable(&o, g->nodes[i], batch)) count += sink(&o, i, batch, 0, ustart, users);
  int nseq = snapshot(&o, map), nh = 0; /* the order before hoisting */
  for (int i = 0; i < nseq; i++)
    if (hoist(&o, map[i], batch)) hoisted[nh++] = map[i];
  for (int i = nh - 1; i >= 0; i--) /* last hoisted first: its users have settled */
    if (hoist_undone(&o, hoisted[i], ustart, users)) {
      sink(&o, hoisted[i], batch, 1, ustart, users);
      nh--;
    }
  count += nh;
  nseq = snapshot(&o, map); /* the order before gathering */
  for (int i = 0; i < nseq; i++)
    if (gather_root(&o, map[i], batch, ustart, users)) count += gather(&o, map[i], batch, ustart, users);
  nseq = snapshot(&o, map);
  for (int i = nseq - 1; i >= 0; i--) /* last first: a settled node's operand may settle after it */
    if (settles(&o, map[i], batch, ustart, users)) count += sink(&o, map[i], batch, 1, ustart, users);
  if (count) {
    ir_graph *c = ir_graph_create(g->name);
    int ins[64];
    for (int id = o.head; id >= 0; id = o.next[id]) {
      const ir_node *n = g->nodes[id];
      int *in = n->nin <= 64 ? ins : malloc(sizeof(int) * (size_t)n->nin);
      if (!c || !in) {
        ir_graph_destroy(c);
        ir_diag_error(d, NULL, 0, "schedule: out of memory");
        st = ATTNC_ENOMEM;
        goto done;
      }
      for (int k = 0; k < n->nin; k++) in[k] = map[n->in[k]];
      map[id] = ir_graph_copy_node(c, n, in)->id;
      if (in != ins) free(in);
    }
    for (int i = 0; i < g->noutputs; i++) ir_graph_add_output(c, g->outputs[i].name, map[g->outputs[i].node]);
    ir_graph_take(g, c);
  }
  if (moved) *moved = count;
done:
  free(o.prev);
  free(o.next);
  free(o.numel);
  free(o.used);
  free(o.mark);
  free(o.local);
  free(ustart);
  free(users);
  free(hoisted);
  free(map);
  return st;
}
