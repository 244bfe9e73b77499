/* conv_kernels.c — times the JIT's convolution kernels (conv2d forward,
 * conv2d_grad_input, conv2d_grad_weight) on the ResNet-20 CIFAR shapes at
 * batch 128, one single-op graph each, and prints ms and GFLOP/s per
 * kernel (2 FLOPs per multiply-add), best and median of the timed runs,
 * and cpuGF/s: FLOPs per (process CPU seconds / threads), median, which
 * stays meaningful when other processes share the cores (it counts the
 * OpenMP threads' barrier spinning against the kernel).
 *
 * Build (after building libattnc in a release build dir) and run:
 *
 *   cmake -S . -B build-convrel -DCMAKE_BUILD_TYPE=RelWithDebInfo
 *   cmake --build build-convrel -j2 --target libattnc
 *   cc -O2 -fopenmp -Iir -Ibackend -Ipasses bench/conv_kernels.c build-convrel/libattnc.a \
 *      -L/usr/lib/llvm-14/lib -lLLVM-14 -llua5.4 -lcjson -lz -lm -o /tmp/conv_kernels
 *   /tmp/conv_kernels [THREADS] [RUNS] [BATCH] [WIDTH] [FILTER]
 *
 * Defaults: 2 threads, 20 runs, batch 128, WIDTH 32 (CIFAR). WIDTH 28 gives
 * the Fashion-MNIST network's shapes (1 input channel, 28/14/7 pixels).
 * FILTER keeps the shapes whose name contains it (e.g. "sa" for the
 * spatial attention's 7x7 convolutions).
 *
 * Measure only on an idle machine (check `uptime`). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cg.h"

typedef struct {
  const char *name;
  int c, co, level, k, s, p; /* input width = WIDTH >> level; c 0 = the image's channels */
} shape;

