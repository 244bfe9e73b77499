/* Mini-batch loader: placeholder until the threaded loader lands. */
#include "rt_loader.h"

#include <stdlib.h>

/* Creates a loader (not implemented yet). */
attnc_status rt_loader_create(const rt_dataset *ds, const rt_loader_options *o, rt_loader **out, ir_diag *d) {
  (void)ds; (void)o;
  *out = NULL;
  ir_diag_error(d, NULL, 0, "loader: not implemented yet");
  return ATTNC_EINVAL;
}

/* Frees 'l'. */
void rt_loader_destroy(rt_loader *l) { (void)l; }

/* Batches per epoch. */
int64_t rt_loader_batches(const rt_loader *l) { (void)l; return 0; }

/* Starts an epoch. */
void rt_loader_start(rt_loader *l, int64_t epoch, int64_t first) { (void)l; (void)epoch; (void)first; }

/* Next batch. */
int64_t rt_loader_next(rt_loader *l, float *images, int64_t *labels) { (void)l; (void)images; (void)labels; return 0; }
