/* The JIT's conv2d, conv2d_grad_input and conv2d_grad_weight kernels
 * against the interpreter over a sweep of shapes (odd sizes, channel
 * counts off the vector width, strides, paddings 0..3, dilation, groups,
 * depthwise, 1x1 and 7x7 windows, kernels wider than the input, batches 1
 * to 3, blocks of rows with a remainder, f64; at stride 1 the direct
 * path's edges: rows not a multiple of the vector, narrower than it, H = 1,
 * C = 1, wide padding, row and image blocks with remainders; Winograd's
 * tile-row and whole-image blocks, masked tile rows, groups, padding, its
 * weight gradient), and the
 * results bitwise equal across runs and across 1 and 2 threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cg.h"
#include "cg_gemm.h"
#include "util_jit.h"

/* One convolution: x[n,c,h,w] * w[co,c/g,kh,kw], stride, pad, dilation. */
typedef struct {
  int n, c, co, h, w, kh, kw, sh, sw, ph, pw, dh, dw, g;
  const char *dt;
} conv_case;

static int out_size(int in, int k, int s, int p, int d) { return (in + 2 * p - d * (k - 1) - 1) / s + 1; }

/* IR text of a graph computing the three ops of case 'k' from inputs x, w, dy. */
static void case_text(const conv_case *k, char *buf, size_t size) {
  int oh = out_size(k->h, k->kh, k->sh, k->ph, k->dh), ow = out_size(k->w, k->kw, k->sw, k->pw, k->dw);
  char attrs[256];
  snprintf(attrs, sizeof attrs, "stride=[%d,%d] pad=[%d,%d] dilation=[%d,%d] groups=%d", k->sh, k->sw, k->ph,
           k->pw, k->dh, k->dw, k->g);
  snprintf(buf, size,
           "graph @t {\n"
           "  %%x = input name=\"x\" : %s[%d,%d,%d,%d]\n"
           "  %%w = param name=\"w\" : %s[%d,%d,%d,%d]\n"
           "  %%dy = input name=\"dy\" : %s[%d,%d,%d,%d]\n"
           "  %%y = conv2d(%%x, %%w) %s : %s[%d,%d,%d,%d]\n"
           "  %%dx = conv2d_grad_input(%%dy, %%w) %s in_shape=[%d,%d,%d,%d] : %s[%d,%d,%d,%d]\n"
           "  %%dw = conv2d_grad_weight(%%x, %%dy) %s kernel=[%d,%d] : %s[%d,%d,%d,%d]\n"
           "  output \"y\" = %%y\n  output \"dx\" = %%dx\n  output \"dw\" = %%dw\n}\n",
           k->dt, k->n, k->c, k->h, k->w, k->dt, k->co, k->c / k->g, k->kh, k->kw, k->dt, k->n, k->co, oh, ow,
           attrs, k->dt, k->n, k->co, oh, ow, attrs, k->n, k->c, k->h, k->w, k->dt, k->n, k->c, k->h, k->w, attrs,
           k->kh, k->kw, k->dt, k->co, k->c / k->g, k->kh, k->kw);
}

/* Parses the graph of case 'k' (it must verify). */
static ir_graph *case_graph(const conv_case *k) {
  char text[2048];
  case_text(k, text, sizeof text);
  ir_diag *d = ir_diag_create();
  ir_graph *g = ir_parse(text, "<test>", d);
  if (!g || ir_verify(g, d) != 0) fail_msg("case graph does not verify: %s\n%s", ir_diag_text(d), text);
  ir_diag_destroy(d);
  return g;
}

