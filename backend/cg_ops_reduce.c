/* Kernels of reduce_sum, reduce_mean, reduce_max and reduce_min over any set
 * of axes, and the vectorized reduction helpers of cg_reduce.h.
 *
 * The input's axes are grouped into runs that are all reduced or all kept
 * (size-1 axes dropped). When the last run is reduced (a sum over H,W, a
 * per-channel sum over N,H,W) every output element is one work item that
 * walks the outer reduced runs and reduces each contiguous inner run in
 * several vector accumulators. When the last run is kept (a mean over
 * channels) a work item is a block of a contiguous output row that
 * accumulates whole input rows in order. Either way each output element
 * is computed by one work item in a fixed order: results do not depend on
 * the thread count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cg_reduce.h"

enum { ROW_CHUNK = 1024 }; /* output elements per work item when the last run is kept */

/* ---- helpers (cg_reduce.h) ---- */

/* A splat constant vector of scalar constant 's' (or 's' when width is 0). */
static LLVMValueRef const_splat(LLVMValueRef s, int width) {
  if (!width) return s;
  LLVMValueRef lanes[64];
  for (int i = 0; i < width; i++) lanes[i] = s;
  return LLVMConstVector(lanes, (unsigned)width);
}

LLVMValueRef cg_red_identity(cg_emit *e, cg_red_kind kind, ir_dtype dt, int width) {
  LLVMValueRef s;
  if (dt == IR_I64)
    s = LLVMConstInt(e->t_i64, kind == CG_RED_SUM ? 0 : kind == CG_RED_MAX ? (unsigned long long)INT64_MIN
                                                                          : (unsigned long long)INT64_MAX, 1);
  else
    s = LLVMConstReal(cg_type(e, dt), kind == CG_RED_SUM ? 0.0 : kind == CG_RED_MAX ? -INFINITY : INFINITY);
  return const_splat(s, width);
}

/* 1 if 'v' (scalar or vector) has a floating-point element type. */
static int is_float_value(LLVMValueRef v) {
  LLVMTypeRef t = LLVMTypeOf(v);
  if (LLVMGetTypeKind(t) == LLVMVectorTypeKind) t = LLVMGetElementType(t);
  return LLVMGetTypeKind(t) != LLVMIntegerTypeKind;
}

/* The x86 max (min) instruction of v and acc, as an intrinsic: v > acc
 * (v < acc) ? v : acc, and acc where unordered. NULL when v is not a float
 * vector of a register width this host has (or the host is no x86). */
static LLVMValueRef x86_max_min(cg_emit *e, cg_red_kind kind, LLVMValueRef acc, LLVMValueRef v) {
  static int x86 = -1;
  if (x86 < 0) {
    char *triple = LLVMGetDefaultTargetTriple();
    x86 = triple && !strncmp(triple, "x86_64", 6);
    LLVMDisposeMessage(triple);
  }
  LLVMTypeRef t = LLVMTypeOf(v);
  if (!x86 || LLVMGetTypeKind(t) != LLVMVectorTypeKind) return NULL;
  int f32 = LLVMGetElementType(t) == e->t_f32, bytes = (int)LLVMGetVectorSize(t) * (f32 ? 4 : 8);
  if (bytes > cg_host_vector_bytes()) return NULL;
  static const char *names[2][2][3] = {
      /* max, min: f64, f32: 128, 256, 512 bits */
      {{"llvm.x86.sse2.max.pd", "llvm.x86.avx.max.pd.256", "llvm.x86.avx512.max.pd.512"},
       {"llvm.x86.sse.max.ps", "llvm.x86.avx.max.ps.256", "llvm.x86.avx512.max.ps.512"}},
      {{"llvm.x86.sse2.min.pd", "llvm.x86.avx.min.pd.256", "llvm.x86.avx512.min.pd.512"},
       {"llvm.x86.sse.min.ps", "llvm.x86.avx.min.ps.256", "llvm.x86.avx512.min.ps.512"}}};
  int w = bytes == 16 ? 0 : bytes == 32 ? 1 : bytes == 64 ? 2 : -1;
  if (w < 0) return NULL;
  LLVMValueRef args[3] = {v, acc, LLVMConstInt(e->t_i32, 4, 0)}; /* 512 bits: current rounding */
  return cg_intrinsic_fixed(e, names[kind == CG_RED_MIN][f32][w], args, w == 2 ? 3 : 2);
}

