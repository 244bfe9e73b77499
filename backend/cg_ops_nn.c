/* Kernels of batch normalization (train, eval, gradient) and pooling (max,
 * avg, gradients).
 *
 * Batch norm runs one work item per channel (or, when the input is [N,C] and
 * a channel is a strided column, per block of channels that fill a vector):
 * one pass over the channel gathers shifted sums in double (sum and sum of
 * squares of x - x0, plus sum(dy) and sum(dy*(x - x0)) for the gradient),
 * then one pass writes the result, so the forward and the backward each read
 * their inputs twice and write once. Inner loops run over the contiguous
 * H*W run with host-width vectors, several accumulators and a masked tail.
 * A few large channels (a spatial attention's [N,1,H,W] map) are split
 * over parts of the batch instead: a first phase sums each (channel,
 * part), a second adds the parts in order and writes each part's output.
 *
 * Pooling runs one work item per (n, c) plane. The forward copies the plane
 * into a padded scratch plane (-inf or 0 around it) and computes a vector of
 * outputs along W per step, every tap a (strided) vector load. The gradients
 * scatter into a padded plane of doubles in the interpreter's order and
 * round once, so they reproduce the interpreter's sums exactly. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cg_internal.h"

/* Bytes of the widest vector register of the host: 64 with AVX-512F, else 32. */
int cg_host_vector_bytes(void) {
  static int bytes;
  if (!bytes) {
    char *f = LLVMGetHostCPUFeatures();
    bytes = f && strstr(f, "+avx512f") ? 64 : 32;
    LLVMDisposeMessage(f);
  }
  return bytes;
}

/* Lanes of a host vector of dtype 'dt'. */
static int lanes_of(ir_dtype dt) { return cg_host_vector_bytes() / (int)ir_dtype_size(dt); }

/* The constant lane mask <i < count> of 'width' lanes. */
static LLVMValueRef lane_mask(cg_emit *e, int width, int count) {
  LLVMValueRef bits[64];
  for (int i = 0; i < width; i++) bits[i] = LLVMConstInt(e->t_i1, i < count, 0);
  return LLVMConstVector(bits, (unsigned)width);
}

/* Loads 'count' (<= width) lanes at base + idx, the others zero. */
static LLVMValueRef load_n(cg_emit *e, LLVMValueRef base, LLVMValueRef idx, int width, int count) {
  return count == width ? cg_vload(e, base, idx, width) : cg_vload_first(e, base, idx, width, count);
}

/* Stores the first 'count' lanes of 'v' at base + idx. */
static void store_n(cg_emit *e, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef v, int count) {
  if (count == (int)LLVMGetVectorSize(LLVMTypeOf(v)))
    cg_vstore(e, base, idx, v);
  else
    cg_vstore_first(e, base, idx, v, count);
}

/* 'v' (a float vector) widened to double lanes. */
static LLVMValueRef to_f64(cg_emit *e, LLVMValueRef v) {
  LLVMTypeRef t = LLVMTypeOf(v);
  if (LLVMGetElementType(t) == e->t_f64) return v;
  return LLVMBuildFPExt(e->b, v, LLVMVectorType(e->t_f64, LLVMGetVectorSize(t)), "");
}

/* Double vector 'v' narrowed to dtype 'dt'. */
static LLVMValueRef from_f64(cg_emit *e, LLVMValueRef v, ir_dtype dt) {
  if (dt == IR_F64) return v;
  return LLVMBuildFPTrunc(e->b, v, LLVMVectorType(e->t_f32, LLVMGetVectorSize(LLVMTypeOf(v))), "");
}

/* A vector of 'width' copies of double constant c. */
static LLVMValueRef f64_splat(cg_emit *e, double c, int width) {
  return cg_splat(e, LLVMConstReal(e->t_f64, c), width);
}

/* ---- batch normalization ---- */

enum { BN_TRAIN, BN_EVAL, BN_GRAD, BN_STATS, BN_PGRAD };
enum { BN_MAX_U = 4 };
enum { BN_MAX_SUMS = 4 }; /* sums of an item: x - x0, its square, and for gradients dy, dy*(x - x0) */

/* Geometry of a batch-norm node: x viewed as [outer, chans, inner]. */
typedef struct {
  int64_t outer, chans, inner;
  double count, eps;
  int blk;   /* 1: lanes are channels (inner == 1), 0: lanes run along inner */
  int w;     /* lanes */
  int parts; /* batch parts a channel's sums are split over (1: none) */
  ir_dtype dt;
} bn_shape;

enum { BN_ITEMS_MIN = 8 };         /* items a split kernel aims for */
enum { BN_SPLIT_MIN = 16384 };     /* values of a channel worth splitting */

/* The kind (BN_*) of batch-norm node op 'op'. */
static int bn_kind_of(ir_opcode op) {
  switch (op) {
  case IR_OP_batchnorm_train: return BN_TRAIN;
  case IR_OP_batchnorm_eval: return BN_EVAL;
  case IR_OP_batchnorm_train_grad: return BN_GRAD;
  case IR_OP_batchnorm_stats: return BN_STATS;
  default: return BN_PGRAD; /* batchnorm_param_grad */
  }
}

static void bn_shape_of(const ir_graph *g, const ir_node *n, bn_shape *s) {
  const ir_type *x = &g->nodes[n->in[0]]->type;
  s->outer = x->dims[0];
  s->chans = x->dims[1];
  s->inner = 1;
  for (int i = 2; i < x->rank; i++) s->inner *= x->dims[i];
  s->count = (double)(s->outer * s->inner);
  s->eps = ir_get_float(n, "eps");
  s->dt = x->dtype;
  s->w = lanes_of(x->dtype);
  s->blk = s->inner == 1;
  /* a few large channels (a spatial attention's [N,1,H,W] map): one
   * channel per item would leave threads idle, so each channel's sums
   * are split over parts of the batch, added in a second phase */
  s->parts = 1;
  if (!s->blk && bn_kind_of(n->op) != BN_EVAL && s->chans < BN_ITEMS_MIN && s->outer * s->inner >= BN_SPLIT_MIN) {
    int64_t parts = (BN_ITEMS_MIN + s->chans - 1) / s->chans;
    s->parts = (int)(parts < s->outer ? parts : s->outer);
  }
}