static const shape shapes[] = {
    {"conv1 ->16 3x3", 0, 16, 0, 3, 1, 1},       {"s1 16->16 3x3", 16, 16, 0, 3, 1, 1},
    {"s2a 16->32 3x3/2", 16, 32, 0, 3, 2, 1},    {"s2 32->32 3x3", 32, 32, 1, 3, 1, 1},
    {"s3a 32->64 3x3/2", 32, 64, 1, 3, 2, 1},    {"s3 64->64 3x3", 64, 64, 2, 3, 1, 1},
    {"sc2 16->32 1x1/2", 16, 32, 0, 1, 2, 0},    {"sc3 32->64 1x1/2", 32, 64, 1, 1, 2, 0},
    /* the spatial attention's 7x7 conv (CBAM, HAM): [mean, max] -> 1 map */
    {"sa1 2->1 7x7", 2, 1, 0, 7, 1, 3},          {"sa2 2->1 7x7", 2, 1, 1, 7, 1, 3},
    {"sa3 2->1 7x7", 2, 1, 2, 7, 1, 3},
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Process CPU seconds (all threads). */
static double cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Fills every source of 'p' with deterministic pseudo-random values in [-1, 1). */
static void fill(cg_program *p) {
  uint64_t st = 88172645463325252ull;
  for (int i = 0; i < cg_program_input_count(p); i++) {
    ir_type t;
    const char *nm = cg_program_input_name(p, i, &t);
    float *d = cg_program_input(p, nm, NULL);
    for (int64_t k = 0; k < ir_type_numel(&t); k++) {
      st ^= st << 13, st ^= st >> 7, st ^= st << 17;
      d[k] = (float)((double)(st >> 11) / 9007199254740992.0 * 2 - 1);
    }
  }
}

/* Compiles and times one single-op graph; prints a row. */
static void bench(const char *text, const char *label, const char *op, int threads, int runs, double *sum_ms) {
  ir_diag *d = ir_diag_create();
  ir_graph *g = ir_parse(text, "<bench>", d);
  if (!g || ir_verify(g, d)) {
    fprintf(stderr, "bad graph: %s\n%s", ir_diag_text(d), text);
    exit(1);
  }
  cg_options o = {.threads = threads};
  cg_program *p = NULL;
  double t0 = now_s();
  if (cg_program_create(g, &o, &p, d) != ATTNC_OK) {
    fprintf(stderr, "compile: %s\n", ir_diag_text(d));
    exit(1);
  }
  double compile = now_s() - t0;
  fill(p);
  for (int i = 0; i < 3; i++) cg_program_run(p, d);
  double *ts = malloc(sizeof *ts * (size_t)runs), *cs = malloc(sizeof *cs * (size_t)runs);
  for (int i = 0; i < runs; i++) {
    double a = now_s(), c = cpu_s();
    cg_program_run(p, d);
    ts[i] = now_s() - a;
    cs[i] = (cpu_s() - c) / threads;
  }
  qsort(ts, (size_t)runs, sizeof *ts, cmp_d);
  qsort(cs, (size_t)runs, sizeof *cs, cmp_d);
  double fl = cg_program_stats(p)->flops;
  printf("%-26s %-12s %8.3f %8.3f %7.1f %7.1f %7.1f %6.2f\n", label, op, ts[0] * 1e3, ts[runs / 2] * 1e3,
         fl / ts[0] * 1e-9, fl / ts[runs / 2] * 1e-9, fl / cs[runs / 2] * 1e-9, compile);
  free(cs);
  *sum_ms += ts[runs / 2] * 1e3;
  free(ts);
  cg_program_destroy(p);
  ir_graph_destroy(g);
  ir_diag_destroy(d);
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 2, runs = argc > 2 ? atoi(argv[2]) : 20;
  int n = argc > 3 ? atoi(argv[3]) : 128, width = argc > 4 ? atoi(argv[4]) : 32;
  const char *filter = argc > 5 ? argv[5] : "";
  printf("%-26s %-12s %8s %8s %7s %7s %7s %6s\n", "shape (batch)", "op", "best ms", "med ms", "GF/s", "medGF/s",
         "cpuGF/s", "comp s");
  double tot[3] = {0, 0, 0};
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
    shape sh = shapes[i];
    const shape *s = &sh;
    if (!strstr(s->name, filter)) continue;
    int h = width >> s->level, c = s->c ? s->c : width == 28 ? 1 : 3;
    sh.c = c;
    char label[64];
    snprintf(label, sizeof label, "%s %dx%d", s->name, h, h);
    int o = (h + 2 * s->p - s->k) / s->s + 1;
    char attrs[160], text[2048];
    snprintf(attrs, sizeof attrs, "stride=[%d,%d] pad=[%d,%d] dilation=[1,1] groups=1", s->s, s->s, s->p, s->p);
    snprintf(text, sizeof text,
             "graph @b {\n  %%x = input name=\"x\" : f32[%d,%d,%d,%d]\n  %%w = param name=\"w\" : f32[%d,%d,%d,%d]\n"
             "  %%y = conv2d(%%x, %%w) %s : f32[%d,%d,%d,%d]\n  output \"y\" = %%y\n}\n",
             n, s->c, h, h, s->co, s->c, s->k, s->k, attrs, n, s->co, o, o);
    bench(text, label, "forward", threads, runs, &tot[0]);
    snprintf(text, sizeof text,
             "graph @b {\n  %%dy = input name=\"dy\" : f32[%d,%d,%d,%d]\n  %%w = param name=\"w\" : f32[%d,%d,%d,%d]\n"
             "  %%dx = conv2d_grad_input(%%dy, %%w) %s in_shape=[%d,%d,%d,%d] : f32[%d,%d,%d,%d]\n"
             "  output \"dx\" = %%dx\n}\n",
             n, s->co, o, o, s->co, s->c, s->k, s->k, attrs, n, s->c, h, h, n, s->c, h, h);
    bench(text, label, "grad_input", threads, runs, &tot[1]);
    snprintf(text, sizeof text,
             "graph @b {\n  %%x = input name=\"x\" : f32[%d,%d,%d,%d]\n  %%dy = input name=\"dy\" : f32[%d,%d,%d,%d]\n"
             "  %%dw = conv2d_grad_weight(%%x, %%dy) %s kernel=[%d,%d] : f32[%d,%d,%d,%d]\n"
             "  output \"dw\" = %%dw\n}\n",
             n, s->c, h, h, n, s->co, o, o, attrs, s->k, s->k, s->co, s->c, s->k, s->k);
    bench(text, label, "grad_weight", threads, runs, &tot[2]);
  }
  printf("sum of medians (ms, one conv per shape): forward %.1f, grad_input %.1f, grad_weight %.1f\n", tot[0], tot[1],
         tot[2]);
  return 0;
}
