/* Fuzz target: the checkpoint reader (safetensors plus "attnc.*" metadata)
 * on arbitrary file contents. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common.h"
#include "rt_ckpt.h"

/* Writes 'data' to a file and loads it as a checkpoint. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[64];
  if (fuzz_write_temp(data, size, ".ckpt", path) != 0) return 0;
  ir_diag *d = ir_diag_create();
  ir_bundle *state = NULL;
  rt_ckpt_info info;
  if (rt_ckpt_load(path, &state, &info, d) != ATTNC_OK && state) {
    fprintf(stderr, "failed load left a state behind\n");
    abort();
  }
  ir_bundle_destroy(state);
  ir_diag_destroy(d);
  unlink(path);
  return 0;
}
