/* Kernels of the elementwise ops (unary math, cast, binary arithmetic and
 * comparisons with numpy broadcasting, where, the elementwise backward ops)
 * and of broadcast_to and reshape, which are copies under a layout.
 *
 * Every operand is read through strides over the output's index space
 * (0 along broadcast axes); adjacent axes that are contiguous for every
 * operand are merged, so a same-shape add is one flat loop that LLVM
 * vectorizes, and a per-channel broadcast is a loop over channels around a
 * contiguous inner loop. */
#include <stdlib.h>
#include <string.h>
#include "cg_internal.h"

/* Computes the loop nest of node 'n' of 'g' into *l (operand 0 the output). */
static void ew_layout_of(const ir_graph *g, const ir_node *n, cg_ew_layout *l) {
  const ir_type *t = &n->type;
  int64_t s[IR_MAX_IN_EW][IR_MAX_RANK];
  cg_strides(t, s[0]);
  for (int k = 0; k < n->nin && k + 1 < IR_MAX_IN_EW; k++) {
    const ir_type *in = &g->nodes[n->in[k]]->type;
    if (n->op == IR_OP_reshape)
      cg_strides(t, s[1 + k]); /* same element order */
    else
      cg_broadcast_strides(in, t, s[1 + k]);
  }
  cg_ew_layout_make(t, 1 + n->nin < IR_MAX_IN_EW ? 1 + n->nin : IR_MAX_IN_EW, s, l);
}

/* Merges the loop nest of 't' over operands with strides s[k]. */
void cg_ew_layout_make(const ir_type *t, int nops, int64_t (*s)[IR_MAX_RANK], cg_ew_layout *l) {
  l->nops = nops;
  /* Drop axes of size 1, then merge axes contiguous for every operand. */
  l->rank = 0;
  for (int i = 0; i < t->rank; i++) {
    if (t->dims[i] == 1) continue;
    int r = l->rank;
    int merge = r > 0;
    for (int k = 0; merge && k < l->nops; k++)
      if (l->strides[k][r - 1] != s[k][i] * t->dims[i]) merge = 0;
    if (merge) {
      l->dims[r - 1] *= t->dims[i];
      for (int k = 0; k < l->nops; k++) l->strides[k][r - 1] = s[k][i];
    } else {
      l->dims[r] = t->dims[i];
      for (int k = 0; k < l->nops; k++) l->strides[k][r] = s[k][i];
      l->rank++;
    }
  }
  if (l->rank == 0) {
    l->rank = 1;
    l->dims[0] = 1;
    for (int k = 0; k < l->nops; k++) l->strides[k][0] = 0;
    l->strides[0][0] = 1;
  }
  int64_t inner = l->dims[l->rank - 1];
  l->outer = 1;
  for (int i = 0; i < l->rank - 1; i++) l->outer *= l->dims[i];
  l->blocks = (inner + CG_EW_BLOCK - 1) / CG_EW_BLOCK;
}

/* Plan: one work item per inner row, or per block of a long row. */
static void plan_elementwise(const ir_graph *g, const ir_node *n, cg_plan *p) {
  cg_ew_layout l;
  ew_layout_of(g, n, &l);
  p->par = l.outer * l.blocks;
  p->scratch_bytes = 0;
  p->flops = (double)ir_type_numel(&n->type);
}

/* 1 if 'v' is a floating-point scalar or vector. */
static int is_float(LLVMValueRef v) {
  LLVMTypeRef t = LLVMTypeOf(v);
  if (LLVMGetTypeKind(t) == LLVMVectorTypeKind) t = LLVMGetElementType(t);
  LLVMTypeKind k = LLVMGetTypeKind(t);
  return k == LLVMFloatTypeKind || k == LLVMDoubleTypeKind;
}

/* A constant like 'like' (scalar or vector of its element type) of value c. */
static LLVMValueRef const_like(cg_emit *e, LLVMValueRef like, double c) {
  (void)e;
  return cg_const_of(LLVMTypeOf(like), c);
}

