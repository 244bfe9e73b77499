/* Winograd F(2x2, 3x3) convolution (Lavin and Gray, "Fast Algorithms for
 * Convolutional Neural Networks", 2016) for 3x3 stride-1 windows: each
 * 2x2 block of outputs ("tile") is A^T [(G g G^T) . (B^T d B)] A, where d
 * is the tile's 4x4 input patch and g a 3x3 filter. Per block of tiles
 * the kernel copies the padded input rows once (cg_direct_fill_emit, read
 * as a 4x4 stride-2 window over the tile grid), transforms them into 16
 * planes V[p][c][tile], runs one GEMM per position p (cg_gemm_emit: M[p] =
 * U[p] x V[p], U the transformed weights), and transforms M back into the
 * output: 16 multiply-adds per tile and channel pair instead of 36. The
 * transforms are additions only, so results differ from the direct sum by
 * rounding. f32 only. The weight gradient uses the same transforms: dw
 * = G^T [sum over tiles of (A dy A^T) . (B^T d B)] G, one accumulating
 * GEMM per position over the tiles (cg_wino_gw_sums_emit), the last
 * transform once the sums of every part are in (cg_wino_gw_finish_emit). Each block
 * prefetches the next block's input (and output) rows: they are short runs
 * of many channel planes, which the hardware prefetchers do not follow. */
#include "cg_gemm.h"

enum { POS = 16, SLACK = 16 };

/* Fewest input and output channels that take this path: below them the
 * transforms cost more than the multiply-adds they save. */
enum { MIN_CHANNELS = 16 };

/* The 4x4 stride-2 window over the tile grid of 'wd': input patch of tile
 * (ty, tx) starts at row 2*ty + oh, column 2*tx + ow. */
static cg_window tile_window(const cg_window *wd) {
  return (cg_window){wd->h, wd->w, 4, 4, 2, 2, wd->oh, wd->ow, 1, 1, wd->outw / 2};
}

int cg_wino_suits(const cg_window *wd, ir_dtype dt, int64_t nc, int64_t M, int64_t outh) {
  return dt == IR_F32 && wd->kh == 3 && wd->kw == 3 && wd->sh == 1 && wd->sw == 1 && wd->dh == 1 &&
         wd->dw == 1 && outh % 2 == 0 && wd->outw % 2 == 0 && nc >= MIN_CHANNELS && M >= MIN_CHANNELS;
}

static int64_t round16(int64_t x) { return (x + 15) / 16 * 16; }

/* The block of 'tr' tile rows of one image (tr < th) or of 'k' whole images. */
static cg_wino_block block(int64_t tw, int64_t tr, int64_t k) {
  cg_wino_block b = {k, 2 * tr, k * tr * tw, 0};
  b.ldt = round16(b.tiles);
  return b;
}

/* The candidate block after 'b' by size (tile rows dividing th, then whole
 * images dividing n), or 0 after the last. */
static int next_candidate(int64_t tw, int64_t th, int64_t n, cg_wino_block *b) {
  if (b->nimg == 1)
    for (int64_t tr = b->rows / 2 + 1; tr <= th; tr++)
      if (th % tr == 0) {
        *b = block(tw, tr, 1);
        return 1;
      }
  for (int64_t k = b->nimg + 1; k <= n; k++)
    if (n % k == 0) {
      *b = block(tw, th, k);
      return 1;
    }
  return 0;
}

cg_wino_block cg_wino_block_of(const cg_window *wd, int64_t nc, int64_t M, int64_t n, int64_t outh, int lanes,
                               int64_t budget) {
  int64_t tw = wd->outw / 2, th = outh / 2, per_tile = POS * (nc + M) * 4;
  cg_wino_block best = block(tw, 1, 1), b = best;
  while (next_candidate(tw, th, n, &b)) {
    if (best.tiles >= lanes && b.tiles * per_tile > budget) return best;
    best = b;
  }
  return best;
}

/* How far 'tiles' is from 'target', as a ratio (1: equal). */
static double off_target(int64_t tiles, int64_t target) {
  return tiles > target ? (double)tiles / (double)target : (double)target / (double)tiles;
}

cg_wino_block cg_wino_gw_block_of(const cg_window *wd, int64_t n, int64_t outh, int lanes, int64_t target) {
  int64_t tw = wd->outw / 2, th = outh / 2;
  cg_wino_block b = block(tw, 1, 1), best = b;
  while (next_candidate(tw, th, n, &b)) {
    if (best.tiles < lanes) best = b; /* candidates grow: the larger one */
    else if (b.tiles >= lanes && off_target(b.tiles, target) < off_target(best.tiles, target)) best = b;
  }
  return best;
}