static const conv_case cases[] = {
    /* n  c  co  h   w kh kw sh sw ph pw dh dw  g */
    {1, 3, 5, 7, 9, 3, 3, 1, 1, 1, 1, 1, 1, 1, "f32"},     /* odd sizes, pad 1 */
    {3, 17, 33, 5, 5, 3, 3, 2, 2, 1, 1, 1, 1, 1, "f32"},   /* stride 2, odd channels */
    {2, 4, 6, 9, 7, 3, 3, 1, 1, 0, 0, 2, 2, 2, "f32"},     /* dilation 2, groups 2, pad 0 */
    {2, 16, 16, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1, 16, "f32"},  /* depthwise */
    {1, 5, 17, 11, 10, 7, 7, 2, 2, 3, 3, 1, 1, 1, "f32"},  /* 7x7 stride 2 pad 3 */
    {3, 33, 16, 6, 6, 1, 1, 2, 2, 0, 0, 1, 1, 1, "f32"},   /* 1x1 stride 2 shortcut */
    {2, 16, 32, 16, 16, 3, 3, 2, 2, 1, 1, 1, 1, 1, "f32"}, /* ResNet downsampling */
    {1, 3, 4, 4, 3, 3, 5, 1, 1, 1, 2, 1, 1, 1, "f32"},     /* kernel wider than the input */
    {2, 5, 3, 6, 5, 3, 3, 1, 1, 2, 2, 1, 1, 1, "f32"},     /* pad 2: output larger than input */
    {1, 4, 5, 7, 7, 3, 3, 1, 1, 3, 3, 1, 1, 1, "f32"},     /* pad 3 > kernel - 1 */
    {2, 6, 4, 9, 11, 3, 3, 1, 2, 0, 1, 1, 2, 2, "f32"},    /* mixed stride / pad / dilation, groups */
    {1, 64, 8, 13, 13, 3, 3, 1, 1, 1, 1, 1, 1, 1, "f32"},  /* row blocks with a remainder */
    {2, 16, 16, 32, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, "f32"}, /* ResNet stage 1 */
    {1, 6, 9, 10, 10, 3, 3, 3, 3, 2, 2, 2, 2, 3, "f32"},   /* stride 3, dilation 2, groups 3 */
    {2, 5, 7, 6, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, "f64"},     /* f64 */
    {3, 4, 6, 9, 8, 3, 3, 2, 2, 1, 1, 1, 1, 2, "f64"},     /* f64 stride 2, groups */
    {1, 8, 8, 5, 5, 5, 5, 1, 1, 2, 2, 1, 1, 8, "f64"},     /* f64 depthwise 5x5 */
    /* stride 1: the direct (padded rows buffer) paths */
    {2, 3, 5, 5, 13, 3, 3, 1, 1, 1, 1, 1, 1, 1, "f32"},    /* row = 1 full + 1 tail vector */
    {1, 5, 7, 3, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1, "f32"},    /* row = pair + tail vector */
    {2, 4, 9, 7, 24, 3, 3, 1, 1, 0, 1, 1, 1, 1, "f32"},    /* row = pair + 1 full vector, pad 0/1 */
    {1, 2, 3, 5, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1, "f32"},    /* 5 vectors per row */
    {2, 3, 4, 7, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, "f32"},     /* one vector per row, odd height */
    {1, 5, 6, 6, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, "f32"},     /* row narrower than a vector */
    {2, 4, 5, 1, 11, 3, 3, 1, 1, 1, 1, 1, 1, 1, "f32"},    /* H = 1 */
    {2, 1, 1, 6, 9, 3, 3, 1, 1, 1, 1, 1, 1, 1, "f32"},     /* C = 1, CO = 1 */
    {1, 3, 5, 9, 10, 3, 3, 1, 1, 2, 3, 1, 1, 1, "f32"},    /* pad 2 / 3: buffer wider than the input */
    {1, 4, 4, 10, 11, 3, 3, 1, 1, 2, 1, 2, 2, 1, "f32"},   /* dilation 2 */
    {2, 17, 16, 5, 9, 1, 1, 1, 1, 0, 0, 1, 1, 1, "f32"},   /* 1x1 stride 1 */
    {1, 6, 4, 9, 9, 5, 5, 1, 1, 2, 2, 1, 1, 2, "f32"},     /* 5x5, groups 2 */
    {1, 32, 8, 13, 34, 3, 3, 1, 1, 1, 1, 1, 1, 1, "f32"},  /* row blocks of 5 + remainder 3 */
    {3, 2, 6, 20, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1, "f32"},   /* weight gradient: images 2 + 1, dy channels 4 + 2 */
    {2, 33, 33, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, "f32"},   /* 33 channels, 8x8 */
    /* weight gradient rows ending in a partial vector: dy copied to whole-vector rows */
    {3, 8, 9, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, "f32"},     /* 7x7 (Fashion-MNIST stage 3), dy channels 4+4+1 */
    {2, 6, 5, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1, 1, "f32"},   /* 14 = 1 full + 6-lane tail */
    {2, 2, 1, 14, 14, 7, 7, 1, 1, 3, 3, 1, 1, 1, "f32"},   /* HAM's 7x7 spatial conv */
    {2, 3, 5, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, "f64"},     /* f64: 7 = 4 + 3-lane tail */
    /* stride > 1 on the direct path: column phases */
    {2, 3, 5, 9, 21, 3, 3, 2, 2, 1, 1, 1, 1, 1, "f32"},    /* stride 2, row = full + tail vector */
    {1, 4, 6, 11, 7, 3, 3, 2, 2, 0, 0, 1, 1, 1, "f32"},    /* stride 2, narrow rows, odd height */
    {1, 2, 3, 8, 9, 2, 2, 2, 2, 0, 0, 1, 1, 1, "f32"},     /* 2x2 stride 2 */
    {1, 3, 4, 9, 10, 3, 3, 2, 3, 2, 3, 1, 1, 1, "f32"},    /* strides 2 / 3, pad 2 / 3 */
    /* row tiles (1 or 2 output channels per group): the spatial attention
     * map at CIFAR size (row tiles of 7 + 4 remainder rows, 4 vectors per
     * row), tails, dilation, column stride, f64 */
    {2, 2, 1, 32, 32, 7, 7, 1, 1, 3, 3, 1, 1, 1, "f32"},   /* CBAM / HAM 7x7 at 32x32 */
    {1, 2, 1, 11, 13, 7, 7, 1, 1, 3, 3, 1, 1, 1, "f32"},   /* 1 full + 5-lane tail vector */
    {2, 1, 2, 12, 19, 5, 5, 1, 1, 4, 2, 2, 2, 1, "f32"},   /* dilation 2, 2 outputs, uneven pad */
    {1, 2, 1, 9, 23, 7, 5, 1, 2, 3, 2, 1, 1, 1, "f32"},    /* column stride 2 (phases), 7x5 */
    {1, 4, 2, 15, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2, "f32"},    /* groups 2, 1 output each, 15 rows */
    {2, 2, 1, 10, 9, 7, 7, 1, 1, 3, 3, 1, 1, 1, "f64"},    /* f64 */
    {1, 2, 1, 40, 8, 11, 11, 1, 1, 5, 5, 1, 1, 1, "f32"},  /* 11x11: the largest row-tiled window */
    /* Winograd F(2x2,3x3): 3x3 stride 1, >= 16 channels, even output */
    {3, 16, 16, 28, 28, 3, 3, 1, 1, 1, 1, 1, 1, 1, "f32"}, /* 14 tiles a row (masked tail), blocks of 2 tile rows */
    {4, 16, 20, 4, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, "f32"},   /* blocks of 4 whole images, 20 outputs */
    {2, 32, 34, 10, 12, 3, 3, 1, 1, 0, 0, 1, 1, 2, "f32"}, /* groups 2, pad 0 */
    {1, 17, 16, 6, 8, 3, 3, 1, 1, 2, 2, 1, 1, 1, "f32"},   /* pad 2: output larger than input */
    {2, 16, 16, 7, 9, 3, 3, 1, 1, 1, 1, 1, 1, 1, "f32"},   /* odd output: the direct path */
    /* Winograd weight gradient: sums over two halves of the images (one part
     * for an odd batch), finished by halves of the dy channels */
    {2, 48, 20, 8, 10, 3, 3, 1, 1, 1, 1, 1, 1, 1, "f32"},  /* whole images (20 tiles), halves 10 + 10 */
    {2, 32, 16, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, "f32"}, /* blocks of tile rows (16 tiles), as CIFAR's 16x16 */
    {1, 64, 17, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, "f32"},   /* one image: one part; halves 9 + 8 */
    {3, 48, 17, 6, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, "f32"},   /* odd batch: one part */
    {4, 50, 16, 4, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, "f32"},   /* blocks of 2 whole images, 50 = 3 vectors + 2 */
    {2, 96, 34, 6, 8, 3, 3, 1, 1, 0, 1, 1, 1, 2, "f32"},   /* groups 2, pad 0 / 1 */
};
enum { NCASES = sizeof cases / sizeof cases[0] };