/* Plan: one item per channel, or per vector of channels for [N,C]. */
static void plan_bn(const ir_graph *g, const ir_node *n, cg_plan *p) {
  bn_shape s;
  bn_shape_of(g, n, &s);
  p->par = s.blk ? (s.chans + s.w - 1) / s.w : s.chans;
  p->scratch_bytes = 0;
  if (s.parts > 1) { /* phase 1: (channel, part) sums; phase 2: their totals, the output by part */
    int kind = bn_kind_of(n->op);
    p->par = s.chans * s.parts;
    p->par2 = kind == BN_STATS || kind == BN_PGRAD ? s.chans : s.chans * s.parts;
    p->shared_bytes = p->par * BN_MAX_SUMS * (int64_t)sizeof(double);
  }
  double per = n->op == IR_OP_batchnorm_eval ? 2 : n->op == IR_OP_batchnorm_train ? 6 : 10;
  if (n->op == IR_OP_batchnorm_stats || n->op == IR_OP_batchnorm_param_grad) per = 4;
  p->flops = per * (double)ir_type_numel(&g->nodes[n->in[0]]->type);
}

/* State of one batch-norm item while its passes are emitted. */
typedef struct bn_item bn_item;
typedef void (*bn_visit)(cg_emit *e, bn_item *it, LLVMValueRef idx, int count, int slot);
struct bn_item {
  const bn_shape *s;
  int kind, nacc, u;
  LLVMValueRef x, dy, out;               /* element pointers */
  LLVMValueRef shift;                    /* <w x double>: x0 of each lane's channel */
  LLVMValueRef acc[BN_MAX_U][BN_MAX_SUMS]; /* locals of <w x double> */
  int rowsum;                            /* f32 runs: per-row sums in f32, added to acc after each row */
  LLVMValueRef racc[BN_MAX_U][BN_MAX_SUMS]; /* locals of <w x float> (rowsum) */
  LLVMValueRef shift32;                  /* <w x float>: shift (rowsum) */
  LLVMValueRef mean, k_a, k_b, k_c;      /* normalize constants, dtype vectors */
};

/* Prefetches the next outer row's run of the channel (x, and dy if read):
 * short runs far apart defeat the hardware prefetcher. Past the end of the
 * tensor the address is only a hint, never loaded. */
static void bn_prefetch_next(cg_emit *e, bn_item *it, LLVMValueRef base) {
  const bn_shape *s = it->s;
  int64_t bytes = s->inner * (int64_t)ir_dtype_size(s->dt);
  if (bytes > 2048) return;
  LLVMValueRef next = cg_add(e, base, cg_i64(e, s->chans * s->inner));
  LLVMTypeRef i8p = LLVMPointerType(e->t_i8, 0);
  LLVMValueRef ptrs[2] = {it->x, it->dy};
  for (int k = 0; k < 2 && ptrs[k]; k++)
    for (int64_t off = 0; off < bytes; off += 64) {
      LLVMValueRef at = cg_add(e, next, cg_i64(e, off / (int64_t)ir_dtype_size(s->dt)));
      LLVMValueRef args[4] = {LLVMBuildBitCast(e->b, LLVMBuildGEP2(e->b, cg_type(e, s->dt), ptrs[k], &at, 1, ""), i8p, ""),
                              LLVMConstInt(e->t_i32, 0, 0), LLVMConstInt(e->t_i32, 3, 0), LLVMConstInt(e->t_i32, 1, 0)};
      cg_intrinsic(e, "llvm.prefetch", args, 4);
    }
}

/* Adds the row sums of a rowsum item into its double accumulators (slot
 * 0) and clears them. */
static void bn_flush_row(cg_emit *e, bn_item *it) {
  LLVMTypeRef ft = LLVMVectorType(e->t_f32, (unsigned)it->s->w);
  for (int a = 0; a < it->nacc; a++)
    for (int k = 0; k < it->u; k++) {
      LLVMValueRef v = to_f64(e, cg_var_get(e, it->racc[k][a]));
      cg_var_set(e, it->acc[0][a], LLVMBuildFAdd(e->b, cg_var_get(e, it->acc[0][a]), v, ""));
      cg_var_set(e, it->racc[k][a], LLVMConstNull(ft));
    }
}

/* Calls 'visit' on every vector of the item's data in outer rows
 * [o0, o1): for a channel, each outer row's contiguous inner run (u vectors
 * per step, then the rest, then a masked tail); for a channel block, each
 * row's 'count' lanes. */
static void bn_each(cg_emit *e, bn_item *it, LLVMValueRef c, int count, bn_visit visit, int u, LLVMValueRef o0,
                    LLVMValueRef o1) {
  const bn_shape *s = it->s;
  int w = s->w;
  cg_loop lo;
  LLVMValueRef o = cg_loop_begin(e, &lo, o0, o1, 1);
  if (s->blk) {
    visit(e, it, cg_add(e, cg_mul(e, o, cg_i64(e, s->chans)), c), count, 0);
    cg_loop_end(e, &lo);
    return;
  }
  LLVMValueRef base = cg_mul(e, cg_add(e, cg_mul(e, o, cg_i64(e, s->chans)), c), cg_i64(e, s->inner));
  bn_prefetch_next(e, it, base);
  int64_t nv = s->inner / w, nsteps = nv / u;
  if (nsteps > 0) {
    cg_loop lj;
    LLVMValueRef j = cg_loop_begin(e, &lj, cg_i64(e, 0), cg_i64(e, nsteps * u * w), (int64_t)u * w);
    LLVMValueRef at = cg_add(e, base, j);
    for (int k = 0; k < u; k++) visit(e, it, cg_add(e, at, cg_i64(e, (int64_t)k * w)), w, k);
    cg_loop_end(e, &lj);
  }
  for (int64_t r = nsteps * u; r < nv; r++) visit(e, it, cg_add(e, base, cg_i64(e, r * w)), w, (int)(r % u));
  if (s->inner % w) visit(e, it, cg_add(e, base, cg_i64(e, nv * w)), (int)(s->inner % w), 0);
  if (it->rowsum) bn_flush_row(e, it);
  cg_loop_end(e, &lo);
}

