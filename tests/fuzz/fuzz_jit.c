/* Fuzz target, differential: the JIT against the reference interpreter on
 * arbitrary small verified IR. A graph whose every value has at most 4096
 * elements runs on both with the same seeded random sources (rt_init_random),
 * fused and unfused; every output must agree within a scaled error of 1e-4
 * (tests/util_jit's rule), NaN where the interpreter has NaN. The interpreter may refuse a graph
 * (a label out of range, say); the JIT must then still not crash. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg.h"
#include "common.h"
#include "ir_interp.h"
#include "rt_init.h"
#include "util_jit.h"

#define MAX_NODES 48
#define MAX_ELEMS 4096
#define RTOL 1e-4

/* Returns 1 if every value of 'g' is small enough to run in milliseconds. */
static int small_graph(const ir_graph *g) {
  if (g->nnodes > MAX_NODES) return 0;
  for (int i = 0; i < g->nnodes; i++)
    if (ir_type_numel(&g->nodes[i]->type) > MAX_ELEMS) return 0;
  return 1;
}

/* Stops the run: output 'name' of the JIT differs from the interpreter's. */
static void mismatch(const ir_graph *g, const char *name, int64_t i, double got, double want, int no_fuse) {
  char *text = ir_print(g);
  fprintf(stderr, "jit (%s) output %s element %lld: %.9g, interpreter %.9g\n%s\n", no_fuse ? "unfused" : "fused",
          name, (long long)i, got, want, text ? text : "");
  abort();
}

/* Compares every output of 'got' with 'ref' (util_jit's scaled error). */
static void compare(const ir_graph *g, const ir_bundle *got, const ir_bundle *ref, int no_fuse) {
  for (int k = 0; k < ref->count; k++) {
    const ir_tensor *r = ref->tensors[k], *a = ir_bundle_get(got, ref->names[k]);
    if (!a || ir_type_numel(&a->type) != ir_type_numel(&r->type)) mismatch(g, ref->names[k], -1, 0, 0, no_fuse);
    int64_t i;
    if (!(tj_scaled_error(a, r, &i) <= RTOL))
      mismatch(g, ref->names[k], i, ir_tensor_get(a, i), ir_tensor_get(r, i), no_fuse);
  }
}

/* Parses 'data' as IR text; runs what verifies and is small on both engines. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ir_diag *d = ir_diag_create();
  char *text;
  ir_graph *g = fuzz_parse_verified(data, size, &text, d);
  if (g && small_graph(g)) {
    ir_bundle *src = ir_bundle_create(), *ref = ir_bundle_create();
    rt_init_random(g, size, src);
    int ref_ok = ir_interp_run(g, src, IR_INTERP_NATIVE, ref, d) == ATTNC_OK;
    for (int no_fuse = 0; no_fuse < 2; no_fuse++) {
      cg_options o = {.threads = 1, .poison = 1, .no_fuse = no_fuse};
      cg_program *p = NULL;
      ir_bundle *out = ir_bundle_create();
      if (cg_program_create(g, &o, &p, d) == ATTNC_OK && cg_program_run_bundle(p, src, out, d) == ATTNC_OK &&
          ref_ok)
        compare(g, out, ref, no_fuse);
      cg_program_destroy(p);
      ir_bundle_destroy(out);
    }
    ir_bundle_destroy(ref);
    ir_bundle_destroy(src);
  }
  ir_graph_destroy(g);
  ir_diag_destroy(d);
  free(text);
  return 0;
}