/* Converts comparison result 'c' (i1) to the type of 'like' (1 or 0). */
static LLVMValueRef bool_to(cg_emit *e, LLVMValueRef c, LLVMValueRef like) {
  return LLVMBuildSelect(e->b, c, const_like(e, like, 1), const_like(e, like, 0), "");
}

/* a op b for a comparison, as 1/0 in the operands' type. */
static LLVMValueRef compare(cg_emit *e, LLVMRealPredicate fp, LLVMIntPredicate ip, LLVMValueRef a,
                            LLVMValueRef b) {
  LLVMValueRef c = is_float(a) ? LLVMBuildFCmp(e->b, fp, a, b, "") : LLVMBuildICmp(e->b, ip, a, b, "");
  return bool_to(e, c, a);
}

/* max/min with NaN of 'a' propagating (a > b || a != a ? a : b). */
static LLVMValueRef extremum(cg_emit *e, LLVMValueRef a, LLVMValueRef b, int is_max) {
  if (!is_float(a)) {
    LLVMValueRef c = LLVMBuildICmp(e->b, is_max ? LLVMIntSGT : LLVMIntSLT, a, b, "");
    return LLVMBuildSelect(e->b, c, a, b, "");
  }
  LLVMValueRef c = LLVMBuildFCmp(e->b, is_max ? LLVMRealOGT : LLVMRealOLT, a, b, "");
  LLVMValueRef anan = LLVMBuildFCmp(e->b, LLVMRealUNO, a, a, "");
  LLVMValueRef pick_a = LLVMBuildOr(e->b, c, anan, "");
  return LLVMBuildSelect(e->b, pick_a, a, b, "");
}

/* The logistic function, stable for large |x|. */
static LLVMValueRef sigmoid(cg_emit *e, LLVMValueRef x) {
  LLVMValueRef ax = cg_intrinsic(e, "llvm.fabs", &x, 1);
  LLVMValueRef nx = LLVMBuildFNeg(e->b, ax, "");
  LLVMValueRef t = cg_exp(e, nx);
  LLVMValueRef s = LLVMBuildFDiv(e->b, const_like(e, x, 1), LLVMBuildFAdd(e->b, const_like(e, x, 1), t, ""), "");
  LLVMValueRef pos = LLVMBuildFCmp(e->b, LLVMRealOGE, x, const_like(e, x, 0), "");
  return LLVMBuildSelect(e->b, pos, s, LLVMBuildFMul(e->b, t, s, ""), "");
}

/* Converts 'v' (scalar or vector) to dtype 'to'. */
LLVMValueRef cg_convert(cg_emit *e, LLVMValueRef v, ir_dtype to) {
  LLVMTypeRef t = LLVMTypeOf(v);
  int width = LLVMGetTypeKind(t) == LLVMVectorTypeKind ? (int)LLVMGetVectorSize(t) : 0;
  LLVMTypeRef dst = width ? cg_vec_type(e, to, width) : cg_type(e, to);
  if (dst == t) return v;
  if (to == IR_I64) {
    LLVMTypeRef types[2] = {dst, t};
    unsigned id = LLVMLookupIntrinsicID("llvm.fptosi.sat", 15);
    LLVMValueRef f = LLVMGetIntrinsicDeclaration(e->mod, id, types, 2);
    LLVMTypeRef ft = LLVMIntrinsicGetType(e->ctx, id, types, 2);
    return LLVMBuildCall2(e->b, ft, f, &v, 1, "");
  }
  if (!is_float(v)) return LLVMBuildSIToFP(e->b, v, dst, "");
  return LLVMBuildFPCast(e->b, v, dst, "");
}

