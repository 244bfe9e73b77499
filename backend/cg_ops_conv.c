/* Kernels of the 2-D convolutions (NCHW, any stride, padding, dilation and
 * groups, f32 and f64): forward, input gradient and weight gradient, as
 * register-tiled GEMMs (cg_gemm.c) over either an im2col panel or, when
 * the window is at least as wide as the stride (window_dense: every 3x3
 * layer), a zero-padded copy of the input rows read with the taps as
 * constant shifts (the direct path, cg_conv_direct.c), both in the
 * per-thread scratch.
 *
 * - conv2d: one work item per (image, block of output rows); per group
 *   either the block's padded input rows are copied (direct) or its im2col
 *   panel [Cg*KH*KW][pixels] is packed, then y = W_g x panel is written
 *   once, straight into y. 3x3 stride-1 windows with enough channels
 *   (cg_wino_suits) take Winograd F(2x2,3x3) instead: the weights are
 *   transformed once per call into scratch, and a work item is a block of
 *   tile rows or of whole images (cg_conv_winograd.c).
 * - conv2d_grad_input, stride 1: dx is the forward convolution of dy with
 *   the weights transposed per group and flipped (packed once per call into
 *   scratch) under padding (K-1)*dilation - pad: the forward path again
 *   (Winograd included).
 *   Other strides: one work item per image, dcol = W_g^T x dy per block of
 *   dy rows, scatter-added into dx (col2im) in a fixed order.
 * - conv2d_grad_weight, Winograd (3x3 stride 1, as the forward: gw_wino):
 *   first one work item per (group, half of the images); per block of
 *   tile rows or images the input (channels innermost) and dy are
 *   transformed and one accumulating GEMM per position sums their
 *   products over the tiles into the kernel's shared buffer; then, after
 *   the barrier, one item per (group, half of its dy channels) adds the
 *   halves' 16 sums and transforms them back.
 * - conv2d_grad_weight, direct: one work item per (group, block of output
 *   channels: one or more register tiles, at least 4 items per group,
 *   block of input channels: all of the group's unless that leaves fewer
 *   than 4 items); per block of images the padded input planes are
 *   copied once and dotted with each tile's dy planes (which stay in L1
 *   across every column) into lane-wise partial sums. Otherwise one work
 *   item per block of input channels (one channel unless the window is
 *   tiny); per image and block of rows the block's
 *   im2col rows are packed and dotted with dy rows. Either way every weight
 *   is computed by one thread in an order fixed by the shapes, so results
 *   do not depend on the thread count. */
#include <stdlib.h>
#include <string.h>
#include "cg_gemm.h"

enum {
  PANEL_BYTES = 160 * 1024,   /* im2col panel of the forward / input gradient */
  GW_PANEL_BYTES = 64 * 1024, /* im2col rows of the weight gradient */
  DIRECT_BYTES = 32 * 1024,   /* padded input rows of a direct forward block (L1) */
  GWD_DY_BYTES = 16 * 1024,   /* dy planes of a direct weight-gradient tile (L1) */
  GWD_X_BYTES = 96 * 1024,    /* padded input planes of a direct weight-gradient image block (L2) */
  /* transformed input and output planes of a Winograd block: 32 KiB measured 3% faster on the
   * ResNet-20 training step than 64 (Zen 4, bench/ab_step: 0.966-0.973 plain, 0.972 ECA) */
  WINO_BYTES = 32 * 1024,
  GW_TILES = 16 /* tiles of a Winograd weight-gradient block (cg_wino_gw_block_of) */
};

/* Geometry of one convolution x[N,C,H,W] * w[CO,C/G,KH,KW] -> y[N,CO,OH,OW]. */
typedef struct {
  ir_dtype dt;
  int64_t esz;
  int64_t n, c, h, w, co, kh, kw, oh, ow;
  int64_t sh, sw, ph, pw, dh, dw, g;
  int64_t cg, mg, khw, k; /* C/G, CO/G, KH*KW, Cg*KH*KW */
} conv_geom;

/* Fills the geometry of conv node 'n' (conv2d, conv2d_grad_input or
 * conv2d_grad_weight) from its operand and result types. */
static void geom_of(const ir_graph *g, const ir_node *n, conv_geom *s) {
  const ir_type *a = &g->nodes[n->in[0]]->type, *b = &g->nodes[n->in[1]]->type, *r = &n->type;
  const ir_type *x = a, *w = b, *y = r;
  if (n->op == IR_OP_conv2d_grad_input) {
    x = r;
    y = a;
  } else if (n->op == IR_OP_conv2d_grad_weight) {
    w = r;
    y = b;
  }
  const int64_t *st = ir_get_ints(n, "stride", NULL), *pd = ir_get_ints(n, "pad", NULL),
                *dl = ir_get_ints(n, "dilation", NULL);
  *s = (conv_geom){r->dtype, (int64_t)ir_dtype_size(r->dtype),
                   x->dims[0], x->dims[1], x->dims[2], x->dims[3], w->dims[0], w->dims[2], w->dims[3],
                   y->dims[2], y->dims[3], st[0], st[1], pd[0], pd[1], dl[0], dl[1], ir_get_int(n, "groups"),
                   0, 0, 0, 0};
  s->cg = s->c / s->g;
  s->mg = s->co / s->g;
  s->khw = s->kh * s->kw;
  s->k = s->cg * s->khw;
}

static int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

/* Output rows per block so that a panel of 'krows' rows stays within
 * 'budget' bytes; prefers blocks dividing the height whose pixel count is
 * a multiple of the GEMM's pixel tile. */
static int64_t rows_per_block(int64_t outh, int64_t outw, int64_t krows, int64_t esz, int64_t budget,
                              int lanes) {
  int64_t maxr = budget / (krows * esz * outw);
  if (maxr < 1) maxr = 1;
  if (maxr >= outh) return outh;
  for (int64_t r = maxr; r >= (maxr + 1) / 2; r--)
    if (outh % r == 0 && (r * outw) % (2 * lanes) == 0) return r;
  for (int64_t r = maxr; r >= (maxr + 1) / 2; r--)
    if (outh % r == 0) return r;
  return maxr;
}

