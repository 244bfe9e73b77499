/* Helpers for the reference-interpreter tests (prefix ti_): feeding inputs,
 * running a graph with ir_interp_run, and comparing outputs. Every helper
 * fails the running cmocka test instead of returning an error. Graphs are
 * built with util_build.h (tb_). */
#ifndef ATTNC_TESTS_UTIL_INTERP_H
#define ATTNC_TESTS_UTIL_INTERP_H

#include <stdint.h>

#include "ir_interp.h"

/* Returns a new tensor of type 't' holding vals[0..numel) (converted). */
ir_tensor *ti_tensor(ir_type t, const double *vals);

/* Puts into 'b' the value of source node 'id' of 'g' (under its name and
 * with its type) from vals[0..numel). */
void ti_feed(ir_bundle *b, const ir_graph *g, int id, const double *vals);

/* Runs 'g' on 'inputs' in 'mode', failing the test with the diagnostics on
 * any error. Returns the output bundle (caller destroys). */
ir_bundle *ti_run(const ir_graph *g, const ir_bundle *inputs, ir_interp_mode mode);

/* Runs 'g' expecting status 'want' (not ATTNC_OK) with no outputs
 * produced; returns all diagnostics (static buffer, valid until the next
 * call). */
const char *ti_run_error(const ir_graph *g, const ir_bundle *inputs, ir_interp_mode mode, attnc_status want);

/* Fails unless output 'name' of 'out' has type 'want_type' (as
 * ir_type_format writes it, "f32[2,3]") and each element i is within
 * tol * max(1, |want[i]|) of want[i] (tol 0: exact; NaN matches NaN,
 * infinities must match exactly). Returns the tensor. */
const ir_tensor *ti_assert_output(const ir_bundle *out, const char *name, const char *want_type, const double *want,
                                  double tol);

/* Destroys the graph and both bundles of a finished test (NULL allowed). */
void ti_free(ir_graph *g, ir_bundle *in, ir_bundle *out);

/* Fills v[0..n) with reproducible pseudo-random values in [-1, 1). */
void ti_fill(double *v, int64_t n, unsigned seed);

/* Geometry of one 2-D convolution x[n,c,h,w] * w[o,c/groups,kh,kw] with
 * stride (sh,sw), zero padding (ph,pw) and dilation (dh,dw). */
typedef struct {
  int n, c, h, w, o, kh, kw, sh, sw, ph, pw, dh, dw, groups;
} ti_conv_case;

/* Returns the output size along one axis of a window of size k, stride s,
 * padding p, dilation d over 'in' elements. */
int ti_conv_out(int in, int k, int s, int p, int d);

/* y = conv(x, w) computed independently of the interpreter, by im2col and
 * a matrix product per image and group. Fills y[n, o, oh, ow]. */
void ti_ref_conv2d(const ti_conv_case *k, const double *x, const double *w, double *y);

/* Returns a seconds counter for timing (monotonic). */
double ti_seconds(void);

#endif
