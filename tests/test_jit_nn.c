/* The JIT's batch-norm (train, eval, gradient) and pooling (max, avg and
 * their gradients) kernels against the interpreter: rank 2, 3 and 4 inputs,
 * odd channel counts and planes, N = 1, a large-mean input, eps values,
 * f64; pooling kernels 2/3/7, strides 1/2, pads 0/1/3, windows hanging off
 * the edge, ties and -inf windows for the max gradient; 1 and 2 threads, and
 * bit-identical results for 1 and 2 threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "cg.h"
#include "util_jit.h"
#include "util_jitr.h"

/* Formats dims as "[a,b,...]". */
static void dims_text(const int *d, int rank, char *buf, size_t size) {
  size_t len = (size_t)snprintf(buf, size, "[");
  for (int i = 0; i < rank; i++) len += (size_t)snprintf(buf + len, size - len, "%s%d", i ? "," : "", d[i]);
  snprintf(buf + len, size - len, "]");
}

/* IR text computing batchnorm_train, batchnorm_eval, batchnorm_train_grad,
 * batchnorm_stats and batchnorm_param_grad of x (+ 'offset', to move the
 * mean away from 0) with eps. */
static void bn_text(const char *dt, const int *d, int rank, double eps, double offset, char *buf, size_t size) {
  char sh[64];
  dims_text(d, rank, sh, sizeof sh);
  snprintf(buf, size,
           "graph @t {\n"
           "  %%x0 = input name=\"x\" : %s%s\n"
           "  %%dy = input name=\"dy\" : %s%s\n"
           "  %%g = param name=\"bn.weight\" : %s[%d]\n"
           "  %%b = param name=\"bn.bias\" : %s[%d]\n"
           "  %%m = buffer name=\"bn.running_mean\" : %s[%d]\n"
           "  %%v = buffer name=\"bn.running_var\" : %s[%d]\n"
           "  %%c = const value=%g : %s[]\n"
           "  %%x = add(%%x0, %%c) : %s%s\n"
           "  %%y = batchnorm_train(%%x, %%g, %%b) eps=%g : %s%s\n"
           "  %%e = batchnorm_eval(%%x, %%g, %%b, %%m, %%v) eps=%g : %s%s\n"
           "  %%dx = batchnorm_train_grad(%%x, %%g, %%dy) eps=%g : %s%s\n"
           "  %%s = batchnorm_stats(%%x) : %s[2,%d]\n"
           "  %%pg = batchnorm_param_grad(%%x, %%dy) eps=%g : %s[2,%d]\n"
           "  output \"y\" = %%y\n  output \"e\" = %%e\n  output \"dx\" = %%dx\n"
           "  output \"s\" = %%s\n  output \"pg\" = %%pg\n}\n",
           dt, sh, dt, sh, dt, d[1], dt, d[1], dt, d[1], dt, d[1], offset, dt, dt, sh, eps, dt, sh, eps, dt, sh,
           eps, dt, sh, dt, d[1], eps, dt, d[1]);
}

typedef struct {
  const char *dt;
  int rank, d[4];
  double eps, offset;
} bn_case;

/* Every batch-norm op over a sweep of shapes. */
static void test_batchnorm(void **state) {
  (void)state;
  static const bn_case cases[] = {
      {"f32", 2, {1, 5}, 1e-5, 0},        /* N = 1: zero variance */
      {"f32", 2, {2, 3}, 1e-3, 0},
      {"f32", 2, {7, 13}, 1e-5, 0},       /* channels off the vector width */
      {"f32", 2, {128, 64}, 1e-5, 0},
      {"f32", 2, {128, 37}, 0.1, 0},
      {"f32", 3, {4, 6, 10}, 1e-5, 0},
      {"f32", 4, {1, 3, 4, 4}, 1e-5, 0},
      {"f32", 4, {2, 5, 3, 7}, 1e-5, 0},  /* inner 21: one vector and a tail */
      {"f32", 4, {4, 17, 9, 11}, 1e-3, 0},
      {"f32", 4, {3, 4, 2, 2}, 1e-5, 0},  /* inner smaller than a vector */
      {"f32", 4, {8, 64, 8, 8}, 1e-5, 0},
      {"f32", 4, {6, 7, 13, 13}, 1e-5, 100}, /* mean far from 0 */
      {"f32", 4, {128, 16, 32, 32}, 1e-5, 0},
      {"f32", 4, {4, 3, 64, 64}, 1e-5, 10}, /* 4096 per row: the longest summed in f32 per row */
      {"f32", 4, {2, 3, 80, 80}, 1e-5, 0},  /* longer rows: summed in double */
      {"f64", 2, {9, 11}, 1e-5, 0},
      {"f64", 4, {3, 5, 7, 9}, 1e-5, 3},
      {"f64", 4, {2, 3, 8, 8}, 0.5, 0},
      /* few channels, many values: each channel's sums split over batch parts */
      {"f32", 4, {128, 1, 32, 32}, 1e-5, 0}, /* a spatial attention map: 8 parts */
      {"f32", 4, {5, 2, 60, 60}, 1e-5, 50},  /* 4 parts of 1, 1, 1, 2 rows */
      {"f32", 4, {3, 1, 100, 100}, 1e-5, 0}, /* rows past 4096 (double sums), 3 parts */
      {"f64", 4, {16, 1, 32, 32}, 1e-5, 2},
  };
  char text[2048];
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    const bn_case *c = &cases[i];
    bn_text(c->dt, c->d, c->rank, c->eps, c->offset, text, sizeof text);
    double rtol = strcmp(c->dt, "f64") ? 1e-5 : 1e-10;
    tj_compare_text(text, 100 + i, 1 + (int)(i % 2), rtol);
  }
}

