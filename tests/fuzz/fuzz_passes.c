/* Fuzz target: the pass pipeline on arbitrary verified IR. A graph with a
 * scalar output "loss" becomes a training step (autodiff, SGD,
 * simplification and the rewrites that serve fusion), both fused and
 * unfused; every graph is then fused and memory-planned, as `attnc dump
 * FILE.ir --stage planned --train` does. A pass may reject a graph with a
 * message; what it returns as done must verify. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "passes.h"

/* Stops the run: pass 'what' returned a graph the verifier rejects. */
static void broken(const char *what, ir_graph *g, ir_diag *d) {
  char *text = ir_print(g);
  fprintf(stderr, "%s left a graph that does not verify:\n%s\n%s\n", what, ir_diag_text(d), text ? text : "");
  abort();
}

/* Runs the passes over 'g' (fused when 'fuse'); consumes 'g'. */
static void run_passes(ir_graph *g, int fuse) {
  ir_diag *d = ir_diag_create();
  int loss = -1;
  for (int i = 0; i < g->noutputs; i++)
    if (!strcmp(g->outputs[i].name, "loss")) loss = g->outputs[i].node;
  pass_sgd_options sgd = {0.9, 5e-4, 0};
  int ok = 1;
  if (loss >= 0 && g->nodes[loss]->type.rank == 0) {
    ok = pass_train_step(g, &sgd, fuse, NULL, d) == ATTNC_OK;
    if (ok && ir_verify(g, d) != 0) broken("pass_train_step", g, d);
  }
  if (ok) {
    pass_fusion fu = {0};
    if (!fuse || pass_fuse(g, &fu, d) == ATTNC_OK) {
      free(fuse ? pass_fusion_print(g, &fu) : NULL);
      pass_memory_plan plan;
      if (pass_plan_memory_fused(g, fuse ? &fu : NULL, 1, &plan, d) == ATTNC_OK) {
        free(pass_memory_plan_print(g, &plan));
        pass_memory_plan_free(&plan);
      }
    }
    pass_fusion_free(&fu);
  }
  ir_graph_destroy(g);
  ir_diag_destroy(d);
}

/* Parses 'data' as IR text and runs the passes on what verifies. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ir_diag *d = ir_diag_create();
  char *text;
  ir_graph *g = fuzz_parse_verified(data, size, &text, d);
  if (g) {
    run_passes(ir_parse(text, "fuzz.ir", d), 0);
    run_passes(g, 1);
  }
  ir_diag_destroy(d);
  free(text);
  return 0;
}
