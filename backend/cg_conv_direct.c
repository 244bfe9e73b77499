/* Direct convolution building blocks (see cg_gemm.h): instead of an
 * im2col panel (KH*KW copies of every input element), the input rows a
 * block needs are copied once into a zero-padded buffer, their columns
 * split by phase (column mod stride), and the register tiles read the
 * window taps straight from it as constant shifts. Used for the forward
 * convolution (and so the stride-1 input gradient) and the weight
 * gradient. */
#include "cg_gemm.h"

enum { MAX_MR = 8, MAX_NV = 4, MAX_NK = 4, SLACK = 16 };

/* Row tiles (few output channels, see rows_tiled): at most ROW_M output
 * channels, windows of at most ROW_KH rows and columns, ROW_R output rows
 * per forward tile and ROW_NX window columns per weight-gradient tile. */
enum { ROW_M = 2, ROW_KH = 11, ROW_R = 24, ROW_NX = 6 };

/* Layout of the padded buffer: per channel 'rp' rows, each of sw phases
 * of 'wp' elements (rs = sw*wp per row); row r, phase p, column j holds
 * input (oy0*sh + oh + r, ow + j*sw + p), zero outside the input. */
typedef struct {
  int64_t rp, wp, rs, plane;
} pad_geom;

static pad_geom pad_of(const cg_window *wd, int64_t rows) {
  pad_geom p;
  p.rp = (rows - 1) * wd->sh + (wd->kh - 1) * wd->dh + 1;
  p.wp = wd->outw + (wd->kw - 1) * wd->dw / wd->sw;
  p.rs = wd->sw * p.wp;
  p.plane = p.rp * p.rs;
  return p;
}

int cg_direct_lanes(const cg_window *wd, ir_dtype dt) {
  int best = cg_gemm_lanes(dt);
  int64_t padded = (wd->outw + best - 1) / best * best;
  for (int w = best / 2; w >= 4 && w >= best / 4; w /= 2) {
    int64_t p = (wd->outw + w - 1) / w * w;
    if (p < padded) best = w, padded = p;
  }
  return best;
}

int64_t cg_direct_buffer_elems(const cg_window *wd, int64_t nc, int64_t rows) {
  return nc * pad_of(wd, rows).plane + SLACK;
}

int64_t cg_direct_rows(const cg_window *wd, int64_t nc, int64_t outh, int64_t esz, int64_t budget) {
  pad_geom p = pad_of(wd, 1);
  int64_t r = (budget / (nc * p.rs * esz) - p.rp) / wd->sh + 1;
  if (r < 1) r = 1;
  if (r >= outh) return outh;
  /* prefer a divisor of outh not much smaller */
  for (int64_t d = r; d >= (r + 1) / 2; d--)
    if (outh % d == 0) return d;
  return r;
}

void cg_zeros_emit(cg_emit *e, LLVMValueRef P, LLVMValueRef base, int64_t a, int64_t b) {
  if (a >= b) return;
  LLVMValueRef z = LLVMConstNull(LLVMGetElementType(LLVMTypeOf(P)));
  cg_loop l;
  LLVMValueRef i = cg_loop_begin(e, &l, cg_i64(e, a), cg_i64(e, b), 1);
  cg_store(e, P, cg_add(e, base, i), z);
  cg_loop_end(e, &l);
}

/* Fills the padded buffer P of 'nc' channels of X for the block of output
 * rows starting at oy0 (rows from pg), plus the zeroed slack after it. */
/* Ceiling of a / b for b > 0. */
static int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -(-a / b); }

/* P[pdst + j] = X[src + 2*j + t] for j in [jf, jl), reading only row
 * elements of X below w: vectors of 2L loaded and split into their even
 * lanes, masked where 2L would pass the row's end. */
static void copy_stride2(cg_emit *e, LLVMValueRef X, LLVMValueRef src, int64_t t, int64_t w, LLVMValueRef P,
                         LLVMValueRef pdst, int64_t jf, int64_t jl) {
  LLVMTypeRef et = LLVMGetElementType(LLVMTypeOf(X));
  int L = cg_gemm_lanes(et == e->t_f32 ? IR_F32 : IR_F64);
  int64_t plain = 0; /* chunks of L whose 2L loaded elements stay in the row */
  while (jf + (plain + 1) * L <= jl && 2 * (jf + plain * L) + t + 2 * L <= w) plain++;
  if (plain > 0) {
    cg_loop lj;
    LLVMValueRef j0 = cg_loop_begin(e, &lj, cg_i64(e, jf), cg_i64(e, jf + plain * L), L);
    LLVMValueRef v = cg_vload(e, X, cg_add(e, src, cg_affine(e, j0, 2, t)), 2 * L);
    cg_vstore(e, P, cg_add(e, pdst, j0), cg_every_other(e, v, 0, L));
    cg_loop_end(e, &lj);
  }
  for (int64_t j0 = jf + plain * L; j0 < jl; j0 += L) {
    int cnt = (int)(jl - j0 < L ? jl - j0 : L);
    LLVMValueRef v = cg_vload_first(e, X, cg_add(e, src, cg_i64(e, 2 * j0 + t)), 2 * L, 2 * cnt - 1);
    cg_vstore_first(e, P, cg_add(e, pdst, cg_i64(e, j0)), cg_every_other(e, v, 0, L), cnt);
  }
}

