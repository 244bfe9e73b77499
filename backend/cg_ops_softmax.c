/* Kernels of the ops along one axis: softmax, log_softmax and topk_mask,
 * and of the loss: cross_entropy and cross_entropy_grad.
 *
 * Along the last axis a lane is a contiguous row: one work item per row,
 * its max, exp-sum and counts reduced in vector accumulators. Along an
 * inner axis the vector lanes run over the contiguous positions after the
 * axis: a work item is a block of those positions, with its running max,
 * sum or count in per-thread scratch. */
#include <math.h>
#include "cg_reduce.h"

enum { LANE_CHUNK = 512 }; /* positions per work item along an inner axis */

/* A lane layout: x viewed as [outer, len, inner] around the op's axis. */
typedef struct {
  int64_t outer, len, inner, blocks;
} axis_layout;

/* The layout of node 'n' around its "axis" attribute over type 't'. */
static void axis_layout_of(const ir_node *n, const ir_type *t, axis_layout *l) {
  int64_t a = ir_get_int(n, "axis");
  if (a < 0) a += t->rank;
  l->outer = l->inner = 1;
  for (int i = 0; i < t->rank; i++) {
    if (i < a) l->outer *= t->dims[i];
    if (i > a) l->inner *= t->dims[i];
  }
  l->len = t->dims[a];
  l->blocks = l->inner > 1 ? (l->inner + LANE_CHUNK - 1) / LANE_CHUNK : 1;
}

/* Plan of softmax, log_softmax and topk_mask: rows, or blocks of positions. */
static void plan_axis(const ir_graph *g, const ir_node *n, cg_plan *p) {
  (void)g;
  axis_layout l;
  axis_layout_of(n, &n->type, &l);
  p->par = l.outer * l.blocks;
  p->scratch_bytes = l.inner > 1 ? 2 * LANE_CHUNK * 8 : 0;
  double per = n->op == IR_OP_topk_mask ? 2.0 * (double)l.len : 5.0;
  p->flops = per * (double)ir_type_numel(&n->type);
}

/* A splat of scalar 'v' to the shape of 'like' (v itself for scalars). */
static LLVMValueRef splat_like(cg_emit *e, LLVMValueRef v, LLVMValueRef like) {
  LLVMTypeRef t = LLVMTypeOf(like);
  return LLVMGetTypeKind(t) == LLVMVectorTypeKind ? cg_splat(e, v, (int)LLVMGetVectorSize(t)) : v;
}

/* Context of the exp-sum pass of a contiguous softmax row. */
typedef struct {
  LLVMValueRef max; /* scalar row maximum */
  int store;        /* write exp(x - max) to the output */
} exp_ctx;

/* exp(v - max), stored to the output at idx when asked. */
static LLVMValueRef map_exp(cg_emit *e, void *ctx, LLVMValueRef v, LLVMValueRef idx, int count) {
  exp_ctx *c = ctx;
  LLVMValueRef d = LLVMBuildFSub(e->b, v, splat_like(e, c->max, v), "");
  LLVMValueRef t = cg_exp(e, d);
  int width = (int)LLVMGetVectorSize(LLVMTypeOf(v));
  if (c->store) {
    if (count < width)
      cg_vstore_first(e, e->arg[0], idx, t, count);
    else
      cg_vstore(e, e->arg[0], idx, t);
  }
  return t;
}

/* Softmax / log-softmax of contiguous rows (axis is the last one). */
static void emit_softmax_rows(cg_emit *e, const axis_layout *l, ir_dtype dt, int log_form) {
  int width, nacc;
  cg_red_shape(l->len, dt, &width, &nacc);
  LLVMValueRef acc[CG_RED_MAX_ACC];
  cg_red_acc_init(e, CG_RED_MAX, dt, acc, nacc, width);
  cg_loop lr;
  LLVMValueRef r = cg_loop_begin(e, &lr, e->begin, e->end, 1);
  LLVMValueRef base = cg_mul(e, r, cg_i64(e, l->len));
  cg_red_acc_reset(e, CG_RED_MAX, dt, acc, nacc, width);
  cg_red_run(e, CG_RED_MAX, dt, e->arg[1], base, l->len, acc, nacc, width, NULL, NULL);
  exp_ctx c = {cg_red_acc_result(e, CG_RED_MAX, acc, nacc), !log_form};
  cg_red_acc_reset(e, CG_RED_SUM, dt, acc, nacc, width);
  cg_red_run(e, CG_RED_SUM, dt, e->arg[1], base, l->len, acc, nacc, width, map_exp, &c);
  LLVMValueRef sum = cg_red_acc_result(e, CG_RED_SUM, acc, nacc);
  LLVMValueRef logsum = log_form ? cg_intrinsic(e, "llvm.log", &sum, 1) : NULL;
  cg_loop lj;
  LLVMValueRef j = cg_loop_begin(e, &lj, cg_i64(e, 0), cg_i64(e, l->len), 1);
  LLVMValueRef at = cg_add(e, base, j), y;
  if (log_form)
    y = LLVMBuildFSub(e->b, LLVMBuildFSub(e->b, cg_load(e, e->arg[1], at), c.max, ""), logsum, "");
  else
    y = LLVMBuildFDiv(e->b, cg_load(e, e->arg[0], at), sum, "");
  cg_store(e, e->arg[0], at, y);
  cg_loop_end(e, &lj);
  cg_loop_end(e, &lr);
}

