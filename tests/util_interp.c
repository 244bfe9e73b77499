/* Helpers for the reference-interpreter tests: see util_interp.h. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
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

/* Destroys g, in and out. */
void ti_free(ir_graph *g, ir_bundle *in, ir_bundle *out) {
  ir_bundle_destroy(out);
  ir_bundle_destroy(in);
  ir_graph_destroy(g);
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

/* Returns the output size of a window along one axis. */
int ti_conv_out(int in, int k, int s, int p, int d) { return (in + 2 * p - d * (k - 1) - 1) / s + 1; }

/* y = conv(x, w) by im2col: for each image and group, the matrix of patches
 * col[(ci,ky,kx), (oy,ox)] (zero outside x) is multiplied by the group's
 * weight rows. */
void ti_ref_conv2d(const ti_conv_case *k, const double *x, const double *w, double *y) {
  int oh = ti_conv_out(k->h, k->kh, k->sh, k->ph, k->dh), ow = ti_conv_out(k->w, k->kw, k->sw, k->pw, k->dw);
  int cg = k->c / k->groups, og = k->o / k->groups, rows = cg * k->kh * k->kw;
  double *col = calloc((size_t)(rows * oh * ow), sizeof *col);
  if (!col) fail_msg("ti_ref_conv2d: out of memory");
  for (int b = 0; b < k->n; b++)
    for (int gr = 0; gr < k->groups; gr++) {
      for (int r = 0; r < rows; r++) {
        int ci = r / (k->kh * k->kw), ky = r / k->kw % k->kh, kx = r % k->kw;
        for (int p = 0; p < oh * ow; p++) {
          int iy = p / ow * k->sh - k->ph + ky * k->dh, ix = p % ow * k->sw - k->pw + kx * k->dw;
          int inside = iy >= 0 && iy < k->h && ix >= 0 && ix < k->w;
          col[r * oh * ow + p] = inside ? x[((b * k->c + gr * cg + ci) * k->h + iy) * k->w + ix] : 0;
        }
      }
      for (int oo = 0; oo < og; oo++) {
        int o = gr * og + oo;
        for (int p = 0; p < oh * ow; p++) {
          double s = 0;
          for (int r = 0; r < rows; r++) s += w[o * rows + r] * col[r * oh * ow + p];
          y[(b * k->o + o) * oh * ow + p] = s;
        }
      }
    }
  free(col);
}
