/* Fuzz target: the Lua front end on arbitrary model specs, in both modes
 * (the sandbox, the nn library's argument checks, lowering and the
 * verifier). Whatever lowers must verify. Run with ATTNC_LUA_BUDGET and
 * ATTNC_LUA_MEM_MB set low, so that a runaway spec stops quickly. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common.h"
#include "fe.h"

/* Writes 'data' to a spec file and lowers it for batch 2. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[64];
  if (fuzz_write_temp(data, size, ".lua", path) != 0) return 0;
  for (int mode = 0; mode < 2; mode++) {
    fe_request req = {.path = path, .batch = 2, .mode = mode ? FE_TRAIN : FE_EVAL};
    ir_diag *d = ir_diag_create();
    ir_graph *g = NULL;
    attnc_status st = fe_lower(&req, &g, d);
    if ((st == ATTNC_OK) != (g != NULL) || (g && ir_verify(g, d) != 0)) {
      fprintf(stderr, "lowering returned %d with graph %p: %s\n", (int)st, (void *)g, ir_diag_text(d));
      abort();
    }
    ir_graph_destroy(g);
    ir_diag_destroy(d);
    if (st != ATTNC_OK) break;
  }
  unlink(path);
  return 0;
}