int64_t cg_wino_weight_elems(int64_t nc, int64_t M) { return POS * M * nc; }

/* Scratch pieces of a block: padded input rows, then V, then M. */
static int64_t pad_elems(const cg_window *wd, int64_t nc, int64_t rows) {
  cg_window t = tile_window(wd);
  return round16(cg_direct_buffer_elems(&t, nc, rows / 2));
}
static int64_t v_elems(int64_t nc, const cg_wino_block *b) { return round16(POS * nc * b->ldt + SLACK); }

int64_t cg_wino_buffer_elems(const cg_window *wd, int64_t nc, int64_t M, const cg_wino_block *b) {
  return pad_elems(wd, nc, b->rows) + v_elems(nc, b) + round16(POS * M * b->ldt + SLACK);
}

static LLVMValueRef fadd(cg_emit *e, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFAdd(e->b, a, b, ""); }
static LLVMValueRef fsub(cg_emit *e, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFSub(e->b, a, b, ""); }

/* u = G g G^T for one 3x3 filter g (row-major), u row-major 4x4:
 * G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]. */
static void filter_transform(cg_emit *e, ir_dtype dt, LLVMValueRef g[9], LLVMValueRef u[16]) {
  LLVMValueRef half = cg_const(e, dt, 0.5), t[4][3];
  for (int j = 0; j < 3; j++) {
    LLVMValueRef g0 = g[j], g1 = g[3 + j], g2 = g[6 + j];
    LLVMValueRef s = LLVMBuildFMul(e->b, fadd(e, g0, g2), half, ""), h1 = LLVMBuildFMul(e->b, g1, half, "");
    t[0][j] = g0;
    t[1][j] = fadd(e, s, h1);
    t[2][j] = fsub(e, s, h1);
    t[3][j] = g2;
  }
  for (int i = 0; i < 4; i++) {
    LLVMValueRef s = LLVMBuildFMul(e->b, fadd(e, t[i][0], t[i][2]), half, "");
    LLVMValueRef h1 = LLVMBuildFMul(e->b, t[i][1], half, "");
    u[i * 4 + 0] = t[i][0];
    u[i * 4 + 1] = fadd(e, s, h1);
    u[i * 4 + 2] = fsub(e, s, h1);
    u[i * 4 + 3] = t[i][2];
  }
}

void cg_wino_weights_emit(cg_emit *e, ir_dtype dt, LLVMValueRef A, int64_t am, int64_t nc, int64_t M,
                          LLVMValueRef U) {
  cg_loop lm, lc;
  LLVMValueRef m = cg_loop_begin(e, &lm, cg_i64(e, 0), cg_i64(e, M), 1);
  LLVMValueRef c = cg_loop_begin(e, &lc, cg_i64(e, 0), cg_i64(e, nc), 1);
  LLVMValueRef src = cg_add(e, cg_mul(e, m, cg_i64(e, am)), cg_mul(e, c, cg_i64(e, 9))), g[9], u[16];
  for (int k = 0; k < 9; k++) g[k] = cg_load(e, A, cg_add(e, src, cg_i64(e, k)));
  filter_transform(e, dt, g, u);
  LLVMValueRef dst = cg_add(e, cg_mul(e, m, cg_i64(e, nc)), c);
  for (int p = 0; p < POS; p++) cg_store(e, U, cg_add(e, dst, cg_i64(e, p * M * nc)), u[p]);
  cg_loop_end(e, &lc);
  cg_loop_end(e, &lm);
}

/* v = B^T d B for a 4x4 patch d (vectors over tiles), in place:
 * B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]. */
static void input_transform(cg_emit *e, LLVMValueRef d[16]) {
  LLVMValueRef t[16];
  for (int i = 0; i < 4; i++) {
    LLVMValueRef *r = d + 4 * i;
    t[4 * i + 0] = fsub(e, r[0], r[2]);
    t[4 * i + 1] = fadd(e, r[1], r[2]);
    t[4 * i + 2] = fsub(e, r[2], r[1]);
    t[4 * i + 3] = fsub(e, r[1], r[3]);
  }
  for (int j = 0; j < 4; j++) {
    d[0 + j] = fsub(e, t[0 + j], t[8 + j]);
    d[4 + j] = fadd(e, t[4 + j], t[8 + j]);
    d[8 + j] = fsub(e, t[8 + j], t[4 + j]);
    d[12 + j] = fsub(e, t[4 + j], t[12 + j]);
  }
}