/* Elementwise value of 'n' over loaded operands v[]. */
LLVMValueRef cg_elementwise_value(cg_emit *e, const ir_node *n, ir_dtype in_dt, ir_dtype out_dt,
                                  LLVMValueRef *v) {
  LLVMBuilderRef b = e->b;
  LLVMValueRef x = v[0], zero = const_like(e, v[0], 0), one = const_like(e, v[0], 1);
  int fl = in_dt != IR_I64;
  switch (n->op) {
  case IR_OP_neg: return fl ? LLVMBuildFNeg(b, x, "") : LLVMBuildNeg(b, x, "");
  case IR_OP_abs:
    if (fl) return cg_intrinsic(e, "llvm.fabs", &x, 1);
    return LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, x, zero, ""), LLVMBuildNeg(b, x, ""), x, "");
  case IR_OP_relu: /* x < 0 ? 0 : x (NaN stays) */
    return LLVMBuildSelect(b, fl ? LLVMBuildFCmp(b, LLVMRealOLT, x, zero, "")
                                 : LLVMBuildICmp(b, LLVMIntSLT, x, zero, ""), zero, x, "");
  case IR_OP_relu6: {
    LLVMValueRef six = const_like(e, x, 6);
    LLVMValueRef r = LLVMBuildSelect(b, fl ? LLVMBuildFCmp(b, LLVMRealOGT, x, six, "")
                                           : LLVMBuildICmp(b, LLVMIntSGT, x, six, ""), six, x, "");
    return LLVMBuildSelect(b, fl ? LLVMBuildFCmp(b, LLVMRealOLT, x, zero, "")
                                 : LLVMBuildICmp(b, LLVMIntSLT, x, zero, ""), zero, r, "");
  }
  case IR_OP_sigmoid: return sigmoid(e, x);
  case IR_OP_tanh: {
    /* tanh(x) = 1 - 2 / (exp(2x) + 1), saturating correctly at +-inf. */
    LLVMValueRef two_x = LLVMBuildFAdd(b, x, x, "");
    LLVMValueRef ex = cg_exp(e, two_x);
    LLVMValueRef r = LLVMBuildFSub(b, one, LLVMBuildFDiv(b, const_like(e, x, 2), LLVMBuildFAdd(b, ex, one, ""), ""), "");
    /* keep tiny |x| accurate: tanh(x) ~ x */
    LLVMValueRef ax = cg_intrinsic(e, "llvm.fabs", &x, 1);
    LLVMValueRef small = LLVMBuildFCmp(b, LLVMRealOLT, ax, const_like(e, x, 1e-4), "");
    return LLVMBuildSelect(b, small, x, r, "");
  }
  case IR_OP_exp: return cg_exp(e, x);
  case IR_OP_log: return cg_intrinsic(e, "llvm.log", &x, 1);
  case IR_OP_sqrt: return cg_intrinsic(e, "llvm.sqrt", &x, 1);
  case IR_OP_rsqrt: return LLVMBuildFDiv(b, one, cg_intrinsic(e, "llvm.sqrt", &x, 1), "");
  case IR_OP_cast: return cg_convert(e, x, out_dt);
  case IR_OP_add: return fl ? LLVMBuildFAdd(b, x, v[1], "") : LLVMBuildAdd(b, x, v[1], "");
  case IR_OP_sub: return fl ? LLVMBuildFSub(b, x, v[1], "") : LLVMBuildSub(b, x, v[1], "");
  case IR_OP_mul: return fl ? LLVMBuildFMul(b, x, v[1], "") : LLVMBuildMul(b, x, v[1], "");
  case IR_OP_div: {
    if (fl) return LLVMBuildFDiv(b, x, v[1], "");
    /* integer division by zero gives 0 here (the interpreter reports it) */
    LLVMValueRef z = LLVMBuildICmp(b, LLVMIntEQ, v[1], zero, "");
    LLVMValueRef q = LLVMBuildSDiv(b, x, LLVMBuildSelect(b, z, one, v[1], ""), "");
    return LLVMBuildSelect(b, z, zero, q, "");
  }
  case IR_OP_maximum: return extremum(e, x, v[1], 1);
  case IR_OP_minimum: return extremum(e, x, v[1], 0);
  case IR_OP_eq: return compare(e, LLVMRealOEQ, LLVMIntEQ, x, v[1]);
  case IR_OP_ne: return compare(e, LLVMRealUNE, LLVMIntNE, x, v[1]);
  case IR_OP_lt: return compare(e, LLVMRealOLT, LLVMIntSLT, x, v[1]);
  case IR_OP_le: return compare(e, LLVMRealOLE, LLVMIntSLE, x, v[1]);
  case IR_OP_gt: return compare(e, LLVMRealOGT, LLVMIntSGT, x, v[1]);
  case IR_OP_ge: return compare(e, LLVMRealOGE, LLVMIntSGE, x, v[1]);
  case IR_OP_where: {
    LLVMValueRef c = is_float(x) ? LLVMBuildFCmp(b, LLVMRealUNE, x, zero, "")
                                 : LLVMBuildICmp(b, LLVMIntNE, x, zero, "");
    return LLVMBuildSelect(b, c, v[1], v[2], "");
  }
  case IR_OP_relu_grad:
    return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, x, zero, ""), v[1], zero, "");
  case IR_OP_relu6_grad: {
    LLVMValueRef in = LLVMBuildAnd(b, LLVMBuildFCmp(b, LLVMRealOGT, x, zero, ""),
                                   LLVMBuildFCmp(b, LLVMRealOLT, x, const_like(e, x, 6), ""), "");
    return LLVMBuildSelect(b, in, v[1], zero, "");
  }
  case IR_OP_sigmoid_grad: /* dy * y * (1 - y) */
    return LLVMBuildFMul(b, LLVMBuildFMul(b, v[1], x, ""), LLVMBuildFSub(b, one, x, ""), "");
  case IR_OP_tanh_grad: /* dy * (1 - y*y) */
    return LLVMBuildFMul(b, v[1], LLVMBuildFSub(b, one, LLVMBuildFMul(b, x, x, ""), ""), "");
  case IR_OP_broadcast_to:
  case IR_OP_reshape: return x;
  default: return NULL;
  }
}

