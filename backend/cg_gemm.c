/* The GEMM micro-kernels and im2col/col2im loops of the convolution kernels
 * (see cg_gemm.h). Every tile is emitted with explicit 512-bit vector types
 * and llvm.fmuladd, its accumulators held in registers across the whole
 * reduction; sizes are constants, so remainder tiles are emitted exactly
 * (fewer rows, fewer vectors, a masked last vector). */
#include "cg_gemm.h"

enum { MAX_MR = 8, MAX_NR = 4 };

int cg_gemm_lanes(ir_dtype dt) {
  int f = cg_host_vector_floats();
  return dt == IR_F64 ? (f > 2 ? f / 2 : 1) : f;
}

/* 1 if the host has 32 vector registers (AVX-512), else 16. */
static int wide_regs(void) { return cg_host_vector_floats() >= 16; }

/* Operands of one GEMM emission. */
typedef struct {
  ir_dtype dt;
  int lanes;
  LLVMValueRef A, B, C;
  int64_t am, ak, ldb, ldc, K;
  int accumulate; /* C += A x B instead of C = A x B */
} gemm_args;

/* One register tile: rows [m0, m0+mr) x vectors [p0, p0 + nv*lanes), the
 * last vector holding 'last' lanes. */
static void gemm_tile(cg_emit *e, const gemm_args *g, LLVMValueRef m0, LLVMValueRef p0, int mr, int nv,
                      int last) {
  LLVMTypeRef vt = cg_vec_type(e, g->dt, g->lanes);
  LLVMValueRef acc[MAX_MR][MAX_NR], cidx[MAX_MR][MAX_NR];
  for (int i = 0; i < mr; i++) {
    LLVMValueRef crow = cg_add(e, cg_mul(e, cg_add(e, m0, cg_i64(e, i)), cg_i64(e, g->ldc)), p0);
    for (int j = 0; j < nv; j++) {
      cidx[i][j] = cg_add(e, crow, cg_i64(e, (int64_t)j * g->lanes));
      int count = j == nv - 1 ? last : g->lanes;
      acc[i][j] = cg_var_new(e, vt, g->accumulate ? cg_vload_first(e, g->C, cidx[i][j], g->lanes, count)
                                                  : LLVMConstNull(vt));
    }
  }
  cg_loop lk;
  LLVMValueRef k = cg_loop_begin(e, &lk, cg_i64(e, 0), cg_i64(e, g->K), 1);
  LLVMValueRef brow = cg_add(e, cg_mul(e, k, cg_i64(e, g->ldb)), p0);
  LLVMValueRef bv[MAX_NR];
  for (int j = 0; j < nv; j++)
    bv[j] = cg_vload_first(e, g->B, cg_add(e, brow, cg_i64(e, (int64_t)j * g->lanes)), g->lanes,
                           j == nv - 1 ? last : g->lanes);
  LLVMValueRef arow = cg_add(e, cg_mul(e, m0, cg_i64(e, g->am)), cg_mul(e, k, cg_i64(e, g->ak)));
  for (int i = 0; i < mr; i++) {
    LLVMValueRef a = cg_splat(e, cg_load(e, g->A, cg_add(e, arow, cg_i64(e, i * g->am))), g->lanes);
    for (int j = 0; j < nv; j++) cg_var_set(e, acc[i][j], cg_fma(e, a, bv[j], cg_var_get(e, acc[i][j])));
  }
  cg_loop_end(e, &lk);
  for (int i = 0; i < mr; i++)
    for (int j = 0; j < nv; j++)
      cg_vstore_first(e, g->C, cidx[i][j], cg_var_get(e, acc[i][j]), j == nv - 1 ? last : g->lanes);
}

/* All pixel tiles of the row block at m0 with 'mr' rows. */
static void gemm_row_block(cg_emit *e, const gemm_args *g, LLVMValueRef m0, int mr, int nr, int64_t P) {
  int64_t tile = (int64_t)nr * g->lanes, full = P / tile * tile, rem = P - full;
  if (full > 0) {
    cg_loop lp;
    LLVMValueRef p0 = cg_loop_begin(e, &lp, cg_i64(e, 0), cg_i64(e, full), tile);
    gemm_tile(e, g, m0, p0, mr, nr, g->lanes);
    cg_loop_end(e, &lp);
  }
  if (rem > 0) {
    int nv = (int)((rem + g->lanes - 1) / g->lanes);
    gemm_tile(e, g, m0, cg_i64(e, full), mr, nv, (int)(rem - (int64_t)(nv - 1) * g->lanes));
  }
}