/* Stats pass visitor: accumulates d = x - shift, d*d (and dy, dy*d), in
 * f32 within a row for a rowsum item. */
static void bn_visit_stats(cg_emit *e, bn_item *it, LLVMValueRef idx, int count, int slot) {
  int w = it->s->w;
  if (it->rowsum) {
    LLVMValueRef d = LLVMBuildFSub(e->b, load_n(e, it->x, idx, w, count), it->shift32, "");
    if (count < w) d = LLVMBuildSelect(e->b, lane_mask(e, w, count), d, LLVMConstNull(LLVMTypeOf(d)), "");
    LLVMValueRef *a = it->racc[slot];
    cg_var_set(e, a[0], LLVMBuildFAdd(e->b, cg_var_get(e, a[0]), d, ""));
    cg_var_set(e, a[1], cg_fma(e, d, d, cg_var_get(e, a[1])));
    if (it->nacc == BN_MAX_SUMS) {
      LLVMValueRef g = load_n(e, it->dy, idx, w, count);
      cg_var_set(e, a[2], LLVMBuildFAdd(e->b, cg_var_get(e, a[2]), g, ""));
      cg_var_set(e, a[3], cg_fma(e, g, d, cg_var_get(e, a[3])));
    }
    return;
  }
  LLVMValueRef d = LLVMBuildFSub(e->b, to_f64(e, load_n(e, it->x, idx, w, count)), it->shift, "");
  if (count < w) d = LLVMBuildSelect(e->b, lane_mask(e, w, count), d, f64_splat(e, 0, w), "");
  LLVMValueRef *a = it->acc[slot];
  cg_var_set(e, a[0], LLVMBuildFAdd(e->b, cg_var_get(e, a[0]), d, ""));
  cg_var_set(e, a[1], cg_fma(e, d, d, cg_var_get(e, a[1])));
  if (it->nacc == BN_MAX_SUMS) {
    LLVMValueRef g = to_f64(e, load_n(e, it->dy, idx, w, count));
    cg_var_set(e, a[2], LLVMBuildFAdd(e->b, cg_var_get(e, a[2]), g, ""));
    cg_var_set(e, a[3], cg_fma(e, g, d, cg_var_get(e, a[3])));
  }
}

/* Output pass visitor: y = (x - mean)*a + b, or dx = (x - mean)*b + (dy - mean(dy))*a. */
static void bn_visit_out(cg_emit *e, bn_item *it, LLVMValueRef idx, int count, int slot) {
  (void)slot;
  int w = it->s->w;
  LLVMValueRef t = LLVMBuildFSub(e->b, load_n(e, it->x, idx, w, count), it->mean, "");
  LLVMValueRef y;
  if (it->kind == BN_GRAD) {
    LLVMValueRef g = load_n(e, it->dy, idx, w, count);
    y = cg_fma(e, t, it->k_b, LLVMBuildFMul(e->b, LLVMBuildFSub(e->b, g, it->k_c, ""), it->k_a, ""));
  } else {
    y = cg_fma(e, t, it->k_a, it->k_b);
  }
  store_n(e, it->out, idx, y, count);
}

/* A per-channel operand as <w x double>: the channel's value splatted, or
 * the block's 'count' channels. */
static LLVMValueRef bn_param(cg_emit *e, const bn_shape *s, LLVMValueRef ptr, LLVMValueRef c, int count) {
  if (s->blk) return to_f64(e, load_n(e, ptr, c, s->w, count));
  LLVMValueRef v = cg_load(e, ptr, c);
  if (s->dt != IR_F64) v = LLVMBuildFPExt(e->b, v, e->t_f64, "");
  return cg_splat(e, v, s->w);
}

/* The sum over slots of accumulator 'a', reduced over lanes for a channel. */
static LLVMValueRef bn_total(cg_emit *e, bn_item *it, int a) {
  LLVMValueRef v = cg_var_get(e, it->acc[0][a]);
  for (int k = 1; k < it->u; k++) v = LLVMBuildFAdd(e->b, v, cg_var_get(e, it->acc[k][a]), "");
  if (it->s->blk) return v;
  return cg_splat(e, cg_vsum(e, v), it->s->w);
}

/* Stores per-channel value v (<w x double>, splatted for a channel) at
 * row 'row' of the [2, C] output. */
static void bn_store_row(cg_emit *e, bn_item *it, LLVMValueRef c, int count, int row, LLVMValueRef v) {
  const bn_shape *s = it->s;
  LLVMValueRef at = cg_add(e, c, cg_i64(e, row * s->chans));
  v = from_f64(e, v, s->dt);
  if (s->blk)
    store_n(e, it->out, at, v, count);
  else
    cg_store(e, it->out, at, LLVMBuildExtractElement(e->b, v, cg_i64(e, 0), ""));
}

/* Starts item 'it' of kind 'kind' on channel c (or the channel block
 * starting at c with 'count' live lanes): its pointers and, unless EVAL,
 * the shift of its sums and how many it has. */
