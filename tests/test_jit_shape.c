/* The JIT's data-movement kernels against the interpreter: concat of 2-5
 * operands of different sizes along each axis, slice with steps and start
 * offsets, slice_grad, every rank-3 permutation and several rank-4 ones,
 * pad with asymmetric pads and a value; f32, f64 and i64; 1 and 2 threads;
 * long rows that split into several work items. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util_jitr.h"

/* Writes dt + "[d0,d1,...]" into buf. */
static const char *type_text(const char *dt, const int64_t *dims, int rank, char *buf) {
  int n = sprintf(buf, "%s[", dt);
  for (int i = 0; i < rank; i++) n += sprintf(buf + n, "%s%lld", i ? "," : "", (long long)dims[i]);
  sprintf(buf + n, "]");
  return buf;
}

/* concat along each axis (negative too) of 2..5 operands whose sizes along
 * the axis differ; f64 and i64; a long concat along axis 0. */
static void test_concat(void **state) {
  (void)state;
  const int64_t base[4] = {3, 4, 5, 6};
  const char *dts[] = {"f32", "f64", "i64"};
  char ty[128];
  for (int th = 1; th <= 2; th++) {
    tjr_text t = {0};
    tjr_printf(&t, "graph @t {\n");
    int node = 0;
    for (int axis = 0; axis < 4; axis++)
      for (int n = 2; n <= 5; n++) {
        const char *dt = dts[(axis + n + th) % 3];
        int64_t d[4], total = 0;
        memcpy(d, base, sizeof d);
        for (int k = 0; k < n; k++) {
          d[axis] = 1 + (k * 2 + axis) % 4;
          total += d[axis];
          tjr_printf(&t, "  %%i%d_%d = input name=\"i%d_%d\" : %s\n", node, k, node, k, type_text(dt, d, 4, ty));
        }
        d[axis] = total;
        tjr_printf(&t, "  %%c%d = concat(", node);
        for (int k = 0; k < n; k++) tjr_printf(&t, "%s%%i%d_%d", k ? ", " : "", node, k);
        tjr_printf(&t, ") axis=%d : %s\n  output \"c%d\" = %%c%d\n", th == 2 ? axis - 4 : axis,
                   type_text(dt, d, 4, ty), node, node);
        node++;
      }
    tjr_printf(&t, "  %%la = input name=\"la\" : f32[3,20000]\n  %%lb = input name=\"lb\" : f32[2,20000]\n"
                   "  %%lc = concat(%%la, %%lb, %%la) axis=0 : f32[8,20000]\n  output \"lc\" = %%lc\n"
                   "  %%ld = concat(%%la, %%la) axis=1 : f32[3,40000]\n  output \"ld\" = %%ld\n}\n");
    tjr_compare(t.s, NULL, 60 + th, th, 0);
    tjr_text_free(&t);
  }
}

/* One slice case: x dims, axis, start, end, step. */
typedef struct {
  int64_t dims[4];
  int rank, axis;
  int64_t start, end, step;
  const char *dt;
} slice_case;

static const slice_case slices[] = {
    {{6, 7, 8, 9}, 4, 0, 1, 6, 2, "f32"},   {{6, 7, 8, 9}, 4, 1, 2, 7, 3, "f32"},
    {{6, 7, 8, 9}, 4, 2, 0, 8, 1, "f32"},   {{6, 7, 8, 9}, 4, 3, 1, 9, 2, "f32"},
    {{6, 7, 8, 9}, 4, 3, 4, 5, 1, "f64"},   {{6, 7, 8, 9}, 4, -1, 2, 9, 3, "i64"},
    {{6, 7, 8, 9}, 4, -3, 3, 7, 1, "f32"},  {{5, 40000}, 2, 1, 3, 40000, 2, "f32"},
    {{4, 40000}, 2, 0, 1, 4, 1, "f64"},     {{128, 64, 8, 8}, 4, 1, 0, 32, 1, "f32"},
    {{128, 64, 8, 8}, 4, 1, 32, 64, 1, "f32"}, {{11}, 1, 0, 3, 11, 3, "f32"},
};