LLVMValueRef cg_red_combine(cg_emit *e, cg_red_kind kind, LLVMValueRef acc, LLVMValueRef v) {
  int fl = is_float_value(v);
  if (kind == CG_RED_SUM) return fl ? LLVMBuildFAdd(e->b, acc, v, "") : LLVMBuildAdd(e->b, acc, v, "");
  if (!fl) {
    LLVMValueRef c = LLVMBuildICmp(e->b, kind == CG_RED_MAX ? LLVMIntSGT : LLVMIntSLT, v, acc, "");
    return LLVMBuildSelect(e->b, c, v, acc, "");
  }
  LLVMValueRef nan = LLVMBuildFCmp(e->b, LLVMRealUNO, v, v, "");
  /* the same as the select below: the instruction keeps acc when v is
   * NaN, the select after it takes v then; but only the instruction is on
   * the accumulator's chain (two cycles), not a compare, an or and a blend */
  LLVMValueRef m = x86_max_min(e, kind, acc, v);
  if (m) return LLVMBuildSelect(e->b, nan, v, m, "");
  LLVMValueRef c = LLVMBuildFCmp(e->b, kind == CG_RED_MAX ? LLVMRealOGT : LLVMRealOLT, v, acc, "");
  return LLVMBuildSelect(e->b, LLVMBuildOr(e->b, c, nan, ""), v, acc, "");
}

LLVMValueRef cg_red_horizontal(cg_emit *e, cg_red_kind kind, LLVMValueRef v) {
  int width = (int)LLVMGetVectorSize(LLVMTypeOf(v));
  while (width > 1) {
    int h = width / 2;
    LLVMValueRef lo[32], hi[32];
    for (int i = 0; i < h; i++) {
      lo[i] = LLVMConstInt(e->t_i32, (unsigned long long)i, 0);
      hi[i] = LLVMConstInt(e->t_i32, (unsigned long long)(i + h), 0);
    }
    LLVMValueRef a = LLVMBuildShuffleVector(e->b, v, v, LLVMConstVector(lo, (unsigned)h), "");
    LLVMValueRef c = LLVMBuildShuffleVector(e->b, v, v, LLVMConstVector(hi, (unsigned)h), "");
    v = cg_red_combine(e, kind, a, c);
    width = h;
  }
  return LLVMBuildExtractElement(e->b, v, LLVMConstInt(e->t_i32, 0, 0), "");
}

void cg_red_shape(int64_t len, ir_dtype dt, int *width, int *nacc) {
  int maxw = dt == IR_F32 ? 16 : 8;
  int w = 2;
  while (w < maxw && w < len) w *= 2;
  int64_t n = len / w;
  *width = w;
  *nacc = n >= CG_RED_MAX_ACC ? CG_RED_MAX_ACC : n >= 1 ? (int)n : 1;
}

/* Combines loaded vector 'v' at base + idx (first 'count' lanes real) into
 * accumulator variable 'acc'. */
static void accumulate(cg_emit *e, cg_red_kind kind, ir_dtype dt, LLVMValueRef acc, LLVMValueRef v,
                       LLVMValueRef idx, int width, int count, cg_red_map map, void *ctx) {
  if (map) v = map(e, ctx, v, idx, count);
  if (count < width) {
    LLVMValueRef bits[64];
    for (int i = 0; i < width; i++) bits[i] = LLVMConstInt(e->t_i1, i < count, 0);
    v = LLVMBuildSelect(e->b, LLVMConstVector(bits, (unsigned)width), v, cg_red_identity(e, kind, dt, width), "");
  }
  cg_var_set(e, acc, cg_red_combine(e, kind, cg_var_get(e, acc), v));
}

void cg_red_run(cg_emit *e, cg_red_kind kind, ir_dtype dt, LLVMValueRef base, LLVMValueRef off,
                int64_t len, LLVMValueRef *acc, int nacc, int width, cg_red_map map, void *ctx) {
  int64_t chunk = (int64_t)width * nacc, nfull = len / chunk;
  if (nfull > 0) {
    cg_loop l;
    LLVMValueRef i = cg_loop_begin(e, &l, cg_i64(e, 0), cg_i64(e, nfull * chunk), chunk);
    for (int u = 0; u < nacc; u++) {
      LLVMValueRef idx = cg_add(e, off, cg_add(e, i, cg_i64(e, (int64_t)u * width)));
      accumulate(e, kind, dt, acc[u], cg_vload(e, base, idx, width), idx, width, width, map, ctx);
    }
    cg_loop_end(e, &l);
  }
  int64_t pos = nfull * chunk;
  int r = 0;
  for (; len - pos >= width; pos += width, r++) {
    LLVMValueRef idx = cg_add(e, off, cg_i64(e, pos));
    accumulate(e, kind, dt, acc[r % nacc], cg_vload(e, base, idx, width), idx, width, width, map, ctx);
  }
  if (len > pos) {
    int count = (int)(len - pos);
    LLVMValueRef idx = cg_add(e, off, cg_i64(e, pos));
    accumulate(e, kind, dt, acc[r % nacc], cg_vload_first(e, base, idx, width, count), idx, width, count, map,
               ctx);
  }
}

