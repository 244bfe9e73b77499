/* Helpers shared by the fuzz targets (see common.h). */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Parses and verifies IR text (see common.h). */
ir_graph *fuzz_parse_verified(const uint8_t *data, size_t size, char **text, ir_diag *d) {
  *text = malloc(size + 1);
  if (!*text) return NULL;
  memcpy(*text, data, size);
  (*text)[size] = 0;
  ir_graph *g = ir_parse(*text, "fuzz.ir", d);
  if (g && ir_verify(g, d) != 0) {
    ir_graph_destroy(g);
    g = NULL;
  }
  return g;
}

/* Names this process's temporary file (see common.h). */
void fuzz_temp_path(const char *suffix, char path[64]) {
  snprintf(path, 64, "/tmp/attnc-fuzz-%d%s", (int)getpid(), suffix);
}

/* Writes bytes to a file (see common.h). */
int fuzz_write_file(const char *path, const uint8_t *data, size_t size) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  size_t put = fwrite(data, 1, size, f);
  return fclose(f) == 0 && put == size ? 0 : -1;
}

/* Writes the input to a temporary file (see common.h). */
int fuzz_write_temp(const uint8_t *data, size_t size, const char *suffix, char path[64]) {
  fuzz_temp_path(suffix, path);
  return fuzz_write_file(path, data, size);
}