static void bn_item_init(cg_emit *e, const bn_shape *s, int kind, bn_item *it, LLVMValueRef c, int count) {
  memset(it, 0, sizeof *it);
  it->s = s;
  it->kind = kind;
  it->x = e->arg[1];
  it->out = e->arg[0];
  it->dy = kind == BN_GRAD ? e->arg[3] : kind == BN_PGRAD ? e->arg[2] : NULL;
  if (kind == BN_EVAL) return;
  int w = s->w;
  /* shifted sums: x0 of the channel keeps them well conditioned */
  it->shift = s->blk ? to_f64(e, load_n(e, it->x, c, w, count))
                     : bn_param(e, s, it->x, cg_mul(e, c, cg_i64(e, s->inner)), 1);
  it->nacc = kind == BN_GRAD || kind == BN_PGRAD ? BN_MAX_SUMS : 2;
}

/* Accumulates the sums of item 'it' over outer rows [o0, o1) and sets
 * tot[a] to each sum (<w x double>, splatted for a channel). */
static void bn_item_sums(cg_emit *e, bn_item *it, LLVMValueRef c, int count, LLVMValueRef o0, LLVMValueRef o1,
                         LLVMValueRef *tot) {
  const bn_shape *s = it->s;
  int w = s->w;
  /* f32 channels of at most 4096 values per row (64x64): sums in f32
   * over one row (at most 512 values per lane and slot), then in double
   * across rows; the loop then works on f32 vectors, not on twice as
   * many widened double ones */
  it->rowsum = s->dt == IR_F32 && !s->blk && s->inner <= 4096;
  int regs = it->nacc * (s->dt == IR_F32 && !it->rowsum ? 2 : 1); /* registers per slot */
  int64_t nv = s->blk ? 1 : s->inner / w;
  it->u = s->blk ? 1 : (int)(8 / regs < 1 ? 1 : 8 / regs);
  if (it->u > BN_MAX_U) it->u = BN_MAX_U;
  if (it->u > nv) it->u = nv > 0 ? (int)nv : 1;
  LLVMTypeRef vt = LLVMVectorType(e->t_f64, (unsigned)w);
  LLVMTypeRef ft = LLVMVectorType(e->t_f32, (unsigned)w);
  for (int k = 0; k < it->u; k++)
    for (int a = 0; a < it->nacc; a++) {
      it->acc[k][a] = cg_var_new(e, vt, LLVMConstNull(vt));
      if (it->rowsum) it->racc[k][a] = cg_var_new(e, ft, LLVMConstNull(ft));
    }
  if (it->rowsum) it->shift32 = from_f64(e, it->shift, IR_F32);
  bn_each(e, it, c, count, bn_visit_stats, it->u, o0, o1);
  it->rowsum = 0; /* the output pass works per element */
  for (int a = 0; a < it->nacc; a++) tot[a] = bn_total(e, it, a);
}

/* Finishes item 'it' from its sums tot[] over the whole batch: writes
 * the [2, C] rows (STATS, PGRAD) or the output over outer rows [o0, o1). */
static void bn_item_finish(cg_emit *e, bn_item *it, LLVMValueRef c, int count, const LLVMValueRef *tot,
                           LLVMValueRef o0, LLVMValueRef o1) {
  const bn_shape *s = it->s;
  int w = s->w, kind = it->kind;
  int has_gamma = kind == BN_TRAIN || kind == BN_EVAL || kind == BN_GRAD;
  LLVMValueRef gamma = has_gamma ? bn_param(e, s, e->arg[2], c, count) : NULL;
  LLVMValueRef mean;
  if (kind == BN_EVAL) {
    mean = bn_param(e, s, e->arg[4], c, count);
    LLVMValueRef var = bn_param(e, s, e->arg[5], c, count);
    LLVMValueRef sd = LLVMBuildFAdd(e->b, var, f64_splat(e, s->eps, w), "");
    sd = cg_intrinsic(e, "llvm.sqrt", &sd, 1);
    it->k_a = from_f64(e, LLVMBuildFDiv(e->b, gamma, sd, ""), s->dt);
    it->k_b = from_f64(e, bn_param(e, s, e->arg[3], c, count), s->dt);
  } else {
    LLVMValueRef inv = f64_splat(e, 1.0 / s->count, w);
    LLVMValueRef m1 = LLVMBuildFMul(e->b, tot[0], inv, ""); /* mean - shift */
    LLVMValueRef m2 = LLVMBuildFMul(e->b, tot[1], inv, "");
    mean = LLVMBuildFAdd(e->b, it->shift, m1, "");
    LLVMValueRef var = LLVMBuildFSub(e->b, m2, LLVMBuildFMul(e->b, m1, m1, ""), "");
    LLVMValueRef zero = f64_splat(e, 0, w);
    var = LLVMBuildSelect(e->b, LLVMBuildFCmp(e->b, LLVMRealOLT, var, zero, ""), zero, var, "");
    LLVMValueRef sd = LLVMBuildFAdd(e->b, var, f64_splat(e, s->eps, w), "");
    sd = cg_intrinsic(e, "llvm.sqrt", &sd, 1);
    LLVMValueRef rstd = LLVMBuildFDiv(e->b, f64_splat(e, 1, w), sd, "");
    if (kind == BN_STATS) {
      bn_store_row(e, it, c, count, 0, mean);
      bn_store_row(e, it, c, count, 1, var);
      return;
    }
    if (kind == BN_PGRAD) {
      /* sum(dy*xhat) = rstd*(sum(dy*(x-x0)) - m1*sum(dy)) */
      LLVMValueRef cov = LLVMBuildFSub(e->b, tot[3], LLVMBuildFMul(e->b, m1, tot[2], ""), "");
      bn_store_row(e, it, c, count, 0, LLVMBuildFMul(e->b, cov, rstd, ""));
      bn_store_row(e, it, c, count, 1, tot[2]);
      return;
    }
    LLVMValueRef a = LLVMBuildFMul(e->b, gamma, rstd, "");
    it->k_a = from_f64(e, a, s->dt);
    if (kind == BN_TRAIN) {
      it->k_b = from_f64(e, bn_param(e, s, e->arg[3], c, count), s->dt);
    } else {
      /* mean(dy), mean(dy*xhat) = rstd*(sum(dy*(x-x0)) - m1*sum(dy))/count */
      LLVMValueRef mdy = LLVMBuildFMul(e->b, tot[2], inv, "");
      LLVMValueRef cov = LLVMBuildFSub(e->b, tot[3], LLVMBuildFMul(e->b, m1, tot[2], ""), "");
      LLVMValueRef mdyx = LLVMBuildFMul(e->b, LLVMBuildFMul(e->b, cov, inv, ""), rstd, "");
      LLVMValueRef b = LLVMBuildFNeg(e->b, LLVMBuildFMul(e->b, LLVMBuildFMul(e->b, a, rstd, ""), mdyx, ""), "");
      it->k_b = from_f64(e, b, s->dt);
      it->k_c = from_f64(e, mdy, s->dt);
    }
  }
  it->mean = from_f64(e, mean, s->dt);
  bn_each(e, it, c, count, bn_visit_out, 1, o0, o1);
}

