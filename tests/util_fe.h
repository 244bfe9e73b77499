/* Front-end test helpers (prefix tf_): lowering specs, comparing a lowered
 * graph's parameters with the PyTorch reference keys, and golden checks of
 * lowered models against the reference outputs. Helpers that say "fails"
 * fail the running cmocka test instead of returning an error.
 *
 *   ir_graph *g = tf_lower("models/resnet_cifar.lua", FE_EVAL, 1, "depth=56", "attention=se", NULL);
 *   tf_assert_keys(g, "keys/resnet56_se.json");    // relative to $ATTNC_REFERENCE
 *   ir_graph_destroy(g);
 *
 *   tf_golden("resnet20_se", "models/resnet_cifar.lua", "attention=se", NULL);
 */
#ifndef ATTNC_TESTS_UTIL_FE_H
#define ATTNC_TESTS_UTIL_FE_H

#include <stdint.h>

#include "fe.h"
#include "ir_tensor.h"

#define TF_MAX_OPTS 32

/* Storage behind the option arrays of an fe_request built by tf_split_opts. */
typedef struct {
  char text[TF_MAX_OPTS][256];
  const char *keys[TF_MAX_OPTS], *values[TF_MAX_OPTS];
} tf_opts;

/* Splits n "key=value" strings (n < 0: a NULL-terminated array, opts may be
 * NULL) into req's option arrays, backed by 'store'; fails on a string
 * without '=' or more than TF_MAX_OPTS options. */
void tf_split_opts(fe_request *req, const char *const *opts, int n, tf_opts *store);

/* Returns $ATTNC_REFERENCE/rel (static buffer, valid until the next call). */
const char *tf_reference(const char *rel);

/* Lowers spec 'path' in 'mode' with batch 'batch' (shape: the spec's) and
 * the NULL-terminated "key=value" options; fails on any error. */
ir_graph *tf_lower(const char *path, fe_mode mode, int64_t batch, ...) __attribute__((sentinel));

/* The same with input shape C,H,W per sample in place of the spec's. */
ir_graph *tf_lower_shape(const char *path, fe_mode mode, int64_t batch, const int64_t shape[3], ...)
    __attribute__((sentinel));

/* Lowers 'path' with the NULL-terminated "key=value" options expecting an
 * error: fails if lowering succeeds. Returns the status; *msg receives all
 * diagnostics (static buffer, valid until the next call). */
attnc_status tf_lower_error(const char *path, const char **msg, ...) __attribute__((sentinel));

/* Returns the total element count of the param (or, with buffers = 1, the
 * buffer) sources of 'g'. */
int64_t tf_count_sources(const ir_graph *g, int buffers);

/* Fails unless the param and buffer sources of 'g' are exactly the names,
 * shapes and trainable flags (param = trainable) listed in the reference
 * keys file 'keys_rel' (relative to $ATTNC_REFERENCE), in the same order,
 * and the param element count equals its "params". Returns that count. */
int64_t tf_assert_keys(const ir_graph *g, const char *keys_rel);

/* Returns the number of differences between g's param/buffer sources and
 * the keys file (names, order, shapes, trainable flags, the "params" total;
 * printed when 'verbose'); *ref_params (if not NULL) receives "params". */
int tf_keys_differences(const ir_graph *g, const char *keys_rel, int verbose, int64_t *ref_params);

/* Returns ||got - want|| / ||want|| over all elements (shapes must have the
 * same element count; fails otherwise). */
double tf_rel_error(const ir_tensor *got, const ir_tensor *want);

/* Golden check of reference model 'model' (a golden/ directory name such as
 * "resnet20_none") lowered from 'spec' with the NULL-terminated options:
 * eval logits, train logits, loss and every running statistic against
 * expected.safetensors within 1e-4, and every gradient of the loss (autodiff's
 * IR) within 1e-3 (or tolerances.json's larger entry), with the batch and
 * input shape of the reference. */
void tf_golden(const char *model, const char *spec, ...) __attribute__((sentinel));
/* tf_golden on the JIT (2 threads). */
void tf_golden_jit(const char *model, const char *spec, ...) __attribute__((sentinel));
/* tf_golden_jit on the unfused program (as run with --no-fuse: no grad
 * rewrites that serve fusion, one kernel per node). */
void tf_golden_jit_unfused(const char *model, const char *spec, ...) __attribute__((sentinel));
/* tf_golden_jit whose outputs must also agree with the interpreter's on
 * the same graphs (norm-wise 1e-5 for logits and loss, 1e-4 for the rest). */
void tf_golden_jit_cross(const char *model, const char *spec, ...) __attribute__((sentinel));
/* tf_golden_jit on values only: logits, loss, running statistics. */
void tf_golden_jit_values(const char *model, const char *spec, ...) __attribute__((sentinel));
/* The JIT against the interpreter (tf_golden_jit_cross's check with
 * relative tolerance 'tol', a tenth of it for logits and loss; nothing
 * against golden/) at the golden weights with the golden input moved by
 * 'moved' * sin(k): a point away from the golden one's float32 ties. */
void tf_jit_cross_moved(const char *model, const char *spec, double moved, double tol, ...)
    __attribute__((sentinel));

#endif
