/* Every attention module in every CIFAR ResNet depth (20, 32, 56, 110)
 * lowers, verifies and runs forward in the reference interpreter, in eval
 * mode, with finite logits that depend on the input. Small inputs (8x8)
 * keep ResNet-110 quick. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#include "rt_init.h"
#include "util_interp.h"
#include "util_zoo.h"

static const char *const modules[] = {"none", "se",  "eca", "cbam",   "ham", "lgam",
                                      "ssa",  "csm", "cam", "sam", "csm_sc", "spatial_softmax"};

/* Runs module 'att' in ResNet-'depth' on two different inputs (batch 2). */
static void run_one(int depth, const char *att) {
  char dopt[32], aopt[64];
  snprintf(dopt, sizeof dopt, "depth=%d", depth);
  snprintf(aopt, sizeof aopt, "attention=%s", att);
  const char *const opts[] = {dopt, aopt, NULL};
  ir_graph *g = tz_lower("models/resnet_cifar.lua", FE_EVAL, 2, "3x8x8", opts);
  ir_bundle *in = ir_bundle_create();
  rt_init_random(g, (uint64_t)depth * 131u, in);
  ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
  const ir_tensor *l = ir_bundle_get(out, "logits");
  assert_non_null(l);
  double diff = 0;
  for (int j = 0; j < 10; j++) {
    double a = ir_tensor_get(l, j), b = ir_tensor_get(l, 10 + j);
    if (!isfinite(a) || !isfinite(b)) fail_msg("resnet%d_%s: logit %d not finite", depth, att, j);
    diff += fabs(a - b);
  }
  if (!(diff > 0)) fail_msg("resnet%d_%s: both samples give the same logits", depth, att);
  ir_bundle_destroy(out);
  ir_bundle_destroy(in);
  ir_graph_destroy(g);
}

static void test_depth(void **state) {
  int depth = *(const int *)*state;
  for (size_t i = 0; i < sizeof modules / sizeof modules[0]; i++) run_one(depth, modules[i]);
}

int main(void) {
  static const int depths[] = {20, 32, 56, 110};
  const struct CMUnitTest tests[] = {
      {"resnet20_every_module", test_depth, NULL, NULL, (void *)&depths[0]},
      {"resnet32_every_module", test_depth, NULL, NULL, (void *)&depths[1]},
      {"resnet56_every_module", test_depth, NULL, NULL, (void *)&depths[2]},
      {"resnet110_every_module", test_depth, NULL, NULL, (void *)&depths[3]},
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