/* y = A^T m A for a 4x4 m (vectors over tiles): y[0..3] = the 2x2 outputs,
 * A^T = [1 1 1 0; 0 1 -1 -1]. */
static void output_transform(cg_emit *e, LLVMValueRef m[16], LLVMValueRef y[4]) {
  LLVMValueRef s[4][2];
  for (int i = 0; i < 4; i++) {
    LLVMValueRef *r = m + 4 * i;
    s[i][0] = fadd(e, fadd(e, r[0], r[1]), r[2]);
    s[i][1] = fsub(e, fsub(e, r[1], r[2]), r[3]);
  }
  for (int j = 0; j < 2; j++) {
    y[j] = fadd(e, fadd(e, s[0][j], s[1][j]), s[2][j]);
    y[2 + j] = fsub(e, fsub(e, s[1][j], s[2][j]), s[3][j]);
  }
}

/* Operands of one block emission. */
typedef struct {
  const cg_window *wd;
  cg_direct_layout pl;
  int lanes;          /* of the transforms' vectors along a tile row */
  int64_t tw, trows;  /* tiles per tile row, tile rows per image in the block */
  int64_t nc, M, ldt;
  LLVMValueRef P, V, Mb;
} wino_args;

/* Transforms the padded input of the block's image 'img' (its index
 * within the block) into V. */
static void inputs(cg_emit *e, const wino_args *a, LLVMValueRef img) {
  int L = a->lanes;
  cg_loop lc, ly;
  LLVMValueRef c = cg_loop_begin(e, &lc, cg_i64(e, 0), cg_i64(e, a->nc), 1);
  LLVMValueRef ty = cg_loop_begin(e, &ly, cg_i64(e, 0), cg_i64(e, a->trows), 1);
  LLVMValueRef src = cg_add(e, cg_mul(e, c, cg_i64(e, a->pl.plane)), cg_mul(e, ty, cg_i64(e, a->pl.row)));
  LLVMValueRef t = cg_add(e, cg_mul(e, img, cg_i64(e, a->trows * a->tw)), cg_mul(e, ty, cg_i64(e, a->tw)));
  LLVMValueRef dst = cg_add(e, cg_mul(e, c, cg_i64(e, a->ldt)), t);
  for (int64_t x0 = 0; x0 < a->tw; x0 += L) {
    int count = (int)(a->tw - x0 < L ? a->tw - x0 : L);
    LLVMValueRef d[16];
    for (int k = 0; k < 16; k++) d[k] = cg_vload(e, a->P, cg_add(e, src, cg_i64(e, x0 + a->pl.tap[k])), L);
    input_transform(e, d);
    for (int p = 0; p < POS; p++)
      cg_vstore_first(e, a->V, cg_add(e, dst, cg_i64(e, p * a->nc * a->ldt + x0)), d[p], count);
  }
  cg_loop_end(e, &ly);
  cg_loop_end(e, &lc);
}

/* Interleaves the lanes of a and b: a0 b0 a1 b1 ... */
static LLVMValueRef interleave(cg_emit *e, LLVMValueRef a, LLVMValueRef b, int L) {
  LLVMValueRef mask[64];
  for (int i = 0; i < 2 * L; i++) mask[i] = LLVMConstInt(e->t_i32, (unsigned long long)(i / 2 + (i % 2) * L), 0);
  return LLVMBuildShuffleVector(e->b, a, b, LLVMConstVector(mask, (unsigned)(2 * L)), "");
}

/* Transforms M of the block's image 'img' back into its output rows at Y
 * (channel 0, first row of the block; channel stride ldy). */
