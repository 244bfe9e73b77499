/* The reference interpreter: a naive, obviously-correct implementation of
 * every op, the oracle that the JIT and every gradient are tested against. */
#ifndef ATTNC_IR_INTERP_H
#define ATTNC_IR_INTERP_H

#include "ir.h"
#include "ir_tensor.h"

typedef enum {
  IR_INTERP_NATIVE, /* f32 values are rounded to float after every op */
  IR_INTERP_F64,    /* every float value is kept in double precision */
} ir_interp_mode;

/* Runs graph 'g' (which must verify). Source nodes take their values from
 * 'inputs' by name (input, param and buffer nodes alike; a tensor of another
 * float dtype is converted). Fills 'outputs' with one tensor per graph output
 * (dtype of the graph, or f64 for float outputs in IR_INTERP_F64 mode).
 * Returns ATTNC_OK, or an error reported to 'd' (missing or wrong-shaped
 * input, out of memory). */
attnc_status ir_interp_run(const ir_graph *g, const ir_bundle *inputs, ir_interp_mode mode,
                           ir_bundle *outputs, ir_diag *d);

#endif
