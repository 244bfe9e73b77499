/* Building blocks of the convolution kernels (cg_ops_conv.c), emitted as
 * LLVM IR with every size a compile-time constant: a register-tiled GEMM
 * over a packed panel, a tiled "dot" GEMM that reduces along contiguous
 * rows (for weight gradients), and the im2col pack / col2im scatter-add of
 * one image. Vectors are the host's widest (cg_host_vector_floats: 8
 * floats with AVX2, 16 with AVX-512); register tiles fit its register file. */
#ifndef ATTNC_CG_GEMM_H
#define ATTNC_CG_GEMM_H
#include "cg_internal.h"

/* Lanes of a host vector of 'dt'. */
int cg_gemm_lanes(ir_dtype dt);

/* C[m*ldc + p] = sum_{k<K} A[m*am + k*ak] * B[k*ldb + p] for m < M, p < P.
 * A, B, C are element pointers of dtype 'dt'; B and C rows are read and
 * written only within [0, P) (the tail vector is masked). Register tiles of
 * a few rows of A by a few vectors of B, accumulated over all of K. */
void cg_gemm_emit(cg_emit *e, ir_dtype dt, LLVMValueRef A, int64_t am, int64_t ak, LLVMValueRef B,
                  int64_t ldb, LLVMValueRef C, int64_t ldc, int64_t M, int64_t K, int64_t P);

/* As cg_gemm_emit, but C[m*ldc + p] += the sum (C is read first). */
void cg_gemm_acc_emit(cg_emit *e, ir_dtype dt, LLVMValueRef A, int64_t am, int64_t ak, LLVMValueRef B,
                      int64_t ldb, LLVMValueRef C, int64_t ldc, int64_t M, int64_t K, int64_t P);

/* V[(m*K + k)*L .. +L] += lane partial sums of A[m*lda + p] * B[k*ldb + p]
 * over p < P (L = lanes; lane l holds the terms with p % L == l), for
 * m < M, k < K. V is a vector array of dtype 'dt'; reading stays within
 * [0, P) of each row. Summing V's lanes (cg_vsum) gives the dot products. */
void cg_gemm_dot_emit(cg_emit *e, ir_dtype dt, LLVMValueRef A, int64_t lda, LLVMValueRef B,
                      int64_t ldb, LLVMValueRef V, int64_t M, int64_t K, int64_t P);

/* Geometry of a 2-D window over one image: input rows of 'h' x 'w'
 * elements at channel stride h*w; output pixel (oy, ox) with window tap
 * (ky, kx) reads input (oy*sh + oh + ky*dh, ox*sw + ow + kx*dw), zero outside. */
typedef struct {
  int64_t h, w;   /* input plane */
  int64_t kh, kw; /* window */
  int64_t sh, sw; /* stride */
  int64_t oh, ow; /* offset of tap (0,0) at output (0,0): -pad */
  int64_t dh, dw; /* dilation */
  int64_t outw;   /* output row length */
} cg_window;

/* im2col of 'nc' channels at X (element pointer to the first channel):
 * col[((c*kh + ky)*kw + kx)*ldcol + (oy - oy0)*outw + ox] = x[c][iy][ix]
 * (0 outside the input) for output rows oy in [oy0, oy0 + rows), oy0 a
 * runtime i64 value, rows a constant. */
void cg_im2col_emit(cg_emit *e, const cg_window *wd, LLVMValueRef X, int64_t nc, LLVMValueRef oy0,
                    int64_t rows, LLVMValueRef col, int64_t ldcol);

/* The adjoint of cg_im2col_emit: x[c][iy][ix] += col[...] for every
 * in-bounds tap, in a fixed order (channel, tap, row, column). */
void cg_col2im_emit(cg_emit *e, const cg_window *wd, LLVMValueRef X, int64_t nc, LLVMValueRef oy0,
                    int64_t rows, LLVMValueRef col, int64_t ldcol);

/* ---- direct convolution (cg_conv_direct.c). Its buffer holds the input
 * rows a block of output rows reads, zero-padded, each row's columns split
 * into sw phases (column mod stride), so window taps are constant shifts
 * into it. Best when the window is at least as wide as the stride (else
 * it copies columns no tap reads). ---- */

/* Lanes of the vectors of the direct kernels (forward and weight
 * gradient) for window 'wd': the host's (cg_gemm_lanes), or a half or a
 * quarter of them (at least 4) when that pads an output row less (an 8x8
 * map takes 8 lanes with AVX-512 instead of 16 with half of them idle). */
int cg_direct_lanes(const cg_window *wd, ir_dtype dt);

/* Elements of the padded buffer for 'nc' channels and 'rows' output rows. */
int64_t cg_direct_buffer_elems(const cg_window *wd, int64_t nc, int64_t rows);

/* Output rows per block (at most outh, at least 1) so that the padded
 * buffer of 'nc' channels stays within about 'budget' bytes. */