/* Row blocking of an output of 'outh' rows. */
typedef struct {
  int64_t rb, nfull, rem, nblk, ldcol;
} blocking;

static blocking blocking_of(int64_t outh, int64_t outw, int64_t krows, int64_t esz, int64_t budget, int lanes) {
  blocking b;
  b.rb = rows_per_block(outh, outw, krows, esz, budget, lanes);
  b.nfull = outh / b.rb;
  b.rem = outh - b.nfull * b.rb;
  b.nblk = b.nfull + (b.rem > 0);
  b.ldcol = round_up(b.rb * outw, lanes);
  return b;
}

/* A forward convolution as the kernels run it: input planes of wd.h x wd.w,
 * 'cin' channels in 'groups' groups; output 'cout' channels of outh x
 * wd.outw; the weight of group g at A + g*a_gstride, its element
 * (output row m, panel row k) at m*am + k*ak. */
typedef struct {
  ir_dtype dt;
  cg_window wd;
  int64_t groups, cin, cin_g, cout, cout_g, k, outh;
  int64_t a_gstride, am, ak;
  int64_t n;  /* images */
  int direct; /* padded rows buffer instead of im2col (cg_conv_direct.c) */
  int wino;   /* Winograd F(2x2,3x3) blocks (cg_conv_winograd.c) */
  cg_wino_block wb;
  blocking bl;
} fwd_desc;

/* 1 if the direct path suits window 'wd': its taps touch every input row
 * and column between them (a window at least as wide as the stride), so
 * copying the whole input into the padded buffer wastes nothing; a 1x1
 * stride-2 window reads a quarter of it, which im2col copies alone. */
static int window_dense(const cg_window *wd) {
  return (wd->kh - 1) * wd->dh + 1 >= wd->sh && (wd->kw - 1) * wd->dw + 1 >= wd->sw;
}

/* 1 unless ATTNC_NO_WINOGRAD is set (to anything but 0): a comparison aid
 * that sends the 3x3 stride-1 convolutions down the direct path. */
static int wino_enabled(void) {
  const char *env = getenv("ATTNC_NO_WINOGRAD");
  return !env || !strcmp(env, "0");
}

/* Switches 'f' to the direct path when its window is dense (at stride 2
 * as well: on ResNet's 32->64 3x3 stride-2 layer it measured 1.65-1.75 ms
 * against im2col's 2.05-2.25 on a Zen 4 (AVX-512) machine; the earlier
 * cut-off at 32 output channels came from a Zen 1 (AVX2) one): blocks of
 * rows whose padded input rows fit DIRECT_BYTES. */
static void fwd_choose(fwd_desc *f, int64_t esz) {
  f->direct = window_dense(&f->wd);
  f->wino = 0;
  f->wb = (cg_wino_block){1, 0, 0, 0};
  if (!f->direct) return;
  blocking *b = &f->bl;
  if (wino_enabled() && cg_wino_suits(&f->wd, f->dt, f->cin_g, f->cout_g, f->outh)) {
    f->wino = 1;
    f->wb = cg_wino_block_of(&f->wd, f->cin_g, f->cout_g, f->n, f->outh, cg_gemm_lanes(f->dt), WINO_BYTES);
    b->rb = f->wb.rows;
  } else {
    b->rb = cg_direct_rows(&f->wd, f->cin_g, f->outh, esz, DIRECT_BYTES);
  }
  b->nfull = f->outh / b->rb;
  b->rem = f->outh - b->nfull * b->rb;
  b->nblk = b->nfull + (b->rem > 0);
  b->ldcol = 0;
}

/* Elements of the Winograd weights of all groups of 'f' (at the start of
 * its scratch), 64-byte aligned. */
static int64_t wino_u_elems(const fwd_desc *f) {
  return round_up(f->groups * cg_wino_weight_elems(f->cin_g, f->cout_g), 16);
}

/* Per-thread scratch elements of the row blocks of 'f'. */
static int64_t fwd_scratch_elems(const fwd_desc *f) {
  if (f->wino) return wino_u_elems(f) + cg_wino_buffer_elems(&f->wd, f->cin_g, f->cout_g, &f->wb);
  if (f->direct) return cg_direct_buffer_elems(&f->wd, f->cin_g, f->bl.rb);
  return f->k * f->bl.ldcol;
}

/* Emits one row block of one image: for every group, pack then GEMM. */
static void fwd_block(cg_emit *e, const fwd_desc *f, LLVMValueRef X, LLVMValueRef A, LLVMValueRef Y,
                      LLVMValueRef col, LLVMValueRef img, LLVMValueRef oy0, int64_t rows) {
  int64_t inplane = f->wd.h * f->wd.w, outplane = f->outh * f->wd.outw;
  cg_loop lg;
  LLVMValueRef g = cg_loop_begin(e, &lg, cg_i64(e, 0), cg_i64(e, f->groups), 1);
  LLVMValueRef xg = cg_gep(e, X, cg_mul(e, cg_add(e, cg_mul(e, img, cg_i64(e, f->cin)), cg_mul(e, g, cg_i64(e, f->cin_g))),
                                        cg_i64(e, inplane)));
  LLVMValueRef ag = cg_gep(e, A, cg_mul(e, g, cg_i64(e, f->a_gstride)));
  LLVMValueRef yoff = cg_mul(e, cg_add(e, cg_mul(e, img, cg_i64(e, f->cout)), cg_mul(e, g, cg_i64(e, f->cout_g))),
                             cg_i64(e, outplane));
  LLVMValueRef yg = cg_gep(e, Y, cg_add(e, yoff, cg_mul(e, oy0, cg_i64(e, f->wd.outw))));
  if (f->wino) {
    LLVMValueRef u = cg_gep(e, col, cg_mul(e, g, cg_i64(e, cg_wino_weight_elems(f->cin_g, f->cout_g))));
    cg_wino_conv_emit(e, f->dt, &f->wd, xg, f->cin * inplane, f->cin_g, oy0, f->outh, &f->wb, rows, u, yg,
                      f->cout * outplane, outplane, f->cout_g, cg_gep(e, col, cg_i64(e, wino_u_elems(f))));
  } else if (f->direct) {
    cg_direct_conv_emit(e, f->dt, &f->wd, xg, f->cin_g, oy0, rows, ag, f->am, yg, outplane, f->cout_g, col);
  } else {
    cg_im2col_emit(e, &f->wd, xg, f->cin_g, oy0, rows, col, f->bl.ldcol);
    cg_gemm_emit(e, f->dt, ag, f->am, f->ak, col, f->bl.ldcol, yg, outplane, f->cout_g, f->k, rows * f->wd.outw);
  }
  cg_loop_end(e, &lg);
}