static void outputs(cg_emit *e, const wino_args *a, LLVMValueRef img, LLVMValueRef Y, int64_t ldy, LLVMValueRef pf) {
  int L = a->lanes;
  int64_t outw = a->wd->outw;
  cg_loop lm, ly;
  LLVMValueRef m = cg_loop_begin(e, &lm, cg_i64(e, 0), cg_i64(e, a->M), 1);
  LLVMValueRef ty = cg_loop_begin(e, &ly, cg_i64(e, 0), cg_i64(e, a->trows), 1);
  LLVMValueRef t = cg_add(e, cg_mul(e, img, cg_i64(e, a->trows * a->tw)), cg_mul(e, ty, cg_i64(e, a->tw)));
  LLVMValueRef src = cg_add(e, cg_mul(e, m, cg_i64(e, a->ldt)), t);
  LLVMValueRef row = cg_add(e, cg_mul(e, m, cg_i64(e, ldy)), cg_mul(e, ty, cg_i64(e, 2 * outw)));
  for (int64_t x0 = 0; x0 < a->tw; x0 += L) {
    int count = (int)(a->tw - x0 < L ? a->tw - x0 : L);
    LLVMValueRef mv[16], y[4];
    for (int p = 0; p < POS; p++)
      mv[p] = cg_vload_first(e, a->Mb, cg_add(e, src, cg_i64(e, p * a->M * a->ldt + x0)), L, count);
    output_transform(e, mv, y);
    LLVMValueRef at = cg_add(e, row, cg_i64(e, 2 * x0));
    cg_prefetch_row(e, Y, cg_add(e, at, pf), 2 * count, 1);
    cg_prefetch_row(e, Y, cg_add(e, cg_add(e, at, cg_i64(e, outw)), pf), 2 * count, 1);
    cg_vstore_first(e, Y, at, interleave(e, y[0], y[1], L), 2 * count);
    cg_vstore_first(e, Y, cg_add(e, at, cg_i64(e, outw)), interleave(e, y[2], y[3], L), 2 * count);
  }
  cg_loop_end(e, &ly);
  cg_loop_end(e, &lm);
}

/* Elements from the block at output row oy0 of 'rows' rows (of outh) to
 * the next block of b->nimg images: rows on, or the next images' first
 * rows; 'row' and 'img' elements per row and image. */
static LLVMValueRef next_block(cg_emit *e, LLVMValueRef oy0, int64_t rows, int64_t outh, int64_t nimg, int64_t row,
                               int64_t img) {
  LLVMValueRef last = LLVMBuildICmp(e->b, LLVMIntSGE, cg_add(e, oy0, cg_i64(e, rows)), cg_i64(e, outh), "");
  LLVMValueRef other = cg_sub(e, cg_i64(e, nimg * img), cg_mul(e, oy0, cg_i64(e, row)));
  return LLVMBuildSelect(e->b, last, other, cg_i64(e, rows * row), "");
}

void cg_wino_conv_emit(cg_emit *e, ir_dtype dt, const cg_window *wd, LLVMValueRef X, int64_t x_img, int64_t nc,
                       LLVMValueRef oy0, int64_t outh, const cg_wino_block *b, int64_t rows, LLVMValueRef U,
                       LLVMValueRef Y, int64_t y_img, int64_t ldy, int64_t M, LLVMValueRef S) {
  wino_args a;
  cg_window twd = tile_window(wd);
  a.wd = wd;
  a.pl = cg_direct_layout_of(&twd, rows / 2);
  a.lanes = cg_direct_lanes(&twd, dt);
  a.tw = wd->outw / 2;
  a.trows = rows / 2;
  a.nc = nc;
  a.M = M;
  a.ldt = b->ldt;
  a.P = S;
  a.V = cg_gep(e, S, cg_i64(e, pad_elems(wd, nc, rows)));
  a.Mb = cg_gep(e, a.V, cg_i64(e, v_elems(nc, b)));
  LLVMValueRef toy0 = LLVMBuildSDiv(e->b, oy0, cg_i64(e, 2), "");
  LLVMValueRef xpf = next_block(e, oy0, rows, outh, b->nimg, wd->w, x_img);
  LLVMValueRef ypf = next_block(e, oy0, rows, outh, b->nimg, wd->outw, y_img);
  cg_loop li, lp, lo;
  LLVMValueRef img = cg_loop_begin(e, &li, cg_i64(e, 0), cg_i64(e, b->nimg), 1);
  cg_direct_fill_emit(e, &twd, cg_gep(e, X, cg_mul(e, img, cg_i64(e, x_img))), nc, toy0, a.trows, xpf, a.P);
  inputs(e, &a, img);
  cg_loop_end(e, &li);
  int64_t tiles = b->nimg * a.trows * a.tw;
  LLVMValueRef p = cg_loop_begin(e, &lp, cg_i64(e, 0), cg_i64(e, POS), 1);
  cg_gemm_emit(e, dt, cg_gep(e, U, cg_mul(e, p, cg_i64(e, M * nc))), nc, 1,
               cg_gep(e, a.V, cg_mul(e, p, cg_i64(e, nc * a.ldt))), a.ldt,
               cg_gep(e, a.Mb, cg_mul(e, p, cg_i64(e, M * a.ldt))), a.ldt, M, nc, tiles);
  cg_loop_end(e, &lp);
  cg_loop_no_unroll(e, &lp);
  LLVMValueRef io = cg_loop_begin(e, &lo, cg_i64(e, 0), cg_i64(e, b->nimg), 1);
  outputs(e, &a, io, cg_gep(e, Y, cg_mul(e, io, cg_i64(e, y_img))), ldy, ypf);
  cg_loop_end(e, &lo);
}

