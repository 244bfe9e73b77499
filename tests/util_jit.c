/* Test helpers for the JIT (see util_jit.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "cg.h"
#include "ir_interp.h"
#include "rt_init.h"
#include "util_jit.h"

/* Sources for a run: copies of 'given' plus seeded random values. */
ir_bundle *tj_sources(const ir_graph *g, const ir_bundle *given, uint64_t seed) {
  ir_bundle *b = ir_bundle_create();
  for (int i = 0; given && i < given->count; i++)
    ir_bundle_put(b, given->names[i], ir_tensor_clone(given->tensors[i]));
  rt_init_random(g, seed, b);
  return b;
}

/* The worst scaled error of 'got' against 'ref' (see util_jit.h). */
double tj_scaled_error(const ir_tensor *got, const ir_tensor *ref, int64_t *at) {
  int64_t n = ir_type_numel(&ref->type);
  double maxabs = 0, worst = 0;
  *at = 0;
  for (int64_t i = 0; i < n; i++) {
    double r = fabs(ir_tensor_get(ref, i));
    if (isfinite(r) && r > maxabs) maxabs = r;
  }
  for (int64_t i = 0; i < n; i++) {
    double a = ir_tensor_get(got, i), r = ir_tensor_get(ref, i);
    if ((isnan(r) && isnan(a)) || a == r) continue;
    double err = fabs(a - r) / (fabs(r) + maxabs + 1e-30);
    if (isnan(err)) err = INFINITY;
    if (err > worst) {
      worst = err;
      *at = i;
    }
  }
  return worst;
}

/* Compares one tensor against a reference (see util_jit.h). */
double tj_compare_tensor(const char *what, const char *name, const ir_tensor *jit, const ir_tensor *ref,
                         double rtol) {
  assert_int_equal(ir_type_numel(&ref->type), ir_type_numel(&jit->type));
  int64_t i;
  double worst = tj_scaled_error(jit, ref, &i);
  if (!(worst <= rtol)) {
    char ty[128];
    ir_type_format(&ref->type, ty, sizeof ty);
    fail_msg("%s: output %s %s element %lld: %.9g vs %.9g (scaled error %.3g > %.3g)", what, name, ty,
             (long long)i, ir_tensor_get(jit, i), ir_tensor_get(ref, i), worst, rtol);
  }
  return worst;
}

double tj_compare(const ir_graph *g, const ir_bundle *given, uint64_t seed, int threads, double rtol) {
  ir_diag *d = ir_diag_create();
  ir_bundle *src = tj_sources(g, given, seed);
  ir_bundle *ref = ir_bundle_create(), *out = ir_bundle_create();
  if (ir_interp_run(g, src, IR_INTERP_NATIVE, ref, d) != ATTNC_OK)
    fail_msg("interpreter: %s", ir_diag_text(d));
  cg_options o = {.threads = threads, .poison = 1};
  cg_program *p = NULL;
  if (cg_program_create(g, &o, &p, d) != ATTNC_OK) fail_msg("jit compile: %s", ir_diag_text(d));
  if (cg_program_run_bundle(p, src, out, d) != ATTNC_OK) fail_msg("jit run: %s", ir_diag_text(d));
  double worst = 0;
  for (int i = 0; i < ref->count; i++) {
    const ir_tensor *j = ir_bundle_get(out, ref->names[i]);
    assert_non_null(j);
    double w = tj_compare_tensor("jit vs interpreter", ref->names[i], j, ref->tensors[i], rtol);
    if (w > worst) worst = w;
  }
  cg_program_destroy(p);
  ir_bundle_destroy(src);
  ir_bundle_destroy(ref);
  ir_bundle_destroy(out);
  ir_diag_destroy(d);
  return worst;
}

double tj_compare_text(const char *text, uint64_t seed, int threads, double rtol) {
  ir_diag *d = ir_diag_create();
  ir_graph *g = ir_parse(text, "<test>", d);
  if (!g || ir_verify(g, d) != 0) fail_msg("test graph does not parse/verify: %s\n%s", ir_diag_text(d), text);
  double w = tj_compare(g, NULL, seed, threads, rtol);
  ir_graph_destroy(g);
  ir_diag_destroy(d);
  return w;
}

char *tj_profile_text(const cg_program *p) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  assert_non_null(f);
  cg_program_print_profile(p, f, 0);
  fclose(f);
  return buf;
}
