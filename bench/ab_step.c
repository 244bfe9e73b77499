/* ab_step.c — A/B timing of one compiler change on a whole graph (a
 * training step): compiles FILE.ir twice in one process, first with the
 * environment variable VAR unset (A), then with VAR=1 (B), and runs the
 * two programs alternately (A B, B A, ...) from the same random sources.
 * Each side is built twice (A B B A) and the instances take turns, since
 * one program built twice in one process ran up to 5% apart on this VM.
 * Prints each side's best and median ms and the median and quartiles of
 * the per-pair ratios B/A: a slow spell of a shared machine slows both
 * members of a pair, so the ratio holds where single timings swing by 30%.
 * VAR is any switch read while compiling (ATTNC_NO_WINOGRAD, ATTNC_NO_FUSE,
 * or a temporary one a change under test reads). In place of VAR, a second
 * graph B.ir (a name ending in .ir) makes B that graph, compiled as it is:
 * a change to the passes that run before the dump (scheduling, remat) is
 * measured on the dumps of the old and the new build. Both take the same
 * sources, by name, from A's random fill.
 *
 * Built with the project (build/bench/ab_step); run, in a release build:
 *
 *   build/attnc dump models/resnet_cifar.lua --train --batch 128 --stage grad > /tmp/step.ir
 *   build/bench/ab_step /tmp/step.ir ATTNC_NO_WINOGRAD [PAIRS] [THREADS]
 *   build/bench/ab_step /tmp/old.ir /tmp/new.ir [PAIRS] [THREADS]
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
    fprintf(stderr, "usage: ab_step FILE.ir VAR|B.ir [PAIRS] [THREADS]\n");
    return 2;
  }
  const char *var = argv[2];
  int pairs = argc > 3 ? atoi(argv[3]) : 30, threads = argc > 4 ? atoi(argv[4]) : 2;
  if (pairs < 1 || threads < 1) {
    fprintf(stderr, "ab_step: PAIRS and THREADS must be positive\n");
    return 2;
  }
  size_t vl = strlen(var);
  int two = vl > 3 && !strcmp(var + vl - 3, ".ir"); /* B is a second graph */
  ir_diag *d = ir_diag_create();
  ir_graph *g[2] = {NULL, NULL};
  for (int k = 0; k < 1 + two; k++) {
    const char *path = argv[1 + k];
    char *text = slurp(path);
    if (!text) {
      fprintf(stderr, "ab_step: cannot read %s\n", path);
      return 1;
    }
    g[k] = ir_parse(text, path, d);
    free(text);
    if (!g[k]) {
      fprintf(stderr, "%s", ir_diag_text(d));
      return 1;
    }
  }
  if (!two) g[1] = g[0];
  cg_options o = {.threads = threads};
  /* two programs per side, built A B B A: the same program built twice in
   * one process ran up to 5% apart here (its arena's pages, presumably),
   * so each side's instances take turns and that placement averages out */
  enum { INST = 4 };
  static const int side_of[INST] = {0, 1, 1, 0};
  cg_program *p[INST] = {NULL, NULL, NULL, NULL};
  for (int k = 0; k < INST; k++) {
    int b = side_of[k];
    if (!two) {
      if (b)
        setenv(var, "1", 1);
      else
        unsetenv(var);
    }
    if (cg_program_create(g[b], &o, &p[k], d) != ATTNC_OK) {
      fprintf(stderr, "%s", ir_diag_text(d));
      return 1;
    }
  }
  if (!two) unsetenv(var);
  ir_bundle *src = ir_bundle_create(), *out = ir_bundle_create();
  rt_init_random(g[0], 1, src);
  for (int k = 0; k < INST; k++) /* sources in, then one warm-up run each */
    if (cg_program_run_bundle(p[k], src, out, d) != ATTNC_OK || cg_program_run(p[k], d) != ATTNC_OK) {
      fprintf(stderr, "%s", ir_diag_text(d));
      return 1;
    }
  double *t[2] = {calloc((size_t)pairs, sizeof(double)), calloc((size_t)pairs, sizeof(double))};
  double *ratio = calloc((size_t)pairs, sizeof(double));
  if (!t[0] || !t[1] || !ratio) return 1;
  for (int r = 0; r < pairs; r++) {
    int set = (r / 2) % 2; /* instances 0 and 1, or 3 and 2 */
    cg_program *side[2] = {p[set ? 3 : 0], p[set ? 2 : 1]};
    for (int j = 0; j < 2; j++) {
      int k = r % 2 ? 1 - j : j;
      double t0 = now_s();
      if (cg_program_run(side[k], d) != ATTNC_OK) {
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
  printf("  A (%s%s)  best %.3f ms, median %.3f ms\n", two ? argv[1] : var, two ? "" : " unset", t[0][0] * 1e3,
         t[0][pairs / 2] * 1e3);
  printf("  B (%s%s)  best %.3f ms, median %.3f ms\n", var, two ? "" : "=1", t[1][0] * 1e3, t[1][pairs / 2] * 1e3);
  printf("  B/A per pair  median %.3f (q1 %.3f, q3 %.3f); > 1: B slower\n", ratio[pairs / 2], ratio[pairs / 4],
         ratio[3 * pairs / 4]);
  free(t[0]);
  free(t[1]);
  free(ratio);
  ir_bundle_destroy(src);
  ir_bundle_destroy(out);
  for (int k = 0; k < INST; k++) cg_program_destroy(p[k]);
  ir_graph_destroy(g[0]);
  if (two) ir_graph_destroy(g[1]);
  ir_diag_destroy(d);
  return 0;
}