/* Emits one item over the whole batch: channel c (or the channel block
 * starting at c with 'count' live lanes). */
static void bn_emit_item(cg_emit *e, const bn_shape *s, int kind, LLVMValueRef c, int count) {
  bn_item it;
  LLVMValueRef tot[BN_MAX_SUMS] = {NULL};
  LLVMValueRef o0 = cg_i64(e, 0), o1 = cg_i64(e, s->outer);
  bn_item_init(e, s, kind, &it, c, count);
  if (kind != BN_EVAL) bn_item_sums(e, &it, c, count, o0, o1, tot);
  bn_item_finish(e, &it, c, count, tot, o0, o1);
}

/* The first outer row of batch part 'part' (of s->parts), part <= parts. */
static LLVMValueRef bn_part_row(cg_emit *e, const bn_shape *s, LLVMValueRef part) {
  LLVMValueRef r = cg_mul(e, part, cg_i64(e, s->outer));
  return LLVMBuildUDiv(e->b, r, cg_i64(e, s->parts), "");
}

/* Sets *c and *part from item 'i' = c*parts + part of a split kernel. */
static void bn_split_item(cg_emit *e, const bn_shape *s, LLVMValueRef i, LLVMValueRef *c, LLVMValueRef *part) {
  *c = LLVMBuildSDiv(e->b, i, cg_i64(e, s->parts), "");
  *part = LLVMBuildSRem(e->b, i, cg_i64(e, s->parts), "");
}

/* Emits a kernel whose channels are split over s->parts batch parts.
 * Phase 1, item c*parts + p: the sums of channel c over part p, in the
 * shared buffer (BN_MAX_SUMS doubles an item). Phase 2: per channel
 * (STATS, PGRAD) or per channel and part, the totals added in part order
 * (the same in every item and for every thread count), then the channel's
 * rows or the part's output. */
static void emit_bn_split(cg_emit *e, const bn_shape *s, int kind) {
  int64_t n1 = s->chans * s->parts;
  int rows = kind == BN_STATS || kind == BN_PGRAD;
  LLVMValueRef sums = cg_shared(e, 0, IR_F64), one = cg_i64(e, 1), c, part;
  bn_item it;
  LLVMValueRef tot[BN_MAX_SUMS];
  cg_loop l;
  LLVMValueRef i = cg_loop_begin(e, &l, e->begin, e->end, 1);
  cg_if ph;
  cg_if_begin(e, &ph, LLVMBuildICmp(e->b, LLVMIntSLT, i, cg_i64(e, n1), ""));
  bn_split_item(e, s, i, &c, &part);
  bn_item_init(e, s, kind, &it, c, 1);
  bn_item_sums(e, &it, c, 1, bn_part_row(e, s, part), bn_part_row(e, s, cg_add(e, part, one)), tot);
  for (int a = 0; a < it.nacc; a++)
    cg_store(e, sums, cg_add(e, cg_mul(e, i, cg_i64(e, BN_MAX_SUMS)), cg_i64(e, a)),
             LLVMBuildExtractElement(e->b, tot[a], cg_i64(e, 0), ""));
  cg_if_else(e, &ph);
  LLVMValueRef j = cg_sub(e, i, cg_i64(e, n1));
  if (rows) {
    c = j;
    part = cg_i64(e, 0);
  } else {
    bn_split_item(e, s, j, &c, &part);
  }
  bn_item_init(e, s, kind, &it, c, 1);
  LLVMValueRef base = cg_mul(e, c, cg_i64(e, BN_MAX_SUMS * (int64_t)s->parts));
  for (int a = 0; a < it.nacc; a++) {
    LLVMValueRef v = cg_load(e, sums, cg_add(e, base, cg_i64(e, a)));
    for (int p = 1; p < s->parts; p++)
      v = LLVMBuildFAdd(e->b, v, cg_load(e, sums, cg_add(e, base, cg_i64(e, BN_MAX_SUMS * (int64_t)p + a))), "");
    tot[a] = cg_splat(e, v, s->w);
  }
  bn_item_finish(e, &it, c, 1, tot, bn_part_row(e, s, part),
                 rows ? cg_i64(e, s->outer) : bn_part_row(e, s, cg_add(e, part, one)));
  cg_if_end(e, &ph);
  cg_loop_end(e, &l);
}

/* Emits a batch-norm kernel of kind BN_*. Operands: x is arg[1]; gamma is
 * arg[2] for TRAIN, EVAL and GRAD; dy is arg[3] for GRAD ((x, gamma, dy))
 * and arg[2] for PGRAD ((x, dy)); STATS and PGRAD write a [2, C] result. */
