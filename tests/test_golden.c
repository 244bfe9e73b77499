/* Golden tests: each reference model of ../shared/reference/golden lowered
 * from its Lua spec and run by the reference interpreter in eval and train
 * mode; logits, loss and running statistics must match PyTorch's float64
 * answer (tf_golden). Adding a model is one row in 'models'. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "util_fe.h"

/* golden/<name> directory and the spec that builds it (options such as
 * depth and attention come from the reference weights' metadata). */
typedef struct {
  const char *name;
  const char *spec;
} golden_model;

static const golden_model models[] = {
    {"resnet20_none", "models/resnet_cifar.lua"},
};

/* Runs the golden comparison of one model (state: its row). */
static void test_model(void **state) {
  const golden_model *m = *state;
  tf_golden(m->name, m->spec, NULL);
}

int main(void) {
  enum { N = sizeof models / sizeof models[0] };
  struct CMUnitTest tests[N];
  for (int i = 0; i < N; i++) {
    tests[i] = (struct CMUnitTest){models[i].name, test_model, NULL, NULL, (void *)&models[i]};
  }
  return cmocka_run_group_tests(tests, NULL, NULL);
}
