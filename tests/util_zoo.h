/* Helpers for the model-zoo tests (prefix tz_): lowering a spec at a given
 * input shape, and random weights for smoke runs of the backbones. Key and
 * golden comparisons come from util_fe.h (tf_). Every helper fails the
 * running cmocka test instead of returning an error. */
#ifndef ATTNC_TESTS_UTIL_ZOO_H
#define ATTNC_TESTS_UTIL_ZOO_H

#include <stdint.h>

#include "fe.h"
#include "ir_tensor.h"

/* Lowers spec 'path' (relative to the source tree) in 'mode' at batch
 * 'batch' and input shape 'shape' ("3x32x32", or NULL for the spec's
 * default) with options 'opts' ("key=value" strings, NULL-terminated; NULL
 * for none), checks that the graph verifies and returns it (caller
 * destroys). */
ir_graph *tz_lower(const char *path, fe_mode mode, int64_t batch, const char *shape, const char *const *opts);

/* Returns a bundle with a value for every param and buffer of 'g', scaled
 * so a deep network stays finite: weights uniform with variance 1/fan_in,
 * BN scales about 1 and shifts small, running means 0 and variances 1,
 * scalar parameters 0.5. Reproducible from 'seed'. Caller destroys. */
ir_bundle *tz_random_weights(const ir_graph *g, unsigned seed);

#endif