static void fill_pad(cg_emit *e, const cg_window *wd, const pad_geom *pg, LLVMValueRef X, int64_t nc,
                     LLVMValueRef oy0, LLVMValueRef pf, LLVMValueRef P) {
  cg_loop lc, lr;
  LLVMValueRef c = cg_loop_begin(e, &lc, cg_i64(e, 0), cg_i64(e, nc), 1);
  LLVMValueRef r = cg_loop_begin(e, &lr, cg_i64(e, 0), cg_i64(e, pg->rp), 1);
  LLVMValueRef iy = cg_add(e, cg_affine(e, oy0, wd->sh, wd->oh), r);
  LLVMValueRef dst = cg_add(e, cg_mul(e, c, cg_i64(e, pg->plane)), cg_mul(e, r, cg_i64(e, pg->rs)));
  LLVMValueRef in = LLVMBuildAnd(e->b, LLVMBuildICmp(e->b, LLVMIntSGE, iy, cg_i64(e, 0), ""),
                                 LLVMBuildICmp(e->b, LLVMIntSLT, iy, cg_i64(e, wd->h), ""), "");
  cg_if ci;
  cg_if_begin(e, &ci, in);
  LLVMValueRef src = cg_add(e, cg_mul(e, c, cg_i64(e, wd->h * wd->w)), cg_mul(e, iy, cg_i64(e, wd->w)));
  if (pf) cg_prefetch_row(e, X, cg_add(e, src, pf), wd->w, 0);
  for (int64_t p = 0; p < wd->sw; p++) {
    /* phase p, column j reads input column ow + p + j*sw: inside for j in [jf, jl) */
    int64_t t = wd->ow + p, jf = ceil_div(-t, wd->sw), jl = ceil_div(wd->w - t, wd->sw);
    if (jf < 0) jf = 0;
    if (jf > pg->wp) jf = pg->wp;
    if (jl > pg->wp) jl = pg->wp;
    if (jl < jf) jl = jf;
    LLVMValueRef pdst = cg_add(e, dst, cg_i64(e, p * pg->wp));
    cg_zeros_emit(e, P, pdst, 0, jf);
    if (jf < jl && wd->sw == 2) {
      copy_stride2(e, X, src, t, wd->w, P, pdst, jf, jl);
    } else if (jf < jl) {
      cg_loop lj;
      LLVMValueRef j = cg_loop_begin(e, &lj, cg_i64(e, jf), cg_i64(e, jl), 1);
      cg_store(e, P, cg_add(e, pdst, j), cg_load(e, X, cg_add(e, src, cg_affine(e, j, wd->sw, t))));
      cg_loop_end(e, &lj);
    }
    cg_zeros_emit(e, P, pdst, jl, pg->wp);
  }
  cg_if_else(e, &ci);
  cg_zeros_emit(e, P, dst, 0, pg->rs);
  cg_if_end(e, &ci);
  cg_loop_end(e, &lr);
  cg_loop_end(e, &lc);
  cg_zeros_emit(e, P, cg_i64(e, nc * pg->plane), 0, SLACK);
}

/* Buffer offset of window tap t. */
static int64_t tap_offset(const cg_window *wd, const pad_geom *pg, int64_t t) {
  int64_t cx = (t % wd->kw) * wd->dw;
  return (t / wd->kw) * wd->dh * pg->rs + cx % wd->sw * pg->wp + cx / wd->sw;
}

void cg_direct_fill_emit(cg_emit *e, const cg_window *wd, LLVMValueRef X, int64_t nc, LLVMValueRef oy0,
                         int64_t rows, LLVMValueRef pf, LLVMValueRef P) {
  pad_geom pg = pad_of(wd, rows);
  fill_pad(e, wd, &pg, X, nc, oy0, pf, P);
}

cg_direct_layout cg_direct_layout_of(const cg_window *wd, int64_t rows) {
  pad_geom pg = pad_of(wd, rows);
  cg_direct_layout l = {pg.plane, wd->sh * pg.rs, {0}};
  for (int64_t t = 0; t < wd->kh * wd->kw && t < CG_DIRECT_MAX_TAPS; t++) l.tap[t] = tap_offset(wd, &pg, t);
  return l;
}

/* Operands of a direct forward emission. */
typedef struct {
  ir_dtype dt;
  int lanes;
  const cg_window *wd;
  pad_geom pg;
  LLVMValueRef A, P, Y;
  int64_t am, ldy, nc, khw;
} direct_args;

/* One vector of a pixel tile: output offset, buffer offset, live lanes. */
typedef struct {
  int64_t dpix, dbuf;
  int count;
} vec_at;

/* One register tile: output channels [m0, m0+mr) x the nv vectors v[] at
 * output row oy, column ox0, accumulated over every channel and tap. */