static attnc_status emit_bn_kind(cg_emit *e, int kind) {
  bn_shape s;
  bn_shape_of(e->g, e->n, &s);
  if (s.parts > 1) {
    emit_bn_split(e, &s, kind);
    return ATTNC_OK;
  }
  if (!s.blk) {
    cg_loop l;
    LLVMValueRef c = cg_loop_begin(e, &l, e->begin, e->end, 1);
    bn_emit_item(e, &s, kind, c, 1);
    cg_loop_end(e, &l);
    return ATTNC_OK;
  }
  int64_t nfull = s.chans / s.w;
  if (nfull > 0) {
    cg_loop l;
    LLVMValueRef b = cg_loop_begin(e, &l, e->begin, cg_min(e, e->end, cg_i64(e, nfull)), 1);
    bn_emit_item(e, &s, kind, cg_mul(e, b, cg_i64(e, s.w)), s.w);
    cg_loop_end(e, &l);
  }
  if (s.chans % s.w) {
    cg_if t;
    cg_if_begin(e, &t, LLVMBuildICmp(e->b, LLVMIntSGT, e->end, cg_i64(e, nfull), ""));
    bn_emit_item(e, &s, kind, cg_i64(e, nfull * s.w), (int)(s.chans % s.w));
    cg_if_end(e, &t);
  }
  return ATTNC_OK;
}

/* Emits a batch-norm kernel; the kind follows from the node's op. */
static attnc_status emit_bn(cg_emit *e, const cg_plan *p) {
  (void)p;
  return emit_bn_kind(e, bn_kind_of(e->n->op));
}

/* ---- pooling ---- */

/* Geometry of a pooling node (forward or gradient). */
typedef struct {
  int64_t planes, h, w, oh, ow, k0, k1, s0, s1, p0, p1, ph, pw;
  ir_dtype dt;
} pool_shape;

static void pool_shape_of(const ir_graph *g, const ir_node *n, pool_shape *s) {
  const ir_type *x, *y;
  if (n->op == IR_OP_max_pool2d || n->op == IR_OP_avg_pool2d) {
    x = &g->nodes[n->in[0]]->type;
    y = &n->type;
  } else {
    x = &n->type;
    y = &g->nodes[n->in[n->nin - 1]]->type;
  }
  const int64_t *k = ir_get_ints(n, "kernel", NULL), *st = ir_get_ints(n, "stride", NULL),
                *pd = ir_get_ints(n, "pad", NULL);
  *s = (pool_shape){x->dims[0] * x->dims[1], x->dims[2], x->dims[3], y->dims[2], y->dims[3], k[0], k[1],
                    st[0], st[1], pd[0], pd[1], x->dims[2] + 2 * pd[0], x->dims[3] + 2 * pd[1], x->dtype};
}

/* Elements of the padded plane plus slack for whole-vector reads past its end. */
static int64_t pool_padded(const pool_shape *s, int w) { return s->ph * s->pw + (s->s1 + 1) * w + s->pw; }

static int64_t align_up(int64_t x) { return (x + 63) & ~(int64_t)63; }

/* Plan: one item per (n, c) plane; scratch holds the padded plane(s). */
static void plan_pool(const ir_graph *g, const ir_node *n, cg_plan *p) {
  pool_shape s;
  pool_shape_of(g, n, &s);
  int64_t padded = pool_padded(&s, lanes_of(s.dt));
  int fwd = n->op == IR_OP_max_pool2d || n->op == IR_OP_avg_pool2d;
  p->par = s.planes;
  p->scratch_bytes = fwd ? align_up(padded * (int64_t)ir_dtype_size(s.dt))
                         : align_up(padded * 8) + align_up(padded * (int64_t)ir_dtype_size(s.dt));
  p->flops = (double)(s.planes * s.oh * s.ow * s.k0 * s.k1);
}

/* Stores 'v' into pad[lo, hi). */
static void fill_range(cg_emit *e, LLVMValueRef pad, LLVMValueRef lo, LLVMValueRef hi, LLVMValueRef v) {
  cg_loop l;
  LLVMValueRef i = cg_loop_begin(e, &l, lo, hi, 1);
  cg_store(e, pad, i, v);
  cg_loop_end(e, &l);
}

/* Writes 'fill' into the border of the padded plane at 'pad' (rows above and
 * below, columns left and right of the interior). */
static void pool_fill_border(cg_emit *e, const pool_shape *s, LLVMValueRef pad, LLVMValueRef fill) {
  fill_range(e, pad, cg_i64(e, 0), cg_i64(e, s->p0 * s->pw), fill);
  fill_range(e, pad, cg_i64(e, (s->p0 + s->h) * s->pw), cg_i64(e, s->ph * s->pw), fill);
  if (s->p1 == 0) return;
  cg_loop l;
  LLVMValueRef r = cg_loop_begin(e, &l, cg_i64(e, s->p0), cg_i64(e, s->p0 + s->h), 1);
  LLVMValueRef row = cg_mul(e, r, cg_i64(e, s->pw));
  fill_range(e, pad, row, cg_add(e, row, cg_i64(e, s->p1)), fill);
  fill_range(e, pad, cg_add(e, row, cg_i64(e, s->p1 + s->w)), cg_add(e, row, cg_i64(e, s->pw)), fill);
  cg_loop_end(e, &l);
}

/* Copies plane 'pl' of x into the interior of the padded plane. */
static void pool_copy_in(cg_emit *e, const pool_shape *s, LLVMValueRef x, LLVMValueRef pl, LLVMValueRef pad) {
  cg_loop l;
  LLVMValueRef r = cg_loop_begin(e, &l, cg_i64(e, 0), cg_i64(e, s->h), 1);
  LLVMValueRef src = cg_mul(e, cg_add(e, cg_mul(e, pl, cg_i64(e, s->h)), r), cg_i64(e, s->w));
  LLVMValueRef dst = cg_affine(e, cg_add(e, r, cg_i64(e, s->p0)), s->pw, s->p1);
  cg_loop lc;
  LLVMValueRef i = cg_loop_begin(e, &lc, cg_i64(e, 0), cg_i64(e, s->w), 1);
  cg_store(e, pad, cg_add(e, dst, i), cg_load(e, x, cg_add(e, src, i)));
  cg_loop_end(e, &lc);
  cg_loop_end(e, &l);
}