/* Emits the row blocks [m, m + count*mr) in tiles of mr rows. */
static void gemm_rows(cg_emit *e, const gemm_args *g, int64_t m, int64_t count, int mr, int nr, int64_t P) {
  if (count <= 0 || mr <= 0) return;
  if (count == 1) {
    gemm_row_block(e, g, cg_i64(e, m), mr, nr, P);
    return;
  }
  cg_loop lm;
  LLVMValueRef m0 = cg_loop_begin(e, &lm, cg_i64(e, m), cg_i64(e, m + count * mr), mr);
  gemm_row_block(e, g, m0, mr, nr, P);
  cg_loop_end(e, &lm);
}

/* Register tiles of nr vectors (accumulators, the nr loaded vectors and a
 * broadcast within the register file: 6x2 with 16 registers, 8x3 with 32)
 * and M split into tiles as even as possible, so no tile is much shorter
 * than the others. */
/* C = A x B, or C += A x B when 'accumulate'. */
static void gemm(cg_emit *e, ir_dtype dt, LLVMValueRef A, int64_t am, int64_t ak, LLVMValueRef B, int64_t ldb,
                 LLVMValueRef C, int64_t ldc, int64_t M, int64_t K, int64_t P, int accumulate) {
  gemm_args g = {dt, cg_gemm_lanes(dt), A, B, C, am, ak, ldb, ldc, K, accumulate};
  int maxmr = wide_regs() ? 8 : 6, nr = wide_regs() ? 3 : 2;
  int64_t tiles = (M + maxmr - 1) / maxmr;
  int hi = (int)((M + tiles - 1) / tiles);
  int64_t nhi = M - (int64_t)(hi - 1) * tiles; /* tiles of hi rows; the rest have hi - 1 */
  gemm_rows(e, &g, 0, nhi, hi, nr, P);
  gemm_rows(e, &g, nhi * hi, tiles - nhi, hi - 1, nr, P);
}

void cg_gemm_emit(cg_emit *e, ir_dtype dt, LLVMValueRef A, int64_t am, int64_t ak, LLVMValueRef B,
                  int64_t ldb, LLVMValueRef C, int64_t ldc, int64_t M, int64_t K, int64_t P) {
  gemm(e, dt, A, am, ak, B, ldb, C, ldc, M, K, P, 0);
}

void cg_gemm_acc_emit(cg_emit *e, ir_dtype dt, LLVMValueRef A, int64_t am, int64_t ak, LLVMValueRef B,
                      int64_t ldb, LLVMValueRef C, int64_t ldc, int64_t M, int64_t K, int64_t P) {
  gemm(e, dt, A, am, ak, B, ldb, C, ldc, M, K, P, 1);
}

/* Operands of one dot-GEMM emission. */
typedef struct {
  ir_dtype dt;
  int lanes;
  LLVMValueRef A, B, V;
  int64_t lda, ldb, K, P;
} dot_args;