static void direct_tile(cg_emit *e, const direct_args *g, LLVMValueRef m0, LLVMValueRef oy, LLVMValueRef ox0,
                        int mr, int nv, const vec_at *v) {
  LLVMTypeRef vt = cg_vec_type(e, g->dt, g->lanes);
  LLVMValueRef acc[MAX_MR][MAX_NV];
  for (int i = 0; i < mr; i++)
    for (int j = 0; j < nv; j++) acc[i][j] = cg_var_new(e, vt, LLVMConstNull(vt));
  LLVMValueRef pix = cg_add(e, cg_mul(e, oy, cg_i64(e, g->wd->sh * g->pg.rs)), ox0);
  cg_loop lc;
  LLVMValueRef c = cg_loop_begin(e, &lc, cg_i64(e, 0), cg_i64(e, g->nc), 1);
  LLVMValueRef bbase = cg_add(e, cg_mul(e, c, cg_i64(e, g->pg.plane)), pix);
  LLVMValueRef abase = cg_add(e, cg_mul(e, m0, cg_i64(e, g->am)), cg_mul(e, c, cg_i64(e, g->khw)));
  for (int64_t t = 0; t < g->khw; t++) {
    int64_t off = tap_offset(g->wd, &g->pg, t);
    LLVMValueRef bv[MAX_NV];
    for (int j = 0; j < nv; j++) bv[j] = cg_vload(e, g->P, cg_add(e, bbase, cg_i64(e, off + v[j].dbuf)), g->lanes);
    for (int i = 0; i < mr; i++) {
      LLVMValueRef a = cg_splat(e, cg_load(e, g->A, cg_add(e, abase, cg_i64(e, i * g->am + t))), g->lanes);
      for (int j = 0; j < nv; j++) cg_var_set(e, acc[i][j], cg_fma(e, a, bv[j], cg_var_get(e, acc[i][j])));
    }
  }
  cg_loop_end(e, &lc);
  cg_loop_no_unroll(e, &lc);
  LLVMValueRef opix = cg_add(e, cg_mul(e, oy, cg_i64(e, g->wd->outw)), ox0);
  for (int i = 0; i < mr; i++) {
    LLVMValueRef row = cg_add(e, cg_mul(e, cg_add(e, m0, cg_i64(e, i)), cg_i64(e, g->ldy)), opix);
    for (int j = 0; j < nv; j++) {
      cg_vstore_first(e, g->Y, cg_add(e, row, cg_i64(e, v[j].dpix)), cg_var_get(e, acc[i][j]), v[j].count);
    }
  }
}

/* Output rows per pixel tile when a row is one vector: two, or four with
 * 32 vector registers (fewer output channels per tile, see
 * cg_direct_conv_emit), which loads each channel's weight once per four
 * rows instead of two (at most 'rows'). */
static int direct_row_vectors(int64_t rows) {
  int nv = cg_host_vector_floats() >= 16 ? 4 : 2;
  return rows < nv ? (int)rows : nv;
}

/* All pixel tiles of 'rows' output rows for the channel tile at m0: pairs
 * of vectors along a row, or groups of rows (direct_row_vectors) when a
 * row is one vector. */
static void direct_pixels(cg_emit *e, const direct_args *g, LLVMValueRef m0, int mr, int64_t rows) {
  int L = g->lanes;
  int64_t ow = g->wd->outw, nfv = ow / L, tail = ow % L, nvr = nfv + (tail > 0);
  if (nvr >= 2) {
    cg_loop ly;
    LLVMValueRef oy = cg_loop_begin(e, &ly, cg_i64(e, 0), cg_i64(e, rows), 1);
    int64_t npairs = nfv / 2;
    if (npairs > 0) {
      vec_at v[2] = {{0, 0, L}, {L, L, L}};
      cg_loop lx;
      LLVMValueRef ox0 = cg_loop_begin(e, &lx, cg_i64(e, 0), cg_i64(e, npairs * 2 * L), 2 * L);
      direct_tile(e, g, m0, oy, ox0, mr, 2, v);
      cg_loop_end(e, &lx);
    }
    int left = (int)(nfv - 2 * npairs), nv = left + (tail > 0);
    if (nv > 0) {
      vec_at v[2] = {{0, 0, left ? L : (int)tail}, {L, L, (int)tail}};
      direct_tile(e, g, m0, oy, cg_i64(e, npairs * 2 * L), mr, nv, v);
    }
    cg_loop_end(e, &ly);
  } else {
    int nv = direct_row_vectors(rows);
    vec_at v[MAX_NV];
    for (int j = 0; j < nv; j++) v[j] = (vec_at){j * ow, j * g->wd->sh * g->pg.rs, (int)ow};
    int64_t groups = rows / nv;
    if (groups > 0) {
      cg_loop ly;
      LLVMValueRef oy = cg_loop_begin(e, &ly, cg_i64(e, 0), cg_i64(e, groups * nv), nv);
      direct_tile(e, g, m0, oy, cg_i64(e, 0), mr, nv, v);
      cg_loop_end(e, &ly);
    }
    if (rows % nv) direct_tile(e, g, m0, cg_i64(e, groups * nv), cg_i64(e, 0), mr, (int)(rows % nv), v);
  }
}