void cg_red_acc_init(cg_emit *e, cg_red_kind kind, ir_dtype dt, LLVMValueRef *acc, int nacc, int width) {
  for (int u = 0; u < nacc; u++)
    acc[u] = cg_var_new(e, cg_vec_type(e, dt, width), cg_red_identity(e, kind, dt, width));
}

void cg_red_acc_reset(cg_emit *e, cg_red_kind kind, ir_dtype dt, LLVMValueRef *acc, int nacc, int width) {
  for (int u = 0; u < nacc; u++) cg_var_set(e, acc[u], cg_red_identity(e, kind, dt, width));
}

LLVMValueRef cg_red_acc_result(cg_emit *e, cg_red_kind kind, LLVMValueRef *acc, int nacc) {
  LLVMValueRef v[CG_RED_MAX_ACC];
  for (int u = 0; u < nacc; u++) v[u] = cg_var_get(e, acc[u]);
  for (int n = nacc; n > 1; n = (n + 1) / 2)
    for (int u = 0; u < n / 2; u++) v[u] = cg_red_combine(e, kind, v[u], v[n - 1 - u]);
  return cg_red_horizontal(e, kind, v[0]);
}

/* ---- reduce_* ---- */

/* The input of a reduction as runs of axes, each all reduced or all kept. */
typedef struct {
  int n;
  int64_t dim[IR_MAX_RANK], stride[IR_MAX_RANK];
  int red[IR_MAX_RANK];
  int64_t count;     /* reduced elements per output element */
  int64_t out_numel;
  int empty;         /* the input has no elements */
  int last_reduced;  /* the innermost run is reduced */
  int64_t blocks;    /* last run kept: work items per output row */
} red_layout;

/* Computes the runs of reduction node 'n' of 'g'. */
static void red_layout_of(const ir_graph *g, const ir_node *n, red_layout *l) {
  const ir_type *x = &g->nodes[n->in[0]]->type;
  int na, flag[IR_MAX_RANK] = {0};
  const int64_t *axes = ir_get_ints(n, "axes", &na);
  for (int i = 0; i < na; i++) flag[axes[i] < 0 ? axes[i] + x->rank : axes[i]] = 1;
  int64_t s[IR_MAX_RANK];
  cg_strides(x, s);
  l->n = 0;
  l->count = 1;
  l->empty = ir_type_numel(x) == 0;
  l->out_numel = ir_type_numel(&n->type);
  for (int i = 0; i < x->rank; i++) {
    if (flag[i]) l->count *= x->dims[i];
    if (x->dims[i] == 1) continue;
    if (l->n > 0 && l->red[l->n - 1] == flag[i]) {
      l->dim[l->n - 1] *= x->dims[i];
      l->stride[l->n - 1] = s[i];
    } else {
      l->dim[l->n] = x->dims[i];
      l->stride[l->n] = s[i];
      l->red[l->n++] = flag[i];
    }
  }
  if (l->n == 0) { /* a single element */
    l->dim[0] = l->stride[0] = 1;
    l->red[0] = 0;
    l->n = 1;
  }
  l->last_reduced = l->red[l->n - 1];
  l->blocks = l->last_reduced ? 1 : (l->dim[l->n - 1] + ROW_CHUNK - 1) / ROW_CHUNK;
}

static cg_red_kind kind_of(ir_opcode op) {
  return op == IR_OP_reduce_max ? CG_RED_MAX : op == IR_OP_reduce_min ? CG_RED_MIN : CG_RED_SUM;
}

/* Plan: one work item per output element (last run reduced) or per block
 * of an output row (last run kept). */
