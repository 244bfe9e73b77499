/* Model-zoo tests: every attention module in every CIFAR ResNet depth lowers,
 * verifies and has exactly the PyTorch reference's parameter and buffer names,
 * shapes and count; the ImageNet-style backbones have torchvision's (or the
 * paper's) parameter counts and run a finite forward in the interpreter. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "util_build.h"
#include "util_fe.h"
#include "util_interp.h"
#include "util_zoo.h"

/* Every attention module of the registry, one per line. */
static const char *const modules[] = {
    "none",
    "se",
    "eca",
    "cbam",
    "ham",
    "lgam",
    "ssa",
    "csm",
    "cam",
    "sam",
    "csm_sc",
    "spatial_softmax",
};
#define NMODULES ((int)(sizeof modules / sizeof modules[0]))

/* Lowers resnet_cifar at 'depth' with every module (eval, and train when
 * 'train'), comparing names, shapes and counts with keys/resnet<d>_<m>.json. */
static void check_depth(int depth, int train) {
  for (int i = 0; i < NMODULES; i++) {
    char d[32], a[64], keys[128];
    snprintf(d, sizeof d, "depth=%d", depth);
    snprintf(a, sizeof a, "attention=%s", modules[i]);
    snprintf(keys, sizeof keys, "keys/resnet%d_%s.json", depth, modules[i]);
    ir_graph *g = tf_lower("models/resnet_cifar.lua", FE_EVAL, 2, d, a, NULL);
    tf_assert_keys(g, keys);
    ir_graph_destroy(g);
    if (train) {
      g = tf_lower("models/resnet_cifar.lua", FE_TRAIN, 2, d, a, NULL);
      tf_assert_keys(g, keys);
      ir_graph_destroy(g);
    }
  }
}

/* ResNet-20/32/56 with every module: eval and train graphs match the keys. */
static void test_keys_resnet20(void **state) {
  (void)state;
  check_depth(20, 1);
}
static void test_keys_resnet32(void **state) {
  (void)state;
  check_depth(32, 1);
}
static void test_keys_resnet56(void **state) {
  (void)state;
  check_depth(56, 1);
}
/* ResNet-110 with every module: the eval graph matches the keys. */
static void test_keys_resnet110(void **state) {
  (void)state;
  check_depth(110, 0);
}

/* An unknown attention name is an error that lists the valid names. */
static void test_unknown_attention(void **state) {
  (void)state;
  const char *msg = NULL;
  tf_lower_error("models/resnet.lua", &msg, "attention=bogus", NULL);
  tb_assert_contains(msg, "bogus");
  tb_assert_contains(msg, "none, se, eca, cbam, ham, lgam, ssa, csm, cam, sam, csm_sc, spatial_softmax");
}

/* A backbone configuration and its trainable-parameter count, computed by
 * scripts/zoo_param_counts.py (PyTorch; torchvision's published numbers for
 * ResNet and MobileNetV2). */
typedef struct {
  const char *spec;
  const char *opts[6];
  int64_t params;
} count_case;

static const count_case counts[] = {
    {"models/resnet.lua", {"depth=18", NULL}, 11689512},
    {"models/resnet.lua", {"depth=34", NULL}, 21797672},
    {"models/resnet.lua", {"depth=50", NULL}, 25557032},
    {"models/resnet.lua", {"depth=101", NULL}, 44549160},
    {"models/resnet.lua", {"depth=18", "cifar_stem=true", "classes=10", NULL}, 11173962},
    {"models/resnet.lua", {"depth=50", "cifar_stem=true", "classes=10", NULL}, 23520842},
    {"models/wideresnet.lua", {NULL}, 10961370},
    {"models/wideresnet.lua", {"widen=2", NULL}, 691674},
    {"models/wideresnet.lua", {"depth=28", "widen=10", NULL}, 36479194},
    {"models/resnext.lua", {NULL}, 34426698},
    {"models/resnext.lua", {"cardinality=32", "width=4", NULL}, 4775754},
    {"models/mobilenetv2.lua", {NULL}, 3504872},
    {"models/mobilenetv2.lua", {"classes=10", NULL}, 2236682},
    {"models/mobilenetv2.lua", {"classes=10", "width_mult=0.5", NULL}, 700490},
};

/* Every backbone configuration has its reference parameter count. */
static void test_backbone_counts(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
    ir_graph *g = tz_lower(counts[i].spec, FE_EVAL, 1, "3x32x32", counts[i].opts);
    int64_t got = tf_count_sources(g, 0);
    ir_graph_destroy(g);
    if (got != counts[i].params)
      fail_msg("%s %s: %lld parameters, expected %lld", counts[i].spec, counts[i].opts[0] ? counts[i].opts[0] : "",
               (long long)got, (long long)counts[i].params);
  }
}

/* Fails unless 'g' has a param or buffer 'name' of type 'want'. */
static void assert_weight(const ir_graph *g, const char *name, const char *want) {
  const ir_node *n = ir_graph_find_source(g, IR_OP_param, name);
  if (!n) n = ir_graph_find_source(g, IR_OP_buffer, name);
  if (!n) fail_msg("no weight named %s", name);
  tb_assert_type(g, n->id, want);
}