/* The block of lane positions of work item 'w': *o (outer index), [*lo, *hi). */
static void lane_block(cg_emit *e, const axis_layout *l, LLVMValueRef w, LLVMValueRef *o, LLVMValueRef *lo,
                       LLVMValueRef *hi) {
  *o = w;
  *lo = cg_i64(e, 0);
  *hi = cg_i64(e, l->inner);
  if (l->blocks > 1) {
    *o = LLVMBuildSDiv(e->b, w, cg_i64(e, l->blocks), "");
    *lo = cg_mul(e, LLVMBuildSRem(e->b, w, cg_i64(e, l->blocks), ""), cg_i64(e, LANE_CHUNK));
    *hi = cg_min(e, cg_add(e, *lo, cg_i64(e, LANE_CHUNK)), cg_i64(e, l->inner));
  }
}

/* Offset of element (o, k, j) of a lane layout. */
static LLVMValueRef lane_at(cg_emit *e, const axis_layout *l, LLVMValueRef o, LLVMValueRef k, LLVMValueRef j) {
  return cg_add(e, cg_mul(e, cg_add(e, cg_mul(e, o, cg_i64(e, l->len)), k), cg_i64(e, l->inner)), j);
}

/* Softmax / log-softmax along an inner axis: running max and sum per position in scratch. */
static void emit_softmax_lanes(cg_emit *e, const axis_layout *l, ir_dtype dt, int log_form) {
  LLVMValueRef mx = cg_scratch(e, 0, dt), sm = cg_scratch(e, LANE_CHUNK * 8, dt);
  cg_loop lw, lk, lj;
  LLVMValueRef w = cg_loop_begin(e, &lw, e->begin, e->end, 1), o, lo, hi;
  lane_block(e, l, w, &o, &lo, &hi);
  LLVMValueRef j = cg_loop_begin(e, &lj, lo, hi, 1), s = cg_sub(e, j, lo);
  cg_store(e, mx, s, cg_red_identity(e, CG_RED_MAX, dt, 0));
  cg_store(e, sm, s, cg_const(e, dt, 0));
  cg_loop_end(e, &lj);
  for (int pass = 0; pass < 3; pass++) {
    LLVMValueRef k = cg_loop_begin(e, &lk, cg_i64(e, 0), cg_i64(e, l->len), 1);
    j = cg_loop_begin(e, &lj, lo, hi, 1);
    s = cg_sub(e, j, lo);
    LLVMValueRef at = lane_at(e, l, o, k, j), x = cg_load(e, e->arg[1], at);
    if (pass == 0) {
      cg_store(e, mx, s, cg_red_combine(e, CG_RED_MAX, cg_load(e, mx, s), x));
    } else if (pass == 1) {
      LLVMValueRef d = LLVMBuildFSub(e->b, x, cg_load(e, mx, s), "");
      LLVMValueRef t = cg_exp(e, d);
      if (!log_form) cg_store(e, e->arg[0], at, t);
      cg_store(e, sm, s, LLVMBuildFAdd(e->b, cg_load(e, sm, s), t, ""));
    } else if (log_form) {
      LLVMValueRef sum = cg_load(e, sm, s);
      LLVMValueRef y = LLVMBuildFSub(e->b, x, cg_load(e, mx, s), "");
      cg_store(e, e->arg[0], at, LLVMBuildFSub(e->b, y, cg_intrinsic(e, "llvm.log", &sum, 1), ""));
    } else {
      cg_store(e, e->arg[0], at, LLVMBuildFDiv(e->b, cg_load(e, e->arg[0], at), cg_load(e, sm, s), ""));
    }
    cg_loop_end(e, &lj);
    cg_loop_end(e, &lk);
  }
  cg_loop_end(e, &lw);
}