/* The Winograd weight gradient's blocks: of those with a whole vector of
 * tiles, the nearest 16 tiles, on ResNet-20's CIFAR and Fashion-MNIST
 * layers (batch 128 in two parts of 64), whatever the vector width; with
 * 8 lanes the 16x16 and 8x8 layers took blocks of 8 tiles before, which
 * made the 32-channel layer's weight gradient 2.5 times slower. */
static void test_wino_gw_blocks(void **state) {
  (void)state;
  static const struct {
    int size, images, lanes; /* output size, images of the item */
    int64_t tiles, rows, nimg;
  } want[] = {
      {32, 64, 8, 16, 2, 1},  {16, 64, 8, 16, 4, 1},  {8, 64, 8, 16, 8, 1},
      {28, 64, 8, 14, 2, 1},  {14, 64, 8, 49, 14, 1}, {32, 64, 16, 16, 2, 1},
      {16, 64, 16, 16, 4, 1}, {8, 64, 16, 16, 8, 1},  {28, 64, 16, 28, 4, 1},
      {14, 64, 16, 49, 14, 1},
      {4, 2, 16, 8, 4, 2}, /* no block reaches the vector: the largest (2 whole images of 4 tiles) */
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    int n = want[i].size;
    cg_window wd = {n, n, 3, 3, 1, 1, -1, -1, 1, 1, n};
    cg_wino_block b = cg_wino_gw_block_of(&wd, want[i].images, n, want[i].lanes, 16);
    if (b.tiles != want[i].tiles || b.rows != want[i].rows || b.nimg != want[i].nimg)
      fail_msg("%dx%d, %d lanes: %lld tiles, %lld rows, %lld images", n, n, want[i].lanes, (long long)b.tiles,
               (long long)b.rows, (long long)b.nimg);
  }
}

