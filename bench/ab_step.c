/* ab_step.c — A/B timing of one compiler change on a whole graph (a
 * training step): compiles FILE.ir twice in one process, first with the
 * environment variable VAR unset (A), then with VAR=1 (B), and runs the
 * two programs alternately (A B, B A, ...) from the same random sources.
 * Prints each side's best and median ms and the median and quartiles of
 * the per-pair ratios B/A: a slow spell of a shared machine slows both
 * members of a pair, so the ratio holds where single timings swing by 30%.
 * VAR is any switch read while compiling (ATTNC_NO_WINOGRAD, ATTNC_NO_FUSE,
 * or a temporary one a change under test reads).
 *
 * Built with the project (build/bench/ab_step); run, in a release build:
 *
 *   build/attnc dump models/resnet_cifar.lua --train --batch 128 --stage grad > /tmp/step.ir
 *   build/bench/ab_step /tmp/step.ir ATTNC_NO_WINOGRAD [PAIRS] [THREADS]
 *
 * Defaults: 30 pairs, 2 threads. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cg.h"
#include "ir.h"
#include "rt_init.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* The contents of 'path' as a string (caller frees), NULL on error. */
static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = NULL;
  if (fseek(f, 0, SEEK_END) == 0) {
    long n = ftell(f);
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) != NULL) {
      if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
      } else {
        buf[n] = 0;
      }
    }
  }
  fclose(f);
  return buf;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: ab_step FILE.ir VAR [PAIRS] [THREADS]\n");
    return 2;
  }
  const char *var = argv[2];
  int pairs = argc > 3 ? atoi(argv[3]) : 30, threads = argc > 4 ? atoi(argv[4]) : 2;
  if (pairs < 1 || threads < 1) {
    fprintf(stderr, "ab_step: PAIRS and THREADS must be positive\n");
    return 2;
  }
  char *text = slurp(argv[1]);
  if (!text) {
    fprintf(stderr, "ab_step: cannot read %s\n", argv[1]);
    return 1;
  }
  ir_diag *d = ir_diag_create();
  ir_graph *g = ir_parse(text, argv[1], d);
  free(text);
  if (!g) {
    fprintf(stderr, "%s", ir_diag_text(d));
    return 1;
  }
  cg_options o = {.threads = threads};
  cg_program *p[2] = {NULL, NULL};
  for (int k = 0; k < 2; k++) {
    if (k)
      setenv(var, "1", 1);
    else
      unsetenv(var);
    if (cg_program_create(g, &o, &p[k], d) != ATTNC_OK) {
      fprintf(stderr, "%s", ir_diag_text(d));
      return 1;
    }
  }
  unsetenv(var);
  ir_bundle *src = ir_bundle_create(), *out = ir_bundle_create();
  rt_init_random(g, 1, src);
  for (int k = 0; k < 2; k++) /* sources in, then one warm-up run each */
    if (cg_program_run_bundle(p[k], src, out, d) != ATTNC_OK || cg_program_run(p[k], d) != ATTNC_OK) {
      fprintf(stderr, "%s", ir_diag_text(d));
      return 1;
    }
  double *t[2] = {calloc((size_t)pairs, sizeof(double)), calloc((size_t)pairs, sizeof(double))};
  double *ratio = calloc((size_t)pairs, sizeof(double));
  if (!t[0] || !t[1] || !ratio) return 1;
  for (int r = 0; r < pairs; r++) {
    for (int j = 0; j < 2; j++) {
      int k = r % 2 ? 1 - j : j;
      double t0 = now_s();
      if (cg_program_run(p[k], d) != ATTNC_OK) {
        fprintf(stderr, "%s", ir_diag_text(d));
        return 1;
      }
      t[k][r] = now_s() - t0;
    }
    ratio[r] = t[1][r] / t[0][r];
  }
  qsort(ratio, (size_t)pairs, sizeof(double), cmp_d);
  for (int k = 0; k < 2; k++) qsort(t[k], (size_t)pairs, sizeof(double), cmp_d);
  printf("%s, %d pairs, %d threads\n", argv[1], pairs, threads);
  printf("  A (%s unset)  best %.3f ms, median %.3f ms\n", var, t[0][0] * 1e3, t[0][pairs / 2] * 1e3);
  printf("  B (%s=1)      best %.3f ms, median %.3f ms\n", var, t[1][0] * 1e3, t[1][pairs / 2] * 1e3);
  printf("  B/A per pair  median %.3f (q1 %.3f, q3 %.3f); > 1: B slower\n", ratio[pairs / 2], ratio[pairs / 4],
         ratio[3 * pairs / 4]);
  free(t[0]);
  free(t[1]);
  free(ratio);
  ir_bundle_destroy(src);
  ir_bundle_destroy(out);
  for (int k = 0; k < 2; k++) cg_program_destroy(p[k]);
  ir_graph_destroy(g);
  ir_diag_destroy(d);
  return 0;
}