/* Channel tiles [m, m + count*mr) of mr channels each. */
static void direct_mtiles(cg_emit *e, const direct_args *g, int64_t m, int64_t count, int mr, int64_t rows) {
  if (count <= 0 || mr <= 0) return;
  if (count == 1) {
    direct_pixels(e, g, cg_i64(e, m), mr, rows);
    return;
  }
  cg_loop lm;
  LLVMValueRef m0 = cg_loop_begin(e, &lm, cg_i64(e, m), cg_i64(e, m + count * mr), mr);
  direct_pixels(e, g, m0, mr, rows);
  cg_loop_end(e, &lm);
}

/* 1 if a convolution with M output channels (per group) and window 'wd'
 * takes row tiles: with one or two output channels (the spatial
 * attention's 7x7 map) a channel tile gets one or two FMAs per loaded
 * input vector and so is bound by the loads, many of which straddle cache
 * lines. A row tile instead shares each loaded input vector among the
 * window rows that read it. Stride 1 along the rows only (where output
 * rows share input rows). */
static int rows_tiled(const cg_window *wd, int64_t M) {
  return M <= ROW_M && wd->sh == 1 && wd->kh >= 3 && wd->kh <= ROW_KH && wd->kw <= ROW_KH;
}

/* One row tile: output rows [oy, oy + R) of output channel m, the vector
 * v at column ox0, summed over input channels, window columns and window
 * rows in that order. Per input channel and window column, the column's
 * weights are loaded once (they stay in registers) and each input vector
 * the tile reads is loaded once, then multiplied into every output row
 * whose window covers it. */
static void direct_row_tile(cg_emit *e, const direct_args *g, int64_t m, LLVMValueRef oy, LLVMValueRef ox0, int R,
                            vec_at v) {
  const cg_window *wd = g->wd;
  LLVMTypeRef vt = cg_vec_type(e, g->dt, g->lanes);
  LLVMValueRef acc[ROW_R];
  for (int r = 0; r < R; r++) acc[r] = cg_var_new(e, vt, LLVMConstNull(vt));
  LLVMValueRef pix = cg_add(e, cg_add(e, cg_mul(e, oy, cg_i64(e, g->pg.rs)), ox0), cg_i64(e, v.dbuf));
  cg_loop lc;
  LLVMValueRef c = cg_loop_begin(e, &lc, cg_i64(e, 0), cg_i64(e, g->nc), 1);
  LLVMValueRef bbase = cg_add(e, cg_mul(e, c, cg_i64(e, g->pg.plane)), pix);
  LLVMValueRef abase = cg_add(e, cg_mul(e, c, cg_i64(e, g->khw)), cg_i64(e, m * g->am));
  int64_t span = (R - 1) + (wd->kh - 1) * wd->dh; /* last input row of the tile */
  for (int64_t kx = 0; kx < wd->kw; kx++) {
    LLVMValueRef w[ROW_KH];
    for (int64_t ky = 0; ky < wd->kh; ky++)
      w[ky] = cg_splat(e, cg_load(e, g->A, cg_add(e, abase, cg_i64(e, ky * wd->kw + kx))), g->lanes);
    int64_t xoff = tap_offset(wd, &g->pg, kx);
    for (int64_t ro = 0; ro <= span; ro++) {
      LLVMValueRef sv = cg_vload(e, g->P, cg_add(e, bbase, cg_i64(e, ro * g->pg.rs + xoff)), g->lanes);
      for (int r = 0; r < R; r++) {
        int64_t d = ro - r;
        if (d >= 0 && d % wd->dh == 0 && d / wd->dh < wd->kh)
          cg_var_set(e, acc[r], cg_fma(e, w[d / wd->dh], sv, cg_var_get(e, acc[r])));
      }
    }
  }
  cg_loop_end(e, &lc);
  cg_loop_no_unroll(e, &lc);
  for (int r = 0; r < R; r++) {
    LLVMValueRef row = cg_mul(e, cg_add(e, oy, cg_i64(e, r)), cg_i64(e, wd->outw));
    LLVMValueRef idx = cg_add(e, cg_add(e, row, ox0), cg_i64(e, m * g->ldy + v.dpix));
    cg_vstore_first(e, g->Y, idx, cg_var_get(e, acc[r]), v.count);
  }
}

/* The row tiles of output rows [0, rows) of channel m at column ox0 + v:
 * as many rows per tile as the registers hold next to a window column's
 * weights, evened out over 'rows'. */
static void direct_row_rows(cg_emit *e, const direct_args *g, int64_t m, LLVMValueRef ox0, vec_at v, int64_t rows) {
  int rmax = (cg_host_vector_floats() >= 16 ? 32 : 16) - (int)g->wd->kh - 1;
  if (rmax > ROW_R) rmax = ROW_R;
  int64_t tiles = (rows + rmax - 1) / rmax;
  int R = (int)((rows + tiles - 1) / tiles);
  int64_t nfull = rows / R, rem = rows % R;
  if (nfull == 1) {
    direct_row_tile(e, g, m, cg_i64(e, 0), ox0, R, v);
  } else if (nfull > 1) {
    cg_loop ly;
    LLVMValueRef oy = cg_loop_begin(e, &ly, cg_i64(e, 0), cg_i64(e, nfull * R), R);
    direct_row_tile(e, g, m, oy, ox0, R, v);
    cg_loop_end(e, &ly);
  }
  if (rem) direct_row_tile(e, g, m, cg_i64(e, nfull * R), ox0, (int)rem, v);
}

