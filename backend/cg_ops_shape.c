/* Kernels of data movement: concat, slice, slice_grad, transpose, pad.
 *
 * slice and transpose are gathers: the output is written in order while
 * the input is read through strides; axes that stay adjacent in the input
 * are merged (like the elementwise layout), so a slice with step 1 or a
 * transpose that keeps the last axes is a loop of contiguous row copies
 * that LLVM turns into vector moves. concat copies each operand's
 * contiguous block per outer index; pad and slice_grad fill a row with the
 * pad value (zero) and copy the input's row into it. Work items are output
 * rows (or blocks of long rows), so threads write disjoint parts. */
#include <stdlib.h>
#include "cg_internal.h"

enum { BLOCK = 16384 }; /* elements per work item of a long contiguous copy */

/* Output dims with the input stride of each output axis (a strided gather). */
typedef struct {
  int rank;
  int64_t dims[IR_MAX_RANK], in_stride[IR_MAX_RANK];
  int64_t in_offset;
  int64_t rows, inner, blocks; /* par = rows * blocks */
} gather_layout;

/* Fills the merged layout from unmerged dims/strides. */
static void gather_merge(gather_layout *l, int rank, const int64_t *dims, const int64_t *st) {
  l->rank = 0;
  for (int i = 0; i < rank; i++) {
    if (dims[i] == 1) continue;
    int r = l->rank;
    if (r > 0 && l->in_stride[r - 1] == st[i] * dims[i]) {
      l->dims[r - 1] *= dims[i];
      l->in_stride[r - 1] = st[i];
    } else {
      l->dims[r] = dims[i];
      l->in_stride[r] = st[i];
      l->rank++;
    }
  }
  if (l->rank == 0) {
    l->rank = 1;
    l->dims[0] = 1;
    l->in_stride[0] = 1;
  }
  l->inner = l->dims[l->rank - 1];
  l->rows = 1;
  for (int i = 0; i < l->rank - 1; i++) l->rows *= l->dims[i];
  l->blocks = (l->inner + BLOCK - 1) / BLOCK;
}

/* The gather layout of a slice or transpose node. */
static void gather_layout_of(const ir_graph *g, const ir_node *n, gather_layout *l) {
  const ir_type *x = &g->nodes[n->in[0]]->type, *t = &n->type;
  int64_t xs[IR_MAX_RANK], st[IR_MAX_RANK];
  cg_strides(x, xs);
  l->in_offset = 0;
  if (n->op == IR_OP_transpose) {
    const int64_t *perm = ir_get_ints(n, "perm", NULL);
    for (int i = 0; i < t->rank; i++) st[i] = xs[perm[i]];
  } else { /* slice */
    int64_t a = ir_get_int(n, "axis");
    if (a < 0) a += x->rank;
    for (int i = 0; i < t->rank; i++) st[i] = xs[i];
    st[a] = xs[a] * ir_get_int(n, "step");
    l->in_offset = ir_get_int(n, "start") * xs[a];
  }
  gather_merge(l, t->rank, t->dims, st);
}

/* Plan of a gather: one item per output row, or per block of a long row. */
static void plan_gather(const ir_graph *g, const ir_node *n, cg_plan *p) {
  gather_layout l;
  gather_layout_of(g, n, &l);
  p->par = l.rows * l.blocks;
  p->scratch_bytes = 0;
  p->flops = 0;
}

/* The block [lo, hi) of a row of 'len' elements for work item 'w' split in
 * 'blocks' blocks; *row receives w's row. */
static void row_block(cg_emit *e, LLVMValueRef w, int64_t len, int64_t blocks, LLVMValueRef *row, LLVMValueRef *lo,
                      LLVMValueRef *hi) {
  *row = w;
  *lo = cg_i64(e, 0);
  *hi = cg_i64(e, len);
  if (blocks > 1) {
    *row = LLVMBuildSDiv(e->b, w, cg_i64(e, blocks), "");
    *lo = cg_mul(e, LLVMBuildSRem(e->b, w, cg_i64(e, blocks), ""), cg_i64(e, BLOCK));
    *hi = cg_min(e, cg_add(e, *lo, cg_i64(e, BLOCK)), cg_i64(e, len));
  }
}