/* ---- the weight gradient: dw = G^T [sum over tiles of (A dy A^T) . (B^T d B)] G ---- */

/* Scratch pieces of a weight-gradient item: the block's padded input rows
 * with channels innermost (at 0), the transformed input VT[p][t][c] and the
 * transformed dy DYT[p][m][t]. */
typedef struct {
  int64_t vt, dyt, total; /* offsets */
  int64_t rp, wc; /* padded rows and columns of one image's block */
} gw_layout;

static gw_layout gw_layout_of(const cg_window *wd, int64_t nc, int64_t mb, const cg_wino_block *b) {
  gw_layout l;
  l.rp = b->rows + 2;
  l.wc = wd->outw + 2;
  l.vt = round16(l.rp * l.wc * nc + SLACK);
  l.dyt = l.vt + round16(POS * b->ldt * nc + SLACK);
  l.total = l.dyt + round16(POS * mb * b->ldt + SLACK);
  return l;
}

int64_t cg_wino_gw_sum_elems(int64_t nc, int64_t mb) { return round16(POS * mb * nc); }

int64_t cg_wino_gw_buffer_elems(const cg_window *wd, int64_t nc, int64_t mb, const cg_wino_block *b) {
  return gw_layout_of(wd, nc, mb, b).total;
}

/* Copies columns [j0, j0 + cols) of input row iy of the 'chans' channels
 * from c0 (each at most L) to P at rbase + j*nc + c: L rows loaded as
 * vectors and transposed in registers. */
static void fill_cl_block(cg_emit *e, ir_dtype dt, const cg_window *wd, LLVMValueRef X, int64_t nc, LLVMValueRef iy,
                          LLVMValueRef rbase, LLVMValueRef c0, int chans, LLVMValueRef j0, int cols, int L,
                          LLVMValueRef pf, LLVMValueRef P) {
  LLVMValueRef v[64];
  LLVMValueRef src = cg_add(e, cg_add(e, cg_mul(e, c0, cg_i64(e, wd->h * wd->w)), cg_mul(e, iy, cg_i64(e, wd->w))),
                            cg_add(e, j0, cg_i64(e, wd->ow)));
  LLVMValueRef ahead = cg_add(e, src, pf);
  for (int i = 0; i < chans; i++) cg_prefetch_row(e, X, cg_add(e, ahead, cg_i64(e, i * wd->h * wd->w)), cols, 0);
  for (int i = 0; i < L; i++)
    v[i] = i < chans ? cg_vload_first(e, X, cg_add(e, src, cg_i64(e, i * wd->h * wd->w)), L, cols)
                     : LLVMGetUndef(cg_vec_type(e, dt, L));
  cg_vtranspose(e, v, L);
  LLVMValueRef dst = cg_add(e, cg_add(e, rbase, cg_mul(e, j0, cg_i64(e, nc))), c0);
  for (int j = 0; j < cols; j++) cg_vstore_first(e, P, cg_add(e, dst, cg_i64(e, j * nc)), v[j], chans);
}

/* fill_cl_block over the columns [jf, jl) of row iy for the channels from c0. */
static void fill_cl_cols(cg_emit *e, ir_dtype dt, const cg_window *wd, LLVMValueRef X, int64_t nc, LLVMValueRef iy,
                         LLVMValueRef rbase, LLVMValueRef c0, int chans, int64_t jf, int64_t jl, int L,
                         LLVMValueRef pf, LLVMValueRef P) {
  int64_t full = (jl - jf) / L, rem = (jl - jf) % L;
  if (full > 0) {
    cg_loop lj;
    LLVMValueRef j0 = cg_loop_begin(e, &lj, cg_i64(e, jf), cg_i64(e, jf + full * L), L);
    fill_cl_block(e, dt, wd, X, nc, iy, rbase, c0, chans, j0, L, L, pf, P);
    cg_loop_end(e, &lj);
  }
  if (rem > 0) fill_cl_block(e, dt, wd, X, nc, iy, rbase, c0, chans, cg_i64(e, jf + full * L), (int)rem, L, pf, P);
}

/* P[(r*wc + j)*nc + c] = x[c][iy0 + r][ow + j] (0 outside the input) for
 * r < rp, j < wc, c < nc: the padded input rows of one block, channels
 * innermost; each row's elements pf further on prefetched. */