/* Every row tile of the block's M output channels: one vector of a row
 * wide, the row's whole vectors then its tail. */
static void direct_row_pixels(cg_emit *e, const direct_args *g, int64_t M, int64_t rows) {
  int L = g->lanes;
  int64_t ow = g->wd->outw, nfv = ow / L, tail = ow % L;
  for (int64_t m = 0; m < M; m++) {
    if (nfv > 0) {
      cg_loop lx;
      LLVMValueRef ox0 = cg_loop_begin(e, &lx, cg_i64(e, 0), cg_i64(e, nfv * L), L);
      direct_row_rows(e, g, m, ox0, (vec_at){0, 0, L}, rows);
      cg_loop_end(e, &lx);
    }
    if (tail) direct_row_rows(e, g, m, cg_i64(e, nfv * L), (vec_at){0, 0, (int)tail}, rows);
  }
}

void cg_direct_conv_emit(cg_emit *e, ir_dtype dt, const cg_window *wd, LLVMValueRef X, int64_t nc,
                         LLVMValueRef oy0, int64_t rows, LLVMValueRef A, int64_t am, LLVMValueRef Y, int64_t ldy,
                         int64_t M, LLVMValueRef P) {
  direct_args g = {dt, cg_direct_lanes(wd, dt), wd, pad_of(wd, rows), A, P, Y, am, ldy, nc, wd->kh * wd->kw};
  fill_pad(e, wd, &g.pg, X, nc, oy0, NULL, P);
  if (rows_tiled(wd, M)) {
    direct_row_pixels(e, &g, M, rows);
    return;
  }
  /* accumulators: mr channels x 2 vectors (16 or 12 registers), or x
   * direct_row_vectors rows when a row is one vector (24 with four) */
  int wide = cg_host_vector_floats() >= 16, one = wd->outw <= g.lanes;
  int maxmr = !wide ? 6 : one && direct_row_vectors(rows) == 4 ? 6 : 8;
  int64_t tiles = (M + maxmr - 1) / maxmr;
  int hi = (int)((M + tiles - 1) / tiles);
  int64_t nhi = M - (int64_t)(hi - 1) * tiles;
  direct_mtiles(e, &g, 0, nhi, hi, rows);
  direct_mtiles(e, &g, nhi * hi, tiles - nhi, hi - 1, rows);
}

/* Operands of a direct weight-gradient emission. */
typedef struct {
  ir_dtype dt;
  int lanes;
  const cg_window *wd;
  pad_geom pg;
  LLVMValueRef DY, P, V;
  int64_t dy_img, ldy, dy_row, nc, khw, K, nimg, outh;
} ddot_args;

/* One dot tile: dy channels [m0, m0+mr) against the taps [t0, t0+nk) of
 * input channel c over every pixel of the nimg images; the lane sums are
 * added to V. */