/* Work items of a forward convolution: (image or Winograd image block) x row block. */
static int64_t fwd_item_count(const fwd_desc *f) { return f->n / f->wb.nimg * f->bl.nblk; }

/* Emits the work-item loop of a forward convolution: item = image * nblk +
 * block (image: the first of the item's Winograd block of images), after
 * the Winograd weights of every group when it takes that path. */
static void fwd_items(cg_emit *e, const fwd_desc *f, LLVMValueRef X, LLVMValueRef A, LLVMValueRef Y,
                      LLVMValueRef col) {
  if (f->wino) {
    cg_loop lg;
    LLVMValueRef g = cg_loop_begin(e, &lg, cg_i64(e, 0), cg_i64(e, f->groups), 1);
    cg_wino_weights_emit(e, f->dt, cg_gep(e, A, cg_mul(e, g, cg_i64(e, f->a_gstride))), f->am, f->cin_g,
                         f->cout_g, cg_gep(e, col, cg_mul(e, g, cg_i64(e, cg_wino_weight_elems(f->cin_g, f->cout_g)))));
    cg_loop_end(e, &lg);
  }
  cg_loop li;
  LLVMValueRef it = cg_loop_begin(e, &li, e->begin, e->end, 1);
  LLVMValueRef img = cg_mul(e, LLVMBuildSDiv(e->b, it, cg_i64(e, f->bl.nblk), ""), cg_i64(e, f->wb.nimg));
  LLVMValueRef blk = LLVMBuildSRem(e->b, it, cg_i64(e, f->bl.nblk), "");
  LLVMValueRef oy0 = cg_mul(e, blk, cg_i64(e, f->bl.rb));
  if (f->bl.rem > 0) {
    cg_if c;
    cg_if_begin(e, &c, LLVMBuildICmp(e->b, LLVMIntSLT, blk, cg_i64(e, f->bl.nfull), ""));
    fwd_block(e, f, X, A, Y, col, img, oy0, f->bl.rb);
    cg_if_else(e, &c);
    fwd_block(e, f, X, A, Y, col, img, oy0, f->bl.rem);
    cg_if_end(e, &c);
  } else {
    fwd_block(e, f, X, A, Y, col, img, oy0, f->bl.rb);
  }
  cg_loop_end(e, &li);
}

/* The forward descriptor of conv2d itself. */
static fwd_desc fwd_of_conv(const conv_geom *s) {
  fwd_desc f;
  f.dt = s->dt;
  f.wd = (cg_window){s->h, s->w, s->kh, s->kw, s->sh, s->sw, -s->ph, -s->pw, s->dh, s->dw, s->ow};
  f.groups = s->g;
  f.cin = s->c;
  f.cin_g = s->cg;
  f.cout = s->co;
  f.cout_g = s->mg;
  f.k = s->k;
  f.outh = s->oh;
  f.n = s->n;
  f.a_gstride = s->mg * s->k;
  f.am = s->k;
  f.ak = 1;
  f.bl = blocking_of(s->oh, s->ow, s->k, s->esz, PANEL_BYTES, cg_gemm_lanes(s->dt));
  fwd_choose(&f, s->esz);
  return f;
}

/* The input gradient at stride 1 as a forward convolution of dy with the
 * flipped, per-group transposed weights (packed at the start of scratch). */
static fwd_desc fwd_of_grad_input(const conv_geom *s) {
  fwd_desc f;
  f.dt = s->dt;
  f.wd = (cg_window){s->oh, s->ow, s->kh, s->kw, 1, 1, s->ph - (s->kh - 1) * s->dh, s->pw - (s->kw - 1) * s->dw,
                     s->dh, s->dw, s->w};
  f.groups = s->g;
  f.cin = s->co;
  f.cin_g = s->mg;
  f.cout = s->c;
  f.cout_g = s->cg;
  f.k = s->mg * s->khw;
  f.outh = s->h;
  f.n = s->n;
  f.a_gstride = s->cg * f.k;
  f.am = f.k;
  f.ak = 1;
  f.bl = blocking_of(s->h, s->w, f.k, s->esz, PANEL_BYTES, cg_gemm_lanes(s->dt));
  fwd_choose(&f, s->esz);
  return f;
}

static int64_t align64(int64_t x) { return (x + 63) / 64 * 64; }

static int gi_direct(const conv_geom *s) { return s->sh == 1 && s->sw == 1; }

/* Blocking of the general input gradient: dcol panels of K rows over dy rows. */
static blocking gi_blocking(const conv_geom *s) {
  return blocking_of(s->oh, s->ow, s->k, s->esz, PANEL_BYTES, cg_gemm_lanes(s->dt));
}

/* Input channels per work item of the weight gradient: the fewest (a
 * divisor of C/G) giving at least 3 panel rows, so 1x1 windows still fill
 * a register tile. */
static int64_t gw_channels(const conv_geom *s) {
  for (int64_t d = 1; d < s->cg; d++)
    if (s->cg % d == 0 && d * s->khw >= 3) return d;
  return s->cg;
}