static void fill_cl(cg_emit *e, ir_dtype dt, const cg_window *wd, const gw_layout *l, LLVMValueRef X, int64_t nc,
                    LLVMValueRef iy0, int L, LLVMValueRef pf, LLVMValueRef P) {
  int64_t jf = -wd->ow > 0 ? -wd->ow : 0, jl = wd->w - wd->ow < l->wc ? wd->w - wd->ow : l->wc;
  if (jf > l->wc) jf = l->wc;
  if (jl < jf) jl = jf;
  int64_t cfull = nc / L, crem = nc % L;
  cg_loop lr, lc;
  LLVMValueRef r = cg_loop_begin(e, &lr, cg_i64(e, 0), cg_i64(e, l->rp), 1);
  LLVMValueRef iy = cg_add(e, iy0, r), rbase = cg_mul(e, r, cg_i64(e, l->wc * nc));
  LLVMValueRef in = LLVMBuildAnd(e->b, LLVMBuildICmp(e->b, LLVMIntSGE, iy, cg_i64(e, 0), ""),
                                 LLVMBuildICmp(e->b, LLVMIntSLT, iy, cg_i64(e, wd->h), ""), "");
  cg_if ci;
  cg_if_begin(e, &ci, in);
  cg_zeros_emit(e, P, rbase, 0, jf * nc);
  cg_zeros_emit(e, P, rbase, jl * nc, l->wc * nc);
  if (jf < jl) {
    if (cfull > 0) {
      LLVMValueRef c0 = cg_loop_begin(e, &lc, cg_i64(e, 0), cg_i64(e, cfull * L), L);
      fill_cl_cols(e, dt, wd, X, nc, iy, rbase, c0, L, jf, jl, L, pf, P);
      cg_loop_end(e, &lc);
    }
    if (crem > 0) fill_cl_cols(e, dt, wd, X, nc, iy, rbase, cg_i64(e, cfull * L), (int)crem, jf, jl, L, pf, P);
  }
  cg_if_else(e, &ci);
  cg_zeros_emit(e, P, rbase, 0, l->wc * nc);
  cg_if_end(e, &ci);
  cg_loop_end(e, &lr);
}

/* Operands of one weight-gradient item. */
typedef struct {
  const cg_window *wd;
  const cg_wino_block *b;
  gw_layout l;
  int lanes;   /* tile lanes of the dy transform */
  int clanes;  /* channel lanes of the input transform */
  int64_t tw, trows, nc, mb, ldy;
  LLVMValueRef dU, P, VT, DYT;
} gw_args;

/* VT[(p*ldt + t)*nc + c] = position p of B^T d B for the block's image
 * 'img' (index within the block), vectors along the channels. */
static void gw_inputs(cg_emit *e, const gw_args *a, LLVMValueRef img) {
  int L = a->clanes;
  int64_t nc = a->nc, wc = a->l.wc, ldt = a->b->ldt;
  cg_loop ly, lx;
  LLVMValueRef ty = cg_loop_begin(e, &ly, cg_i64(e, 0), cg_i64(e, a->trows), 1);
  LLVMValueRef tx = cg_loop_begin(e, &lx, cg_i64(e, 0), cg_i64(e, a->tw), 1);
  LLVMValueRef base = cg_mul(e, cg_add(e, cg_mul(e, ty, cg_i64(e, 2 * wc)), cg_mul(e, tx, cg_i64(e, 2))),
                             cg_i64(e, nc));
  LLVMValueRef t = cg_add(e, cg_mul(e, img, cg_i64(e, a->trows * a->tw)),
                          cg_add(e, cg_mul(e, ty, cg_i64(e, a->tw)), tx));
  LLVMValueRef dst = cg_mul(e, t, cg_i64(e, nc));
  for (int64_t c0 = 0; c0 < nc; c0 += L) {
    int count = (int)(nc - c0 < L ? nc - c0 : L);
    LLVMValueRef d[16];
    for (int i = 0; i < 4; i++)
      for (int j = 0; j < 4; j++)
        d[i * 4 + j] = cg_vload(e, a->P, cg_add(e, base, cg_i64(e, (i * wc + j) * nc + c0)), L);
    input_transform(e, d);
    for (int p = 0; p < POS; p++) cg_vstore_first(e, a->VT, cg_add(e, dst, cg_i64(e, p * ldt * nc + c0)), d[p], count);
  }
  cg_loop_end(e, &lx);
  cg_loop_end(e, &ly);
}

/* DYT[(p*mb + m)*ldt + t] = position p of A dy A^T for the block's image
 * 'img', dy of its channel m at DY + m*ldy (the block's first row); the
 * rows pf further on prefetched. */
