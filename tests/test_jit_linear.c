/* The JIT's matmul and conv1d (forward, input and weight gradients) kernels
 * against the interpreter: every trans_a/trans_b combination, batched and
 * shared-b operands, sizes 1, 7, 17, 65 around the vector and block widths,
 * the ResNet-50 classifier shape, f64; conv1d with strides, pads, dilation,
 * groups, depthwise and kernels wider than the input (the ECA/HAM channel
 * conv); 1 and 2 threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include "util_jit.h"

/* One matmul: batch dims (nb of them, 0 = rank 2), M, K, N, flags. */
typedef struct {
  int nb, b0, b1; /* batch dims of a (and of b unless shared) */
  int shared;     /* b is rank 2 */
  int m, k, n, ta, tb;
  const char *dt;
} mm_case;

/* Writes "[batch..., r, c]" into buf. */
static void mm_dims(const mm_case *c, int batched, int r, int cols, char *buf, size_t size) {
  if (!batched || c->nb == 0)
    snprintf(buf, size, "[%d,%d]", r, cols);
  else if (c->nb == 1)
    snprintf(buf, size, "[%d,%d,%d]", c->b0, r, cols);
  else
    snprintf(buf, size, "[%d,%d,%d,%d]", c->b0, c->b1, r, cols);
}

/* IR text of matmul case 'c'. */
static void mm_text(const mm_case *c, char *buf, size_t size) {
  char a[64], b[64], y[64];
  mm_dims(c, 1, c->ta ? c->k : c->m, c->ta ? c->m : c->k, a, sizeof a);
  mm_dims(c, !c->shared, c->tb ? c->n : c->k, c->tb ? c->k : c->n, b, sizeof b);
  mm_dims(c, 1, c->m, c->n, y, sizeof y);
  snprintf(buf, size,
           "graph @t {\n  %%a = input name=\"a\" : %s%s\n  %%b = param name=\"b\" : %s%s\n"
           "  %%y = matmul(%%a, %%b) trans_a=%d trans_b=%d : %s%s\n  output \"y\" = %%y\n}\n",
           c->dt, a, c->dt, b, c->ta, c->tb, c->dt, y);
}

/* Every trans combination over odd sizes, rank 2: the four in one graph. */
static void test_matmul_sizes(void **state) {
  (void)state;
  static const int sz[][3] = {{1, 1, 1}, {7, 17, 65}, {65, 7, 17}, {17, 65, 7}, {1, 33, 10}, {13, 5, 16}};
  char text[4096];
  for (size_t s = 0; s < sizeof sz / sizeof *sz; s++) {
    size_t len = (size_t)snprintf(text, sizeof text, "graph @t {\n");
    for (int t = 0; t < 4; t++) {
      int ta = t / 2, tb = t % 2, m = sz[s][0], k = sz[s][1], n = sz[s][2];
      len += (size_t)snprintf(text + len, sizeof text - len,
                              "  %%a%d = input name=\"a%d\" : f32[%d,%d]\n  %%b%d = param name=\"b%d\" : f32[%d,%d]\n"
                              "  %%y%d = matmul(%%a%d, %%b%d) trans_a=%d trans_b=%d : f32[%d,%d]\n"
                              "  output \"y%d\" = %%y%d\n",
                              t, t, ta ? k : m, ta ? m : k, t, t, tb ? n : k, tb ? k : n, t, t, t, ta, tb, m, n, t, t);
    }
    snprintf(text + len, sizeof text - len, "}\n");
    tj_compare_text(text, 40 + s, 1 + (int)(s % 2), 1e-5);
  }
}

/* Batched and shared-b operands, the models' shapes, f64. */
static void test_matmul_batched(void **state) {
  (void)state;
  static const mm_case cases[] = {
      {1, 3, 0, 0, 7, 9, 20, 0, 0, "f32"},    /* batched, b per batch */
      {1, 3, 0, 0, 7, 9, 20, 1, 1, "f32"},
      {2, 2, 3, 0, 17, 6, 33, 0, 1, "f32"},   /* two batch dims */
      {1, 4, 0, 1, 5, 11, 18, 0, 0, "f32"},   /* shared b: batch folded into rows */
      {1, 4, 0, 1, 5, 11, 18, 1, 0, "f32"},   /* shared b with trans_a: per batch */
      {1, 4, 0, 1, 5, 11, 18, 1, 1, "f32"},
      {0, 0, 0, 1, 128, 64, 10, 0, 1, "f32"}, /* the CIFAR classifier */
      {0, 0, 0, 1, 128, 64, 4, 0, 1, "f32"},  /* an SE bottleneck [N,C]x[C/r,C]^T */
      {0, 0, 0, 1, 10, 128, 64, 1, 0, "f32"}, /* its weight gradient dY^T X */
      {0, 0, 0, 1, 128, 10, 64, 0, 0, "f32"}, /* its input gradient dY W */
      {0, 0, 0, 1, 70, 300, 130, 0, 1, "f32"},
      {1, 2, 0, 0, 9, 13, 27, 1, 0, "f64"},
      {0, 0, 0, 1, 33, 17, 9, 0, 1, "f64"},
  };
  char text[1024];
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    mm_text(&cases[i], text, sizeof text);
    tj_compare_text(text, 60 + i, 1 + (int)(i % 2), strcmp(cases[i].dt, "f64") ? 1e-5 : 1e-12);
  }
}