/* The batch-split kernels add each channel's part sums in part order, so
 * 1 and 2 threads give the same bits. */
static void test_batchnorm_split_threads(void **state) {
  (void)state;
  static const int shapes[][4] = {{128, 1, 32, 32}, {5, 2, 60, 60}, {9, 3, 40, 40}};
  char text[2048];
  for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
    bn_text("f32", shapes[i], 4, 1e-5, 1, text, sizeof text);
    tjr_same_bits(text, 300 + i);
  }
}

/* Output size of a pooling window. */
static int pool_out(int in, int k, int s, int p) { return (in + 2 * p - k) / s + 1; }

typedef struct {
  const char *dt;
  int n, c, h, w, kh, kw, sh, sw, ph, pw;
} pool_case;

/* IR text of the four pooling ops of case 'k' from inputs x and dy. */
static void pool_text(const pool_case *k, char *buf, size_t size) {
  int oh = pool_out(k->h, k->kh, k->sh, k->ph), ow = pool_out(k->w, k->kw, k->sw, k->pw);
  char a[128];
  snprintf(a, sizeof a, "kernel=[%d,%d] stride=[%d,%d] pad=[%d,%d]", k->kh, k->kw, k->sh, k->sw, k->ph, k->pw);
  snprintf(buf, size,
           "graph @t {\n"
           "  %%x = input name=\"x\" : %s[%d,%d,%d,%d]\n"
           "  %%dy = input name=\"dy\" : %s[%d,%d,%d,%d]\n"
           "  %%m = max_pool2d(%%x) %s : %s[%d,%d,%d,%d]\n"
           "  %%a = avg_pool2d(%%x) %s : %s[%d,%d,%d,%d]\n"
           "  %%dm = max_pool2d_grad(%%x, %%dy) %s : %s[%d,%d,%d,%d]\n"
           "  %%da = avg_pool2d_grad(%%dy) %s in_shape=[%d,%d,%d,%d] : %s[%d,%d,%d,%d]\n"
           "  output \"m\" = %%m\n  output \"a\" = %%a\n  output \"dm\" = %%dm\n  output \"da\" = %%da\n}\n",
           k->dt, k->n, k->c, k->h, k->w, k->dt, k->n, k->c, oh, ow, a, k->dt, k->n, k->c, oh, ow, a, k->dt, k->n,
           k->c, oh, ow, a, k->dt, k->n, k->c, k->h, k->w, a, k->n, k->c, k->h, k->w, k->dt, k->n, k->c, k->h, k->w);
}

/* Parses IR text that must verify. */
static ir_graph *parse_ok(const char *text) {
  ir_diag *d = ir_diag_create();
  ir_graph *g = ir_parse(text, "<test>", d);
  if (!g || ir_verify(g, d) != 0) fail_msg("graph does not verify: %s\n%s", ir_diag_text(d), text);
  ir_diag_destroy(d);
  return g;
}

static const pool_case pool_cases[] = {
    /* dt  n  c   h   w kh kw sh sw ph pw */
    {"f32", 2, 3, 9, 11, 2, 2, 2, 2, 0, 0},
    {"f32", 2, 3, 9, 11, 3, 3, 2, 2, 1, 1},   /* ResNet stem pattern, odd plane */
    {"f32", 1, 2, 7, 7, 3, 3, 1, 1, 1, 1},
    {"f32", 1, 2, 8, 8, 7, 7, 1, 1, 3, 3},    /* 7x7 window, pad 3 */
    {"f32", 2, 2, 13, 10, 7, 7, 2, 2, 3, 3},
    {"f32", 1, 3, 5, 6, 2, 2, 1, 1, 1, 1},    /* pad 1 on a 2x2 window: hangs off both edges */
    {"f32", 3, 5, 17, 5, 3, 2, 2, 1, 1, 0},   /* asymmetric window, stride and pad */
    {"f32", 2, 4, 32, 32, 3, 3, 2, 2, 1, 1},  /* rows of several vectors */
    {"f32", 1, 1, 40, 41, 2, 3, 1, 3, 1, 1},  /* stride 3 along W */
    {"f32", 1, 1, 20, 41, 3, 5, 2, 5, 0, 2},  /* stride 5: gathered lanes */
    {"f64", 2, 3, 9, 11, 3, 3, 2, 2, 1, 1},
    {"f64", 1, 2, 19, 23, 2, 2, 1, 1, 0, 0},
};

