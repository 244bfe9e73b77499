/* Summary tests: per-layer rows and totals of hand-checked small specs, the
 * CIFAR ResNets' totals against the PyTorch reference keys and an
 * independent MAC formula, and the 'attnc summary' command (text, --json,
 * errors). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "fe_summary.h"
#include "util_build.h"
#include "util_cli.h"
#include "util_fe.h"

#define TINY "tests/data/specs/tiny.lua"

/* Returns the layer named 'name', failing if absent. */
static const fe_summary_layer *layer(const fe_summary *s, const char *name) {
  for (int i = 0; i < s->nlayers; i++)
    if (strcmp(s->layers[i].name, name) == 0) return &s->layers[i];
  fail_msg("no layer %s", name);
  return NULL;
}

/* tiny.lua (3x8x8, width 16, 10 classes): rows and totals by hand. */
static void test_tiny_rows(void **state) {
  (void)state;
  ir_graph *g = tf_lower(TINY, FE_EVAL, 2, NULL);
  fe_summary *s = fe_summarize(g);
  assert_non_null(s);
  assert_int_equal(s->batch, 2);
  assert_int_equal(s->nlayers, 4);
  assert_string_equal(s->layers[0].name, "conv");
  const fe_summary_layer *conv = layer(s, "conv"), *bn = layer(s, "bn"), *top = layer(s, "(root)"),
                         *fc = layer(s, "fc");
  assert_string_equal(conv->ops, "conv2d");
  assert_int_equal(conv->params, 16 * 3 * 3 * 3);
  assert_int_equal(conv->macs, 16 * 8 * 8 * (3 * 3 * 3)); /* per image */
  assert_string_equal(bn->ops, "batchnorm_eval");
  assert_int_equal(bn->params, 32);
  assert_int_equal(bn->buffers, 32);
  assert_string_equal(top->ops, "relu,reduce_mean");
  assert_int_equal(top->params, 0);
  assert_int_equal(top->shape.rank, 2);
  assert_int_equal(top->shape.dims[1], 16);
  assert_string_equal(fc->ops, "matmul,add");
  assert_int_equal(fc->params, 16 * 10 + 10);
  assert_int_equal(fc->macs, 10 * 16);
  assert_int_equal(s->params, 432 + 32 + 170);
  assert_int_equal(s->buffers, 32);
  assert_int_equal(s->macs, 27648 + 160);
  /* conv, bn, relu: 16x8x8 each; mean 16; matmul, add 10 each; f32 */
  assert_int_equal(s->activation_bytes, (3 * 1024 + 16 + 20) * 4);
  char *text = fe_summary_text(s);
  tb_assert_contains(text, "conv  ");
  tb_assert_contains(text, "27,648");
  tb_assert_contains(text, "parameters:        634 trainable (32 buffer elements)");
  free(text);
  fe_summary_destroy(s);
  ir_graph_destroy(g);
}

/* MACs of CIFAR ResNet-(6n+2), counted independently of the graph. */
static int64_t resnet_macs(int n) {
  int64_t t = 32 * 32 * 16 * 27, cin = 16;
  const int64_t chans[3] = {16, 32, 64}, sizes[3] = {32, 16, 8};
  for (int st = 0; st < 3; st++)
    for (int j = 0; j < n; j++) {
      int64_t c = chans[st], hw = sizes[st] * sizes[st];
      t += hw * c * cin * 9 + hw * c * c * 9 + (cin != c ? hw * c * cin : 0);
      cin = c;
    }
  return t + 64 * 10;
}

/* Returns the element count of the non-trainable keys of a reference file. */
static int64_t reference_buffers(const char *keys_rel) {
  char *text = tc_read_file(tf_reference(keys_rel), NULL);
  assert_non_null(text);
  cJSON *j = cJSON_Parse(text);
  free(text);
  assert_non_null(j);
  int64_t total = 0;
  const cJSON *k;
  cJSON_ArrayForEach(k, cJSON_GetObjectItemCaseSensitive(j, "keys")) {
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(k, "trainable"))) continue;
    int64_t n = 1;
    const cJSON *d;
    cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(k, "shape")) n *= (int64_t)d->valuedouble;
    total += n;
  }
  cJSON_Delete(j);
  return total;
}