/* The ResNet-50 / MobileNet classifier [128,2048] x [1000,2048]^T. */
static void test_matmul_large(void **state) {
  (void)state;
  mm_case c = {0, 0, 0, 1, 128, 2048, 1000, 0, 1, "f32"};
  char text[1024];
  mm_text(&c, text, sizeof text);
  tj_compare_text(text, 77, 2, 1e-5);
}

/* One conv1d: x[n,c,l] * w[o,c/g,k]. */
typedef struct {
  int n, c, l, o, k, s, p, d, g;
  const char *dt;
} c1_case;

/* IR text computing conv1d and both gradients of case 'k'. */
static void c1_text(const c1_case *k, char *buf, size_t size) {
  int ol = (k->l + 2 * k->p - k->d * (k->k - 1) - 1) / k->s + 1;
  char a[128];
  snprintf(a, sizeof a, "stride=[%d] pad=[%d] dilation=[%d] groups=%d", k->s, k->p, k->d, k->g);
  snprintf(buf, size,
           "graph @t {\n"
           "  %%x = input name=\"x\" : %s[%d,%d,%d]\n"
           "  %%w = param name=\"w\" : %s[%d,%d,%d]\n"
           "  %%dy = input name=\"dy\" : %s[%d,%d,%d]\n"
           "  %%y = conv1d(%%x, %%w) %s : %s[%d,%d,%d]\n"
           "  %%dx = conv1d_grad_input(%%dy, %%w) %s in_shape=[%d,%d,%d] : %s[%d,%d,%d]\n"
           "  %%dw = conv1d_grad_weight(%%x, %%dy) %s kernel=[%d] : %s[%d,%d,%d]\n"
           "  output \"y\" = %%y\n  output \"dx\" = %%dx\n  output \"dw\" = %%dw\n}\n",
           k->dt, k->n, k->c, k->l, k->dt, k->o, k->c / k->g, k->k, k->dt, k->n, k->o, ol, a, k->dt, k->n, k->o,
           ol, a, k->n, k->c, k->l, k->dt, k->n, k->c, k->l, a, k->k, k->dt, k->o, k->c / k->g, k->k);
}

/* conv1d and its gradients over the sweep. */
static void test_conv1d(void **state) {
  (void)state;
  static const c1_case cases[] = {
      /* n  c   l  o  k  s  p  d  g */
      {4, 1, 16, 1, 3, 1, 1, 1, 1, "f32"},    /* ECA on 16 channels */
      {128, 1, 64, 1, 5, 1, 2, 1, 1, "f32"},  /* ECA, batch 128 */
      {2, 1, 2048, 1, 9, 1, 4, 1, 1, "f32"},  /* ECA on ResNet-50 width */
      {3, 2, 37, 4, 7, 1, 3, 1, 1, "f32"},    /* HAM-like, several channels */
      {3, 4, 20, 6, 3, 2, 1, 1, 2, "f32"},    /* stride 2, groups 2 */
      {2, 6, 15, 6, 3, 1, 1, 2, 6, "f32"},    /* depthwise, dilation 2 */
      {2, 6, 31, 12, 5, 3, 2, 2, 6, "f32"},   /* depthwise multiplier 2, stride 3 */
      {2, 3, 5, 3, 9, 1, 4, 1, 1, "f32"},     /* kernel wider than the input */
      {1, 2, 9, 2, 3, 1, 0, 1, 1, "f32"},     /* no padding */
      {2, 3, 40, 5, 3, 1, 1, 1, 1, "f64"},
      {2, 4, 19, 4, 5, 2, 2, 2, 2, "f64"},
  };
  char text[2048];
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    c1_text(&cases[i], text, sizeof text);
    tj_compare_text(text, 80 + i, 1 + (int)(i % 2), strcmp(cases[i].dt, "f64") ? 1e-5 : 1e-12);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_matmul_sizes),
      cmocka_unit_test(test_matmul_batched),
      cmocka_unit_test(test_matmul_large),
      cmocka_unit_test(test_conv1d),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