/* Every case on the JIT against the interpreter, alternating 1 and 2 threads. */
static void test_sweep(void **state) {
  (void)state;
  for (int i = 0; i < NCASES; i++) {
    ir_graph *g = case_graph(&cases[i]);
    double rtol = strcmp(cases[i].dt, "f64") ? 1e-5 : 1e-10;
    double worst = tj_compare(g, NULL, 100 + (uint64_t)i, 1 + i % 2, rtol);
    assert_true(worst <= rtol);
    ir_graph_destroy(g);
  }
}

/* Runs 'g' with 'threads' threads over 'src' twice; the two runs must give
 * the same bits. Returns the outputs of the last run (caller frees). */
static ir_bundle *run_twice(const ir_graph *g, const ir_bundle *src, int threads) {
  ir_diag *d = ir_diag_create();
  cg_options o = {.threads = threads};
  cg_program *p = NULL;
  if (cg_program_create(g, &o, &p, d) != ATTNC_OK) fail_msg("jit compile: %s", ir_diag_text(d));
  ir_bundle *a = ir_bundle_create(), *b = ir_bundle_create();
  assert_int_equal(cg_program_run_bundle(p, src, a, d), ATTNC_OK);
  assert_int_equal(cg_program_run_bundle(p, src, b, d), ATTNC_OK);
  for (int i = 0; i < a->count; i++) {
    const ir_tensor *x = a->tensors[i], *y = ir_bundle_get(b, a->names[i]);
    size_t bytes = (size_t)ir_type_numel(&x->type) * ir_dtype_size(x->type.dtype);
    assert_memory_equal(x->data, y->data, bytes);
  }
  ir_bundle_destroy(a);
  cg_program_destroy(p);
  ir_diag_destroy(d);
  return b;
}