/* Emits softmax or log_softmax. */
static attnc_status emit_softmax(cg_emit *e, const cg_plan *p) {
  (void)p;
  axis_layout l;
  axis_layout_of(e->n, &e->n->type, &l);
  if (ir_type_numel(&e->n->type) == 0) return ATTNC_OK;
  int log_form = e->n->op == IR_OP_log_softmax;
  if (l.inner == 1)
    emit_softmax_rows(e, &l, e->n->type.dtype, log_form);
  else
    emit_softmax_lanes(e, &l, e->n->type.dtype, log_form);
  return ATTNC_OK;
}

/* Context of the counting pass of topk_mask along a contiguous row. */
typedef struct {
  LLVMValueRef pivot; /* scalar x_j */
} count_ctx;

/* 1 where v > pivot, else 0. */
static LLVMValueRef map_greater(cg_emit *e, void *ctx, LLVMValueRef v, LLVMValueRef idx, int count) {
  (void)idx;
  (void)count;
  count_ctx *c = ctx;
  LLVMValueRef gt = LLVMBuildFCmp(e->b, LLVMRealOGT, v, splat_like(e, c->pivot, v), "");
  LLVMTypeRef t = LLVMTypeOf(v);
  return LLVMBuildSelect(e->b, gt, LLVMConstReal(t, 1.0), LLVMConstNull(t), "");
}

/* x_j is in the top k of its lane iff fewer than k entries are strictly
 * greater (ties kept): 1 or 0 in dtype 'dt'. */
static LLVMValueRef topk_value(cg_emit *e, ir_dtype dt, LLVMValueRef greater, int64_t k) {
  LLVMValueRef in = LLVMBuildFCmp(e->b, LLVMRealOLT, greater, cg_const(e, dt, (double)k), "");
  return LLVMBuildSelect(e->b, in, cg_const(e, dt, 1), cg_const(e, dt, 0), "");
}

/* Emits topk_mask: counts of strictly greater entries, O(len^2) per lane. */
static attnc_status emit_topk(cg_emit *e, const cg_plan *p) {
  (void)p;
  axis_layout l;
  axis_layout_of(e->n, &e->n->type, &l);
  ir_dtype dt = e->n->type.dtype;
  int64_t k = ir_get_int(e->n, "k");
  if (ir_type_numel(&e->n->type) == 0) return ATTNC_OK;
  cg_loop lw, lk, li, lj;
  LLVMValueRef w = cg_loop_begin(e, &lw, e->begin, e->end, 1);
  if (l.inner == 1) {
    int width, nacc;
    cg_red_shape(l.len, dt, &width, &nacc);
    LLVMValueRef acc[CG_RED_MAX_ACC];
    cg_red_acc_init(e, CG_RED_SUM, dt, acc, nacc, width);
    LLVMValueRef base = cg_mul(e, w, cg_i64(e, l.len));
    LLVMValueRef j = cg_loop_begin(e, &lj, cg_i64(e, 0), cg_i64(e, l.len), 1);
    count_ctx c = {cg_load(e, e->arg[1], cg_add(e, base, j))};
    cg_red_acc_reset(e, CG_RED_SUM, dt, acc, nacc, width);
    cg_red_run(e, CG_RED_SUM, dt, e->arg[1], base, l.len, acc, nacc, width, map_greater, &c);
    cg_store(e, e->arg[0], cg_add(e, base, j), topk_value(e, dt, cg_red_acc_result(e, CG_RED_SUM, acc, nacc), k));
    cg_loop_end(e, &lj);
  } else {
    LLVMValueRef cnt = cg_scratch(e, 0, dt), o, lo, hi;
    lane_block(e, &l, w, &o, &lo, &hi);
    LLVMValueRef kj = cg_loop_begin(e, &lk, cg_i64(e, 0), cg_i64(e, l.len), 1);
    LLVMValueRef j = cg_loop_begin(e, &lj, lo, hi, 1);
    cg_store(e, cnt, cg_sub(e, j, lo), cg_const(e, dt, 0));
    cg_loop_end(e, &lj);
    LLVMValueRef ki = cg_loop_begin(e, &li, cg_i64(e, 0), cg_i64(e, l.len), 1);
    j = cg_loop_begin(e, &lj, lo, hi, 1);
    LLVMValueRef s = cg_sub(e, j, lo);
    LLVMValueRef gt = LLVMBuildFCmp(e->b, LLVMRealOGT, cg_load(e, e->arg[1], lane_at(e, &l, o, ki, j)),
                                    cg_load(e, e->arg[1], lane_at(e, &l, o, kj, j)), "");
    LLVMValueRef one = LLVMBuildSelect(e->b, gt, cg_const(e, dt, 1), cg_const(e, dt, 0), "");
    cg_store(e, cnt, s, LLVMBuildFAdd(e->b, cg_load(e, cnt, s), one, ""));
    cg_loop_end(e, &lj);
    cg_loop_end(e, &li);
    j = cg_loop_begin(e, &lj, lo, hi, 1);
    cg_store(e, e->arg[0], lane_at(e, &l, o, kj, j), topk_value(e, dt, cg_load(e, cnt, cg_sub(e, j, lo)), k));
    cg_loop_end(e, &lj);
    cg_loop_end(e, &lk);
  }
  cg_loop_end(e, &lw);
  return ATTNC_OK;
}