/* Offsets of every operand at the start of outer row 'o' (decomposed over
 * all axes but the last). */
static void row_bases(cg_emit *e, const cg_ew_layout *l, LLVMValueRef o, LLVMValueRef *base) {
  for (int k = 0; k < l->nops; k++) base[k] = cg_i64(e, 0);
  LLVMValueRef rest = o;
  for (int i = l->rank - 2; i >= 0; i--) {
    LLVMValueRef idx = i == 0 ? rest : LLVMBuildSRem(e->b, rest, cg_i64(e, l->dims[i]), "");
    if (i > 0) rest = LLVMBuildSDiv(e->b, rest, cg_i64(e, l->dims[i]), "");
    for (int k = 0; k < l->nops; k++)
      if (l->strides[k][i]) base[k] = cg_add(e, base[k], cg_mul(e, idx, cg_i64(e, l->strides[k][i])));
  }
}

/* Offsets of every operand at inner position 'i' of the row whose start
 * offsets are base[]. */
static void row_offsets(cg_emit *e, const cg_ew_layout *l, const LLVMValueRef *base, LLVMValueRef i,
                        LLVMValueRef *idx) {
  for (int k = 0; k < l->nops; k++) {
    int64_t s = l->strides[k][l->rank - 1];
    idx[k] = s ? cg_add(e, base[k], s == 1 ? i : cg_mul(e, i, cg_i64(e, s))) : base[k];
  }
}

/* Emits the loop nest of 'l': work items [begin, end), each an outer row or
 * a block of one, calling 'body' per element. */