/* dst[dbase + j] = src[sbase + j * sstride] for j in [lo, hi). */
static void copy_run(cg_emit *e, LLVMValueRef dst, LLVMValueRef dbase, LLVMValueRef src, LLVMValueRef sbase,
                     int64_t sstride, LLVMValueRef lo, LLVMValueRef hi) {
  cg_loop lj;
  LLVMValueRef j = cg_loop_begin(e, &lj, lo, hi, 1);
  LLVMValueRef sj = sstride == 1 ? j : cg_mul(e, j, cg_i64(e, sstride));
  cg_store(e, dst, cg_add(e, dbase, j), cg_load(e, src, cg_add(e, sbase, sj)));
  cg_loop_end(e, &lj);
}

/* dst[base + j] = v for j in [lo, hi). */
static void fill_run(cg_emit *e, LLVMValueRef dst, LLVMValueRef base, LLVMValueRef v, LLVMValueRef lo,
                     LLVMValueRef hi) {
  cg_loop lj;
  LLVMValueRef j = cg_loop_begin(e, &lj, lo, hi, 1);
  cg_store(e, dst, cg_add(e, base, j), v);
  cg_loop_end(e, &lj);
}

/* Emits a gather (slice, transpose). */
static attnc_status emit_gather(cg_emit *e, const cg_plan *p) {
  (void)p;
  gather_layout l;
  gather_layout_of(e->g, e->n, &l);
  if (ir_type_numel(&e->n->type) == 0) return ATTNC_OK;
  cg_loop lw;
  LLVMValueRef w = cg_loop_begin(e, &lw, e->begin, e->end, 1), row, lo, hi;
  row_block(e, w, l.inner, l.blocks, &row, &lo, &hi);
  LLVMValueRef ibase = cg_i64(e, l.in_offset), rest = row;
  for (int i = l.rank - 2; i >= 0; i--) {
    LLVMValueRef idx = i == 0 ? rest : LLVMBuildSRem(e->b, rest, cg_i64(e, l.dims[i]), "");
    if (i > 0) rest = LLVMBuildSDiv(e->b, rest, cg_i64(e, l.dims[i]), "");
    ibase = cg_add(e, ibase, cg_mul(e, idx, cg_i64(e, l.in_stride[i])));
  }
  copy_run(e, e->arg[0], cg_mul(e, row, cg_i64(e, l.inner)), e->arg[1], ibase, l.in_stride[l.rank - 1], lo, hi);
  cg_loop_end(e, &lw);
  return ATTNC_OK;
}

/* The output of concat, slice_grad or pad viewed as [outer, len, inner]
 * around axis 'a' of type 't'. */
static void split_axis(const ir_type *t, int64_t a, int64_t *outer, int64_t *len, int64_t *inner) {
  if (a < 0) a += t->rank;
  *outer = *inner = 1;
  for (int i = 0; i < t->rank; i++) {
    if (i < a) *outer *= t->dims[i];
    if (i > a) *inner *= t->dims[i];
  }
  *len = t->dims[a];
}

/* Blocks of the longest operand block of a concat. */
static int64_t concat_blocks(const ir_graph *g, const ir_node *n) {
  int64_t outer, len, inner, most = 1;
  split_axis(&n->type, ir_get_int(n, "axis"), &outer, &len, &inner);
  int64_t a = ir_get_int(n, "axis");
  if (a < 0) a += n->type.rank;
  for (int k = 0; k < n->nin; k++) {
    int64_t size = g->nodes[n->in[k]]->type.dims[a] * inner;
    if (size > most) most = size;
  }
  return (most + BLOCK - 1) / BLOCK;
}

/* Plan of concat: one item per (outer index, operand, block). */
static void plan_concat(const ir_graph *g, const ir_node *n, cg_plan *p) {
  int64_t outer, len, inner;
  split_axis(&n->type, ir_get_int(n, "axis"), &outer, &len, &inner);
  p->par = outer * n->nin * concat_blocks(g, n);
  p->scratch_bytes = 0;
  p->flops = 0;
}

