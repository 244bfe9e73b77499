/* Helpers for the reference-interpreter tests: see util_interp.h. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "util_interp.h"

/* Returns a new tensor of type t holding vals. */
ir_tensor *ti_tensor(ir_type t, const double *vals) {
  ir_tensor *x = ir_tensor_create(t);
  if (!x) fail_msg("ti_tensor: out of memory");
  for (int64_t i = 0; i < ir_type_numel(&t); i++) ir_tensor_set(x, i, vals[i]);
  return x;
}

/* Puts the value of source node 'id' into b. */
void ti_feed(ir_bundle *b, const ir_graph *g, int id, const double *vals) {
  if (id < 0 || id >= g->nnodes || !ir_node_name(g->nodes[id])) fail_msg("ti_feed: %%%d is no named source", id);
  ir_bundle_put(b, ir_node_name(g->nodes[id]), ti_tensor(g->nodes[id]->type, vals));
}

/* Runs g or fails the test with its diagnostics. */
ir_bundle *ti_run(const ir_graph *g, const ir_bundle *inputs, ir_interp_mode mode) {
  ir_bundle *out = ir_bundle_create();
  ir_diag *d = ir_diag_create();
  attnc_status st = ir_interp_run(g, inputs, mode, out, d);
  if (st != ATTNC_OK || ir_diag_count(d)) {
    char msg[2048];
    snprintf(msg, sizeof msg, "%s", ir_diag_text(d));
    ir_diag_destroy(d);
    ir_bundle_destroy(out);
    fail_msg("ir_interp_run: status %d: %s", (int)st, msg);
  }
  ir_diag_destroy(d);
  return out;
}

/* Runs g expecting status 'want'; returns the diagnostics. */
const char *ti_run_error(const ir_graph *g, const ir_bundle *inputs, ir_interp_mode mode, attnc_status want) {
  static char msg[4096];
  ir_bundle *out = ir_bundle_create();
  ir_diag *d = ir_diag_create();
  attnc_status st = ir_interp_run(g, inputs, mode, out, d);
  snprintf(msg, sizeof msg, "%s", ir_diag_text(d));
  int count = ir_diag_count(d), produced = out->count;
  ir_diag_destroy(d);
  ir_bundle_destroy(out);
  if (st != want) fail_msg("ir_interp_run: status %d, expected %d (%s)", (int)st, (int)want, msg);
  if (count < 1) fail_msg("ir_interp_run: status %d but no diagnostic", (int)st);
  if (produced) fail_msg("ir_interp_run failed but produced %d outputs", produced);
  return msg;
}

/* Fails unless output 'name' has the wanted type and values. */
const ir_tensor *ti_assert_output(const ir_bundle *out, const char *name, const char *want_type, const double *want,
                                  double tol) {
  const ir_tensor *t = ir_bundle_get(out, name);
  if (!t) fail_msg("no output '%s'", name);
  char got[256];
  ir_type_format(&t->type, got, sizeof got);
  if (strcmp(got, want_type)) fail_msg("output '%s': type %s, expected %s", name, got, want_type);
  for (int64_t i = 0; i < ir_type_numel(&t->type); i++) {
    double v = ir_tensor_get(t, i), w = want[i];
    int ok;
    if (isnan(w))
      ok = isnan(v);
    else if (isinf(w) || tol == 0)
      ok = v == w;
    else
      ok = fabs(v - w) <= tol * fmax(1.0, fabs(w));
    if (!ok) fail_msg("output '%s'[%lld] = %.17g, expected %.17g (tol %g)", name, (long long)i, v, w, tol);
  }
  return t;
}

/* Fills v with reproducible pseudo-random values in [-1, 1). */
void ti_fill(double *v, int64_t n, unsigned seed) {
  uint64_t s = seed * 2654435761u + 12345u;
  for (int64_t i = 0; i < n; i++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    v[i] = (double)(s >> 11) / 9007199254740992.0 * 2.0 - 1.0;
  }
}

/* Returns monotonic seconds. */
double ti_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