static void ddot_tile(cg_emit *e, const ddot_args *g, LLVMValueRef m0, LLVMValueRef c, int64_t t0, int mr, int nk) {
  LLVMTypeRef vt = cg_vec_type(e, g->dt, g->lanes);
  int L = g->lanes;
  LLVMValueRef acc[MAX_MR][MAX_NK];
  for (int i = 0; i < mr; i++)
    for (int j = 0; j < nk; j++) acc[i][j] = cg_var_new(e, vt, LLVMConstNull(vt));
  int64_t ow = g->wd->outw, nfv = ow / L, tail = ow % L;
  LLVMValueRef cbase = cg_mul(e, c, cg_i64(e, g->pg.plane));
  cg_loop li, ly;
  LLVMValueRef img = cg_loop_begin(e, &li, cg_i64(e, 0), cg_i64(e, g->nimg), 1);
  LLVMValueRef oy = cg_loop_begin(e, &ly, cg_i64(e, 0), cg_i64(e, g->outh), 1);
  LLVMValueRef arow = cg_add(e, cg_add(e, cg_mul(e, img, cg_i64(e, g->dy_img)), cg_mul(e, oy, cg_i64(e, g->dy_row))),
                             cg_mul(e, m0, cg_i64(e, g->ldy)));
  LLVMValueRef brow = cg_add(e, cg_add(e, cg_mul(e, img, cg_i64(e, g->nc * g->pg.plane)), cbase),
                             cg_mul(e, oy, cg_i64(e, g->wd->sh * g->pg.rs)));
  for (int part = 0; part < 2; part++) {
    if (part == 0 && nfv == 0) continue;
    if (part == 1 && tail == 0) continue;
    cg_loop lx;
    LLVMValueRef x = cg_i64(e, nfv * L);
    if (part == 0) x = cg_loop_begin(e, &lx, cg_i64(e, 0), cg_i64(e, nfv * L), L);
    int count = part == 0 ? L : (int)tail;
    LLVMValueRef bv[MAX_NK];
    /* whole vectors from the buffer even in the tail (its slack covers
     * the overrun): the masked dy lanes are zero there */
    for (int j = 0; j < nk; j++) {
      LLVMValueRef idx = cg_add(e, brow, cg_add(e, x, cg_i64(e, tap_offset(g->wd, &g->pg, t0 + j))));
      bv[j] = cg_vload(e, g->P, idx, L);
    }
    for (int i = 0; i < mr; i++) {
      LLVMValueRef idx = cg_add(e, arow, cg_add(e, x, cg_i64(e, i * g->ldy)));
      LLVMValueRef a = cg_vload_first(e, g->DY, idx, L, g->dy_row > ow ? L : count);
      for (int j = 0; j < nk; j++) cg_var_set(e, acc[i][j], cg_fma(e, a, bv[j], cg_var_get(e, acc[i][j])));
    }
    if (part == 0) cg_loop_end(e, &lx);
  }
  cg_loop_end(e, &ly);
  cg_loop_end(e, &li);
  LLVMValueRef col = cg_add(e, cg_mul(e, c, cg_i64(e, g->khw)), cg_mul(e, m0, cg_i64(e, g->K)));
  for (int i = 0; i < mr; i++)
    for (int j = 0; j < nk; j++) {
      LLVMValueRef k = cg_add(e, col, cg_i64(e, i * g->K + t0 + j));
      LLVMValueRef idx = cg_mul(e, k, cg_i64(e, L));
      LLVMValueRef old = cg_vload(e, g->V, idx, L);
      cg_vstore(e, g->V, idx, LLVMBuildFAdd(e->b, old, cg_var_get(e, acc[i][j]), ""));
    }
}

/* Taps per dot tile for a window of khw taps. */
static int dot_nk(int64_t khw) {
  int nk = khw % 3 == 0 ? 3 : khw % 2 == 0 ? 2 : 3;
  return nk > khw ? (int)khw : nk;
}

int64_t cg_direct_dot_row(const cg_window *wd, ir_dtype dt) {
  int64_t L = cg_direct_lanes(wd, dt);
  return (wd->outw + L - 1) / L * L;
}

/* Zero rows above and below each dy plane copy of a row-tiled weight
 * gradient: the farthest a window row reaches. */
static int64_t dot_zero_rows(const cg_window *wd) { return (wd->kh - 1) * wd->dh; }

/* Element offset in P of the dy copies of a row-tiled weight gradient
 * (after the padded input planes, at a whole vector of 16 floats). */
static int64_t dot_dy_offset(const cg_window *wd, int64_t nc, int64_t outh, int64_t nimg) {
  return (nimg * cg_direct_buffer_elems(wd, nc, outh) + 15) / 16 * 16;
}

int64_t cg_direct_dot_buffer_elems(const cg_window *wd, ir_dtype dt, int64_t nc, int64_t outh, int64_t nimg,
                                   int64_t M) {
  if (rows_tiled(wd, M))
    return dot_dy_offset(wd, nc, outh, nimg) + nimg * M * (outh + 2 * dot_zero_rows(wd)) * cg_direct_dot_row(wd, dt);
  return nimg * (cg_direct_buffer_elems(wd, nc, outh) + M * outh * cg_direct_dot_row(wd, dt));
}

/* Copies the M dy planes (channel stride ldy, image stride dy_img) of the
 * nimg images into Q with rows of g->dy_row elements, zero after the outw
 * live ones, 'zr' zero rows above and below each plane. */
static void copy_dy(cg_emit *e, const ddot_args *g, LLVMValueRef DY, int64_t dy_img, int64_t ldy, int64_t M,
                    int64_t zr, LLVMValueRef Q) {
  int L = g->lanes;
  int64_t ow = g->wd->outw, nfv = ow / L, tail = ow % L;
  cg_loop li, lr;
  LLVMValueRef img = cg_loop_begin(e, &li, cg_i64(e, 0), cg_i64(e, g->nimg), 1);
  LLVMValueRef r = cg_loop_begin(e, &lr, cg_i64(e, 0), cg_i64(e, M * g->outh), 1);
  LLVMValueRef m = LLVMBuildSDiv(e->b, r, cg_i64(e, g->outh), "");
  LLVMValueRef oy = LLVMBuildSRem(e->b, r, cg_i64(e, g->outh), "");
  LLVMValueRef src = cg_add(e, cg_add(e, cg_mul(e, img, cg_i64(e, dy_img)), cg_mul(e, m, cg_i64(e, ldy))),
                            cg_mul(e, oy, cg_i64(e, ow)));
  LLVMValueRef dst = cg_add(e, cg_add(e, cg_mul(e, img, cg_i64(e, g->dy_img)), cg_mul(e, m, cg_i64(e, g->ldy))),
                            cg_mul(e, cg_add(e, oy, cg_i64(e, zr)), cg_i64(e, g->dy_row)));
  for (int64_t v = 0; v < nfv; v++)
    cg_vstore(e, Q, cg_add(e, dst, cg_i64(e, v * L)), cg_vload(e, DY, cg_add(e, src, cg_i64(e, v * L)), L));
  if (tail)
    cg_vstore(e, Q, cg_add(e, dst, cg_i64(e, nfv * L)),
              cg_vload_first(e, DY, cg_add(e, src, cg_i64(e, nfv * L)), L, (int)tail));
  cg_loop_end(e, &lr);
  if (zr > 0) {
    cg_loop lm;
    LLVMValueRef mm = cg_loop_begin(e, &lm, cg_i64(e, 0), cg_i64(e, M), 1);
    LLVMValueRef plane = cg_add(e, cg_mul(e, img, cg_i64(e, g->dy_img)), cg_mul(e, mm, cg_i64(e, g->ldy)));
    cg_zeros_emit(e, Q, plane, 0, zr * g->dy_row);
    cg_zeros_emit(e, Q, plane, (zr + g->outh) * g->dy_row, (2 * zr + g->outh) * g->dy_row);
    cg_loop_end(e, &lm);
  }
  cg_loop_end(e, &li);
}