/* Plan of cross_entropy (one item: the batch mean) and its gradient (rows). */
static void plan_loss(const ir_graph *g, const ir_node *n, cg_plan *p) {
  const ir_type *t = &g->nodes[n->in[0]]->type;
  p->par = n->op == IR_OP_cross_entropy ? 1 : t->dims[0];
  p->scratch_bytes = 0;
  p->flops = 4.0 * (double)ir_type_numel(t);
}

/* 'v' (f32 or f64) as double. */
static LLVMValueRef to_f64(cg_emit *e, LLVMValueRef v) {
  return LLVMTypeOf(v) == e->t_f64 ? v : LLVMBuildFPExt(e->b, v, e->t_f64, "");
}

/* Double 'v' as dtype 'dt' (f32 or f64). */
static LLVMValueRef from_f64(cg_emit *e, LLVMValueRef v, ir_dtype dt) {
  return dt == IR_F64 ? v : LLVMBuildFPTrunc(e->b, v, e->t_f32, "");
}

/* Row r of logits [N,K] as double: its max (NaN-propagating when 'nan_max'),
 * and the sum of exp(l - max), both computed in double. */
static void row_stats(cg_emit *e, LLVMValueRef logits, LLVMValueRef base, int64_t k, int nan_max,
                      LLVMValueRef *max, LLVMValueRef *sum) {
  cg_loop lj;
  LLVMValueRef m = cg_var_new(e, e->t_f64, LLVMConstReal(e->t_f64, -INFINITY));
  LLVMValueRef j = cg_loop_begin(e, &lj, cg_i64(e, 0), cg_i64(e, k), 1);
  LLVMValueRef x = to_f64(e, cg_load(e, logits, cg_add(e, base, j)));
  LLVMValueRef cur = cg_var_get(e, m);
  if (nan_max)
    cg_var_set(e, m, cg_red_combine(e, CG_RED_MAX, cur, x));
  else
    cg_var_set(e, m, LLVMBuildSelect(e->b, LLVMBuildFCmp(e->b, LLVMRealOGT, x, cur, ""), x, cur, ""));
  cg_loop_end(e, &lj);
  *max = cg_var_get(e, m);
  LLVMValueRef s = cg_var_new(e, e->t_f64, LLVMConstReal(e->t_f64, 0));
  j = cg_loop_begin(e, &lj, cg_i64(e, 0), cg_i64(e, k), 1);
  x = to_f64(e, cg_load(e, logits, cg_add(e, base, j)));
  LLVMValueRef d = LLVMBuildFSub(e->b, x, *max, "");
  cg_var_set(e, s, LLVMBuildFAdd(e->b, cg_var_get(e, s), cg_intrinsic(e, "llvm.exp", &d, 1), ""));
  cg_loop_end(e, &lj);
  *sum = cg_var_get(e, s);
}

/* The label of row r if it is in [0, k), and whether it is (*valid, i1). */
static LLVMValueRef row_label(cg_emit *e, LLVMValueRef r, int64_t k, LLVMValueRef *valid) {
  LLVMValueRef y = cg_load(e, e->arg[2], r);
  *valid = LLVMBuildAnd(e->b, LLVMBuildICmp(e->b, LLVMIntSGE, y, cg_i64(e, 0), ""),
                        LLVMBuildICmp(e->b, LLVMIntSLT, y, cg_i64(e, k), ""), "");
  return LLVMBuildSelect(e->b, *valid, y, cg_i64(e, 0), "");
}

/* Emits cross_entropy: mean over rows of max + log(sum exp(l - max)) -
 * l[label], in double; a label outside [0, K) makes the loss NaN (the
 * interpreter reports an error). */