/* The backbones use torchvision's / the ports' state_dict names. */
static void test_backbone_names(void **state) {
  (void)state;
  const char *r18[] = {"attention=se", NULL};
  ir_graph *g = tz_lower("models/resnet.lua", FE_EVAL, 1, "3x32x32", r18);
  assert_weight(g, "conv1.weight", "f32[64,3,7,7]");
  assert_weight(g, "layer2.0.downsample.0.weight", "f32[128,64,1,1]");
  assert_weight(g, "layer2.0.downsample.1.running_var", "f32[128]");
  assert_weight(g, "layer4.1.att.fc1.weight", "f32[32,512]");
  assert_weight(g, "fc.bias", "f32[1000]");
  ir_graph_destroy(g);
  const char *r50[] = {"depth=50", "cifar_stem=true", NULL};
  g = tz_lower("models/resnet.lua", FE_EVAL, 1, "3x32x32", r50);
  assert_weight(g, "conv1.weight", "f32[64,3,3,3]");
  assert_weight(g, "layer1.0.downsample.0.weight", "f32[256,64,1,1]");
  assert_weight(g, "layer3.5.conv3.weight", "f32[1024,256,1,1]");
  ir_graph_destroy(g);
  g = tz_lower("models/wideresnet.lua", FE_EVAL, 1, NULL, NULL);
  assert_weight(g, "block1.layer.0.bn1.weight", "f32[16]");
  assert_weight(g, "block1.layer.0.convShortcut.weight", "f32[128,16,1,1]");
  assert_weight(g, "block3.layer.1.conv2.weight", "f32[512,512,3,3]");
  assert_weight(g, "bn1.running_mean", "f32[512]");
  ir_graph_destroy(g);
  const char *nx[] = {"cardinality=32", "width=4", NULL};
  g = tz_lower("models/resnext.lua", FE_EVAL, 1, NULL, nx);
  assert_weight(g, "stage1.0.conv_conv.weight", "f32[128,4,3,3]");
  assert_weight(g, "stage2.0.shortcut.conv.weight", "f32[512,256,1,1]");
  assert_weight(g, "fc.weight", "f32[10,1024]");
  ir_graph_destroy(g);
  g = tz_lower("models/mobilenetv2.lua", FE_EVAL, 1, "3x32x32", NULL);
  assert_weight(g, "features.0.0.weight", "f32[32,3,3,3]");
  assert_weight(g, "features.1.conv.0.0.weight", "f32[32,1,3,3]");
  assert_weight(g, "features.2.conv.1.0.weight", "f32[96,1,3,3]");
  assert_weight(g, "features.17.conv.2.weight", "f32[320,960,1,1]");
  assert_weight(g, "features.18.1.running_var", "f32[1280]");
  assert_weight(g, "classifier.1.weight", "f32[1000,1280]");
  ir_graph_destroy(g);
}

/* A small forward run: spec, options, input shape, classes. */
typedef struct {
  const char *spec;
  const char *opts[6];
  const char *shape;
  int classes;
} run_case;

static const run_case runs[] = {
    {"models/resnet.lua", {"cifar_stem=true", "classes=10", NULL}, "3x16x16", 10},
    {"models/resnet.lua", {"classes=7", "attention=cbam", NULL}, "3x32x32", 7},
    {"models/resnet.lua", {"depth=50", "cifar_stem=true", "classes=10", NULL}, "3x8x8", 10},
    {"models/wideresnet.lua", {"widen=2", NULL}, "3x16x16", 10},
    {"models/wideresnet.lua", {"widen=1", "attention=ham", NULL}, "3x16x16", 10},
    {"models/resnext.lua", {"cardinality=2", "width=8", "widen=1", NULL}, "3x16x16", 10},
    {"models/resnext.lua", {"cardinality=4", "width=4", "widen=1", "attention=eca", NULL}, "3x16x16", 10},
    {"models/mobilenetv2.lua", {"classes=10", NULL}, "3x32x32", 10},
    {"models/mobilenetv2.lua", {"classes=10", "cifar=true", "width_mult=0.5", "attention=se", NULL}, "3x16x16", 10},
};

/* Each backbone runs a batch-1 forward (eval) with finite logits of the
 * right shape, and its training graph lowers and verifies. */
static void test_backbone_forward(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
    const run_case *r = &runs[i];
    ir_graph *g = tz_lower(r->spec, FE_EVAL, 1, r->shape, r->opts);
    ir_bundle *in = tz_random_weights(g, 1000u + (unsigned)i);
    ir_node *x = ir_graph_find_source(g, IR_OP_input, "input");
    assert_non_null(x);
    int64_t n = ir_type_numel(&x->type);
    double *vals = test_malloc((size_t)n * sizeof *vals);
    ti_fill(vals, n, 7u + (unsigned)i);
    ti_feed(in, g, x->id, vals);
    test_free(vals);
    ir_bundle *out = ti_run(g, in, IR_INTERP_NATIVE);
    const ir_tensor *logits = ir_bundle_get(out, "logits");
    assert_non_null(logits);
    char want[32], got[64];
    snprintf(want, sizeof want, "f32[1,%d]", r->classes);
    ir_type_format(&logits->type, got, sizeof got);
    if (strcmp(want, got) != 0) fail_msg("%s: logits %s, expected %s", r->spec, got, want);
    double norm = 0;
    for (int j = 0; j < r->classes; j++) {
      double v = ir_tensor_get(logits, j);
      if (!isfinite(v)) fail_msg("%s (case %zu): logit %d is %g", r->spec, i, j, v);
      norm += v * v;
    }
    if (norm == 0) fail_msg("%s (case %zu): all logits are zero", r->spec, i);
    ir_bundle_destroy(out);
    ir_bundle_destroy(in);
    ir_graph_destroy(g);
    g = tz_lower(r->spec, FE_TRAIN, 2, r->shape, r->opts);
    ir_graph_destroy(g);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_keys_resnet20),     cmocka_unit_test(test_keys_resnet32),
      cmocka_unit_test(test_keys_resnet56),     cmocka_unit_test(test_keys_resnet110),
      cmocka_unit_test(test_unknown_attention), cmocka_unit_test(test_backbone_counts),
      cmocka_unit_test(test_backbone_names),    cmocka_unit_test(test_backbone_forward),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