/* Every pooling op over the sweep, random inputs. */
static void test_pool(void **state) {
  (void)state;
  char text[2048];
  for (size_t i = 0; i < sizeof pool_cases / sizeof *pool_cases; i++) {
    pool_text(&pool_cases[i], text, sizeof text);
    tj_compare_text(text, 300 + i, 1 + (int)(i % 2), strcmp(pool_cases[i].dt, "f64") ? 1e-5 : 1e-12);
  }
}

/* Max pooling with ties (values from {0,1,2}), a -inf region and a NaN:
 * the gradient must go to the first maximum of each window. */
static void test_pool_ties(void **state) {
  (void)state;
  char text[2048];
  for (size_t i = 0; i < sizeof pool_cases / sizeof *pool_cases; i++) {
    const pool_case *k = &pool_cases[i];
    pool_text(k, text, sizeof text);
    ir_graph *g = parse_ok(text);
    ir_type t = g->nodes[0]->type;
    ir_tensor *x = ir_tensor_create(t);
    int64_t n = ir_type_numel(&t);
    uint64_t r = 12345 + i;
    for (int64_t j = 0; j < n; j++) {
      r = r * 6364136223846793005ull + 1442695040888963407ull;
      ir_tensor_set(x, j, (double)((r >> 33) % 3));
    }
    /* the top-left 3x3 corner of the first plane all -inf; a NaN in the second row */
    for (int y = 0; y < 3 && y < k->h; y++)
      for (int xx = 0; xx < 3 && xx < k->w; xx++) ir_tensor_set(x, y * k->w + xx, -INFINITY);
    if (k->h > 4) ir_tensor_set(x, 4 * k->w + k->w / 2, NAN);
    ir_bundle *given = ir_bundle_create();
    ir_bundle_put(given, "x", x);
    tj_compare(g, given, 500 + i, 2 - (int)(i % 2), strcmp(k->dt, "f64") ? 1e-5 : 1e-12);
    ir_bundle_destroy(given);
    ir_graph_destroy(g);
  }
}

/* Runs 'g' on the JIT with 'threads' threads over sources from 'seed'; the
 * outputs go to a new bundle. */
static ir_bundle *run_jit(const ir_graph *g, int threads, uint64_t seed) {
  ir_diag *d = ir_diag_create();
  cg_options o = {.threads = threads};
  cg_program *p = NULL;
  if (cg_program_create(g, &o, &p, d) != ATTNC_OK) fail_msg("jit: %s", ir_diag_text(d));
  ir_bundle *src = tj_sources(g, NULL, seed), *out = ir_bundle_create();
  if (cg_program_run_bundle(p, src, out, d) != ATTNC_OK) fail_msg("run: %s", ir_diag_text(d));
  cg_program_destroy(p);
  ir_bundle_destroy(src);
  ir_diag_destroy(d);
  return out;
}

/* Batch norm and pooling give the same bits with 1 and 2 threads. */
static void test_threads_bitwise(void **state) {
  (void)state;
  char text[4096];
  static const int d[4] = {16, 24, 9, 9};
  bn_text("f32", d, 4, 1e-5, 0, text, sizeof text);
  for (int pass = 0; pass < 2; pass++) {
    if (pass == 1) pool_text(&pool_cases[7], text, sizeof text);
    ir_graph *g = parse_ok(text);
    ir_bundle *a = run_jit(g, 1, 9), *b = run_jit(g, 2, 9);
    assert_int_equal(a->count, b->count);
    for (int i = 0; i < a->count; i++) {
      const ir_tensor *ta = a->tensors[i], *tb = ir_bundle_get(b, a->names[i]);
      assert_non_null(tb);
      int64_t bytes = ir_type_numel(&ta->type) * (int64_t)ir_dtype_size(ta->type.dtype);
      assert_memory_equal(ta->data, tb->data, (size_t)bytes);
    }
    ir_bundle_destroy(a);
    ir_bundle_destroy(b);
    ir_graph_destroy(g);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_batchnorm),
      cmocka_unit_test(test_batchnorm_split_threads),
      cmocka_unit_test(test_pool),
      cmocka_unit_test(test_pool_ties),
      cmocka_unit_test(test_threads_bitwise),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