/* Blocking of the weight gradient: a channel block's rows over dy rows. */
static blocking gw_blocking(const conv_geom *s) {
  return blocking_of(s->oh, s->ow, gw_channels(s) * s->khw, s->esz, GW_PANEL_BYTES, cg_gemm_lanes(s->dt));
}

/* The window of the forward convolution of 's'. */
static cg_window window_of(const conv_geom *s) {
  return (cg_window){s->h, s->w, s->kh, s->kw, s->sh, s->sw, -s->ph, -s->pw, s->dh, s->dw, s->ow};
}

/* 1 if the weight gradient takes the direct path: a dense window
 * (window_dense), at any stride. At stride 2 every work item copies its
 * input channels' whole planes, column phases split, where im2col gathers
 * only the taps; the direct tiles still measured 1.5x faster on ResNet's
 * 3x3 stride-2 layers (Zen 4, AVX-512), while a 1x1 stride-2 window would
 * copy four times what it reads. */
static int gw_direct(const conv_geom *s) {
  cg_window wd = window_of(s);
  return window_dense(&wd);
}

/* Lanes of the partial sums of the direct weight gradient. */
static int gwd_lanes(const conv_geom *s) {
  cg_window wd = window_of(s);
  return cg_direct_lanes(&wd, s->dt);
}

/* dy channels per work item of the direct weight gradient. */
static int64_t gwd_rows(const conv_geom *s) {
  return cg_direct_dot_rows(s->mg, s->khw, cg_host_vector_floats() >= 16);
}

/* dy channels per work item of the direct weight gradient: several
 * register tiles share one copy of the padded input, as long as there
 * are at least 4 work items per group to share among the threads. */
static int64_t gwd_chunk(const conv_geom *s) {
  int64_t mr = gwd_rows(s), tiles = (s->mg + mr - 1) / mr, per = tiles / 4;
  return per > 1 ? per * mr : mr;
}

/* Blocks of input channels per (group, dy block) of the direct weight
 * gradient: 1, unless there are fewer than 4 such items to share among the
 * threads (HAM's [1,2,7,7] spatial weight is one); then the largest divisor
 * of the group's channels that gives at most 4 items. */
static int64_t gwd_cblocks(const conv_geom *s) {
  int64_t items = s->g * ((s->mg + gwd_chunk(s) - 1) / gwd_chunk(s)), best = 1;
  for (int64_t d = 2; d <= s->cg && items * d <= 4; d++)
    if (s->cg % d == 0) best = d;
  return best;
}

/* Images per block of the direct weight gradient: the item's dy planes
 * within GWD_DY_BYTES (L1) and the padded input within GWD_X_BYTES (L2). */
static int64_t gwd_images(const conv_geom *s) {
  cg_window wd = window_of(s);
  int64_t nb = GWD_DY_BYTES / (gwd_rows(s) * s->oh * cg_direct_dot_row(&wd, s->dt) * s->esz);
  int64_t nx = GWD_X_BYTES / (cg_direct_buffer_elems(&wd, s->cg, s->oh) * s->esz);
  if (nx < nb) nb = nx;
  if (nb < 1) nb = 1;
  return nb < s->n ? nb : s->n;
}

/* The Winograd weight gradient runs in two phases. First, per group, the
 * images are split into GWW_PARTS equal parts (one part when the batch does
 * not split evenly), and each work item sums the transformed products of
 * one part over all of the group's dy and input channels, into its own
 * slice of the shared buffer; then each of GWW_FINISH items per group adds
 * the parts' sums in order and transforms them back for a share of the dy
 * channels. Splitting by images instead of by dy channels means no two
 * items transform the same input. Measured on a Zen 4 (bench/ab_step on
 * the op alone at batch 128, 2 threads, 200 pairs, against the earlier
 * split into halves of the dy channels, where each item copied and
 * transformed the whole input): the earlier split took 1.217 (q1 1.147,
 * q3 1.255) of the time on the 16-channel 32x32 layer, 1.174 on the
 * 32-channel 16x16 one and 1.017 on the 64-channel 8x8 one. */
enum { GWW_PARTS = 2, GWW_FINISH = 2 };

/* Image parts of the Winograd weight gradient of s. */
static int64_t gww_parts(const conv_geom *s) { return s->n % GWW_PARTS == 0 ? GWW_PARTS : 1; }

/* dy channels per finishing item (the last may have fewer). */
static int64_t gww_finish_rows(const conv_geom *s) { return (s->mg + GWW_FINISH - 1) / GWW_FINISH; }

/* 1 if the weight gradient takes the Winograd path (cg_wino_suits), with
 * its block in *b. Each item copies its images' input with the channels
 * innermost (vectors transposed in registers) and transforms it. Measured
 * on a Zen 4 (bench/conv_kernels, 2 threads, runs alternating with the
 * direct path; attnc bench --profile of the ResNet-20 step): the 32-channel
 * 16x16 layer 3.0-3.2 -> 2.1-2.7 ms alone, 20.5 -> 11.2-13.0 ms per step;
 * the 16-channel 32x32 one 3.1-3.2 -> 3.0-3.1 alone, 21.6-23.7 -> 19.6-20.2
 * per step. With the scalar copy this had been, the 32- and 16-channel
 * layers were no faster or slower. Its blocks have about 16 tiles
 * (GW_TILES, cg_wino_gw_block_of), not the forward's scratch budget: with
 * 8 lanes (AVX2) that budget gave the 16x16 and 8x8 layers blocks of 8
 * tiles, and the 32-channel layer's weight gradient took 5.1 ms a call in
 * the step against 2.8-3.1 for the 16- and 64-channel ones (same FLOPs).
 * With 16 tiles (what 16 lanes already gave), bench/ab_step on the AVX2
 * EPYC, 100 pairs: the old blocks' ResNet-20 step took 1.052 (q1 1.020, q3
 * 1.092) of the new one's time, with HAM 1.044 (1.013-1.082). */
static int gw_wino(const conv_geom *s, cg_wino_block *b) {
  cg_window wd = window_of(s);
  if (!wino_enabled() || !cg_wino_suits(&wd, s->dt, s->cg, s->mg, s->oh)) return 0;
  *b = cg_wino_gw_block_of(&wd, s->n / gww_parts(s), s->oh, cg_gemm_lanes(s->dt), GW_TILES);
  return 1;
}