static attnc_status emit_cross_entropy(cg_emit *e, const cg_plan *p) {
  (void)p;
  const ir_type *t = &e->g->nodes[e->n->in[0]]->type;
  int64_t n = t->dims[0], k = t->dims[1];
  ir_dtype dt = t->dtype;
  cg_if first;
  cg_if_begin(e, &first, LLVMBuildICmp(e->b, LLVMIntEQ, e->begin, cg_i64(e, 0), ""));
  LLVMValueRef total = cg_var_new(e, e->t_f64, LLVMConstReal(e->t_f64, 0));
  cg_loop lr;
  LLVMValueRef r = cg_loop_begin(e, &lr, cg_i64(e, 0), cg_i64(e, n), 1);
  LLVMValueRef base = cg_mul(e, r, cg_i64(e, k)), m, s, valid;
  LLVMValueRef y = row_label(e, r, k, &valid);
  row_stats(e, e->arg[1], base, k, 1, &m, &s);
  LLVMValueRef ly = to_f64(e, cg_load(e, e->arg[1], cg_add(e, base, y)));
  LLVMValueRef term = LLVMBuildFSub(e->b, LLVMBuildFAdd(e->b, m, cg_intrinsic(e, "llvm.log", &s, 1), ""), ly, "");
  term = LLVMBuildSelect(e->b, valid, term, LLVMConstReal(e->t_f64, NAN), "");
  cg_var_set(e, total, LLVMBuildFAdd(e->b, cg_var_get(e, total), term, ""));
  cg_loop_end(e, &lr);
  LLVMValueRef mean = LLVMBuildFDiv(e->b, cg_var_get(e, total), LLVMConstReal(e->t_f64, (double)n), "");
  cg_store(e, e->arg[0], cg_i64(e, 0), from_f64(e, mean, dt));
  cg_if_end(e, &first);
  return ATTNC_OK;
}

/* Emits cross_entropy_grad: (softmax(l) - onehot(label)) * dloss / N per
 * row, in double; a row with a label outside [0, K) becomes NaN. */
static attnc_status emit_cross_entropy_grad(cg_emit *e, const cg_plan *p) {
  (void)p;
  const ir_type *t = &e->n->type;
  int64_t n = t->dims[0], k = t->dims[1];
  ir_dtype dt = t->dtype;
  LLVMValueRef dloss = to_f64(e, cg_load(e, e->arg[3], cg_i64(e, 0)));
  LLVMValueRef scale = LLVMBuildFDiv(e->b, dloss, LLVMConstReal(e->t_f64, (double)n), "");
  cg_loop lr, lj;
  LLVMValueRef r = cg_loop_begin(e, &lr, e->begin, e->end, 1);
  LLVMValueRef base = cg_mul(e, r, cg_i64(e, k)), m, s, valid;
  LLVMValueRef y = row_label(e, r, k, &valid);
  row_stats(e, e->arg[1], base, k, 0, &m, &s);
  LLVMValueRef sc = LLVMBuildSelect(e->b, valid, scale, LLVMConstReal(e->t_f64, NAN), "");
  LLVMValueRef j = cg_loop_begin(e, &lj, cg_i64(e, 0), cg_i64(e, k), 1);
  LLVMValueRef x = to_f64(e, cg_load(e, e->arg[1], cg_add(e, base, j)));
  LLVMValueRef d = LLVMBuildFSub(e->b, x, m, "");
  LLVMValueRef prob = LLVMBuildFDiv(e->b, cg_intrinsic(e, "llvm.exp", &d, 1), s, "");
  LLVMValueRef hot = LLVMBuildSelect(e->b, LLVMBuildICmp(e->b, LLVMIntEQ, j, y, ""), LLVMConstReal(e->t_f64, 1),
                                     LLVMConstReal(e->t_f64, 0), "");
  LLVMValueRef g = LLVMBuildFMul(e->b, LLVMBuildFSub(e->b, prob, hot, ""), sc, "");
  cg_store(e, e->arg[0], cg_add(e, base, j), from_f64(e, g, dt));
  cg_loop_end(e, &lj);
  cg_loop_end(e, &lr);
  return ATTNC_OK;
}

/* Registers softmax, log_softmax, topk_mask, cross_entropy and its gradient. */
void cg_register_softmax(cg_kernel_impl *t) {
  t[IR_OP_softmax] = (cg_kernel_impl){plan_axis, emit_softmax};
  t[IR_OP_log_softmax] = (cg_kernel_impl){plan_axis, emit_softmax};
  t[IR_OP_topk_mask] = (cg_kernel_impl){plan_axis, emit_topk};
  t[IR_OP_cross_entropy] = (cg_kernel_impl){plan_loss, emit_cross_entropy};
  t[IR_OP_cross_entropy_grad] = (cg_kernel_impl){plan_loss, emit_cross_entropy_grad};
}