static void plan_reduce(const ir_graph *g, const ir_node *n, cg_plan *p) {
  red_layout l;
  red_layout_of(g, n, &l);
  p->par = 1;
  if (!l.empty && l.out_numel > 0)
    p->par = l.last_reduced ? l.out_numel : l.out_numel / l.dim[l.n - 1] * l.blocks;
  p->scratch_bytes = 0;
  p->flops = (double)ir_type_numel(&g->nodes[n->in[0]]->type);
}

/* Input offset of kept index 'q' over the kept runs of 'l' before run 'upto'
 * (row-major over those runs). */
static LLVMValueRef kept_offset(cg_emit *e, const red_layout *l, LLVMValueRef q, int upto) {
  LLVMValueRef off = cg_i64(e, 0), rest = q;
  int first = upto; /* the outermost kept run */
  for (int i = upto - 1; i >= 0; i--)
    if (!l->red[i]) first = i;
  for (int i = upto - 1; i >= 0; i--) {
    if (l->red[i]) continue;
    LLVMValueRef idx = rest;
    if (i != first) {
      idx = LLVMBuildSRem(e->b, rest, cg_i64(e, l->dim[i]), "");
      rest = LLVMBuildSDiv(e->b, rest, cg_i64(e, l->dim[i]), "");
    }
    off = cg_add(e, off, cg_mul(e, idx, cg_i64(e, l->stride[i])));
  }
  return off;
}

/* Opens one loop per reduced run among runs [0, upto) and returns the input
 * offset of the current reduced index; loops[] receives them (close with
 * close_loops). */
static LLVMValueRef open_reduced_loops(cg_emit *e, const red_layout *l, int upto, cg_loop *loops, int *nloops) {
  LLVMValueRef off = cg_i64(e, 0);
  *nloops = 0;
  for (int i = 0; i < upto; i++) {
    if (!l->red[i]) continue;
    LLVMValueRef r = cg_loop_begin(e, &loops[*nloops], cg_i64(e, 0), cg_i64(e, l->dim[i]), 1);
    (*nloops)++;
    off = cg_add(e, off, cg_mul(e, r, cg_i64(e, l->stride[i])));
  }
  return off;
}

static void close_loops(cg_emit *e, cg_loop *loops, int nloops) {
  for (int k = nloops - 1; k >= 0; k--) cg_loop_end(e, &loops[k]);
}

/* Divides 'v' by the reduced count for reduce_mean. */
static LLVMValueRef finish_mean(cg_emit *e, ir_dtype dt, LLVMValueRef v, int64_t count) {
  if (dt == IR_I64) return LLVMBuildSDiv(e->b, v, cg_i64(e, count), "");
  LLVMTypeRef t = LLVMTypeOf(v);
  int width = LLVMGetTypeKind(t) == LLVMVectorTypeKind ? (int)LLVMGetVectorSize(t) : 0;
  return LLVMBuildFDiv(e->b, v, const_splat(LLVMConstReal(cg_type(e, dt), (double)count), width), "");
}

/* Widens a loaded f32 vector to f64 (a cg_red_map). */
static LLVMValueRef map_widen(cg_emit *e, void *ctx, LLVMValueRef v, LLVMValueRef idx, int count) {
  (void)ctx, (void)idx, (void)count;
  return cg_convert(e, v, IR_F64);
}

/* Last run reduced: out[w] = reduction of everything under output w. An
 * f32 sum accumulates in f64 and is rounded once, so a fused loop that
 * adds the same values in another order (cg_fuse.c) gets nearly always
 * the same f32 result: gradients that are small differences of large sums
 * agree with and without fusion. */
static void emit_last_reduced(cg_emit *e, const red_layout *l, cg_red_kind kind, ir_dtype dt, int mean) {
  int64_t len = l->dim[l->n - 1];
  ir_dtype at = kind == CG_RED_SUM && dt == IR_F32 ? IR_F64 : dt; /* accumulated in */
  int width, nacc;
  cg_red_shape(len, at, &width, &nacc);
  LLVMValueRef acc[CG_RED_MAX_ACC];
  cg_red_acc_init(e, kind, at, acc, nacc, width);
  cg_loop lw;
  LLVMValueRef w = cg_loop_begin(e, &lw, e->begin, e->end, 1);
  LLVMValueRef base = kept_offset(e, l, w, l->n - 1);
  cg_red_acc_reset(e, kind, at, acc, nacc, width);
  cg_loop loops[IR_MAX_RANK];
  int nloops;
  LLVMValueRef roff = open_reduced_loops(e, l, l->n - 1, loops, &nloops);
  cg_red_run(e, kind, at, e->arg[1], cg_add(e, base, roff), len, acc, nacc, width, at != dt ? map_widen : NULL, NULL);
  close_loops(e, loops, nloops);
  LLVMValueRef r = cg_red_acc_result(e, kind, acc, nacc);
  if (mean) r = finish_mean(e, at, r, l->count);
  cg_store(e, e->arg[0], w, cg_convert(e, r, dt));
  cg_loop_end(e, &lw);
}