static double conv_flops(const conv_geom *s) {
  return 2.0 * (double)s->n * (double)s->co * (double)s->k * (double)s->oh * (double)s->ow;
}

/* The report name of the algorithm of forward descriptor 'f'. */
static const char *fwd_algo(const fwd_desc *f) { return f->wino ? "winograd" : f->direct ? "direct" : "im2col"; }

static void plan_conv(const ir_graph *g, const ir_node *n, cg_plan *p) {
  conv_geom s;
  geom_of(g, n, &s);
  fwd_desc f = fwd_of_conv(&s);
  p->par = fwd_item_count(&f);
  p->scratch_bytes = fwd_scratch_elems(&f) * s.esz;
  p->flops = conv_flops(&s);
  p->algo = fwd_algo(&f);
}

static attnc_status emit_conv(cg_emit *e, const cg_plan *p) {
  (void)p;
  conv_geom s;
  geom_of(e->g, e->n, &s);
  fwd_desc f = fwd_of_conv(&s);
  fwd_items(e, &f, e->arg[1], e->arg[2], e->arg[0], cg_scratch(e, 0, s.dt));
  return ATTNC_OK;
}

static void plan_grad_input(const ir_graph *g, const ir_node *n, cg_plan *p) {
  conv_geom s;
  geom_of(g, n, &s);
  p->flops = conv_flops(&s);
  if (gi_direct(&s)) {
    fwd_desc f = fwd_of_grad_input(&s);
    p->par = fwd_item_count(&f);
    p->scratch_bytes = align64(s.co * s.k * s.esz) + fwd_scratch_elems(&f) * s.esz;
    p->algo = fwd_algo(&f);
  } else {
    blocking b = gi_blocking(&s);
    p->algo = "col2im";
    p->par = s.n;
    p->scratch_bytes = s.k * b.ldcol * s.esz;
  }
}

/* Packs W'[(c_global*mg + m)*khw + t] = W[((g*mg + m)*cg + c)*khw + khw-1-t]
 * (c_global = g*cg + c) into 'wt'. */
static void pack_flipped(cg_emit *e, const conv_geom *s, LLVMValueRef W, LLVMValueRef wt) {
  cg_loop lc, lm, lt;
  LLVMValueRef cc = cg_loop_begin(e, &lc, cg_i64(e, 0), cg_i64(e, s->c), 1);
  LLVMValueRef g = LLVMBuildSDiv(e->b, cc, cg_i64(e, s->cg), "");
  LLVMValueRef c = LLVMBuildSRem(e->b, cc, cg_i64(e, s->cg), "");
  LLVMValueRef m = cg_loop_begin(e, &lm, cg_i64(e, 0), cg_i64(e, s->mg), 1);
  LLVMValueRef src = cg_mul(e, cg_add(e, cg_mul(e, cg_add(e, cg_mul(e, g, cg_i64(e, s->mg)), m), cg_i64(e, s->cg)), c),
                            cg_i64(e, s->khw));
  LLVMValueRef dst = cg_mul(e, cg_add(e, cg_mul(e, cc, cg_i64(e, s->mg)), m), cg_i64(e, s->khw));
  LLVMValueRef t = cg_loop_begin(e, &lt, cg_i64(e, 0), cg_i64(e, s->khw), 1);
  LLVMValueRef v = cg_load(e, W, cg_add(e, src, cg_sub(e, cg_i64(e, s->khw - 1), t)));
  cg_store(e, wt, cg_add(e, dst, t), v);
  cg_loop_end(e, &lt);
  cg_loop_end(e, &lm);
  cg_loop_end(e, &lc);
}

/* One block of dy rows of the general input gradient of image 'img'. */
static void gi_block(cg_emit *e, const conv_geom *s, const blocking *b, LLVMValueRef img, LLVMValueRef oy0,
                     int64_t rows, LLVMValueRef dcol) {
  cg_window wd = {s->h, s->w, s->kh, s->kw, s->sh, s->sw, -s->ph, -s->pw, s->dh, s->dw, s->ow};
  int64_t outplane = s->oh * s->ow;
  cg_loop lg;
  LLVMValueRef g = cg_loop_begin(e, &lg, cg_i64(e, 0), cg_i64(e, s->g), 1);
  LLVMValueRef wg = cg_gep(e, e->arg[2], cg_mul(e, g, cg_i64(e, s->mg * s->k)));
  LLVMValueRef dyoff = cg_mul(e, cg_add(e, cg_mul(e, img, cg_i64(e, s->co)), cg_mul(e, g, cg_i64(e, s->mg))),
                              cg_i64(e, outplane));
  LLVMValueRef dyg = cg_gep(e, e->arg[1], cg_add(e, dyoff, cg_mul(e, oy0, cg_i64(e, s->ow))));
  cg_gemm_emit(e, s->dt, wg, 1, s->k, dyg, outplane, dcol, b->ldcol, s->k, s->mg, rows * s->ow);
  LLVMValueRef xoff = cg_mul(e, cg_add(e, cg_mul(e, img, cg_i64(e, s->c)), cg_mul(e, g, cg_i64(e, s->cg))),
                             cg_i64(e, s->h * s->w));
  cg_col2im_emit(e, &wd, cg_gep(e, e->arg[0], xoff), s->cg, oy0, rows, dcol, b->ldcol);
  cg_loop_end(e, &lg);
}