/* Output dims of slice case 'c' into d; returns the normalized axis. */
static int slice_dims(const slice_case *c, int64_t *d) {
  int a = c->axis < 0 ? c->axis + c->rank : c->axis;
  memcpy(d, c->dims, sizeof c->dims);
  d[a] = (c->end - c->start + c->step - 1) / c->step;
  return a;
}

/* slice with steps 1-3 and start offsets on every axis, and slice_grad of
 * the same slices (dy random), with 1 and 2 threads. */
static void test_slice(void **state) {
  (void)state;
  char ty[128], xt[128];
  for (int th = 1; th <= 2; th++) {
    tjr_text t = {0};
    tjr_printf(&t, "graph @t {\n");
    for (size_t i = 0; i < sizeof slices / sizeof *slices; i++) {
      const slice_case *c = &slices[i];
      int64_t d[4];
      int a = slice_dims(c, d);
      type_text(c->dt, c->dims, c->rank, xt);
      type_text(c->dt, d, c->rank, ty);
      tjr_printf(&t, "  %%x%zu = input name=\"x%zu\" : %s\n", i, i, xt);
      tjr_printf(&t, "  %%s%zu = slice(%%x%zu) axis=%d start=%lld end=%lld step=%lld : %s\n  output \"s%zu\" = %%s%zu\n",
                 i, i, c->axis, (long long)c->start, (long long)c->end, (long long)c->step, ty, i, i);
      tjr_printf(&t, "  %%d%zu = input name=\"d%zu\" : %s\n", i, i, ty);
      tjr_printf(&t,
                 "  %%g%zu = slice_grad(%%d%zu) axis=%d start=%lld end=%lld step=%lld size=%lld : %s\n"
                 "  output \"g%zu\" = %%g%zu\n",
                 i, i, th == 2 ? a : c->axis, (long long)c->start, (long long)c->end, (long long)c->step,
                 (long long)c->dims[a], xt, i, i);
    }
    tjr_printf(&t, "}\n");
    tjr_compare(t.s, NULL, 70 + th, th, 0);
    tjr_text_free(&t);
  }
}

/* Every permutation of a rank-3 tensor, several rank-4 ones (the NCHW to
 * NHWC kind included), size-1 axes, f64 and i64. */
