/* Test helpers for the JIT reduction and data-movement tests (util_jitr.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cg.h"
#include "util_jit.h"
#include "util_jitr.h"

void tjr_printf(tjr_text *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (t->len + (size_t)n + 1 > t->cap) {
    size_t cap = (t->cap ? t->cap * 2 : 1024) + (size_t)n;
    char *s = realloc(t->s, cap);
    assert_non_null(s);
    t->s = s;
    t->cap = cap;
  }
  va_start(ap, fmt);
  vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
  va_end(ap);
  t->len += (size_t)n;
}

void tjr_text_free(tjr_text *t) {
  free(t->s);
  memset(t, 0, sizeof *t);
}

/* Parses and verifies 'text' or fails the test. */
static ir_graph *parse_or_fail(const char *text) {
  ir_diag *d = ir_diag_create();
  ir_graph *g = ir_parse(text, "<test>", d);
  if (!g || ir_verify(g, d) != 0) fail_msg("test graph does not parse/verify: %s\n%s", ir_diag_text(d), text);
  ir_diag_destroy(d);
  return g;
}

double tjr_compare(const char *text, const ir_bundle *given, uint64_t seed, int threads, double rtol) {
  ir_graph *g = parse_or_fail(text);
  double w = tj_compare(g, given, seed, threads, rtol);
  ir_graph_destroy(g);
  return w;
}

void tjr_same_bits(const char *text, uint64_t seed) {
  ir_graph *g = parse_or_fail(text);
  ir_diag *d = ir_diag_create();
  ir_bundle *src = tj_sources(g, NULL, seed), *out[2];
  for (int k = 0; k < 2; k++) {
    cg_options o = {.threads = 1 + k};
    cg_program *p = NULL;
    if (cg_program_create(g, &o, &p, d) != ATTNC_OK) fail_msg("jit compile: %s", ir_diag_text(d));
    out[k] = ir_bundle_create();
    if (cg_program_run_bundle(p, src, out[k], d) != ATTNC_OK) fail_msg("jit run: %s", ir_diag_text(d));
    cg_program_destroy(p);
  }
  assert_int_equal(out[0]->count, out[1]->count);
  for (int i = 0; i < out[0]->count; i++) {
    const ir_tensor *a = out[0]->tensors[i], *b = ir_bundle_get(out[1], out[0]->names[i]);
    assert_non_null(b);
    size_t bytes = (size_t)(ir_type_numel(&a->type) * (int64_t)ir_dtype_size(a->type.dtype));
    if (memcmp(a->data, b->data, bytes)) fail_msg("output %s differs between 1 and 2 threads", out[0]->names[i]);
  }
  ir_bundle_destroy(out[0]);
  ir_bundle_destroy(out[1]);
  ir_bundle_destroy(src);
  ir_diag_destroy(d);
  ir_graph_destroy(g);
}

void tjr_put(ir_bundle *b, const char *name, ir_type t, double (*f)(int64_t i, double arg), double arg) {
  ir_tensor *x = ir_tensor_create(t);
  assert_non_null(x);
  for (int64_t i = 0; i < ir_type_numel(&t); i++) ir_tensor_set(x, i, f(i, arg));
  ir_bundle_put(b, name, x);
}