/* One tile of the dot GEMM: rows [m0, m0+mr) of A against rows [k0, k0+nk) of B. */
static void dot_tile(cg_emit *e, const dot_args *g, LLVMValueRef m0, LLVMValueRef k0, int mr, int nk) {
  LLVMTypeRef vt = cg_vec_type(e, g->dt, g->lanes);
  LLVMValueRef acc[MAX_MR][MAX_MR];
  for (int i = 0; i < mr; i++)
    for (int j = 0; j < nk; j++) acc[i][j] = cg_var_new(e, vt, LLVMConstNull(vt));
  int64_t full = g->P / g->lanes * g->lanes, rem = g->P - full;
  LLVMValueRef abase = cg_mul(e, m0, cg_i64(e, g->lda)), bbase = cg_mul(e, k0, cg_i64(e, g->ldb));
  for (int part = 0; part < 2; part++) {
    if (part == 0 && full == 0) continue;
    if (part == 1 && rem == 0) continue;
    cg_loop lp;
    LLVMValueRef p = cg_i64(e, full);
    if (part == 0) p = cg_loop_begin(e, &lp, cg_i64(e, 0), cg_i64(e, full), g->lanes);
    int count = part == 0 ? g->lanes : (int)rem;
    LLVMValueRef bv[MAX_MR];
    for (int j = 0; j < nk; j++)
      bv[j] = cg_vload_first(e, g->B, cg_add(e, cg_add(e, bbase, cg_i64(e, j * g->ldb)), p), g->lanes, count);
    for (int i = 0; i < mr; i++) {
      LLVMValueRef a = cg_vload_first(e, g->A, cg_add(e, cg_add(e, abase, cg_i64(e, i * g->lda)), p), g->lanes, count);
      for (int j = 0; j < nk; j++) cg_var_set(e, acc[i][j], cg_fma(e, a, bv[j], cg_var_get(e, acc[i][j])));
    }
    if (part == 0) {
      cg_loop_end(e, &lp);
      cg_loop_no_unroll(e, &lp);
    }
  }
  for (int i = 0; i < mr; i++)
    for (int j = 0; j < nk; j++) {
      LLVMValueRef row = cg_add(e, cg_mul(e, cg_add(e, m0, cg_i64(e, i)), cg_i64(e, g->K)), cg_add(e, k0, cg_i64(e, j)));
      LLVMValueRef idx = cg_mul(e, row, cg_i64(e, g->lanes));
      LLVMValueRef old = cg_vload(e, g->V, idx, g->lanes);
      cg_vstore(e, g->V, idx, LLVMBuildFAdd(e->b, old, cg_var_get(e, acc[i][j]), ""));
    }
}

/* All k tiles of the row block at m0 with mr rows. */
static void dot_row_block(cg_emit *e, const dot_args *g, LLVMValueRef m0, int mr, int nk) {
  int64_t full = g->K / nk * nk, rem = g->K - full;
  if (full > 0) {
    cg_loop lk;
    LLVMValueRef k0 = cg_loop_begin(e, &lk, cg_i64(e, 0), cg_i64(e, full), nk);
    dot_tile(e, g, m0, k0, mr, nk);
    cg_loop_end(e, &lk);
  }
  if (rem > 0) dot_tile(e, g, m0, cg_i64(e, full), mr, (int)rem);
}

void cg_gemm_dot_emit(cg_emit *e, ir_dtype dt, LLVMValueRef A, int64_t lda, LLVMValueRef B,
                      int64_t ldb, LLVMValueRef V, int64_t M, int64_t K, int64_t P) {
  dot_args g = {dt, cg_gemm_lanes(dt), A, B, V, lda, ldb, K, P};
  /* tiles of mr x nk <= 24 accumulators, nk dividing K when it can */
  int maxacc = wide_regs() ? 24 : 12;
  int nk = K % 3 == 0 ? 3 : K % 2 == 0 && !wide_regs() ? 2 : wide_regs() ? 4 : 3;
  if (nk > K) nk = (int)K;
  int mr = M >= 8 ? 8 : (int)M;
  if (mr * nk > maxacc) mr = maxacc / nk;
  int64_t full = M / mr * mr, rem = M - full;
  if (full > 0) {
    cg_loop lm;
    LLVMValueRef m0 = cg_loop_begin(e, &lm, cg_i64(e, 0), cg_i64(e, full), mr);
    dot_row_block(e, &g, m0, mr, nk);
    cg_loop_end(e, &lm);
  }
  if (rem > 0) dot_row_block(e, &g, cg_i64(e, full), (int)rem, nk);
}

/* Columns ox in [*first, *last) whose input column ox*sw + t is inside [0, w). */
static void valid_cols(const cg_window *wd, int64_t t, int64_t *first, int64_t *last) {
  int64_t f = t >= 0 ? 0 : (-t + wd->sw - 1) / wd->sw;
  int64_t n = wd->w - t;
  int64_t l = n <= 0 ? 0 : (n + wd->sw - 1) / wd->sw;
  if (l > wd->outw) l = wd->outw;
  if (f > l) f = l;
  *first = f;
  *last = l;
}

/* Stores zeros at col[base + i] for i in [a, b). */
static void zero_fill(cg_emit *e, LLVMValueRef col, LLVMValueRef base, int64_t a, int64_t b, LLVMValueRef zero) {
  if (a >= b) return;
  cg_loop l;
  LLVMValueRef i = cg_loop_begin(e, &l, cg_i64(e, a), cg_i64(e, b), 1);
  cg_store(e, col, cg_add(e, base, i), zero);
  cg_loop_end(e, &l);
}