attnc_status cg_ew_loops(cg_emit *e, const cg_ew_layout *l, LLVMValueRef begin, LLVMValueRef end,
                         cg_ew_row row, cg_ew_row row_end, cg_ew_body body, void *ctx) {
  int64_t inner = l->dims[l->rank - 1];
  cg_loop lp;
  LLVMValueRef w = cg_loop_begin(e, &lp, begin, end, 1);
  LLVMValueRef o = l->blocks > 1 ? LLVMBuildSDiv(e->b, w, cg_i64(e, l->blocks), "") : w;
  LLVMValueRef base[CG_EW_MAX_OPS], idx[CG_EW_MAX_OPS];
  row_bases(e, l, o, base);
  LLVMValueRef lo = cg_i64(e, 0), hi = cg_i64(e, inner);
  if (l->blocks > 1) {
    lo = cg_mul(e, LLVMBuildSRem(e->b, w, cg_i64(e, l->blocks), ""), cg_i64(e, CG_EW_BLOCK));
    hi = cg_min(e, cg_add(e, lo, cg_i64(e, CG_EW_BLOCK)), cg_i64(e, inner));
  }
  int inv[CG_EW_MAX_OPS];
  LLVMValueRef at_row[CG_EW_MAX_OPS];
  for (int k = 0; k < l->nops; k++) inv[k] = l->strides[k][l->rank - 1] == 0;
  if (row || row_end) row_offsets(e, l, base, lo, at_row);
  if (row) row(e, ctx, at_row, inv);
  cg_loop li;
  LLVMValueRef i = cg_loop_begin(e, &li, lo, hi, 1);
  row_offsets(e, l, base, i, idx);
  attnc_status st = body(e, ctx, idx);
  if (st != ATTNC_OK) return st;
  cg_loop_end(e, &li);
  if (row_end) {
    cg_loop_reorder(e, &li);
    row_end(e, ctx, at_row, inv);
  }
  cg_loop_end(e, &lp);
  return ATTNC_OK;
}

/* One element of a single elementwise node: loads, value, store. */
static attnc_status ew_element(cg_emit *e, void *ctx, LLVMValueRef *idx) {
  (void)ctx;
  const ir_node *n = e->n;
  ir_dtype in_dt = n->nin ? e->g->nodes[n->in[n->nin - 1]]->type.dtype : n->type.dtype;
  LLVMValueRef v[IR_MAX_IN_EW];
  for (int k = 0; k < n->nin && k + 1 < IR_MAX_IN_EW; k++) v[k] = cg_load(e, e->arg[1 + k], idx[1 + k]);
  LLVMValueRef r = cg_elementwise_value(e, n, in_dt, n->type.dtype, v);
  if (!r) return cg_error(e, "no elementwise kernel for this op");
  cg_store(e, e->arg[0], idx[0], r);
  return ATTNC_OK;
}

/* Emits the loop nest of an elementwise kernel. */
static attnc_status emit_elementwise(cg_emit *e, const cg_plan *p) {
  (void)p;
  if (1 + e->n->nin > IR_MAX_IN_EW) return cg_error(e, "too many operands for an elementwise kernel");
  cg_ew_layout l;
  ew_layout_of(e->g, e->n, &l);
  return cg_ew_loops(e, &l, e->begin, e->end, NULL, NULL, ew_element, NULL);
}

/* Registers the elementwise ops, broadcast_to and reshape. */
void cg_register_elementwise(cg_kernel_impl *t) {
  static const ir_opcode ops[] = {
      IR_OP_neg,     IR_OP_abs,      IR_OP_relu,       IR_OP_relu6,        IR_OP_sigmoid,
      IR_OP_tanh,    IR_OP_exp,      IR_OP_log,        IR_OP_sqrt,         IR_OP_rsqrt,
      IR_OP_cast,    IR_OP_add,      IR_OP_sub,        IR_OP_mul,          IR_OP_div,
      IR_OP_maximum, IR_OP_minimum,  IR_OP_eq,         IR_OP_ne,           IR_OP_lt,
      IR_OP_le,      IR_OP_gt,       IR_OP_ge,         IR_OP_where,        IR_OP_relu_grad,
      IR_OP_relu6_grad, IR_OP_sigmoid_grad, IR_OP_tanh_grad, IR_OP_broadcast_to, IR_OP_reshape,
  };
  for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
    t[ops[k]].plan = plan_elementwise;
    t[ops[k]].emit = emit_elementwise;
  }
}