static attnc_status emit_grad_input(cg_emit *e, const cg_plan *p) {
  (void)p;
  conv_geom s;
  geom_of(e->g, e->n, &s);
  if (gi_direct(&s)) {
    fwd_desc f = fwd_of_grad_input(&s);
    LLVMValueRef wt = cg_scratch(e, 0, s.dt);
    pack_flipped(e, &s, e->arg[2], wt);
    fwd_items(e, &f, e->arg[1], wt, e->arg[0], cg_scratch(e, align64(s.co * s.k * s.esz), s.dt));
    return ATTNC_OK;
  }
  blocking b = gi_blocking(&s);
  LLVMValueRef dcol = cg_scratch(e, 0, s.dt);
  LLVMValueRef zero = LLVMConstNull(cg_type(e, s.dt));
  cg_loop li, lz, lb;
  LLVMValueRef img = cg_loop_begin(e, &li, e->begin, e->end, 1);
  int64_t xn = s.c * s.h * s.w;
  LLVMValueRef xbase = cg_mul(e, img, cg_i64(e, xn));
  LLVMValueRef z = cg_loop_begin(e, &lz, cg_i64(e, 0), cg_i64(e, xn), 1);
  cg_store(e, e->arg[0], cg_add(e, xbase, z), zero);
  cg_loop_end(e, &lz);
  if (b.nfull > 0) {
    LLVMValueRef blk = cg_loop_begin(e, &lb, cg_i64(e, 0), cg_i64(e, b.nfull), 1);
    gi_block(e, &s, &b, img, cg_mul(e, blk, cg_i64(e, b.rb)), b.rb, dcol);
    cg_loop_end(e, &lb);
  }
  if (b.rem > 0) gi_block(e, &s, &b, img, cg_i64(e, b.nfull * b.rb), b.rem, dcol);
  cg_loop_end(e, &li);
  return ATTNC_OK;
}

static void plan_grad_weight(const ir_graph *g, const ir_node *n, cg_plan *p) {
  conv_geom s;
  geom_of(g, n, &s);
  p->flops = conv_flops(&s);
  cg_wino_block wb;
  if (gw_wino(&s, &wb)) {
    cg_window wd = window_of(&s);
    p->par = s.g * gww_parts(&s);
    p->par2 = s.g * GWW_FINISH;
    p->shared_bytes = p->par * cg_wino_gw_sum_elems(s.cg, s.mg) * s.esz;
    p->scratch_bytes = cg_wino_gw_buffer_elems(&wd, s.cg, s.mg, &wb) * s.esz;
    p->algo = "winograd";
    return;
  }
  if (gw_direct(&s)) {
    cg_window wd = window_of(&s);
    int64_t mc = gwd_chunk(&s);
    p->par = s.g * ((s.mg + mc - 1) / mc) * gwd_cblocks(&s);
    p->scratch_bytes = align64(mc * s.k * gwd_lanes(&s) * s.esz) +
                       cg_direct_dot_buffer_elems(&wd, s.dt, s.cg, s.oh, gwd_images(&s), mc) * s.esz;
    p->algo = "direct";
    return;
  }
  blocking b = gw_blocking(&s);
  int lanes = cg_gemm_lanes(s.dt);
  int64_t rows = gw_channels(&s) * s.khw;
  p->par = s.c / gw_channels(&s);
  p->scratch_bytes = align64(s.mg * rows * lanes * s.esz) + rows * b.ldcol * s.esz;
  p->algo = "im2col";
}

/* One block of rows of image 'img' for the channel block starting at
 * global input channel cc (in group g). */
static void gw_block(cg_emit *e, const conv_geom *s, const blocking *b, LLVMValueRef img, LLVMValueRef cc,
                     LLVMValueRef g, LLVMValueRef oy0, int64_t rows, LLVMValueRef col, LLVMValueRef acc) {
  cg_window wd = window_of(s);
  int64_t outplane = s->oh * s->ow, cb = gw_channels(s);
  LLVMValueRef xoff = cg_mul(e, cg_add(e, cg_mul(e, img, cg_i64(e, s->c)), cc), cg_i64(e, s->h * s->w));
  cg_im2col_emit(e, &wd, cg_gep(e, e->arg[1], xoff), cb, oy0, rows, col, b->ldcol);
  LLVMValueRef dyoff = cg_mul(e, cg_add(e, cg_mul(e, img, cg_i64(e, s->co)), cg_mul(e, g, cg_i64(e, s->mg))),
                              cg_i64(e, outplane));
  LLVMValueRef dyg = cg_gep(e, e->arg[2], cg_add(e, dyoff, cg_mul(e, oy0, cg_i64(e, s->ow))));
  cg_gemm_dot_emit(e, s->dt, dyg, outplane, col, b->ldcol, acc, s->mg, cb * s->khw, rows * s->ow);
}

/* The direct weight gradient of 'nb' images from image img0 for the 'rows'
 * dy channels from m0 of group g against the block of input channels from
 * c0 of the group, into the lane sums 'acc'. */
static void gwd_images_block(cg_emit *e, const conv_geom *s, LLVMValueRef img0, int64_t nb, LLVMValueRef g,
                             LLVMValueRef m0, int64_t rows, LLVMValueRef c0, LLVMValueRef buf, LLVMValueRef acc) {
  cg_window wd = window_of(s);
  int64_t outplane = s->oh * s->ow;
  LLVMValueRef xc = cg_add(e, cg_add(e, cg_mul(e, img0, cg_i64(e, s->c)), cg_mul(e, g, cg_i64(e, s->cg))), c0);
  LLVMValueRef xoff = cg_mul(e, xc, cg_i64(e, s->h * s->w));
  LLVMValueRef dyc = cg_add(e, cg_add(e, cg_mul(e, img0, cg_i64(e, s->co)), cg_mul(e, g, cg_i64(e, s->mg))), m0);
  cg_direct_dot_emit(e, s->dt, &wd, cg_gep(e, e->arg[1], xoff), s->c * s->h * s->w, s->cg / gwd_cblocks(s), nb, s->oh,
                     cg_gep(e, e->arg[2], cg_mul(e, dyc, cg_i64(e, outplane))), s->co * outplane, outplane, acc, rows,
                     buf);
}

/* One work item of the direct weight gradient: dw rows [m0, m0 + rows) of
 * group g, the columns of the input channel block from c0, over all images
 * in blocks of gwd_images. */