/* ResNet-20 and -56: totals equal the reference parameter counts exactly. */
static void test_resnet_totals(void **state) {
  (void)state;
  static const struct {
    const char *depth, *keys;
    int n;
    int64_t published;
  } cases[] = {{"depth=20", "keys/resnet20_none.json", 3, 272474}, {"depth=56", "keys/resnet56_none.json", 9, 855770}};
  for (int i = 0; i < 2; i++) {
    ir_graph *g = tf_lower("models/resnet_cifar.lua", FE_EVAL, 1, cases[i].depth, NULL);
    fe_summary *s = fe_summarize(g);
    int64_t ref = 0;
    assert_int_equal(tf_keys_differences(g, cases[i].keys, 1, &ref), 0);
    assert_int_equal(s->params, ref);
    assert_int_equal(s->params, cases[i].published);
    assert_int_equal(s->buffers, reference_buffers(cases[i].keys));
    assert_int_equal(s->macs, resnet_macs(cases[i].n));
    assert_true(s->activation_bytes > 0);
    fe_summary_destroy(s);
    ir_graph_destroy(g);
  }
  assert_int_equal(resnet_macs(3), 40813184); /* ~41M, as published for ResNet-20 */
}

/* Per-image numbers do not depend on the batch. */
static void test_batch_independent(void **state) {
  (void)state;
  ir_graph *g1 = tf_lower("models/resnet_cifar.lua", FE_EVAL, 1, NULL);
  ir_graph *g4 = tf_lower("models/resnet_cifar.lua", FE_EVAL, 4, NULL);
  fe_summary *s1 = fe_summarize(g1), *s4 = fe_summarize(g4);
  assert_int_equal(s1->macs, s4->macs);
  assert_int_equal(s1->activation_bytes, s4->activation_bytes);
  assert_int_equal(s1->elementwise, s4->elementwise);
  fe_summary_destroy(s1);
  fe_summary_destroy(s4);
  ir_graph_destroy(g1);
  ir_graph_destroy(g4);
}

/* attnc summary --json prints one object with layers and totals. */
static void test_cli_json(void **state) {
  (void)state;
  const char *args[] = {"summary", "models/resnet_cifar.lua", "-D", "depth=56", "--json", NULL};
  tc_result r;
  assert_int_equal(tc_run_attnc(args, &r), 0);
  if (r.code != 0) fail_msg("exit %d: %s", r.code, r.err);
  cJSON *j = cJSON_Parse(r.out);
  assert_non_null(j);
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "model")->valuestring, "resnet_cifar");
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "totals");
  assert_int_equal((int64_t)cJSON_GetObjectItemCaseSensitive(t, "params")->valuedouble, 855770);
  assert_int_equal((int64_t)cJSON_GetObjectItemCaseSensitive(t, "macs")->valuedouble, resnet_macs(9));
  assert_true(cJSON_GetObjectItemCaseSensitive(t, "activation_bytes")->valuedouble > 0);
  assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(t, "buffers")));
  const cJSON *layers = cJSON_GetObjectItemCaseSensitive(j, "layers");
  const cJSON *l0 = cJSON_GetArrayItem(layers, 0);
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(l0, "name")->valuestring, "conv1");
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(l0, "op")->valuestring, "conv2d");
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(l0, "shape")), 4);
  assert_int_equal((int64_t)cJSON_GetObjectItemCaseSensitive(l0, "params")->valuedouble, 432);
  assert_int_equal((int64_t)cJSON_GetObjectItemCaseSensitive(l0, "macs")->valuedouble, 442368);
  int64_t sum = 0;
  const cJSON *l;
  cJSON_ArrayForEach(l, layers) sum += (int64_t)cJSON_GetObjectItemCaseSensitive(l, "params")->valuedouble;
  assert_int_equal(sum, 855770);
  cJSON_Delete(j);
  tc_result_free(&r);
}

/* The text table and its totals; errors of the spec reach the user. */
static void test_cli_text_and_errors(void **state) {
  (void)state;
  const char *args[] = {"summary", "models/resnet_cifar.lua", NULL};
  tc_result r;
  assert_int_equal(tc_run_attnc(args, &r), 0);
  assert_int_equal(r.code, 0);
  tb_assert_contains(r.out, "parameters:        272,474 trainable");
  tb_assert_contains(r.out, "MACs per image:    40,813,184");
  tb_assert_contains(r.out, "layers.3.shortcut.conv");
  tc_result_free(&r);
  const char *bad[] = {"summary", "models/resnet_cifar.lua", "-D", "deph=20", NULL};
  assert_int_equal(tc_run_attnc(bad, &r), 0);
  assert_int_equal(r.code, 1);
  tb_assert_contains(r.err, "unknown option -D deph (known options:");
  tc_result_free(&r);
  const char *shape[] = {"summary", TINY, "--shape", "4x8x8", NULL};
  assert_int_equal(tc_run_attnc(shape, &r), 0);
  assert_int_equal(r.code, 1);
  tb_assert_contains(r.err, TINY ":14: ");
  tc_result_free(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tiny_rows),         cmocka_unit_test(test_resnet_totals),
      cmocka_unit_test(test_batch_independent), cmocka_unit_test(test_cli_json),
      cmocka_unit_test(test_cli_text_and_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