/* Last run kept: a block of a contiguous output row accumulates input rows. */
static void emit_last_kept(cg_emit *e, const red_layout *l, cg_red_kind kind, ir_dtype dt, int mean) {
  int64_t m = l->dim[l->n - 1];
  cg_loop lw;
  LLVMValueRef w = cg_loop_begin(e, &lw, e->begin, e->end, 1);
  LLVMValueRef q = w, lo = cg_i64(e, 0), hi = cg_i64(e, m);
  if (l->blocks > 1) {
    q = LLVMBuildSDiv(e->b, w, cg_i64(e, l->blocks), "");
    lo = cg_mul(e, LLVMBuildSRem(e->b, w, cg_i64(e, l->blocks), ""), cg_i64(e, ROW_CHUNK));
    hi = cg_min(e, cg_add(e, lo, cg_i64(e, ROW_CHUNK)), cg_i64(e, m));
  }
  LLVMValueRef obase = cg_mul(e, q, cg_i64(e, m));
  LLVMValueRef ibase = kept_offset(e, l, q, l->n - 1);
  cg_loop lj;
  LLVMValueRef j = cg_loop_begin(e, &lj, lo, hi, 1);
  cg_store(e, e->arg[0], cg_add(e, obase, j), cg_red_identity(e, kind, dt, 0));
  cg_loop_end(e, &lj);
  cg_loop loops[IR_MAX_RANK];
  int nloops;
  LLVMValueRef roff = cg_add(e, ibase, open_reduced_loops(e, l, l->n - 1, loops, &nloops));
  j = cg_loop_begin(e, &lj, lo, hi, 1);
  LLVMValueRef at = cg_add(e, obase, j);
  LLVMValueRef v = cg_load(e, e->arg[1], cg_add(e, roff, j));
  cg_store(e, e->arg[0], at, cg_red_combine(e, kind, cg_load(e, e->arg[0], at), v));
  cg_loop_end(e, &lj);
  close_loops(e, loops, nloops);
  if (mean) {
    j = cg_loop_begin(e, &lj, lo, hi, 1);
    at = cg_add(e, obase, j);
    cg_store(e, e->arg[0], at, finish_mean(e, dt, cg_load(e, e->arg[0], at), l->count));
    cg_loop_end(e, &lj);
  }
  cg_loop_end(e, &lw);
}

/* Emits a reduction kernel. */
static attnc_status emit_reduce(cg_emit *e, const cg_plan *p) {
  (void)p;
  red_layout l;
  red_layout_of(e->g, e->n, &l);
  ir_dtype dt = e->n->type.dtype;
  cg_red_kind kind = kind_of(e->n->op);
  int mean = e->n->op == IR_OP_reduce_mean;
  if (l.out_numel == 0) return ATTNC_OK;
  if (l.empty) { /* a sum over an empty axis: zeros (the others are rejected) */
    LLVMValueRef z = mean ? cg_const(e, dt, NAN) : cg_red_identity(e, kind, dt, 0);
    cg_loop li;
    LLVMValueRef i = cg_loop_begin(e, &li, cg_i64(e, 0), cg_i64(e, l.out_numel), 1);
    cg_store(e, e->arg[0], i, z);
    cg_loop_end(e, &li);
    return ATTNC_OK;
  }
  if (l.last_reduced)
    emit_last_reduced(e, &l, kind, dt, mean);
  else
    emit_last_kept(e, &l, kind, dt, mean);
  return ATTNC_OK;
}

/* Registers the reductions and (cg_ops_softmax.c) the ops along one axis. */
void cg_register_reduce(cg_kernel_impl *t) {
  static const ir_opcode ops[] = {IR_OP_reduce_sum, IR_OP_reduce_mean, IR_OP_reduce_max, IR_OP_reduce_min};
  for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
    t[ops[k]].plan = plan_reduce;
    t[ops[k]].emit = emit_reduce;
  }
  cg_register_softmax(t);
}
