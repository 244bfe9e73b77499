/* Fuzz target: the safetensors reader on arbitrary bytes. Whatever it
 * accepts must write back and read back to the same tensors. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h> /* unlink */

#include "common.h"
#include "rt_safetensors.h"

/* Parses 'data'; round-trips an accepted bundle through a file. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ir_diag *d = ir_diag_create();
  ir_bundle *b = NULL;
  if (rt_safetensors_parse(data, size, "fuzz.safetensors", &b, d) == ATTNC_OK) {
    char path[64];
    fuzz_temp_path(".safetensors", path);
    ir_bundle *back = NULL;
    if (rt_safetensors_write(path, b, d) != ATTNC_OK ||
        rt_safetensors_read(path, &back, d) != ATTNC_OK || back->count != b->count) {
      fprintf(stderr, "accepted bundle does not round-trip: %s\n", ir_diag_text(d));
      abort();
    }
    for (int i = 0; i < b->count; i++) {
      const ir_tensor *x = b->tensors[i], *y = back->tensors[i];
      size_t bytes = (size_t)ir_type_numel(&x->type) * ir_dtype_size(x->type.dtype);
      if (strcmp(b->names[i], back->names[i]) != 0 || x->type.dtype != y->type.dtype ||
          ir_type_numel(&x->type) != ir_type_numel(&y->type) ||
          (bytes && memcmp(x->data, y->data, bytes) != 0)) {
        fprintf(stderr, "tensor %d (%s) changed in the round trip\n", i, b->names[i]);
        abort();
      }
    }
    ir_bundle_destroy(back);
    unlink(path);
  }
  ir_bundle_destroy(b);
  ir_diag_destroy(d);
  return 0;
}
