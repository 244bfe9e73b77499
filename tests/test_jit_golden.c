/* The JIT on the whole zoo: CIFAR ResNet-20 with every attention module,
 * compiled and run by the JIT (2 threads) on PyTorch's weights and inputs,
 * must reproduce ../shared/reference/golden/ (eval logits, train logits,
 * loss and running statistics within 1e-4, every gradient within 1e-3) and
 * agree with the interpreter (tf_golden_jit). LGAM's gate gradients are
 * float32 rounding noise (see test_golden_zoo), so LGAM is checked on
 * values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "util_fe.h"

static const char *const models[] = {
    "resnet20_none", "resnet20_se",  "resnet20_eca", "resnet20_cbam",   "resnet20_ham",
    "resnet20_ssa",  "resnet20_csm", "resnet20_cam", "resnet20_sam",    "resnet20_csm_sc",
    "resnet20_spatial_softmax",
};

/* One model (state: its golden directory name). */
static void test_model(void **state) { tf_golden_jit((const char *)*state, "models/resnet_cifar.lua", NULL); }

static void test_lgam_values(void **state) {
  (void)state;
  tf_golden_jit_values("resnet20_lgam", "models/resnet_cifar.lua", NULL);
}

int main(void) {
  enum { N = sizeof models / sizeof models[0] };
  struct CMUnitTest tests[N + 1];
  for (int i = 0; i < N; i++) tests[i] = (struct CMUnitTest){models[i], test_model, NULL, NULL, (void *)models[i]};
  tests[N] = (struct CMUnitTest)cmocka_unit_test(test_lgam_values);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