int64_t cg_direct_rows(const cg_window *wd, int64_t nc, int64_t outh, int64_t esz, int64_t budget);

/* Stores zeros at P[base + i] for i in [a, b) (constants). */
void cg_zeros_emit(cg_emit *e, LLVMValueRef P, LLVMValueRef base, int64_t a, int64_t b);

/* Copies the padded input rows that output rows [oy0, oy0 + rows) of
 * window 'wd' read, 'nc' channels of X (planes of h*w), into P
 * (cg_direct_buffer_elems elements), as cg_direct_conv_emit does; unless
 * pf is NULL, prefetching each row's elements pf further on (the next
 * block's input). */
void cg_direct_fill_emit(cg_emit *e, const cg_window *wd, LLVMValueRef X, int64_t nc, LLVMValueRef oy0,
                         int64_t rows, LLVMValueRef pf, LLVMValueRef P);


enum { CG_DIRECT_MAX_TAPS = 16 };

/* Where that buffer holds what: channel c, output pixel (oy, ox) of the
 * block, window tap t (< CG_DIRECT_MAX_TAPS) reads P[c*plane + oy*row + ox
 * + tap[t]]. */
typedef struct {
  int64_t plane, row;
  int64_t tap[CG_DIRECT_MAX_TAPS];
} cg_direct_layout;
cg_direct_layout cg_direct_layout_of(const cg_window *wd, int64_t rows);

/* Y[m*ldy + oy*outw + ox] = sum_{c<nc, ky, kx} A[m*am + (c*kh + ky)*kw + kx] *
 * x[c][(oy0 + oy)*sh + oh + ky*dh][ox*sw + ow + kx*dw] (0 outside) for
 * m < M, oy < rows, ox < outw; X points at channel 0 (planes of h*w), Y at
 * output row oy0 of channel 0; P is a buffer of cg_direct_buffer_elems(wd,
 * nc, rows) elements. Each output is summed in the order (c, ky, kx), or
 * (c, kx, ky) when M is 1 or 2 (row tiles): an order fixed by the shapes. */
void cg_direct_conv_emit(cg_emit *e, ir_dtype dt, const cg_window *wd, LLVMValueRef X, int64_t nc,
                         LLVMValueRef oy0, int64_t rows, LLVMValueRef A, int64_t am, LLVMValueRef Y, int64_t ldy,
                         int64_t M, LLVMValueRef P);

/* V[(m*K + k)*L .. +L] (L = cg_direct_lanes) += lane partial sums over the 'nimg' images i and
 * all output pixels (oy < outh, ox < outw) of DY[i*dy_img + m*ldy +
 * oy*outw + ox] * x_i[c][oy*sh + oh + ky*dh][ox*sw + ow + kx*dw] with k = (c*kh +
 * ky)*kw + kx, K = nc*kh*kw, for m < M (in register tiles of
 * cg_direct_dot_rows channels, which share one copy of the padded input);
 * image i's channel 0 is at X + i*x_img; P holds cg_direct_dot_buffer_elems
 * elements. The order of the sums is fixed by the shapes alone. */
void cg_direct_dot_emit(cg_emit *e, ir_dtype dt, const cg_window *wd, LLVMValueRef X, int64_t x_img, int64_t nc,
                        int64_t nimg, int64_t outh, LLVMValueRef DY, int64_t dy_img, int64_t ldy, LLVMValueRef V,
                        int64_t M, LLVMValueRef P);

/* Elements of the buffer P of cg_direct_dot_emit: the padded input planes
 * of the nimg images and, when dy rows end in a partial vector or M is 1
 * or 2 (row tiles, which also add zero rows), the M dy planes of each with
 * rows of cg_direct_dot_row elements. */
int64_t cg_direct_dot_buffer_elems(const cg_window *wd, ir_dtype dt, int64_t nc, int64_t outh, int64_t nimg,
                                   int64_t M);

/* The row length, a whole number of vectors, of the dy copies of
 * cg_direct_dot_emit. */
int64_t cg_direct_dot_row(const cg_window *wd, ir_dtype dt);

/* dy channels per register tile of cg_direct_dot_emit (at most M) for a
 * window of khw taps ('wide': 32 vector registers). */
int cg_direct_dot_rows(int64_t M, int64_t khw, int wide);

/* ---- Winograd F(2x2, 3x3) (cg_conv_winograd.c): 3x3 stride-1 windows
 * of f32, in blocks of 2x2 output tiles. ---- */

/* 1 if window 'wd' with 'nc' input and M output channels (per group) and
 * 'outh' output rows takes the Winograd path: 3x3, stride and dilation 1,
 * even output height and width, at least 16 channels each way. */
int cg_wino_suits(const cg_window *wd, ir_dtype dt, int64_t nc, int64_t M, int64_t outh);

