/* Binding named tensors to a graph's sources: checks that a weights bundle
 * matches the params and buffers a graph expects before anything runs. */
#ifndef ATTNC_RT_BIND_H
#define ATTNC_RT_BIND_H

#include "ir.h"
#include "ir_tensor.h"

/* Checks that 'w' holds exactly the params and buffers of 'g': every one
 * present with the same shape and a compatible dtype (float for float, i64
 * for i64), and no other names. Reports every problem to 'd' ('file', may be
 * NULL, names the weights in messages; at most 10 messages per kind, then a
 * count). Returns ATTNC_OK or ATTNC_EINVAL. */
attnc_status rt_check_weights(const ir_graph *g, const ir_bundle *w, const char *file, ir_diag *d);

/* Checks that 'x' holds every input node of 'g' with its shape and a
 * compatible dtype (other names are allowed). Reports like rt_check_weights. */
attnc_status rt_check_inputs(const ir_graph *g, const ir_bundle *x, const char *file, ir_diag *d);

/* Returns a new bundle holding copies of every tensor of 'a' and of 'b'
 * (metadata of 'a'), or NULL after reporting to 'd' a name present in both
 * (one message per name) or running out of memory. */
ir_bundle *rt_bundle_merge(const ir_bundle *a, const ir_bundle *b, ir_diag *d);

#endif
