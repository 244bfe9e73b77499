/* Memory planning (pass_plan_memory): lifetimes, offsets and reuse on hand-
 * built graphs and on a whole training step, and the JIT giving the same
 * bits with and without reuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "cg.h"
#include "passes.h"
#include "rt_init.h"
#include "util_fe.h"
#include "util_jit.h"

/* Parses IR text that must verify. */
static ir_graph *parse(const char *text) {
  ir_diag *d = ir_diag_create();
  ir_graph *g = ir_parse(text, "<test>", d);
  if (!g || ir_verify(g, d)) fail_msg("%s", ir_diag_text(d));
  ir_diag_destroy(d);
  return g;
}

/* Fails unless no two buffers that are live at the same time overlap. */
static void assert_no_overlap(const ir_graph *g, const pass_memory_plan *p) {
  for (int a = 0; a < g->nnodes; a++)
    for (int b = a + 1; b < g->nnodes; b++) {
      if (p->owner[a] != a || p->owner[b] != b || !p->size[a] || !p->size[b]) continue;
      int live = p->first[a] <= p->last[b] && p->first[b] <= p->last[a];
      int mem = p->offset[a] < p->offset[b] + p->size[b] && p->offset[b] < p->offset[a] + p->size[a];
      if (live && mem)
        fail_msg("%%%d [%d,%d] @%lld+%lld overlaps %%%d [%d,%d] @%lld+%lld", a, p->first[a], p->last[a],
                 (long long)p->offset[a], (long long)p->size[a], b, p->first[b], p->last[b],
                 (long long)p->offset[b], (long long)p->size[b]);
    }
}

/* A chain x -> a -> b -> c -> d -> e: a, c and e can share, b and d can;
 * sources (even one defined late) live from the start; a reshape shares
 * its operand's buffer and keeps it alive. */
static void test_chain(void **state) {
  (void)state;
  ir_graph *g = parse("graph @t {\n  %x = input name=\"x\" : f32[1024]\n  %a = exp(%x) : f32[1024]\n"
                      "  %b = exp(%a) : f32[1024]\n  %c = exp(%b) : f32[1024]\n  %r = reshape(%c) shape=[32,32] : f32[32,32]\n"
                      "  %k = const value=2 : f32[]\n  %d = mul(%r, %k) : f32[32,32]\n  %e = exp(%d) : f32[32,32]\n"
                      "  output \"e\" = %e\n}\n");
  ir_diag *d = ir_diag_create();
  pass_memory_plan p;
  assert_int_equal(pass_plan_memory(g, 1, &p, d), ATTNC_OK);
  assert_no_overlap(g, &p);
  assert_int_equal(p.total_bytes, 6 * 4096 + 64); /* x a b c d e + the const; the reshape has none */
  assert_int_equal(p.first[0], 0);
  assert_int_equal(p.last[0], g->nnodes);
  assert_int_equal(p.first[5], 0); /* the const, defined late, is live from the start */
  assert_int_equal(p.owner[4], 3);
  assert_int_equal(p.offset[4], p.offset[3]);
  assert_int_equal(p.last[3], 6); /* c lives until d reads its reshape */
  assert_int_equal(p.offset[1], p.offset[3]); /* a and c share */
  assert_int_equal(p.offset[2], p.offset[6]); /* b and d share */
  assert_int_equal(p.offset[7], p.offset[3]); /* e (an output) takes c's space once c is dead */
  /* x and k pinned, two rotating slots */
  assert_int_equal(p.arena_bytes, 3 * 4096 + 64);
  pass_memory_plan_free(&p);
  assert_int_equal(pass_plan_memory(g, 0, &p, d), ATTNC_OK);
  assert_int_equal(p.arena_bytes, p.total_bytes);
  pass_memory_plan_free(&p);
  ir_diag_destroy(d);
  ir_graph_destroy(g);
}

/* The ResNet-20+HAM training step at batch 8: no live overlap, every output
 * and source live to the end, and the arena well below the sum. */
static void test_training_step(void **state) {
  (void)state;
  ir_graph *g = tf_lower("models/resnet_cifar.lua", FE_TRAIN, 8, "attention=ham", NULL);
  ir_diag *d = ir_diag_create();
  pass_sgd_options o = {0.9, 5e-4, 0};
  assert_int_equal(pass_train_step(g, &o, 1, NULL, d), ATTNC_OK);
  pass_memory_plan p;
  assert_int_equal(pass_plan_memory(g, 1, &p, d), ATTNC_OK);
  assert_no_overlap(g, &p);
  for (int i = 0; i < g->noutputs; i++) assert_int_equal(p.last[p.owner[g->outputs[i].node]], g->nnodes);
  for (int i = 0; i < g->nnodes; i++)
    if (ir_op_info_get(g->nodes[i]->op)->flags & IR_OPF_SOURCE) assert_int_equal(p.first[i], 0);
  assert_true(p.arena_bytes * 3 < p.total_bytes);
  char *text = pass_memory_plan_print(g, &p);
  assert_non_null(strstr(text, "# memory plan of @resnet_cifar: arena "));
  free(text);
  pass_memory_plan_free(&p);
  ir_diag_destroy(d);
  ir_graph_destroy(g);
}

/* The JIT gives the same bits with the planned arena and without reuse, on
 * a whole training step over two steps (weights fed back). */
static void test_jit_reuse_bitwise(void **state) {
  (void)state;
  ir_graph *g = tf_lower("models/resnet_cifar.lua", FE_TRAIN, 4, "attention=eca", NULL);
  ir_diag *d = ir_diag_create();
  pass_sgd_options o = {0.9, 5e-4, 0};
  assert_int_equal(pass_train_step(g, &o, 1, NULL, d), ATTNC_OK);
  ir_bundle *src = tj_sources(g, NULL, 3);
  ir_tensor *lr = ir_bundle_get(src, "lr");
  ir_tensor_set(lr, 0, 0.05);
  ir_bundle *out[2];
  for (int k = 0; k < 2; k++) {
    cg_options co = {.threads = 2, .no_reuse = k, .poison = !k};
    cg_program *p = NULL;
    if (cg_program_create(g, &co, &p, d) != ATTNC_OK) fail_msg("%s", ir_diag_text(d));
    if (k == 0) assert_true(cg_program_stats(p)->arena_bytes < cg_program_stats(p)->buffer_bytes);
    out[k] = ir_bundle_create();
    assert_int_equal(cg_program_run_bundle(p, src, NULL, d), ATTNC_OK);
    assert_true(cg_program_feedback(p) > 0);
    assert_int_equal(cg_program_run_bundle(p, NULL, out[k], d), ATTNC_OK);
    cg_program_destroy(p);
  }
  assert_int_equal(out[0]->count, out[1]->count);
  for (int i = 0; i < out[0]->count; i++) {
    const ir_tensor *a = out[0]->tensors[i], *b = ir_bundle_get(out[1], out[0]->names[i]);
    size_t bytes = (size_t)ir_type_numel(&a->type) * ir_dtype_size(a->type.dtype);
    if (memcmp(a->data, b->data, bytes)) fail_msg("output %s differs with reuse", out[0]->names[i]);
  }
  ir_bundle_destroy(out[0]);
  ir_bundle_destroy(out[1]);
  ir_bundle_destroy(src);
  ir_diag_destroy(d);
  ir_graph_destroy(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_chain),
      cmocka_unit_test(test_training_step),
      cmocka_unit_test(test_jit_reuse_bitwise),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