static void gw_dys(cg_emit *e, const gw_args *a, LLVMValueRef img, LLVMValueRef DY, LLVMValueRef pf) {
  int L = a->lanes;
  int64_t outw = a->wd->outw, ldt = a->b->ldt;
  cg_loop lm, ly;
  LLVMValueRef m = cg_loop_begin(e, &lm, cg_i64(e, 0), cg_i64(e, a->mb), 1);
  LLVMValueRef ty = cg_loop_begin(e, &ly, cg_i64(e, 0), cg_i64(e, a->trows), 1);
  LLVMValueRef row = cg_add(e, cg_mul(e, m, cg_i64(e, a->ldy)), cg_mul(e, ty, cg_i64(e, 2 * outw)));
  LLVMValueRef t = cg_add(e, cg_mul(e, img, cg_i64(e, a->trows * a->tw)), cg_mul(e, ty, cg_i64(e, a->tw)));
  LLVMValueRef dst = cg_add(e, cg_mul(e, m, cg_i64(e, ldt)), t);
  for (int64_t x0 = 0; x0 < a->tw; x0 += L) {
    int count = (int)(a->tw - x0 < L ? a->tw - x0 : L);
    LLVMValueRef at = cg_add(e, row, cg_i64(e, 2 * x0));
    cg_prefetch_row(e, DY, cg_add(e, at, pf), 2 * count, 0);
    cg_prefetch_row(e, DY, cg_add(e, cg_add(e, at, cg_i64(e, outw)), pf), 2 * count, 0);
    LLVMValueRef v0 = cg_vload_first(e, DY, at, 2 * L, 2 * count);
    LLVMValueRef v1 = cg_vload_first(e, DY, cg_add(e, at, cg_i64(e, outw)), 2 * L, 2 * count);
    /* rows of A dy: (x_i, y_i), then each row -> (x, x + y, x - y, -y) */
    LLVMValueRef p0 = cg_every_other(e, v0, 0, L), q0 = cg_every_other(e, v0, 1, L);
    LLVMValueRef p1 = cg_every_other(e, v1, 0, L), q1 = cg_every_other(e, v1, 1, L);
    LLVMValueRef x[4] = {p0, fadd(e, p0, p1), fsub(e, p0, p1), LLVMBuildFNeg(e->b, p1, "")};
    LLVMValueRef y[4] = {q0, fadd(e, q0, q1), fsub(e, q0, q1), LLVMBuildFNeg(e->b, q1, "")};
    for (int i = 0; i < 4; i++) {
      LLVMValueRef z[4] = {x[i], fadd(e, x[i], y[i]), fsub(e, x[i], y[i]), LLVMBuildFNeg(e->b, y[i], "")};
      for (int j = 0; j < 4; j++)
        cg_vstore_first(e, a->DYT, cg_add(e, dst, cg_i64(e, (int64_t)(i * 4 + j) * a->mb * ldt + x0)), z[j], count);
    }
  }
  cg_loop_end(e, &ly);
  cg_loop_end(e, &lm);
}

/* w = G^T z G for the 16 sums z of one (m, c) (row-major 4x4), w 3x3. */
static void filter_gradient(cg_emit *e, ir_dtype dt, LLVMValueRef z[16], LLVMValueRef w[9]) {
  LLVMValueRef half = cg_const(e, dt, 0.5), t[3][4];
  for (int j = 0; j < 4; j++) {
    LLVMValueRef s = LLVMBuildFMul(e->b, fadd(e, z[4 + j], z[8 + j]), half, "");
    t[0][j] = fadd(e, z[j], s);
    t[1][j] = LLVMBuildFMul(e->b, fsub(e, z[4 + j], z[8 + j]), half, "");
    t[2][j] = fadd(e, s, z[12 + j]);
  }
  for (int i = 0; i < 3; i++) {
    LLVMValueRef s = LLVMBuildFMul(e->b, fadd(e, t[i][1], t[i][2]), half, "");
    w[i * 3 + 0] = fadd(e, t[i][0], s);
    w[i * 3 + 1] = LLVMBuildFMul(e->b, fsub(e, t[i][1], t[i][2]), half, "");
    w[i * 3 + 2] = fadd(e, s, t[i][3]);
  }
}

