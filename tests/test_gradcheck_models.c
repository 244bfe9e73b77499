/* Model-level gradient checks: the training graph of each zoo model, lowered
 * at a small size with seeded random weights, differentiated by autodiff and
 * compared with central finite differences in float64 (rt_gradcheck). Every
 * attention module in ResNet-20, and each other backbone family. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "fe.h"
#include "rt_gradcheck.h"
#include "rt_init.h"
#include "util_fe.h"

typedef struct {
  const char *name;
  const char *spec;
  const char *opts[5]; /* "key=value", NULL-terminated */
  int64_t shape[3];
  int64_t batch;
  int tensors; /* parameters checked (0: all) */
} model_case;

#define CIFAR(att) {"resnet20_" att, "models/resnet_cifar.lua", {"attention=" att, NULL}, {3, 8, 8}, 2, 12}
static const model_case cases[] = {
    CIFAR("none"), CIFAR("se"), CIFAR("eca"), CIFAR("cbam"), CIFAR("ham"),
    /* LGAM's gates batch-normalize [N, C'] vectors: with N = 2 every gate is
     * +-1 and the gradient is ill-conditioned, so use N = 4 */
    {"resnet20_lgam", "models/resnet_cifar.lua", {"attention=lgam", NULL}, {3, 8, 8}, 4, 12},
    CIFAR("ssa"), CIFAR("csm"), CIFAR("cam"), CIFAR("sam"), CIFAR("csm_sc"), CIFAR("spatial_softmax"),
    {"resnet50_bottleneck", "models/resnet.lua", {"depth=50", "cifar_stem=true", "classes=10", NULL}, {3, 8, 8}, 4, 6},
    {"wrn_16_2", "models/wideresnet.lua", {"depth=16", "widen=2", NULL}, {3, 8, 8}, 2, 10},
    {"resnext29_2x4d", "models/resnext.lua", {"cardinality=2", "width=4", "widen=1", NULL}, {3, 8, 8}, 2, 10},
    {"mobilenetv2_ham", "models/mobilenetv2.lua", {"width_mult=0.25", "cifar=true", "classes=10", "attention=ham"},
     {3, 16, 16}, 2, 10},
};
#undef CIFAR

static void test_model(void **state) {
  const model_case *c = *state;
  tf_opts store;
  fe_request req = {c->spec, 0, NULL, NULL, {c->shape[0], c->shape[1], c->shape[2]}, c->batch, FE_TRAIN};
  tf_split_opts(&req, c->opts, -1, &store);
  ir_diag *d = ir_diag_create();
  ir_graph *g = NULL;
  if (fe_lower(&req, &g, d) != ATTNC_OK) fail_msg("%s: %s", c->name, ir_diag_text(d));
  ir_bundle *vals = ir_bundle_create();
  rt_init_random(g, 7, vals);
  rt_gradcheck_opts o = {0, 0, 2, c->tensors, 0};
  rt_gradcheck_report r;
  if (rt_gradcheck(g, "loss", vals, &o, &r, d) != ATTNC_OK) fail_msg("%s: %s", c->name, ir_diag_text(d));
  for (int i = 0; i < r.count; i++)
    if (r.entries[i].rel_err > 1e-4)
      print_error("%s: grad.%s relative error %.3g\n", c->name, r.entries[i].name, r.entries[i].rel_err);
  int checked = r.count;
  double worst = r.worst;
  rt_gradcheck_report_free(&r);
  ir_bundle_destroy(vals);
  ir_graph_destroy(g);
  ir_diag_destroy(d);
  assert_true(checked >= (c->tensors ? c->tensors : 1));
  assert_true(worst <= 1e-4);
}

int main(void) {
  enum { N = sizeof cases / sizeof cases[0] };
  struct CMUnitTest tests[N];
  for (int i = 0; i < N; i++) tests[i] = (struct CMUnitTest){cases[i].name, test_model, NULL, NULL, (void *)&cases[i]};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