/* Emits concat: operand k's block of o goes after the blocks of operands < k. */
static attnc_status emit_concat(cg_emit *e, const cg_plan *p) {
  (void)p;
  const ir_node *n = e->n;
  int64_t outer, len, inner, a = ir_get_int(n, "axis"), blocks = concat_blocks(e->g, n);
  split_axis(&n->type, a, &outer, &len, &inner);
  if (a < 0) a += n->type.rank;
  if (ir_type_numel(&n->type) == 0) return ATTNC_OK;
  cg_loop lw;
  LLVMValueRef w = cg_loop_begin(e, &lw, e->begin, e->end, 1);
  LLVMValueRef blk = LLVMBuildSRem(e->b, w, cg_i64(e, blocks), "");
  LLVMValueRef ok = LLVMBuildSDiv(e->b, w, cg_i64(e, blocks), "");
  LLVMValueRef k = LLVMBuildSRem(e->b, ok, cg_i64(e, n->nin), "");
  LLVMValueRef o = LLVMBuildSDiv(e->b, ok, cg_i64(e, n->nin), "");
  int64_t at = 0;
  for (int i = 0; i < n->nin; i++) {
    int64_t size = e->g->nodes[n->in[i]]->type.dims[a] * inner;
    cg_if c;
    cg_if_begin(e, &c, LLVMBuildICmp(e->b, LLVMIntEQ, k, cg_i64(e, i), ""));
    LLVMValueRef lo = cg_mul(e, blk, cg_i64(e, BLOCK));
    LLVMValueRef hi = cg_min(e, cg_add(e, lo, cg_i64(e, BLOCK)), cg_i64(e, size));
    LLVMValueRef dbase = cg_add(e, cg_mul(e, o, cg_i64(e, len * inner)), cg_i64(e, at * inner));
    copy_run(e, e->arg[0], dbase, e->arg[1 + i], cg_mul(e, o, cg_i64(e, size)), 1, lo, hi);
    cg_if_end(e, &c);
    at += e->g->nodes[n->in[i]]->type.dims[a];
  }
  cg_loop_end(e, &lw);
  return ATTNC_OK;
}

/* Plan of slice_grad: one item per outer index. */
static void plan_slice_grad(const ir_graph *g, const ir_node *n, cg_plan *p) {
  (void)g;
  int64_t outer, len, inner;
  split_axis(&n->type, ir_get_int(n, "axis"), &outer, &len, &inner);
  p->par = outer;
  p->scratch_bytes = 0;
  p->flops = 0;
}

/* Emits slice_grad: zeros, with dy's rows placed at start, start+step, ... */
static attnc_status emit_slice_grad(cg_emit *e, const cg_plan *p) {
  (void)p;
  const ir_node *n = e->n;
  int64_t outer, len, inner, start = ir_get_int(n, "start"), step = ir_get_int(n, "step");
  split_axis(&n->type, ir_get_int(n, "axis"), &outer, &len, &inner);
  int64_t a = ir_get_int(n, "axis");
  if (a < 0) a += n->type.rank;
  int64_t dlen = e->g->nodes[n->in[0]]->type.dims[a];
  if (ir_type_numel(&n->type) == 0) return ATTNC_OK;
  ir_dtype dt = n->type.dtype;
  cg_loop lw, lj;
  LLVMValueRef o = cg_loop_begin(e, &lw, e->begin, e->end, 1);
  LLVMValueRef obase = cg_mul(e, o, cg_i64(e, len * inner)), ibase = cg_mul(e, o, cg_i64(e, dlen * inner));
  if (step == 1) { /* zeros before, the block, zeros after */
    fill_run(e, e->arg[0], obase, cg_const(e, dt, 0), cg_i64(e, 0), cg_i64(e, start * inner));
    copy_run(e, e->arg[0], cg_add(e, obase, cg_i64(e, start * inner)), e->arg[1], ibase, 1, cg_i64(e, 0),
             cg_i64(e, dlen * inner));
    fill_run(e, e->arg[0], obase, cg_const(e, dt, 0), cg_i64(e, (start + dlen) * inner), cg_i64(e, len * inner));
  } else {
    fill_run(e, e->arg[0], obase, cg_const(e, dt, 0), cg_i64(e, 0), cg_i64(e, len * inner));
    LLVMValueRef j = cg_loop_begin(e, &lj, cg_i64(e, 0), cg_i64(e, dlen), 1);
    LLVMValueRef dst = cg_add(e, obase, cg_mul(e, cg_affine(e, j, step, start), cg_i64(e, inner)));
    copy_run(e, e->arg[0], dst, e->arg[1], cg_add(e, ibase, cg_mul(e, j, cg_i64(e, inner))), 1, cg_i64(e, 0),
             cg_i64(e, inner));
    cg_loop_end(e, &lj);
  }
  cg_loop_end(e, &lw);
  return ATTNC_OK;
}

