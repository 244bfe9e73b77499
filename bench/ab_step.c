/* ab_step.c — A/B timing of one compiler change on a whole graph (a
 * training step): compiles FILE.ir twice in one process, with the
 * environment variable VAR unset (A) and with VAR=1 (B), and runs the two
 * programs alternately (A B, B A, ...) from the same random sources.
 * Both programs are built afresh for every round of pairs (10 pairs a
 * round unless ROUNDS says otherwise), since one program built twice in
 * one process ran up to 5% apart on this VM: with only two builds a side,
 * an A/A run (FILE.ir against itself) came out 0.956 and 0.982. Prints
 * each side's best and median ms and the median and quartiles of the
 * per-pair ratios B/A: a slow spell of a shared machine slows both
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
 *   build/bench/ab_step /tmp/step.ir ATTNC_NO_WINOGRAD [PAIRS] [THREADS] [ROUNDS]
 *   build/bench/ab_step /tmp/old.ir /tmp/new.ir [PAIRS] [THREADS] [ROUNDS]
 *   build/bench/ab_step /tmp/step.ir /tmp/step.ir 100    # A/A: the instrument's own spread
 *   build/bench/ab_step /tmp/old.ir /tmp/new.ir --profile [RUNS] [THREADS]
 *
 * Defaults: 30 pairs, 2 threads, a round per 10 pairs. With --profile, no
 * pairs: each side is built once with per-step timing of its sample
 * groups, runs RUNS times (default 10) in alternation with the other, and
 * both kernel profiles are printed, every row, each fused group with its
 * steps' shares. */
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

/* Compiles side b (0: A, 1: B) of the comparison into *p: graph g[b], with
 * the switch 'var' set to 1 for B and unset for A when both sides are one
 * graph ('two' = 0); the switch is unset again afterwards. */
static attnc_status build_side(ir_graph *const *g, int two, const char *var, int b, const cg_options *o,
                               cg_program **p, ir_diag *d) {
  if (!two) {
    if (b)
      setenv(var, "1", 1);
    else
      unsetenv(var);
  }
  attnc_status st = cg_program_create(g[b], o, p, d);
  if (!two) unsetenv(var);
  return st;
}

/* Builds A and B with per-step timing of their sample groups, runs each
 * 'runs' times in alternation after a warm-up and prints both profiles
 * (cg_program_print_profile, every row): where inside a fused group a
 * change moves the time, which the pairs' ratio alone does not say.
 * Returns the exit status. */