void cg_wino_gw_sums_emit(cg_emit *e, ir_dtype dt, const cg_window *wd, LLVMValueRef X, int64_t x_img, int64_t nc,
                          int64_t n, int64_t outh, const cg_wino_block *b, LLVMValueRef DY, int64_t dy_img,
                          int64_t ldy, int64_t mb, LLVMValueRef dU, LLVMValueRef S) {
  gw_args a;
  cg_window twd = tile_window(wd);
  a.wd = wd;
  a.b = b;
  a.l = gw_layout_of(wd, nc, mb, b);
  a.lanes = cg_direct_lanes(&twd, dt);
  a.clanes = cg_gemm_lanes(dt);
  a.tw = wd->outw / 2;
  a.trows = b->rows / 2;
  a.nc = nc;
  a.mb = mb;
  a.ldy = ldy;
  a.dU = dU;
  a.P = S;
  a.VT = cg_gep(e, S, cg_i64(e, a.l.vt));
  a.DYT = cg_gep(e, S, cg_i64(e, a.l.dyt));
  int64_t nblk = outh / b->rows, ldt = b->ldt;
  cg_zeros_emit(e, a.dU, cg_i64(e, 0), 0, POS * mb * nc);
  cg_loop lb, li, lp;
  /* blocks: images i0 .. i0 + nimg, rows oy0 .. oy0 + rows */
  LLVMValueRef blk = cg_loop_begin(e, &lb, cg_i64(e, 0), cg_i64(e, n / b->nimg * nblk), 1);
  LLVMValueRef i0 = cg_mul(e, LLVMBuildSDiv(e->b, blk, cg_i64(e, nblk), ""), cg_i64(e, b->nimg));
  LLVMValueRef oy0 = cg_mul(e, LLVMBuildSRem(e->b, blk, cg_i64(e, nblk), ""), cg_i64(e, b->rows));
  LLVMValueRef xpf = next_block(e, oy0, b->rows, outh, b->nimg, wd->w, x_img);
  LLVMValueRef dpf = next_block(e, oy0, b->rows, outh, b->nimg, wd->outw, dy_img);
  LLVMValueRef img = cg_loop_begin(e, &li, cg_i64(e, 0), cg_i64(e, b->nimg), 1);
  LLVMValueRef gi = cg_add(e, i0, img);
  fill_cl(e, dt, wd, &a.l, cg_gep(e, X, cg_mul(e, gi, cg_i64(e, x_img))), nc, cg_affine(e, oy0, 1, wd->oh), a.clanes,
          xpf, a.P);
  gw_inputs(e, &a, img);
  LLVMValueRef dy0 = cg_add(e, cg_mul(e, gi, cg_i64(e, dy_img)), cg_mul(e, oy0, cg_i64(e, wd->outw)));
  gw_dys(e, &a, img, cg_gep(e, DY, dy0), dpf);
  cg_loop_end(e, &li);
  LLVMValueRef p = cg_loop_begin(e, &lp, cg_i64(e, 0), cg_i64(e, POS), 1);
  cg_gemm_acc_emit(e, dt, cg_gep(e, a.DYT, cg_mul(e, p, cg_i64(e, mb * ldt))), ldt, 1,
                   cg_gep(e, a.VT, cg_mul(e, p, cg_i64(e, ldt * nc))), nc,
                   cg_gep(e, a.dU, cg_mul(e, p, cg_i64(e, mb * nc))), nc, mb, b->tiles, nc);
  cg_loop_end(e, &lp);
  cg_loop_no_unroll(e, &lp);
  cg_loop_end(e, &lb);
}

void cg_wino_gw_finish_emit(cg_emit *e, ir_dtype dt, LLVMValueRef dU, int nparts, int64_t part, int64_t mg,
                            LLVMValueRef m0, LLVMValueRef m1, int64_t nc, LLVMValueRef DW, int64_t dwm) {
  cg_loop lm, lc;
  LLVMValueRef m = cg_loop_begin(e, &lm, m0, m1, 1);
  LLVMValueRef c = cg_loop_begin(e, &lc, cg_i64(e, 0), cg_i64(e, nc), 1);
  LLVMValueRef src = cg_add(e, cg_mul(e, m, cg_i64(e, nc)), c), z[16], w[9];
  for (int q = 0; q < POS; q++) {
    z[q] = cg_load(e, dU, cg_add(e, src, cg_i64(e, q * mg * nc)));
    for (int k = 1; k < nparts; k++)
      z[q] = fadd(e, z[q], cg_load(e, dU, cg_add(e, src, cg_i64(e, k * part + q * mg * nc))));
  }
  filter_gradient(e, dt, z, w);
  LLVMValueRef dst = cg_add(e, cg_mul(e, m, cg_i64(e, dwm)), cg_mul(e, c, cg_i64(e, 9)));
  for (int k = 0; k < 9; k++) cg_store(e, DW, cg_add(e, dst, cg_i64(e, k)), w[k]);
  cg_loop_end(e, &lc);
  cg_loop_end(e, &lm);
}