/* One row dot tile of the weight gradient: the taps (ky0 + a, kx0 + b),
 * a < ny, b < nx, of input channel c against dy channel m, over every
 * pixel of the nimg images, added to V. Every input row is read once per
 * tile: its vectors at the nx column shifts are dotted with the ny dy rows
 * that pair with it (one per window row; the zero rows of the dy copy
 * stand in past the edges), so a tile of ny*nx sums loads ny + nx vectors
 * per column step. */
static void ddot_row_tile(cg_emit *e, const ddot_args *g, int64_t m, LLVMValueRef c, int64_t ky0, int ny, int64_t kx0,
                          int nx) {
  const cg_window *wd = g->wd;
  LLVMTypeRef vt = cg_vec_type(e, g->dt, g->lanes);
  int L = g->lanes;
  LLVMValueRef acc[MAX_NK][ROW_NX];
  for (int a = 0; a < ny; a++)
    for (int b = 0; b < nx; b++) acc[a][b] = cg_var_new(e, vt, LLVMConstNull(vt));
  int64_t zr = dot_zero_rows(wd), r0 = ky0 * wd->dh, nr = g->outh + (ny - 1) * wd->dh;
  cg_loop li, lr, lx;
  LLVMValueRef img = cg_loop_begin(e, &li, cg_i64(e, 0), cg_i64(e, g->nimg), 1);
  LLVMValueRef r = cg_loop_begin(e, &lr, cg_i64(e, r0), cg_i64(e, r0 + nr), 1);
  LLVMValueRef brow = cg_add(e, cg_mul(e, cg_add(e, cg_mul(e, img, cg_i64(e, g->nc)), c), cg_i64(e, g->pg.plane)),
                             cg_mul(e, r, cg_i64(e, g->pg.rs)));
  /* dy row oy = r - (ky0 + a)*dh sits at row zr + oy of its copy */
  LLVMValueRef dbase = cg_add(e, cg_add(e, cg_mul(e, img, cg_i64(e, g->dy_img)), cg_i64(e, m * g->ldy)),
                              cg_mul(e, cg_add(e, r, cg_i64(e, zr - r0)), cg_i64(e, g->dy_row)));
  LLVMValueRef x = cg_loop_begin(e, &lx, cg_i64(e, 0), cg_i64(e, g->dy_row), L);
  LLVMValueRef dv[MAX_NK];
  for (int a = 0; a < ny; a++)
    dv[a] = cg_vload(e, g->DY, cg_add(e, dbase, cg_add(e, x, cg_i64(e, -(int64_t)a * wd->dh * g->dy_row))), L);
  for (int b = 0; b < nx; b++) {
    LLVMValueRef sv = cg_vload(e, g->P, cg_add(e, brow, cg_add(e, x, cg_i64(e, tap_offset(wd, &g->pg, kx0 + b)))), L);
    for (int a = 0; a < ny; a++) cg_var_set(e, acc[a][b], cg_fma(e, dv[a], sv, cg_var_get(e, acc[a][b])));
  }
  cg_loop_end(e, &lx);
  cg_loop_end(e, &lr);
  cg_loop_end(e, &li);
  LLVMValueRef col = cg_add(e, cg_mul(e, c, cg_i64(e, g->khw)), cg_i64(e, m * g->K));
  for (int a = 0; a < ny; a++)
    for (int b = 0; b < nx; b++) {
      LLVMValueRef k = cg_add(e, col, cg_i64(e, (ky0 + a) * wd->kw + kx0 + b));
      LLVMValueRef idx = cg_mul(e, k, cg_i64(e, L));
      cg_vstore(e, g->V, idx, LLVMBuildFAdd(e->b, cg_vload(e, g->V, idx, L), cg_var_get(e, acc[a][b]), ""));
    }
}

/* Splits n into the fewest near-equal blocks of at most 'most'; returns
 * the block count and sets the sizes. */