/* Plan of pad: one item per output row (last axis). */
static void plan_pad(const ir_graph *g, const ir_node *n, cg_plan *p) {
  (void)g;
  const ir_type *t = &n->type;
  int64_t last = t->rank ? t->dims[t->rank - 1] : 1;
  p->par = last ? ir_type_numel(t) / last : 1;
  p->scratch_bytes = 0;
  p->flops = 0;
}

/* Emits pad: each output row is the value, with x's row inside when the
 * row lies within x along every outer axis. */
static attnc_status emit_pad(cg_emit *e, const cg_plan *p) {
  (void)p;
  const ir_node *n = e->n;
  const ir_type *t = &n->type, *x = &e->g->nodes[n->in[0]]->type;
  const int64_t *pads = ir_get_ints(n, "pads", NULL);
  if (ir_type_numel(t) == 0) return ATTNC_OK;
  LLVMValueRef value = cg_const(e, t->dtype, ir_get_float(n, "value"));
  if (t->rank == 0) {
    cg_store(e, e->arg[0], cg_i64(e, 0), cg_load(e, e->arg[1], cg_i64(e, 0)));
    return ATTNC_OK;
  }
  int r = t->rank;
  int64_t last = t->dims[r - 1], xlast = x->dims[r - 1], before = pads[2 * (r - 1)];
  int64_t xs[IR_MAX_RANK];
  cg_strides(x, xs);
  cg_loop lw;
  LLVMValueRef q = cg_loop_begin(e, &lw, e->begin, e->end, 1);
  LLVMValueRef obase = cg_mul(e, q, cg_i64(e, last)), ibase = cg_i64(e, 0), inside = LLVMConstInt(e->t_i1, 1, 0);
  LLVMValueRef rest = q;
  for (int i = r - 2; i >= 0; i--) {
    LLVMValueRef c = i == 0 ? rest : LLVMBuildSRem(e->b, rest, cg_i64(e, t->dims[i]), "");
    if (i > 0) rest = LLVMBuildSDiv(e->b, rest, cg_i64(e, t->dims[i]), "");
    LLVMValueRef xi = cg_sub(e, c, cg_i64(e, pads[2 * i]));
    LLVMValueRef in = LLVMBuildAnd(e->b, LLVMBuildICmp(e->b, LLVMIntSGE, xi, cg_i64(e, 0), ""),
                                   LLVMBuildICmp(e->b, LLVMIntSLT, xi, cg_i64(e, x->dims[i]), ""), "");
    inside = LLVMBuildAnd(e->b, inside, in, "");
    ibase = cg_add(e, ibase, cg_mul(e, xi, cg_i64(e, xs[i])));
  }
  cg_if c;
  cg_if_begin(e, &c, inside);
  fill_run(e, e->arg[0], obase, value, cg_i64(e, 0), cg_i64(e, before));
  copy_run(e, e->arg[0], cg_add(e, obase, cg_i64(e, before)), e->arg[1], ibase, 1, cg_i64(e, 0), cg_i64(e, xlast));
  fill_run(e, e->arg[0], obase, value, cg_i64(e, before + xlast), cg_i64(e, last));
  cg_if_else(e, &c);
  fill_run(e, e->arg[0], obase, value, cg_i64(e, 0), cg_i64(e, last));
  cg_if_end(e, &c);
  cg_loop_end(e, &lw);
  return ATTNC_OK;
}

/* Registers concat, slice, slice_grad, transpose and pad. */
void cg_register_shape(cg_kernel_impl *t) {
  t[IR_OP_slice] = (cg_kernel_impl){plan_gather, emit_gather};
  t[IR_OP_transpose] = (cg_kernel_impl){plan_gather, emit_gather};
  t[IR_OP_concat] = (cg_kernel_impl){plan_concat, emit_concat};
  t[IR_OP_slice_grad] = (cg_kernel_impl){plan_slice_grad, emit_slice_grad};
  t[IR_OP_pad] = (cg_kernel_impl){plan_pad, emit_pad};
}