/* One work item's block: 'nimg' whole images (rows == outh), or 'rows'
 * output rows (even) of one image; 'tiles' 2x2 tiles in all, the rows of
 * the transformed planes 'ldt' elements apart. */
typedef struct {
  int64_t nimg, rows, tiles, ldt;
} cg_wino_block;

/* The block for a batch of n images: the largest of 1, 2, ... tile rows
 * (dividing outh/2), then 2, 3, ... whole images (dividing n) whose
 * transformed planes (16 of nc channels and 16 of M) stay within 'budget'
 * bytes, but at least the smallest with 'lanes' tiles (a whole vector of
 * the GEMM). */
cg_wino_block cg_wino_block_of(const cg_window *wd, int64_t nc, int64_t M, int64_t n, int64_t outh, int lanes,
                               int64_t budget);

/* The block of the weight gradient for a batch of n images: of the same
 * candidates, those with at least 'lanes' tiles (else the largest), the
 * one whose tile count is nearest 'target' (as a ratio). Its GEMMs sum
 * over the block's tiles into accumulators that every block loads and
 * stores again, so the tile count, not the scratch size, sets their
 * speed. */
cg_wino_block cg_wino_gw_block_of(const cg_window *wd, int64_t n, int64_t outh, int lanes, int64_t target);

/* Elements of one group's transformed weights: 16 x M x nc. */
int64_t cg_wino_weight_elems(int64_t nc, int64_t M);

/* Elements of a block's scratch: padded input rows, transformed input,
 * transformed output. */
int64_t cg_wino_buffer_elems(const cg_window *wd, int64_t nc, int64_t M, const cg_wino_block *b);

/* U[(p*M + m)*nc + c] = position p of G g G^T for the 3x3 filter g at
 * A + m*am + c*9 (row-major), for m < M, c < nc. */
void cg_wino_weights_emit(cg_emit *e, ir_dtype dt, LLVMValueRef A, int64_t am, int64_t nc, int64_t M,
                          LLVMValueRef U);

/* The convolution of cg_direct_conv_emit for one block of b: output rows
 * [oy0, oy0 + rows) (rows even; all of them when b->nimg > 1) of the
 * b->nimg images at X + i*x_img (channel 0, planes of h*w), written to Y +
 * i*y_img (channel 0, row oy0; channel stride ldy), from the transformed
 * weights U (cg_wino_weights_emit), with S a scratch of
 * cg_wino_buffer_elems elements. The order of the sums is fixed by the
 * shapes. The input and output of the next block (rows from oy0 + rows of
 * 'outh', or the next b->nimg images) are prefetched. */
void cg_wino_conv_emit(cg_emit *e, ir_dtype dt, const cg_window *wd, LLVMValueRef X, int64_t x_img, int64_t nc,
                       LLVMValueRef oy0, int64_t outh, const cg_wino_block *b, int64_t rows, LLVMValueRef U,
                       LLVMValueRef Y, int64_t y_img, int64_t ldy, int64_t M, LLVMValueRef S);

/* Elements of the scratch of cg_wino_gw_sums_emit for 'mb' dy channels. */
int64_t cg_wino_gw_buffer_elems(const cg_window *wd, int64_t nc, int64_t mb, const cg_wino_block *b);

/* Elements of the 16 transformed sums of cg_wino_gw_sums_emit. */
int64_t cg_wino_gw_sum_elems(int64_t nc, int64_t mb);

/* The weight gradient of the convolution of cg_wino_conv_emit, by the same
 * transforms, before the last one: dU[(p*mb + m)*nc + c] = position p of
 * the sum over the n images i and tiles of (A dy A^T) . (B^T d B) for m <
 * mb, c < nc, dy of image i at DY + i*dy_img + m*ldy (planes of outh*outw),
 * x_i at X + i*x_img; blocks of b (n divisible by b->nimg, outh by
 * b->rows) summed in a fixed order. S holds cg_wino_gw_buffer_elems
 * elements. */
void cg_wino_gw_sums_emit(cg_emit *e, ir_dtype dt, const cg_window *wd, LLVMValueRef X, int64_t x_img, int64_t nc,
                          int64_t n, int64_t outh, const cg_wino_block *b, LLVMValueRef DY, int64_t dy_img,
                          int64_t ldy, int64_t mb, LLVMValueRef dU, LLVMValueRef S);

/* DW[m*dwm + c*9 + ky*3 + kx] = G^T z G for the rows m in [m0, m1) and
 * c < nc, z the 16 sums of (m, c) over the 'nparts' sets of sums of
 * cg_wino_gw_sums_emit (mg dy channels each, 'part' elements apart),
 * added in order. */
void cg_wino_gw_finish_emit(cg_emit *e, ir_dtype dt, LLVMValueRef dU, int nparts, int64_t part, int64_t mg,
                            LLVMValueRef m0, LLVMValueRef m1, int64_t nc, LLVMValueRef DW, int64_t dwm);

#endif