/* 'w' lanes at base + idx + lane*stride. */
static LLVMValueRef strided_load(cg_emit *e, LLVMValueRef base, LLVMValueRef idx, int w, int64_t stride) {
  if (stride == 1) return cg_vload(e, base, idx, w);
  if (stride <= 4) {
    LLVMValueRef wide = cg_vload(e, base, idx, (int)(w * stride));
    LLVMValueRef pick[64];
    for (int i = 0; i < w; i++) pick[i] = LLVMConstInt(e->t_i32, (unsigned long long)(i * stride), 0);
    return LLVMBuildShuffleVector(e->b, wide, LLVMGetUndef(LLVMTypeOf(wide)), LLVMConstVector(pick, (unsigned)w), "");
  }
  LLVMValueRef v = LLVMGetUndef(LLVMVectorType(LLVMGetElementType(LLVMTypeOf(base)), (unsigned)w));
  for (int i = 0; i < w; i++)
    v = LLVMBuildInsertElement(e->b, v, cg_load(e, base, cg_add(e, idx, cg_i64(e, i * stride))),
                               LLVMConstInt(e->t_i32, (unsigned long long)i, 0), "");
  return v;
}

/* Emits 'count' outputs of row oy starting at column ox (a vector step). */
static void pool_vector(cg_emit *e, const pool_shape *s, int is_max, LLVMValueRef pad, LLVMValueRef y,
                        LLVMValueRef yrow, LLVMValueRef prow, LLVMValueRef ox, int count) {
  int w = lanes_of(s->dt);
  LLVMTypeRef vt = cg_vec_type(e, s->dt, w);
  LLVMValueRef acc = is_max ? cg_splat(e, cg_const(e, s->dt, -INFINITY), w) : LLVMConstNull(vt);
  LLVMValueRef col = cg_add(e, prow, cg_mul(e, ox, cg_i64(e, s->s1)));
  for (int64_t ky = 0; ky < s->k0; ky++)
    for (int64_t kx = 0; kx < s->k1; kx++) {
      LLVMValueRef v = strided_load(e, pad, cg_add(e, col, cg_i64(e, ky * s->pw + kx)), w, s->s1);
      if (is_max) {
        LLVMValueRef take = LLVMBuildOr(e->b, LLVMBuildFCmp(e->b, LLVMRealOGT, v, acc, ""),
                                        LLVMBuildFCmp(e->b, LLVMRealUNO, v, v, ""), "");
        acc = LLVMBuildSelect(e->b, take, v, acc, "");
      } else {
        acc = LLVMBuildFAdd(e->b, acc, v, "");
      }
    }
  if (!is_max) acc = LLVMBuildFDiv(e->b, acc, cg_splat(e, cg_const(e, s->dt, (double)(s->k0 * s->k1)), w), "");
  store_n(e, y, cg_add(e, yrow, ox), acc, count);
}

/* Emits max_pool2d / avg_pool2d. */
static attnc_status emit_pool(cg_emit *e, const cg_plan *p) {
  (void)p;
  pool_shape s;
  pool_shape_of(e->g, e->n, &s);
  int is_max = e->n->op == IR_OP_max_pool2d, w = lanes_of(s.dt);
  LLVMValueRef pad = cg_scratch(e, 0, s.dt);
  pool_fill_border(e, &s, pad, cg_const(e, s.dt, is_max ? -INFINITY : 0.0));
  cg_loop lp;
  LLVMValueRef pl = cg_loop_begin(e, &lp, e->begin, e->end, 1);
  pool_copy_in(e, &s, e->arg[1], pl, pad);
  cg_loop ly;
  LLVMValueRef oy = cg_loop_begin(e, &ly, cg_i64(e, 0), cg_i64(e, s.oh), 1);
  LLVMValueRef yrow = cg_mul(e, cg_add(e, cg_mul(e, pl, cg_i64(e, s.oh)), oy), cg_i64(e, s.ow));
  LLVMValueRef prow = cg_mul(e, oy, cg_i64(e, s.s0 * s.pw));
  int64_t nfull = s.ow / w;
  if (nfull > 0) {
    cg_loop lx;
    LLVMValueRef ox = cg_loop_begin(e, &lx, cg_i64(e, 0), cg_i64(e, nfull * w), w);
    pool_vector(e, &s, is_max, pad, e->arg[0], yrow, prow, ox, w);
    cg_loop_end(e, &lx);
  }
  if (s.ow % w) pool_vector(e, &s, is_max, pad, e->arg[0], yrow, prow, cg_i64(e, nfull * w), (int)(s.ow % w));
  cg_loop_end(e, &ly);
  cg_loop_end(e, &lp);
  return ATTNC_OK;
}

/* Emits max_pool2d_grad (x, dy) / avg_pool2d_grad (dy): scatters each dy
 * (as double) into a padded plane of doubles in (oy, ox) order, to the
 * first maximum of the window or to every tap divided by the area, then
 * rounds the interior into dx. */
