/* Data set readers: placeholder until the readers land. */
#include "rt_data.h"

#include <stdlib.h>

/* Reads a data set (not implemented yet). */
attnc_status rt_dataset_open(const char *spec, rt_split split, rt_dataset **out, ir_diag *d) {
  (void)split;
  *out = NULL;
  ir_diag_error(d, NULL, 0, "data set '%s': readers not implemented yet", spec);
  return ATTNC_EINVAL;
}

/* Frees 'ds'. */
void rt_dataset_destroy(rt_dataset *ds) {
  if (!ds) return;
  free(ds->pixels);
  free(ds->labels);
  free(ds);
}

/* Held-out split (not implemented yet). */
attnc_status rt_dataset_holdout(rt_dataset *train, int64_t n, uint64_t seed, rt_dataset **held, ir_diag *d) {
  (void)train; (void)n; (void)seed;
  *held = NULL;
  ir_diag_error(d, NULL, 0, "holdout: not implemented yet");
  return ATTNC_EINVAL;
}