/* Two runs give equal bits, and (each output being computed by one thread
 * in a fixed order) 1 and 2 threads give equal bits too. */
static void test_deterministic(void **state) {
  (void)state;
  const int picks[] = {1, 2, 6, 12, 18, 21, 29, 30, 32, 33, 35, 40, 42, 48, 52, 54, 56};
  for (size_t i = 0; i < sizeof picks / sizeof picks[0]; i++) {
    ir_graph *g = case_graph(&cases[picks[i]]);
    ir_bundle *src = tj_sources(g, NULL, 7 + i);
    ir_bundle *one = run_twice(g, src, 1), *two = run_twice(g, src, 2);
    assert_int_equal(one->count, 3);
    for (int k = 0; k < one->count; k++) {
      const ir_tensor *x = one->tensors[k], *y = ir_bundle_get(two, one->names[k]);
      assert_non_null(y);
      assert_memory_equal(x->data, y->data, (size_t)ir_type_numel(&x->type) * ir_dtype_size(x->type.dtype));
    }
    ir_bundle_destroy(one);
    ir_bundle_destroy(two);
    ir_bundle_destroy(src);
    ir_graph_destroy(g);
  }
}

/* A hand-checked case: a 1x1 image of ones through a 2-channel 3x3 window
 * with pad 1 sees only the centre tap: y[o] = w[o,0,1,1] + w[o,1,1,1]. */
static void test_hand_values(void **state) {
  (void)state;
  const char *text =
      "graph @t {\n  %x = input name=\"x\" : f32[1,2,1,1]\n  %w = param name=\"w\" : f32[1,2,3,3]\n"
      "  %y = conv2d(%x, %w) stride=[1,1] pad=[1,1] dilation=[1,1] groups=1 : f32[1,1,1,1]\n"
      "  output \"y\" = %y\n}\n";
  ir_diag *d = ir_diag_create();
  ir_graph *g = ir_parse(text, "<test>", d);
  assert_non_null(g);
  cg_program *p = NULL;
  assert_int_equal(cg_program_create(g, NULL, &p, d), ATTNC_OK);
  float *x = cg_program_input(p, "x", NULL), *w = cg_program_input(p, "w", NULL);
  x[0] = 1;
  x[1] = 1;
  for (int i = 0; i < 18; i++) w[i] = (float)(i + 1);
  assert_int_equal(cg_program_run(p, d), ATTNC_OK);
  float *y = cg_program_output(p, "y", NULL);
  assert_true(y[0] == 5.0f + 14.0f);
  cg_program_destroy(p);
  ir_graph_destroy(g);
  ir_diag_destroy(d);
}

/* The profile of one run of 'text' (conv2d, conv2d_grad_input and
 * conv2d_grad_weight of a 16->16 3x3 layer at stride 1 and at stride 2),
 * as a string the caller frees. */
static char *profile_of(const char *text) {
  ir_diag *d = ir_diag_create();
  ir_graph *g = ir_parse(text, "<test>", d);
  assert_non_null(g);
  cg_program *p = NULL;
  if (cg_program_create(g, NULL, &p, d) != ATTNC_OK) fail_msg("jit compile: %s", ir_diag_text(d));
  cg_program_set_profile(p, 1);
  assert_int_equal(cg_program_run(p, d), ATTNC_OK);
  char *buf = tj_profile_text(p);
  cg_program_destroy(p);
  ir_graph_destroy(g);
  ir_diag_destroy(d);
  return buf;
}