static attnc_status emit_pool_grad(cg_emit *e, const cg_plan *p) {
  (void)p;
  pool_shape s;
  pool_shape_of(e->g, e->n, &s);
  int is_max = e->n->op == IR_OP_max_pool2d_grad;
  int64_t padded = pool_padded(&s, lanes_of(s.dt));
  LLVMValueRef acc = cg_scratch(e, 0, IR_F64);
  LLVMValueRef xp = cg_scratch(e, align_up(padded * 8), s.dt);
  LLVMValueRef dy = e->arg[is_max ? 2 : 1];
  if (is_max) pool_fill_border(e, &s, xp, cg_const(e, s.dt, -INFINITY));
  cg_loop lp;
  LLVMValueRef pl = cg_loop_begin(e, &lp, e->begin, e->end, 1);
  fill_range(e, acc, cg_i64(e, 0), cg_i64(e, s.ph * s.pw), LLVMConstReal(e->t_f64, 0));
  if (is_max) pool_copy_in(e, &s, e->arg[1], pl, xp);
  cg_loop ly;
  LLVMValueRef oy = cg_loop_begin(e, &ly, cg_i64(e, 0), cg_i64(e, s.oh), 1);
  LLVMValueRef prow = cg_mul(e, oy, cg_i64(e, s.s0 * s.pw));
  LLVMValueRef dyrow = cg_mul(e, cg_add(e, cg_mul(e, pl, cg_i64(e, s.oh)), oy), cg_i64(e, s.ow));
  cg_loop lx;
  LLVMValueRef ox = cg_loop_begin(e, &lx, cg_i64(e, 0), cg_i64(e, s.ow), 1);
  LLVMValueRef g = cg_load(e, dy, cg_add(e, dyrow, ox));
  if (s.dt != IR_F64) g = LLVMBuildFPExt(e->b, g, e->t_f64, "");
  LLVMValueRef at = cg_add(e, prow, cg_mul(e, ox, cg_i64(e, s.s1)));
  if (is_max) {
    /* start from the window's first in-bounds tap; padding (-inf) never wins */
    LLVMValueRef ky0 = cg_max(e, cg_i64(e, 0), cg_sub(e, cg_i64(e, s.p0), cg_mul(e, oy, cg_i64(e, s.s0))));
    LLVMValueRef kx0 = cg_max(e, cg_i64(e, 0), cg_sub(e, cg_i64(e, s.p1), cg_mul(e, ox, cg_i64(e, s.s1))));
    LLVMValueRef arg = cg_add(e, at, cg_add(e, cg_mul(e, ky0, cg_i64(e, s.pw)), kx0));
    LLVMValueRef best = cg_load(e, xp, arg);
    for (int64_t ky = 0; ky < s.k0; ky++)
      for (int64_t kx = 0; kx < s.k1; kx++) {
        LLVMValueRef idx = cg_add(e, at, cg_i64(e, ky * s.pw + kx));
        LLVMValueRef v = cg_load(e, xp, idx);
        LLVMValueRef take = LLVMBuildOr(e->b, LLVMBuildFCmp(e->b, LLVMRealOGT, v, best, ""),
                                        LLVMBuildFCmp(e->b, LLVMRealUNO, v, v, ""), "");
        best = LLVMBuildSelect(e->b, take, v, best, "");
        arg = LLVMBuildSelect(e->b, take, idx, arg, "");
      }
    cg_store(e, acc, arg, LLVMBuildFAdd(e->b, cg_load(e, acc, arg), g, ""));
  } else {
    g = LLVMBuildFDiv(e->b, g, LLVMConstReal(e->t_f64, (double)(s.k0 * s.k1)), "");
    for (int64_t ky = 0; ky < s.k0; ky++)
      for (int64_t kx = 0; kx < s.k1; kx++) {
        LLVMValueRef idx = cg_add(e, at, cg_i64(e, ky * s.pw + kx));
        cg_store(e, acc, idx, LLVMBuildFAdd(e->b, cg_load(e, acc, idx), g, ""));
      }
  }
  cg_loop_end(e, &lx);
  cg_loop_end(e, &ly);
  /* dx = interior of acc, rounded */
  cg_loop lr;
  LLVMValueRef r = cg_loop_begin(e, &lr, cg_i64(e, 0), cg_i64(e, s.h), 1);
  LLVMValueRef dst = cg_mul(e, cg_add(e, cg_mul(e, pl, cg_i64(e, s.h)), r), cg_i64(e, s.w));
  LLVMValueRef src = cg_affine(e, cg_add(e, r, cg_i64(e, s.p0)), s.pw, s.p1);
  cg_loop lc;
  LLVMValueRef i = cg_loop_begin(e, &lc, cg_i64(e, 0), cg_i64(e, s.w), 1);
  LLVMValueRef v = cg_load(e, acc, cg_add(e, src, i));
  if (s.dt != IR_F64) v = LLVMBuildFPTrunc(e->b, v, e->t_f32, "");
  cg_store(e, e->arg[0], cg_add(e, dst, i), v);
  cg_loop_end(e, &lc);
  cg_loop_end(e, &lr);
  cg_loop_end(e, &lp);
  return ATTNC_OK;
}

/* Registers batch norm and pooling. */
void cg_register_nn(cg_kernel_impl *t) {
  t[IR_OP_batchnorm_train] = (cg_kernel_impl){plan_bn, emit_bn};
  t[IR_OP_batchnorm_eval] = (cg_kernel_impl){plan_bn, emit_bn};
  t[IR_OP_batchnorm_train_grad] = (cg_kernel_impl){plan_bn, emit_bn};
  t[IR_OP_batchnorm_stats] = (cg_kernel_impl){plan_bn, emit_bn};
  t[IR_OP_batchnorm_param_grad] = (cg_kernel_impl){plan_bn, emit_bn};
  t[IR_OP_max_pool2d] = (cg_kernel_impl){plan_pool, emit_pool};
  t[IR_OP_avg_pool2d] = (cg_kernel_impl){plan_pool, emit_pool};
  t[IR_OP_max_pool2d_grad] = (cg_kernel_impl){plan_pool, emit_pool_grad};
  t[IR_OP_avg_pool2d_grad] = (cg_kernel_impl){plan_pool, emit_pool_grad};
}