static void gwd_item(cg_emit *e, const conv_geom *s, LLVMValueRef g, LLVMValueRef m0, int64_t rows, LLVMValueRef c0,
                     LLVMValueRef acc, LLVMValueRef buf) {
  int lanes = gwd_lanes(s);
  LLVMTypeRef vt = cg_vec_type(e, s->dt, lanes);
  int64_t kb = s->cg / gwd_cblocks(s) * s->khw; /* columns of the block */
  int64_t nacc = rows * kb, nb = gwd_images(s), nfull = s->n / nb, rem = s->n - nfull * nb;
  cg_loop lz, ln, lr, lo;
  LLVMValueRef z = cg_loop_begin(e, &lz, cg_i64(e, 0), cg_i64(e, nacc), 1);
  cg_vstore(e, acc, cg_mul(e, z, cg_i64(e, lanes)), LLVMConstNull(vt));
  cg_loop_end(e, &lz);
  LLVMValueRef blk = cg_loop_begin(e, &ln, cg_i64(e, 0), cg_i64(e, nfull), 1);
  gwd_images_block(e, s, cg_mul(e, blk, cg_i64(e, nb)), nb, g, m0, rows, c0, buf, acc);
  cg_loop_end(e, &ln);
  if (rem > 0) gwd_images_block(e, s, cg_i64(e, nfull * nb), rem, g, m0, rows, c0, buf, acc);
  /* dw[(g*mg + m0 + r)*k + c0*khw + o] = sum of the lanes of acc[r*kb + o] */
  LLVMValueRef r = cg_loop_begin(e, &lr, cg_i64(e, 0), cg_i64(e, rows), 1);
  LLVMValueRef dbase = cg_add(e, cg_mul(e, cg_add(e, cg_add(e, cg_mul(e, g, cg_i64(e, s->mg)), m0), r), cg_i64(e, s->k)),
                              cg_mul(e, c0, cg_i64(e, s->khw)));
  LLVMValueRef abase = cg_mul(e, r, cg_i64(e, kb));
  LLVMValueRef o = cg_loop_begin(e, &lo, cg_i64(e, 0), cg_i64(e, kb), 1);
  LLVMValueRef v = cg_vload(e, acc, cg_mul(e, cg_add(e, abase, o), cg_i64(e, lanes)), lanes);
  cg_store(e, e->arg[0], cg_add(e, dbase, o), cg_vsum(e, v));
  cg_loop_end(e, &lo);
  cg_loop_end(e, &lr);
}

/* The direct weight gradient: one work item per (group, block of dy
 * channels, block of input channels). */
static void emit_gwd(cg_emit *e, const conv_geom *s) {
  int lanes = gwd_lanes(s);
  int64_t mr = gwd_chunk(s), nmb = (s->mg + mr - 1) / mr, last = s->mg - (nmb - 1) * mr;
  int64_t ncb = gwd_cblocks(s);
  LLVMValueRef acc = cg_scratch(e, 0, s->dt);
  LLVMValueRef buf = cg_scratch(e, align64(mr * s->k * lanes * s->esz), s->dt);
  cg_loop li;
  LLVMValueRef item = cg_loop_begin(e, &li, e->begin, e->end, 1);
  LLVMValueRef c0 = cg_mul(e, LLVMBuildSRem(e->b, item, cg_i64(e, ncb), ""), cg_i64(e, s->cg / ncb));
  LLVMValueRef rest = LLVMBuildSDiv(e->b, item, cg_i64(e, ncb), "");
  LLVMValueRef g = LLVMBuildSDiv(e->b, rest, cg_i64(e, nmb), "");
  LLVMValueRef mb = LLVMBuildSRem(e->b, rest, cg_i64(e, nmb), "");
  LLVMValueRef m0 = cg_mul(e, mb, cg_i64(e, mr));
  if (last < mr) {
    cg_if c;
    cg_if_begin(e, &c, LLVMBuildICmp(e->b, LLVMIntSLT, mb, cg_i64(e, nmb - 1), ""));
    gwd_item(e, s, g, m0, mr, c0, acc, buf);
    cg_if_else(e, &c);
    gwd_item(e, s, g, m0, last, c0, acc, buf);
    cg_if_end(e, &c);
  } else {
    gwd_item(e, s, g, m0, mr, c0, acc, buf);
  }
  cg_loop_end(e, &li);
}

/* The finishing item 'half' of group gi of the Winograd weight gradient:
 * its share of the dy channels (the last share may be shorter), from the
 * sums of the group's parts. */
static void gww_finish(cg_emit *e, const conv_geom *s, LLVMValueRef gi, LLVMValueRef half) {
  int64_t parts = gww_parts(s), sums = cg_wino_gw_sum_elems(s->cg, s->mg), fr = gww_finish_rows(s);
  LLVMValueRef dU = cg_gep(e, cg_shared(e, 0, s->dt), cg_mul(e, gi, cg_i64(e, parts * sums)));
  LLVMValueRef DW = cg_gep(e, e->arg[0], cg_mul(e, gi, cg_i64(e, s->mg * s->k)));
  LLVMValueRef m0 = cg_mul(e, half, cg_i64(e, fr)), m1 = cg_add(e, m0, cg_i64(e, fr));
  LLVMValueRef full = LLVMBuildICmp(e->b, LLVMIntSLT, m1, cg_i64(e, s->mg), "");
  m1 = LLVMBuildSelect(e->b, full, m1, cg_i64(e, s->mg), "");
  cg_wino_gw_finish_emit(e, s->dt, dU, (int)parts, sums, s->mg, m0, m1, s->cg, DW, s->k);
}

/* The Winograd weight gradient: items [0, g*parts) sum one (group, part of
 * the images) each, items [g*parts, g*(parts + GWW_FINISH)) finish one
 * (group, share of its dy channels) each. */