/* 1 if the profile has a line naming 'algo' for the kernel whose text
 * starts with 'kernel'. */
static int profile_says(const char *prof, const char *algo, const char *kernel) {
  char want[256];
  snprintf(want, sizeof want, "[%s] %s", algo, kernel);
  return strstr(prof, want) != NULL;
}

/* attnc bench --profile names the algorithm each convolution took:
 * Winograd for the 3x3 stride-1 layer (every direction), at stride 2 the
 * direct kernels forward and for the weights and col2im for the input,
 * the direct kernels under ATTNC_NO_WINOGRAD=1. */
static void test_profile_algorithms(void **state) {
  (void)state;
  const char *text =
      "graph @t {\n  %x = input name=\"x\" : f32[2,16,8,8]\n  %w = param name=\"w\" : f32[16,16,3,3]\n"
      "  %dy = input name=\"dy\" : f32[2,16,8,8]\n  %dh = input name=\"dh\" : f32[2,16,4,4]\n"
      "  %y = conv2d(%x, %w) stride=[1,1] pad=[1,1] dilation=[1,1] groups=1 : f32[2,16,8,8]\n"
      "  %dx = conv2d_grad_input(%dy, %w) stride=[1,1] pad=[1,1] dilation=[1,1] groups=1 in_shape=[2,16,8,8]"
      " : f32[2,16,8,8]\n"
      "  %dw = conv2d_grad_weight(%x, %dy) stride=[1,1] pad=[1,1] dilation=[1,1] groups=1 kernel=[3,3]"
      " : f32[16,16,3,3]\n"
      "  %h = conv2d(%x, %w) stride=[2,2] pad=[1,1] dilation=[1,1] groups=1 : f32[2,16,4,4]\n"
      "  %dx2 = conv2d_grad_input(%dh, %w) stride=[2,2] pad=[1,1] dilation=[1,1] groups=1 in_shape=[2,16,8,8]"
      " : f32[2,16,8,8]\n"
      "  %dw2 = conv2d_grad_weight(%x, %dh) stride=[2,2] pad=[1,1] dilation=[1,1] groups=1 kernel=[3,3]"
      " : f32[16,16,3,3]\n"
      "  output \"y\" = %y\n  output \"dx\" = %dx\n  output \"dw\" = %dw\n"
      "  output \"h\" = %h\n  output \"dx2\" = %dx2\n  output \"dw2\" = %dw2\n}\n";
  char *prof = profile_of(text);
  assert_true(profile_says(prof, "winograd", "conv2d f32[2,16,8,8]"));
  assert_true(profile_says(prof, "winograd", "conv2d_grad_input f32[2,16,8,8](f32[2,16,8,8]"));
  assert_true(profile_says(prof, "winograd", "conv2d_grad_weight f32[16,16,3,3](f32[2,16,8,8],f32[2,16,8,8])"));
  assert_true(profile_says(prof, "direct", "conv2d f32[2,16,4,4]"));
  assert_true(profile_says(prof, "col2im", "conv2d_grad_input f32[2,16,8,8](f32[2,16,4,4]"));
  assert_true(profile_says(prof, "direct", "conv2d_grad_weight f32[16,16,3,3](f32[2,16,8,8],f32[2,16,4,4])"));
  free(prof);
  setenv("ATTNC_NO_WINOGRAD", "1", 1);
  prof = profile_of(text);
  unsetenv("ATTNC_NO_WINOGRAD");
  assert_false(strstr(prof, "[winograd]"));
  assert_true(profile_says(prof, "direct", "conv2d f32[2,16,8,8]"));
  free(prof);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_wino_gw_blocks),
      cmocka_unit_test(test_hand_values),
      cmocka_unit_test(test_profile_algorithms),
      cmocka_unit_test(test_sweep),
      cmocka_unit_test(test_deterministic),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