static int profile_sides(ir_graph **g, int two, const char *var, const char *const *names, int runs, int threads,
                         ir_diag *d) {
  cg_options o = {.threads = threads, .step_profile = 1};
  cg_program *side[2] = {NULL, NULL};
  ir_bundle *src = ir_bundle_create(), *out = ir_bundle_create();
  int rc = 1;
  rt_init_random(g[0], 1, src);
  for (int b = 0; b < 2; b++) {
    if (build_side(g, two, var, b, &o, &side[b], d) != ATTNC_OK ||
        cg_program_run_bundle(side[b], src, out, d) != ATTNC_OK || cg_program_run(side[b], d) != ATTNC_OK)
      goto done;
    cg_program_set_profile(side[b], 1);
  }
  for (int r = 0; r < runs; r++)
    for (int j = 0; j < 2; j++)
      if (cg_program_run(side[r % 2 ? 1 - j : j], d) != ATTNC_OK) goto done;
  for (int b = 0; b < 2; b++) {
    printf("== %s (%s) over %d runs, %d threads\n", b ? "B" : "A", names[b], runs, threads);
    cg_program_print_profile(side[b], stdout, 0);
  }
  rc = 0;
done:
  if (rc) fprintf(stderr, "%s", ir_diag_text(d));
  for (int b = 0; b < 2; b++) cg_program_destroy(side[b]);
  ir_bundle_destroy(src);
  ir_bundle_destroy(out);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: ab_step FILE.ir VAR|B.ir [PAIRS] [THREADS] [ROUNDS]\n"
                    "       ab_step FILE.ir VAR|B.ir --profile [RUNS] [THREADS]\n");
    return 2;
  }
  const char *var = argv[2];
  int profile = argc > 3 && !strcmp(argv[3], "--profile");
  int at = 3 + profile; /* the first number */
  int pairs = argc > at ? atoi(argv[at]) : profile ? 10 : 30, threads = argc > at + 1 ? atoi(argv[at + 1]) : 2;
  int rounds = argc > 5 && !profile ? atoi(argv[5]) : (pairs + 9) / 10;
  if (pairs < 1 || threads < 1 || rounds < 1) {
    fprintf(stderr, "ab_step: PAIRS (RUNS), THREADS and ROUNDS must be positive\n");
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
  char unset[160], set[160]; /* the sides' names in the output */
  snprintf(unset, sizeof unset, "%s unset", var);
  snprintf(set, sizeof set, "%s=1", var);
  const char *names[2] = {two ? argv[1] : unset, two ? var : set};
  if (profile) {
    int rc = profile_sides(g, two, var, names, pairs, threads, d);
    ir_graph_destroy(g[0]);
    if (two) ir_graph_destroy(g[1]);
    ir_diag_destroy(d);
    return rc;
  }
  cg_options o = {.threads = threads};
  /* the same program built twice in one process ran up to 5% apart here
   * (where its arena's pages landed, presumably), and with two builds a
   * side an A/A run (both sides the same graph) still came out 0.956 and
   * 0.982: so both sides are built afresh for every round of pairs, in
   * turns (A B, then B A), and the placement averages out over the rounds */
  int per_round = (pairs + rounds - 1) / rounds;
  ir_bundle *src = ir_bundle_create(), *out = ir_bundle_create();
  rt_init_random(g[0], 1, src);
  double *t[2] = {calloc((size_t)pairs, sizeof(double)), calloc((size_t)pairs, sizeof(double))};
  double *ratio = calloc((size_t)pairs, sizeof(double));
  if (!t[0] || !t[1] || !ratio) return 1;
  for (int r0 = 0, round = 0; r0 < pairs; r0 += per_round, round++) {
    cg_program *side[2] = {NULL, NULL};
    for (int j = 0; j < 2; j++) {
      int b = round % 2 ? 1 - j : j;
      if (build_side(g, two, var, b, &o, &side[b], d) != ATTNC_OK) {
        fprintf(stderr, "%s", ir_diag_text(d));
        return 1;
      }
    }
    for (int b = 0; b < 2; b++) /* sources in, then one warm-up run each */
      if (cg_program_run_bundle(side[b], src, out, d) != ATTNC_OK || cg_program_run(side[b], d) != ATTNC_OK) {
        fprintf(stderr, "%s", ir_diag_text(d));
        return 1;
      }
    for (int r = r0; r < pairs && r < r0 + per_round; r++) {
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
    for (int b = 0; b < 2; b++) cg_program_destroy(side[b]);
  }
  qsort(ratio, (size_t)pairs, sizeof(double), cmp_d);
  for (int k = 0; k < 2; k++) qsort(t[k], (size_t)pairs, sizeof(double), cmp_d);
  printf("%s, %d pairs in %d rounds, %d threads\n", argv[1], pairs, (pairs + per_round - 1) / per_round, threads);
  for (int k = 0; k < 2; k++)
    printf("  %s (%s)  best %.3f ms, median %.3f ms\n", k ? "B" : "A", names[k], t[k][0] * 1e3, t[k][pairs / 2] * 1e3);
  printf("  B/A per pair  median %.3f (q1 %.3f, q3 %.3f); > 1: B slower\n", ratio[pairs / 2], ratio[pairs / 4],
         ratio[3 * pairs / 4]);
  free(t[0]);
  free(t[1]);
  free(ratio);
  ir_bundle_destroy(src);
  ir_bundle_destroy(out);
  ir_graph_destroy(g[0]);
  if (two) ir_graph_destroy(g[1]);
  ir_diag_destroy(d);
  return 0;
}
