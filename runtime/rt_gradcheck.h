/* Gradient checking: analytic gradients from autodiff against central
 * finite differences, both evaluated by the interpreter in float64. */
#ifndef ATTNC_RT_GRADCHECK_H
#define ATTNC_RT_GRADCHECK_H

#include "ir_tensor.h"

typedef struct {
  unsigned ad_flags;  /* PASS_AD_INPUTS to check inputs too */
  double step;        /* finite-difference step h (0: 1e-7) */
  int max_elems;      /* elements checked per tensor, spread evenly (0: all) */
  int max_tensors;    /* tensors checked, spread evenly over the graph (0: all) */
  double floor;       /* norms below this compare absolutely (0: 1e-4), for
                         gradients that are zero up to noise (scale-invariant
                         parameters such as a weight followed by batch norm) */
} rt_gradcheck_opts;

/* The result for one differentiated source. */
typedef struct {
  char *name;     /* source name */
  int64_t checked; /* elements compared */
  double rel_err; /* ||analytic - fd|| / max(||fd||, ||analytic||, floor) over them */
  double fd_norm; /* ||fd|| over them */
} rt_gradcheck_entry;

typedef struct {
  int count;
  rt_gradcheck_entry *entries;
  double worst; /* largest rel_err */
} rt_gradcheck_report;

/* Checks the gradient of scalar output 'loss' of forward graph 'g' with
 * respect to every float param (and input with PASS_AD_INPUTS). 'values'
 * holds every source of g. Fills 'r' (free with rt_gradcheck_report_free). */
attnc_status rt_gradcheck(const ir_graph *g, const char *loss, const ir_bundle *values, const rt_gradcheck_opts *o,
                          rt_gradcheck_report *r, ir_diag *d);
/* Frees what 'r' holds. */
void rt_gradcheck_report_free(rt_gradcheck_report *r);

#endif