static void test_transpose(void **state) {
  (void)state;
  static const int p3[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
  static const int p4[][4] = {{0, 2, 3, 1}, {0, 3, 1, 2}, {3, 2, 1, 0}, {1, 0, 2, 3}, {0, 1, 3, 2}, {2, 3, 0, 1}};
  const int64_t d3[3] = {4, 5, 6}, d4[4] = {3, 4, 5, 7}, d1[4] = {2, 1, 5, 1}, big[4] = {16, 64, 8, 8};
  const char *dts[] = {"f32", "f64", "i64"};
  char ty[128], xt[128];
  tjr_text t = {0};
  tjr_printf(&t, "graph @t {\n");
  for (int d = 0; d < 3; d++) {
    tjr_printf(&t, "  %%a%d = input name=\"a%d\" : %s\n", d, d, type_text(dts[d], d3, 3, xt));
    for (int i = 0; i < 6; i++) {
      int64_t o[3] = {d3[p3[i][0]], d3[p3[i][1]], d3[p3[i][2]]};
      tjr_printf(&t, "  %%t%d_%d = transpose(%%a%d) perm=[%d,%d,%d] : %s\n  output \"t%d_%d\" = %%t%d_%d\n", d, i, d,
                 p3[i][0], p3[i][1], p3[i][2], type_text(dts[d], o, 3, ty), d, i, d, i);
    }
  }
  const int64_t *shapes[3] = {d4, d1, big};
  for (int s = 0; s < 3; s++) {
    tjr_printf(&t, "  %%b%d = input name=\"b%d\" : %s\n", s, s, type_text("f32", shapes[s], 4, xt));
    for (size_t i = 0; i < sizeof p4 / sizeof *p4; i++) {
      if (s == 2 && i > 1) break;
      int64_t o[4];
      for (int k = 0; k < 4; k++) o[k] = shapes[s][p4[i][k]];
      tjr_printf(&t, "  %%u%d_%zu = transpose(%%b%d) perm=[%d,%d,%d,%d] : %s\n  output \"u%d_%zu\" = %%u%d_%zu\n", s,
                 i, s, p4[i][0], p4[i][1], p4[i][2], p4[i][3], type_text("f32", o, 4, ty), s, i, s, i);
    }
  }
  tjr_printf(&t, "}\n");
  tjr_compare(t.s, NULL, 81, 2, 0);
  tjr_compare(t.s, NULL, 82, 1, 0);
  tjr_text_free(&t);
}

/* pad with asymmetric pads and a fill value on ranks 1, 2, 4; pads on one
 * axis only; zero pads; f64 and i64 (value truncated like the interpreter). */
static void test_pad(void **state) {
  (void)state;
  const struct {
    const char *dt;
    int rank;
    int64_t dims[4], pads[8];
    double value;
  } cases[] = {
      {"f32", 4, {2, 3, 5, 7}, {0, 1, 2, 0, 1, 3, 2, 1}, 1.5},
      {"f32", 4, {3, 4, 6, 6}, {0, 0, 0, 0, 1, 1, 1, 1}, 0},
      {"f32", 4, {3, 4, 6, 6}, {1, 2, 0, 0, 0, 0, 0, 0}, -7},
      {"f32", 4, {3, 4, 6, 6}, {0, 0, 0, 0, 0, 0, 0, 0}, 2},
      {"f32", 4, {2, 5, 1, 9}, {0, 0, 0, 0, 2, 0, 0, 3}, 0.25},
      {"f64", 2, {5, 3}, {2, 1, 0, 4}, -2.25},
      {"i64", 3, {2, 3, 4}, {1, 0, 0, 2, 3, 1}, 3.75},
      {"f32", 1, {10}, {3, 5}, 9},
      {"f32", 4, {128, 16, 8, 8}, {0, 0, 0, 0, 1, 1, 1, 1}, 0},
  };
  char ty[128], xt[128];
  for (int th = 1; th <= 2; th++) {
    tjr_text t = {0};
    tjr_printf(&t, "graph @t {\n");
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
      int64_t o[4];
      char pads[128];
      int n = 0;
      for (int k = 0; k < cases[i].rank; k++) {
        o[k] = cases[i].dims[k] + cases[i].pads[2 * k] + cases[i].pads[2 * k + 1];
        n += sprintf(pads + n, "%s%lld,%lld", k ? "," : "", (long long)cases[i].pads[2 * k],
                     (long long)cases[i].pads[2 * k + 1]);
      }
      tjr_printf(&t, "  %%x%zu = input name=\"x%zu\" : %s\n", i, i,
                 type_text(cases[i].dt, cases[i].dims, cases[i].rank, xt));
      tjr_printf(&t, "  %%p%zu = pad(%%x%zu) pads=[%s] value=%g : %s\n  output \"p%zu\" = %%p%zu\n", i, i, pads,
                 cases[i].value, type_text(cases[i].dt, o, cases[i].rank, ty), i, i);
    }
    tjr_printf(&t, "}\n");
    tjr_compare(t.s, NULL, 90 + th, th, 0);
    tjr_text_free(&t);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_concat),
      cmocka_unit_test(test_slice),
      cmocka_unit_test(test_transpose),
      cmocka_unit_test(test_pad),
  };
  if (getenv("TJR_FILTER")) cmocka_set_test_filter(getenv("TJR_FILTER"));
  return cmocka_run_group_tests(tests, NULL, NULL);
}