static void emit_gww(cg_emit *e, const conv_geom *s, const cg_wino_block *wb) {
  cg_window wd = window_of(s);
  int64_t parts = gww_parts(s), nper = s->n / parts, outplane = s->oh * s->ow;
  int64_t x_img = s->c * s->h * s->w, dy_img = s->co * outplane, sums = cg_wino_gw_sum_elems(s->cg, s->mg);
  LLVMValueRef S = cg_scratch(e, 0, s->dt);
  cg_loop li;
  LLVMValueRef item = cg_loop_begin(e, &li, e->begin, e->end, 1);
  cg_if ph;
  cg_if_begin(e, &ph, LLVMBuildICmp(e->b, LLVMIntSLT, item, cg_i64(e, s->g * parts), ""));
  {
    LLVMValueRef g = LLVMBuildSDiv(e->b, item, cg_i64(e, parts), "");
    LLVMValueRef i0 = cg_mul(e, LLVMBuildSRem(e->b, item, cg_i64(e, parts), ""), cg_i64(e, nper));
    LLVMValueRef X = cg_gep(e, e->arg[1], cg_add(e, cg_mul(e, i0, cg_i64(e, x_img)),
                                                 cg_mul(e, g, cg_i64(e, s->cg * s->h * s->w))));
    LLVMValueRef DY = cg_gep(e, e->arg[2], cg_add(e, cg_mul(e, i0, cg_i64(e, dy_img)),
                                                  cg_mul(e, g, cg_i64(e, s->mg * outplane))));
    LLVMValueRef dU = cg_gep(e, cg_shared(e, 0, s->dt), cg_mul(e, item, cg_i64(e, sums)));
    cg_wino_gw_sums_emit(e, s->dt, &wd, X, x_img, s->cg, nper, s->oh, wb, DY, dy_img, outplane, s->mg, dU, S);
  }
  cg_if_else(e, &ph);
  {
    LLVMValueRef it = cg_sub(e, item, cg_i64(e, s->g * parts));
    gww_finish(e, s, LLVMBuildSDiv(e->b, it, cg_i64(e, GWW_FINISH), ""),
               LLVMBuildSRem(e->b, it, cg_i64(e, GWW_FINISH), ""));
  }
  cg_if_end(e, &ph);
  cg_loop_end(e, &li);
}

static attnc_status emit_grad_weight(cg_emit *e, const cg_plan *p) {
  (void)p;
  conv_geom s;
  geom_of(e->g, e->n, &s);
  cg_wino_block wb;
  if (gw_wino(&s, &wb)) {
    emit_gww(e, &s, &wb);
    return ATTNC_OK;
  }
  if (gw_direct(&s)) {
    emit_gwd(e, &s);
    return ATTNC_OK;
  }
  blocking b = gw_blocking(&s);
  int lanes = cg_gemm_lanes(s.dt);
  int64_t rows = gw_channels(&s) * s.khw, nacc = s.mg * rows;
  LLVMValueRef acc = cg_scratch(e, 0, s.dt);
  LLVMValueRef col = cg_scratch(e, align64(nacc * lanes * s.esz), s.dt);
  LLVMTypeRef vt = cg_vec_type(e, s.dt, lanes);
  cg_loop li, lz, ln, lb, lo;
  LLVMValueRef item = cg_loop_begin(e, &li, e->begin, e->end, 1);
  LLVMValueRef cc = cg_mul(e, item, cg_i64(e, gw_channels(&s)));
  LLVMValueRef g = LLVMBuildSDiv(e->b, cc, cg_i64(e, s.cg), "");
  LLVMValueRef c = LLVMBuildSRem(e->b, cc, cg_i64(e, s.cg), "");
  LLVMValueRef z = cg_loop_begin(e, &lz, cg_i64(e, 0), cg_i64(e, nacc), 1);
  cg_vstore(e, acc, cg_mul(e, z, cg_i64(e, lanes)), LLVMConstNull(vt));
  cg_loop_end(e, &lz);
  LLVMValueRef img = cg_loop_begin(e, &ln, cg_i64(e, 0), cg_i64(e, s.n), 1);
  if (b.nfull > 0) {
    LLVMValueRef blk = cg_loop_begin(e, &lb, cg_i64(e, 0), cg_i64(e, b.nfull), 1);
    gw_block(e, &s, &b, img, cc, g, cg_mul(e, blk, cg_i64(e, b.rb)), b.rb, col, acc);
    cg_loop_end(e, &lb);
  }
  if (b.rem > 0) gw_block(e, &s, &b, img, cc, g, cg_i64(e, b.nfull * b.rb), b.rem, col, acc);
  cg_loop_end(e, &ln);
  /* dw[(g*mg + m)*k + c*khw + t] = sum of the lanes of acc[m*rows + t]
   * (the block's rows are consecutive weight columns) */
  LLVMValueRef o = cg_loop_begin(e, &lo, cg_i64(e, 0), cg_i64(e, nacc), 1);
  LLVMValueRef m = LLVMBuildSDiv(e->b, o, cg_i64(e, rows), "");
  LLVMValueRef t = LLVMBuildSRem(e->b, o, cg_i64(e, rows), "");
  LLVMValueRef row = cg_add(e, cg_mul(e, g, cg_i64(e, s.mg)), m);
  LLVMValueRef di = cg_add(e, cg_add(e, cg_mul(e, row, cg_i64(e, s.k)), cg_mul(e, c, cg_i64(e, s.khw))), t);
  cg_store(e, e->arg[0], di, cg_vsum(e, cg_vload(e, acc, cg_mul(e, o, cg_i64(e, lanes)), lanes)));
  cg_loop_end(e, &lo);
  cg_loop_end(e, &li);
  return ATTNC_OK;
}

/* Registers this family's ops. */
void cg_register_conv(cg_kernel_impl *t) {
  t[IR_OP_conv2d].plan = plan_conv;
  t[IR_OP_conv2d].emit = emit_conv;
  t[IR_OP_conv2d_grad_input].plan = plan_grad_input;
  t[IR_OP_conv2d_grad_input].emit = emit_grad_input;
  t[IR_OP_conv2d_grad_weight].plan = plan_grad_weight;
  t[IR_OP_conv2d_grad_weight].emit = emit_grad_weight;
}
