/* Batch-sum split, run on a training step after autodiff: a sum or mean
 * over the batch axis and other axes of a batched feature map (the
 * gradient of a scalar parameter that scales a map, as CSM's attention
 * weight) becomes the sum over those other axes per sample, then a sum over
 * the batch of the per-sample results:
 *   reduce_sum(x, [0] + A) = reduce_sum(reduce_sum(x, A), [0])
 * (means likewise, every sample counting the same). The per-sample sum is
 * batch-local, so it joins the sample group that computes x while the
 * group's loop still holds each sample, instead of a pass of its own over
 * x stored in memory; and it no longer sits in the middle of the block's
 * backward reading a member of that group, which ended the group there.
 * Only what is left, N values per result, is summed over the batch. Small
 * operands (at most SPLIT_MIN values per sample: a gate's [N,C]) are left
 * alone: their sums are small kernels that pass_schedule sinks anyway. */
#include "passes.h"

#define SPLIT_MIN 4096 /* values per sample of the smallest operand split */

/* The axes other than 0 that reduction 'n' of an operand of 'rank'
 * reduces, normalized, into rest[]; returns how many, or -1 if axis 0 is
 * not among them. */
static int rest_axes(const ir_node *n, int rank, int64_t *rest) {
  int na, nrest = 0, batch = 0;
  const int64_t *axes = ir_get_ints(n, "axes", &na);
  for (int i = 0; i < na; i++) {
    int64_t a = axes[i] < 0 ? axes[i] + rank : axes[i];
    batch |= a == 0;
    if (a > 0 && a < rank && nrest < IR_MAX_RANK) rest[nrest++] = a;
  }
  return batch ? nrest : -1;
}

/* 1 if 'n' is a float sum or mean over axis 0 and at least one other axis
 * of an operand (in[0], a node of 'g') of rank >= 2 with more than
 * SPLIT_MIN values per sample. */
static int splits(const ir_graph *g, const ir_node *n, const int *in) {
  if (n->op != IR_OP_reduce_sum && n->op != IR_OP_reduce_mean) return 0;
  const ir_type *x = &g->nodes[in[0]]->type;
  if (x->rank < 2 || x->dtype == IR_I64 || x->dims[0] < 2 || ir_type_numel(x) / x->dims[0] <= SPLIT_MIN) return 0;
  int64_t rest[IR_MAX_RANK];
  return rest_axes(n, x->rank, rest) > 0;
}

/* Appends reduction 'op' of 'x' over 'axes' with 'keepdims' and its
 * inferred type; -1 on failure. */
static int reduce(ir_graph *g, ir_opcode op, int x, const int64_t *axes, int na, int64_t keepdims, ir_loc loc) {
  ir_node *r = ir_graph_append(g, op, &x, 1, loc);
  ir_set_ints(r, "axes", axes, na);
  ir_set_int(r, "keepdims", keepdims);
  return ir_infer_node(g, r, NULL) ? -1 : r->id;
}

/* 'n' (operand already mapped to 'x' in 'g') as the per-sample reduction
 * and the reduction of its results over the batch; -1 on failure. */
static int split(ir_graph *g, const ir_node *n, int x) {
  int64_t rest[IR_MAX_RANK], batch = 0, keep = ir_get_int(n, "keepdims");
  int nrest = rest_axes(n, g->nodes[x]->type.rank, rest);
  int per = reduce(g, n->op, x, rest, nrest, keep, n->loc);
  return per < 0 ? -1 : reduce(g, n->op, per, &batch, 1, keep, n->loc);
}

/* State of the rebuild: splits made, where errors go. */
typedef struct {
  int count;
  ir_diag *d;
} split_state;

/* pass_emit: the split of a sum that splits, else a copy. */
static int emit(ir_graph *ng, const ir_node *n, int *in, const int *map, void *ctx) {
  split_state *st = ctx;
  (void)map;
  if (!splits(ng, n, in)) return -2;
  int id = split(ng, n, in[0]);
  if (id < 0) ir_diag_error(st->d, NULL, 0, "batch-sum split: the sum %%%d does not split", n->id);
  st->count++;
  return id;
}

/* Splits every such sum of 'g' (see the file comment); *count (if given)
 * counts them. */
attnc_status pass_batch_sums(ir_graph *g, int *count, ir_diag *d) {
  int found = 0;
  for (int i = 0; i < g->nnodes && !found; i++) found = splits(g, g->nodes[i], g->nodes[i]->in);
  split_state st = {0, d};
  attnc_status s = found ? pass_rebuild(g, emit, &st, "batch-sum split", d) : ATTNC_OK;
  if (count) *count = s == ATTNC_OK ? st.count : 0;
  return s;
}