/* The shared loop nest of im2col (scatter = 0) and col2im (scatter = 1). */
static void window_loops(cg_emit *e, const cg_window *wd, LLVMValueRef X, int64_t nc, LLVMValueRef oy0,
                         int64_t rows, LLVMValueRef col, int64_t ldcol, int scatter) {
  LLVMValueRef zero = LLVMConstNull(LLVMGetElementType(LLVMTypeOf(col)));
  cg_loop lc, lky, loy;
  LLVMValueRef c = cg_loop_begin(e, &lc, cg_i64(e, 0), cg_i64(e, nc), 1);
  LLVMValueRef xplane = cg_mul(e, c, cg_i64(e, wd->h * wd->w));
  LLVMValueRef ky = cg_loop_begin(e, &lky, cg_i64(e, 0), cg_i64(e, wd->kh), 1);
  LLVMValueRef rowc = cg_mul(e, cg_add(e, cg_mul(e, c, cg_i64(e, wd->kh)), ky), cg_i64(e, wd->kw));
  for (int64_t kx = 0; kx < wd->kw; kx++) {
    int64_t t = wd->ow + kx * wd->dw, first, last;
    valid_cols(wd, t, &first, &last);
    LLVMValueRef cbase = cg_mul(e, cg_add(e, rowc, cg_i64(e, kx)), cg_i64(e, ldcol));
    LLVMValueRef oy = cg_loop_begin(e, &loy, cg_i64(e, 0), cg_i64(e, rows), 1);
    LLVMValueRef iy = cg_add(e, cg_affine(e, cg_add(e, oy0, oy), wd->sh, wd->oh), cg_mul(e, ky, cg_i64(e, wd->dh)));
    LLVMValueRef in = LLVMBuildAnd(e->b, LLVMBuildICmp(e->b, LLVMIntSGE, iy, cg_i64(e, 0), ""),
                                   LLVMBuildICmp(e->b, LLVMIntSLT, iy, cg_i64(e, wd->h), ""), "");
    LLVMValueRef dst = cg_add(e, cbase, cg_mul(e, oy, cg_i64(e, wd->outw)));
    cg_if ci;
    cg_if_begin(e, &ci, in);
    LLVMValueRef xrow = cg_add(e, xplane, cg_mul(e, iy, cg_i64(e, wd->w)));
    if (!scatter) zero_fill(e, col, dst, 0, first, zero);
    if (first < last) {
      cg_loop lx;
      LLVMValueRef ox = cg_loop_begin(e, &lx, cg_i64(e, first), cg_i64(e, last), 1);
      LLVMValueRef xi = cg_add(e, xrow, cg_affine(e, ox, wd->sw, t));
      LLVMValueRef ci_ = cg_add(e, dst, ox);
      if (scatter) {
        LLVMValueRef v = LLVMBuildFAdd(e->b, cg_load(e, X, xi), cg_load(e, col, ci_), "");
        cg_store(e, X, xi, v);
      } else {
        cg_store(e, col, ci_, cg_load(e, X, xi));
      }
      cg_loop_end(e, &lx);
    }
    if (!scatter) {
      zero_fill(e, col, dst, last, wd->outw, zero);
      cg_if_else(e, &ci);
      zero_fill(e, col, dst, 0, wd->outw, zero);
    }
    cg_if_end(e, &ci);
    cg_loop_end(e, &loy);
  }
  cg_loop_end(e, &lky);
  cg_loop_end(e, &lc);
}

void cg_im2col_emit(cg_emit *e, const cg_window *wd, LLVMValueRef X, int64_t nc, LLVMValueRef oy0,
                    int64_t rows, LLVMValueRef col, int64_t ldcol) {
  window_loops(e, wd, X, nc, oy0, rows, col, ldcol, 0);
}

void cg_col2im_emit(cg_emit *e, const cg_window *wd, LLVMValueRef X, int64_t nc, LLVMValueRef oy0,
                    int64_t rows, LLVMValueRef col, int64_t ldcol) {
  window_loops(e, wd, X, nc, oy0, rows, col, ldcol, 1);
}
