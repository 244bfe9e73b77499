/* Golden tests of the attention modules: CIFAR ResNet-20 with each module of
 * models/attention/, lowered from models/resnet_cifar.lua and run by the
 * reference interpreter on PyTorch's weights and inputs (tf_golden): eval
 * logits, train logits, loss and running statistics within 1e-4, and every
 * gradient within 1e-3 (or tolerances.json's larger entry). resnet20_none is
 * covered by test_golden. One line per module; LGAM's gradients are checked
 * in float64 (test_lgam_float64). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "passes.h"
#include "rt_bind.h"
#include "rt_safetensors.h"
#include "util_fe.h"
#include "util_interp.h"
#include "util_zoo.h"

/* golden/<name> directories; depth and attention come from the weights' metadata. */
static const char *const models[] = {
    "resnet20_se",
    "resnet20_eca",
    "resnet20_cbam",
    "resnet20_ham",
    "resnet20_ssa",
    "resnet20_csm",
    "resnet20_cam",
    "resnet20_sam",
    "resnet20_csm_sc",
    "resnet20_spatial_softmax",
};

/* Runs the golden comparison of one model (state: its name). */
static void test_model(void **state) { tf_golden((const char *)*state, "models/resnet_cifar.lua", NULL); }

/* Reads golden/resnet20_lgam/<file> (caller destroys); fails on error. */
static ir_bundle *read_lgam(const char *file) {
  char rel[256];
  snprintf(rel, sizeof rel, "golden/resnet20_lgam/%s", file);
  ir_bundle *b = NULL;
  ir_diag *d = ir_diag_create();
  if (rt_safetensors_read(tf_reference(rel), &b, d) != ATTNC_OK) fail_msg("%s", ir_diag_text(d));
  ir_diag_destroy(d);
  return b;
}

/* Fails unless output 'out_name' is within 'tol' of expected 'key'. */
static void expect_close(const ir_bundle *out, const char *out_name, const ir_bundle *exp, const char *key,
                         double tol) {
  const ir_tensor *got = ir_bundle_get(out, out_name), *want = ir_bundle_get(exp, key);
  if (!got || !want) fail_msg("resnet20_lgam: %s missing", got ? key : out_name);
  double err = tf_rel_error(got, want);
  if (!(err <= tol)) fail_msg("resnet20_lgam: %s relative error %.3g > %.3g", key, err, tol);
}

/* LGAM's gates batch-normalize [N, C'] vectors over a batch of 4, which makes
 * its float32 gradients ill-conditioned: the native-float32 interpreter misses
 * 10x PyTorch's own float32 error on some gradients (up to 0.07 relative).
 * So: eval and train forward values in native float32 within 1e-4 (the
 * values' tolerance), then the training graph with its gradients run in
 * IR_INTERP_F64, where every logit, loss, running statistic and gradient must
 * match PyTorch's float64 answer (stored as float32) within 1e-6. */
static void test_lgam_float64(void **state) {
  (void)state;
  ir_bundle *w = read_lgam("weights.safetensors"), *x = read_lgam("input.safetensors");
  ir_bundle *exp = read_lgam("expected.safetensors");
  ir_diag *d = ir_diag_create();
  ir_bundle *feed = rt_bundle_merge(w, x, d);
  assert_non_null(feed);
  const char *opts[] = {"depth=20", "attention=lgam", NULL};
  ir_graph *g = tz_lower("models/resnet_cifar.lua", FE_EVAL, 4, "3x32x32", opts);
  ir_bundle *out = ti_run(g, feed, IR_INTERP_NATIVE);
  expect_close(out, "logits", exp, "eval.logits", 1e-4);
  ir_bundle_destroy(out);
  ir_graph_destroy(g);
  g = tz_lower("models/resnet_cifar.lua", FE_TRAIN, 4, "3x32x32", opts);
  out = ti_run(g, feed, IR_INTERP_NATIVE);
  expect_close(out, "logits", exp, "train.logits", 1e-4);
  expect_close(out, "loss", exp, "train.loss", 1e-4);
  ir_bundle_destroy(out);
  if (pass_gradients(g, 1, NULL, d) != ATTNC_OK) fail_msg("autodiff: %s", ir_diag_text(d));
  out = ti_run(g, feed, IR_INTERP_F64);
  int grads = 0, stats = 0;
  for (int i = 0; i < exp->count; i++) {
    const char *key = exp->names[i];
    if (!strncmp(key, "grad.", 5)) {
      expect_close(out, key, exp, key, 1e-6);
      grads++;
    } else if (!strncmp(key, "train.", 6)) {
      expect_close(out, key + 6, exp, key, 1e-6);
      stats++;
    }
  }
  assert_true(grads > 100 && stats > 40);
  ir_bundle_destroy(out);
  ir_graph_destroy(g);
  ir_diag_destroy(d);
  ir_bundle_destroy(feed);
  ir_bundle_destroy(exp);
  ir_bundle_destroy(x);
  ir_bundle_destroy(w);
}

int main(void) {
  enum { N = sizeof models / sizeof models[0] };
  struct CMUnitTest tests[N + 1];
  for (int i = 0; i < N; i++) tests[i] = (struct CMUnitTest){models[i], test_model, NULL, NULL, (void *)models[i]};
  tests[N] = (struct CMUnitTest)cmocka_unit_test(test_lgam_float64);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