static int split_even(int64_t n, int most, int *sizes) {
  int k = (int)((n + most - 1) / most);
  for (int i = 0; i < k; i++) sizes[i] = (int)(n / k + (i < n % k));
  return k;
}

/* The row-tiled weight gradient (rows_tiled): per dy channel and input
 * channel, the window in tiles of up to MAX_NK rows by ROW_NX columns. */
static void ddot_rows(cg_emit *e, const ddot_args *g, int64_t M) {
  int wide = cg_host_vector_floats() >= 16;
  int ys[ROW_KH], xs[ROW_KH];
  int ny = split_even(g->wd->kh, wide ? 4 : 3, ys), nx = split_even(g->wd->kw, wide ? ROW_NX : 4, xs);
  for (int64_t m = 0; m < M; m++) {
    cg_loop lc;
    LLVMValueRef c = cg_loop_begin(e, &lc, cg_i64(e, 0), cg_i64(e, g->nc), 1);
    for (int a = 0, ky0 = 0; a < ny; ky0 += ys[a++])
      for (int b = 0, kx0 = 0; b < nx; kx0 += xs[b++]) ddot_row_tile(e, g, m, c, ky0, ys[a], kx0, xs[b]);
    cg_loop_end(e, &lc);
    cg_loop_no_unroll(e, &lc);
  }
}

int cg_direct_dot_rows(int64_t M, int64_t khw, int wide) {
  int maxacc = wide ? 24 : 12, nk = dot_nk(khw), mr = maxacc / nk;
  if (mr > MAX_MR) mr = MAX_MR;
  return mr > M ? (int)M : mr;
}

void cg_direct_dot_emit(cg_emit *e, ir_dtype dt, const cg_window *wd, LLVMValueRef X, int64_t x_img, int64_t nc,
                        int64_t nimg, int64_t outh, LLVMValueRef DY, int64_t dy_img, int64_t ldy, LLVMValueRef V,
                        int64_t M, LLVMValueRef P) {
  ddot_args g = {dt, cg_direct_lanes(wd, dt), wd, pad_of(wd, outh), DY, P, V, dy_img, ldy, wd->outw, nc,
                 wd->kh * wd->kw, 0, nimg, outh};
  g.K = nc * g.khw;
  if (rows_tiled(wd, M)) {
    int64_t zr = dot_zero_rows(wd);
    g.dy_row = cg_direct_dot_row(wd, dt);
    g.ldy = (outh + 2 * zr) * g.dy_row;
    g.dy_img = M * g.ldy;
    g.DY = cg_gep(e, P, cg_i64(e, dot_dy_offset(wd, nc, outh, nimg)));
    copy_dy(e, &g, DY, dy_img, ldy, M, zr, g.DY);
  } else if (wd->outw % g.lanes) {
    /* rows with a tail: whole-vector dy rows, copied once and read for
     * every channel and tap tile, instead of masked loads */
    g.dy_row = cg_direct_dot_row(wd, dt);
    g.ldy = outh * g.dy_row;
    g.dy_img = M * g.ldy;
    g.DY = cg_gep(e, P, cg_i64(e, nimg * cg_direct_buffer_elems(wd, nc, outh)));
    copy_dy(e, &g, DY, dy_img, ldy, M, 0, g.DY);
  }
  cg_loop li, lc;
  LLVMValueRef img = cg_loop_begin(e, &li, cg_i64(e, 0), cg_i64(e, nimg), 1);
  fill_pad(e, wd, &g.pg, cg_gep(e, X, cg_mul(e, img, cg_i64(e, x_img))), nc, cg_i64(e, 0), NULL,
           cg_gep(e, P, cg_mul(e, img, cg_i64(e, nc * g.pg.plane))));
  cg_loop_end(e, &li);
  if (rows_tiled(wd, M)) {
    ddot_rows(e, &g, M);
    return;
  }
  /* tiles of mr dy channels; a tile's dy planes stay in L1 over every
   * channel and tap tile, the padded input (all tiles') in L2 */
  int nk = dot_nk(g.khw), mr = cg_direct_dot_rows(M, g.khw, cg_host_vector_floats() >= 16);
  int64_t ntiles = M / mr, rest = M % mr;
  for (int part = 0; part < 2; part++) {
    int rows = part == 0 ? mr : (int)rest;
    if (rows == 0 || (part == 0 && ntiles == 0)) continue;
    cg_loop lm;
    LLVMValueRef m0 = cg_i64(e, ntiles * mr);
    if (part == 0) m0 = cg_loop_begin(e, &lm, cg_i64(e, 0), cg_i64(e, ntiles * mr), mr);
    LLVMValueRef c = cg_loop_begin(e, &lc, cg_i64(e, 0), cg_i64(e, nc), 1);
    for (int64_t t0 = 0; t0 < g.khw; t0 += nk)
      ddot_tile(e, &g, m0, c, t0, rows, g.khw - t0 < nk ? (int)(g.khw - t0) : nk);
    cg_loop_end(e, &lc);
    cg_loop_no_unroll(e, &lc);
    if (part == 0) cg_loop_end(e, &lm);
  }
}
