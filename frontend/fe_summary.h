/* Model summaries: a lowered graph grouped into layers by module scope,
 * with output shapes, parameter counts, multiply-adds and activation memory
 * (what 'attnc summary' prints). */
#ifndef ATTNC_FE_SUMMARY_H
#define ATTNC_FE_SUMMARY_H

#include <stdint.h>

#include "ir.h"

/* One layer: the ops run in one module scope (its own ops, not its
 * children's), the parameters that module owns, per image. */
typedef struct {
  char *name;        /* module path ("layers.3.conv1"); "(root)" for the top module */
  char *ops;         /* its op kinds in first-use order, comma-separated ("relu,add") */
  ir_type shape;     /* type of its last result (rank 0 f32 if it has no ops) */
  int64_t params;    /* elements of the trainable parameters it owns */
  int64_t buffers;   /* elements of its buffers (running statistics) */
  int64_t macs;      /* multiply-adds of its conv/matmul ops, per image */
  int64_t elementwise; /* other arithmetic: result elements of elementwise, norm,
                          pooling ops and input elements of reductions, per image */
} fe_summary_layer;

typedef struct {
  int nlayers;
  fe_summary_layer *layers;
  int64_t batch;           /* N of the graph's input; per-image values are divided by it */
  int64_t params, buffers; /* totals (elements) */
  int64_t macs, elementwise;
  int64_t activation_bytes; /* bytes of every op result (no sources, no reuse), per image */
} fe_summary;

/* Summarizes graph 'g' (an eval graph as fe_lower makes it); NULL if out of
 * memory. Free with fe_summary_destroy. */
fe_summary *fe_summarize(const ir_graph *g);
void fe_summary_destroy(fe_summary *s);
/* Returns the summary as an aligned text table with totals (caller frees). */
char *fe_summary_text(const fe_summary *s);
/* Returns {"model", "layers": [{"name","op","shape","params","macs",
 * "elementwise"}], "totals": {"params","buffers","macs","elementwise",
 * "activation_bytes"}} as JSON text (caller frees). */
char *fe_summary_json(const fe_summary *s, const char *model);

#endif
