/* attnc bench: compiles a model's training step or inference forward once,
 * warms up, times steps on seeded random data and reports ms/step, images/s,
 * GFLOP/s, compile time, the step's memory, the process's peak RSS and
 * kernels per step; with a baseline model, the two alternate step by step
 * and the per-pair ratio is reported. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cg.h"
#include "cli.h"
#include "passes.h"
#include "rt_init.h"

static const char bench_about[] =
    "Lowers MODEL.lua at --batch N (default 128), builds the training step (SGD with\n"
    "momentum 0.9, weight decay 5e-4, lr 0.01) or, with --infer, the eval forward,\n"
    "compiles it with the JIT, runs --warmup steps, then times --steps steps on seeded\n"
    "random data. A training step includes copying the new weights back, as training\n"
    "does. GFLOP/s counts 2 FLOPs per multiply-add of the convolutions and matmuls of\n"
    "the forward pass, times 3 for a training step (the convention of bench/).\n"
    "With --baseline key=value, a second program, the model with those options\n"
    "changed, is compiled too and the two run alternately, step by step (A B, B A,\n"
    "...), so that both see the same load of the machine; both are built afresh for\n"
    "every round of 10 pairs, so where one build's buffers landed does not weigh on\n"
    "the ratio; 'step/base' is the median (and quartiles) of the per-pair ratios,\n"
    "e.g. the overhead of an attention module. (With --profile, each model is built\n"
    "twice instead and the builds take turns every two pairs, so that one program\n"
    "holds the whole profile; both models are profiled, in the same pairs, and a\n"
    "second table gives each kind of kernel's time in both and the difference: where\n"
    "an attention module's overhead goes.)\n"
    "With --baseline-no-fuse the second program is the same model with --no-fuse, so\n"
    "'step/base' is the fused step over the unfused one, paired the same way.";

static const char bench_examples[] =
    "attnc bench models/resnet_cifar.lua -D attention=ham --batch 128 --train\n"
    "attnc bench models/resnet_cifar.lua --infer --threads 1 --json\n"
    "attnc bench models/resnet_cifar.lua --profile 15\n"
    "attnc bench models/resnet_cifar.lua -D attention=ham --baseline attention=none\n"
    "attnc bench models/resnet_cifar.lua -D attention=eca --baseline-no-fuse";

/* Forward FLOPs of the convolutions and matmuls of 'g' (2 per multiply-add). */
static double model_flops(const ir_graph *g) {
  double f = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    if (n->op == IR_OP_conv2d || n->op == IR_OP_conv1d) {
      const ir_type *w = &g->nodes[n->in[1]]->type;
      double k = 1;
      for (int a = 1; a < w->rank; a++) k *= (double)w->dims[a];
      f += 2.0 * (double)ir_type_numel(&n->type) * k;
    } else if (n->op == IR_OP_matmul) {
      const ir_type *a = &g->nodes[n->in[0]]->type;
      int trans_a = (int)ir_get_int(n, "trans_a");
      double kdim = (double)a->dims[trans_a ? a->rank - 2 : a->rank - 1];
      f += 2.0 * (double)ir_type_numel(&n->type) * kdim;
    }
  }
  return f;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Writes seeded random values into every source of the program ("lr" = 0.01). */
static void fill_sources(cg_program *p, const ir_graph *g, uint64_t seed) {
  ir_bundle *b = ir_bundle_create();
  rt_init_random(g, seed, b);
  for (int i = 0; i < b->count; i++) {
    ir_type t;
    void *dst = cg_program_input(p, b->names[i], &t);
    if (!dst) continue;
    ir_tensor view = {t, dst};
    const ir_tensor *src = b->tensors[i];
    int64_t n = ir_type_numel(&t);
    for (int64_t k = 0; k < n && k < ir_type_numel(&src->type); k++)
      ir_tensor_set(&view, k, ir_tensor_get(src, k));
  }
  ir_bundle_destroy(b);
  ir_type t;
  float *lr = cg_program_input(p, "lr", &t);
  if (lr && t.dtype == IR_F32) *lr = 0.01f;
}

/* Timing results of a benchmark. */
typedef struct {
  double median_ms, min_ms, max_ms, images_per_s, gflops, compile_s;
  int64_t peak_bytes;
} bench_result;

/* One model under test: its step graph, compiled program and step times. */
typedef struct {
  ir_graph *g;
  cg_program *p;
  cg_program *p2; /* profiling a baseline pair: a second build of the graph, taking turns with p */
  int builds;   /* programs compiled (a baseline pair's fresh builds) */
  double flops; /* forward FLOPs */
  double *ms;   /* timed steps */
  bench_result r;
} bench_case;

/* The q-quantile of the n sorted values v (linear interpolation). */
static double quantile(const double *v, int n, double q) {
  double x = q * (n - 1);
  int i = (int)x;
  return i + 1 < n ? v[i] + (x - i) * (v[i + 1] - v[i]) : v[n - 1];
}

/* Prints the result as text or JSON; 'base' (or NULL) is the baseline model
 * timed in alternation, 'ratio' its sorted per-pair step ratios. */
static void print_result(const bench_case *c, const char *file, int train, int64_t batch, int steps,
                         int json, const bench_case *base, const char *base_defines, const double *ratio) {
  const bench_result *r = &c->r;
  const cg_stats *st = cg_program_stats(c->p);
  const cg_stats *bs = base ? cg_program_stats(base->p) : NULL;
  const int64_t step_bytes = st->arena_bytes + st->scratch_bytes; /* all allocated before the first step */
  if (json) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", file);
    cJSON_AddStringToObject(o, "mode", train ? "train" : "infer");
    cJSON_AddNumberToObject(o, "batch", (double)batch);
    cJSON_AddNumberToObject(o, "threads", st->threads);
    cJSON_AddNumberToObject(o, "steps", steps);
    cJSON_AddNumberToObject(o, "ms_per_step", r->median_ms);
    cJSON_AddNumberToObject(o, "ms_min", r->min_ms);
    cJSON_AddNumberToObject(o, "ms_max", r->max_ms);
    cJSON_AddNumberToObject(o, "images_per_s", r->images_per_s);
    cJSON_AddNumberToObject(o, "gflops", r->gflops);
    cJSON_AddNumberToObject(o, "compile_s", r->compile_s);
    cJSON_AddNumberToObject(o, "lower_s", st->lower_s);
    cJSON_AddNumberToObject(o, "opt_s", st->opt_s);
    cJSON_AddNumberToObject(o, "jit_s", st->jit_s);
    cJSON_AddNumberToObject(o, "peak_bytes", (double)r->peak_bytes);
    cJSON_AddNumberToObject(o, "step_bytes", (double)step_bytes);
    cJSON_AddNumberToObject(o, "arena_bytes", (double)st->arena_bytes);
    cJSON_AddNumberToObject(o, "scratch_bytes", (double)st->scratch_bytes);
    cJSON_AddNumberToObject(o, "buffer_bytes", (double)st->buffer_bytes);
    cJSON_AddNumberToObject(o, "kernels_per_step", st->kernels);
    cJSON_AddNumberToObject(o, "unique_kernels", st->unique_kernels);
    cJSON_AddNumberToObject(o, "fused_kernels", st->fused_kernels);
    cJSON_AddNumberToObject(o, "fused_nodes", st->fused_nodes);
    cJSON_AddNumberToObject(o, "traffic_bytes", (double)st->traffic_bytes);
    if (base) {
      cJSON *b = cJSON_AddObjectToObject(o, "baseline");
      cJSON_AddStringToObject(b, "defines", base_defines);
      cJSON_AddNumberToObject(b, "ms_per_step", base->r.median_ms);
      cJSON_AddNumberToObject(b, "ms_min", base->r.min_ms);
      cJSON_AddNumberToObject(b, "ms_max", base->r.max_ms);
      cJSON_AddNumberToObject(b, "gflops", base->r.gflops);
      cJSON_AddNumberToObject(b, "compile_s", base->r.compile_s);
      cJSON_AddNumberToObject(b, "arena_bytes", (double)bs->arena_bytes);
      cJSON_AddNumberToObject(b, "kernels_per_step", bs->kernels);
      cJSON_AddNumberToObject(b, "traffic_bytes", (double)bs->traffic_bytes);
      cJSON_AddNumberToObject(b, "builds", base->builds);
      cJSON_AddNumberToObject(o, "builds", c->builds);
      cJSON_AddNumberToObject(o, "ratio_median", quantile(ratio, steps, 0.5));
      cJSON_AddNumberToObject(o, "ratio_q1", quantile(ratio, steps, 0.25));
      cJSON_AddNumberToObject(o, "ratio_q3", quantile(ratio, steps, 0.75));
      cJSON_AddNumberToObject(o, "ratio_min", ratio[0]);
      cJSON_AddNumberToObject(o, "ratio_max", ratio[steps - 1]);
    }
    char *s = cJSON_PrintUnformatted(o);
    printf("%s\n", s);
    free(s);
    cJSON_Delete(o);
    return;
  }
  printf("%s, %s step, batch %lld, %d threads\n", file, train ? "training" : "inference",
         (long long)batch, st->threads);
  printf("  ms/step     %.2f median (min %.2f, max %.2f) over %d steps\n", r->median_ms, r->min_ms,
         r->max_ms, steps);
  printf("  images/s    %.0f\n", r->images_per_s);
  printf("  GFLOP/s     %.1f\n", r->gflops);
  printf("  compile     %.2f s (build IR %.2f, O3 %.2f, codegen+link %.2f); %d kernels per step, %d distinct\n",
         r->compile_s, st->lower_s, st->opt_s, st->jit_s, st->kernels, st->unique_kernels);
  printf("  fusion      %d fused kernels computing %d nodes; feature-map traffic %.1f MiB per step\n",
         st->fused_kernels, st->fused_nodes, (double)st->traffic_bytes / 1048576.0);
  printf("  memory      step %.1f MiB (buffer arena %.1f, thread scratch %.1f); peak RSS %.1f MiB "
         "(the whole process%s)\n",
         (double)step_bytes / 1048576.0, (double)st->arena_bytes / 1048576.0,
         (double)st->scratch_bytes / 1048576.0, (double)r->peak_bytes / 1048576.0,
         base ? ", both models" : ", the compiler included");
  if (!base) return;
  printf("  baseline    %s: %.2f ms/step median (min %.2f, max %.2f); %d kernels per step; "
         "traffic %.1f MiB; arena %.1f MiB\n",
         base_defines, base->r.median_ms, base->r.min_ms, base->r.max_ms, bs->kernels,
         (double)bs->traffic_bytes / 1048576.0, (double)bs->arena_bytes / 1048576.0);
  printf("  step/base   %.3f median of %d paired steps (quartiles %.3f, %.3f; min %.3f, max %.3f); "
         "%d builds of each\n",
         quantile(ratio, steps, 0.5), steps, quantile(ratio, steps, 0.25), quantile(ratio, steps, 0.75),
         ratio[0], ratio[steps - 1], c->builds);
}

/* Compiles case c's graph with 'o' into *slot and fills its sources (the
 * same for every build of the case). Returns an exit code. */
static int bench_build(bench_case *c, const cg_options *o, cg_program **slot, ir_diag *d) {
  if (cg_program_create(c->g, o, slot, d) != ATTNC_OK) return cli_diag_fail("bench", d);
  c->builds++;
  fill_sources(*slot, c->g, 1);
  return CLI_EXIT_OK;
}

/* Lowers 'file' with the options of 'model', builds its training step (or
 * eval forward), compiles it and fills its sources. Returns an exit code. */
static int bench_load(const char *file, const cli_model *model, const cg_options *o, int train,
                      int steps, bench_case *c) {
  fe_request req;
  cli_model_request(model, file, &req);
  int rc = cli_load_graph("bench", file, &req, &c->g);
  if (rc) return rc;
  c->flops = model_flops(c->g);
  ir_diag *d = ir_diag_create();
  if (train) {
    pass_sgd_options so = {0.9, 5e-4, 0};
    int fuse = !o->no_fuse && !o->interp; /* the fusion rewrites only serve fused kernels */
    if (pass_train_step(c->g, &so, fuse, NULL, d) != ATTNC_OK) rc = cli_diag_fail("bench", d);
  }
  double t0 = now_s();
  if (!rc) rc = bench_build(c, o, &c->p, d);
  c->r.compile_s = now_s() - t0;
  ir_diag_destroy(d);
  if (rc) return rc;
  c->ms = calloc((size_t)steps, sizeof *c->ms);
  return c->ms ? CLI_EXIT_OK : cli_usage_error("bench", "out of memory");
}

/* Builds the second program of case 'c' (a baseline pair's), sources as
 * the first's. Returns an exit code. */
static int bench_second(bench_case *c, const cg_options *o) {
  ir_diag *d = ir_diag_create();
  int rc = bench_build(c, o, &c->p2, d);
  ir_diag_destroy(d);
  return rc;
}

/* Runs one step of program 'p' (with the weight feedback of training),
 * reporting into 'd'; its time in milliseconds goes to *ms. Returns an
 * exit code. */
static int bench_step(cg_program *p, int train, ir_diag *d, double *ms) {
  double a = now_s();
  int rc = cg_program_run(p, d) != ATTNC_OK ? cli_diag_fail("bench", d) : CLI_EXIT_OK;
  if (train) cg_program_feedback(p);
  *ms = (now_s() - a) * 1e3;
  return rc;
}

/* Fills c->r from the timed steps (sorted in place). */
static void bench_summarize(bench_case *c, int steps, int64_t batch, int train) {
  bench_result *r = &c->r;
  qsort(c->ms, (size_t)steps, sizeof *c->ms, by_value);
  r->median_ms = quantile(c->ms, steps, 0.5);
  r->min_ms = c->ms[0];
  r->max_ms = c->ms[steps - 1];
  r->images_per_s = (double)batch / (r->median_ms * 1e-3);
  r->gflops = c->flops * (train ? 3 : 1) / (r->median_ms * 1e-3) * 1e-9;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  r->peak_bytes = (int64_t)ru.ru_maxrss * 1024;
}

/* Frees what 'c' holds. */
static void bench_case_free(bench_case *c) {
  cg_program_destroy(c->p);
  cg_program_destroy(c->p2);
  ir_graph_destroy(c->g);
  free(c->ms);
}

enum { BENCH_ROUND = 10 }; /* paired steps per build of a baseline pair */

/* Builds case 'c' afresh (a round of an unprofiled pair, which has no
 * second program) and runs one untimed step. Returns an exit code. */
static int bench_rebuild(bench_case *c, const cg_options *o, int train, ir_diag *d) {
  cg_program_destroy(c->p);
  c->p = NULL;
  int rc = bench_build(c, o, &c->p, d);
  double ms;
  return rc ? rc : bench_step(c->p, train, d, &ms);
}

/* Times steps of cases[0..n) (built with o[i]): with a baseline (n == 2)
 * the two alternate, each pair in turn order (A B, then B A), so both see
 * the same machine, and both are built afresh every BENCH_ROUND pairs (one
 * program built twice in one process ran up to 5% apart on a VM, by where
 * its buffers landed, and with two builds a side that took turns, the
 * model against itself came out 0.988, 0.974 and 0.968); when profiling,
 * the second programs take over every two pairs instead, so that one
 * program holds the profile. ratio[s] = step s of cases[0] / step s of
 * cases[1]. Returns an exit code. */
static int bench_run(bench_case *cases, const cg_options *o, int n, int train, int steps, int warmup,
                     int profile, double *ratio) {
  ir_diag *d = ir_diag_create();
  int rc = CLI_EXIT_OK;
  for (int s = 0; !rc && s < warmup + steps; s++) {
    for (int i = 0; s == warmup && profile && i < n; i++) cg_program_set_profile(cases[i].p, 1);
    int timed = s - warmup;
    if (n == 2 && !profile && timed > 0 && timed % BENCH_ROUND == 0) /* a new round: fresh builds, in turns */
      for (int k = 0; !rc && k < 2; k++) {
        int i = (timed / BENCH_ROUND) % 2 ? 1 - k : k;
        rc = bench_rebuild(&cases[i], &o[i], train, d);
      }
    double t[2] = {0, 0};
    for (int k = 0; !rc && k < n; k++) {
      int i = n == 2 && s % 2 ? 1 - k : k;
      cg_program *p = cases[i].p2 && (s / 2) % 2 ? cases[i].p2 : cases[i].p;
      rc = bench_step(p, train, d, &t[i]);
    }
    if (rc || s < warmup) continue;
    for (int i = 0; i < n; i++) cases[i].ms[timed] = t[i];
    if (n == 2) ratio[timed] = t[0] / t[1];
  }
  ir_diag_destroy(d);
  if (!rc && n == 2) qsort(ratio, (size_t)steps, sizeof *ratio, by_value);
  return rc;
}

/* The kind named 'kind' in k[0..n), or NULL. */
static const cg_profile_kind *find_kind(const cg_profile_kind *k, int n, const char *kind) {
  for (int i = 0; i < n; i++)
    if (!strcmp(k[i].kind, kind)) return &k[i];
  return NULL;
}

/* A row of the profile difference: a kind and its time in both models. */
typedef struct {
  const char *kind;
  double ms[2];
  int calls[2];
} kind_diff;

/* qsort order of the difference rows: largest extra time first. */
static int by_difference(const void *a, const void *b) {
  const kind_diff *x = a, *y = b;
  double dx = x->ms[0] - x->ms[1], dy = y->ms[0] - y->ms[1];
  return dx < dy ? 1 : dx > dy ? -1 : strcmp(x->kind, y->kind);
}

/* Prints, per kind of kernel, the time per step of the model and of the
 * baseline, profiled in the same pairs, and the difference, largest first
 * (where the model's extra time goes). Returns an exit code. */
static int print_kind_difference(const bench_case *cases, FILE *f) {
  enum { MAXK = 256 };
  cg_profile_kind *k[2] = {calloc(MAXK, sizeof(cg_profile_kind)), calloc(MAXK, sizeof(cg_profile_kind))};
  kind_diff *rows = calloc(2 * MAXK, sizeof *rows);
  int nk[2] = {-1, -1}, nr = 0;
  for (int i = 0; i < 2 && k[i]; i++) nk[i] = cg_program_profile_kinds(cases[i].p, k[i], MAXK);
  if (!rows || nk[0] < 0 || nk[1] < 0) {
    free(k[0]);
    free(k[1]);
    free(rows);
    return cli_usage_error("bench", "out of memory");
  }
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < nk[i] && j < MAXK; j++) {
      if (i == 1 && find_kind(k[0], nk[0] < MAXK ? nk[0] : MAXK, k[1][j].kind)) continue;
      kind_diff *r = &rows[nr++];
      r->kind = k[i][j].kind;
      for (int m = 0; m < 2; m++) {
        const cg_profile_kind *x = find_kind(k[m], nk[m] < MAXK ? nk[m] : MAXK, r->kind);
        r->ms[m] = x ? x->ms : 0;
        r->calls[m] = x ? x->calls : 0;
      }
    }
  qsort(rows, (size_t)nr, sizeof *rows, by_difference);
  double tot[2] = {0, 0};
  int calls[2] = {0, 0};
  fprintf(f, "by kind of kernel, ms per step of the model and of the baseline (profiled in the same pairs):\n");
  fprintf(f, "%10s %10s %10s %6s %6s  %s\n", "ms", "base ms", "diff", "calls", "base", "kind");
  for (int r = 0; r < nr; r++) {
    fprintf(f, "%10.3f %10.3f %+10.3f %6d %6d  %s\n", rows[r].ms[0], rows[r].ms[1], rows[r].ms[0] - rows[r].ms[1],
            rows[r].calls[0], rows[r].calls[1], rows[r].kind);
    for (int m = 0; m < 2; m++) {
      tot[m] += rows[r].ms[m];
      calls[m] += rows[r].calls[m];
    }
  }
  fprintf(f, "%10.3f %10.3f %+10.3f %6d %6d  total\n", tot[0], tot[1], tot[0] - tot[1], calls[0], calls[1]);
  free(k[0]);
  free(k[1]);
  free(rows);
  return CLI_EXIT_OK;
}

/* Fills 'base' with the options of 'model' changed by those of 'over', and
 * writes the changes as "-D k=v ..." into 'text'. Returns an exit code. */
static int baseline_model(const cli_model *model, const cli_model *over, cli_model *base, char *text,
                          size_t textsize) {
  char err[128];
  *base = *model;
  base->ndefines = 0;
  int rc = 0;
  for (int i = 0; !rc && i < model->ndefines; i++)
    rc = cli_model_set(base, model->keys[i], strlen(model->keys[i]), model->values[i], err, sizeof err);
  size_t len = 0;
  text[0] = '\0';
  for (int i = 0; !rc && i < over->ndefines; i++) {
    rc = cli_model_set(base, over->keys[i], strlen(over->keys[i]), over->values[i], err, sizeof err);
    int w = snprintf(text + len, textsize - len, "%s-D %s=%s", i ? " " : "", over->keys[i], over->values[i]);
    if (w > 0 && (size_t)w < textsize - len) len += (size_t)w;
  }
  return rc ? cli_usage_error("bench", "--baseline: %s", err) : CLI_EXIT_OK;
}

/* Parses a positive count into an int. */
static int parse_count(void *dst, const char *v, char *err, size_t n) {
  long long x;
  if (cli_parse_int(v, 1, 100000, &x)) {
    snprintf(err, n, "expected a count from 1 to 100000, got '%s'", v);
    return -1;
  }
  *(int *)dst = (int)x;
  return 0;
}

/* Runs 'attnc bench'. */
int cli_bench(int argc, char **argv) {
  const char *file = NULL;
  int infer = 0, json = 0, steps = 20, warmup = 3, profile = 0, base_no_fuse = 0;
  cg_options engine = {0};
  cli_model model = {0}, over = {0}, base = {0};
  const cli_opt opts[] = {
      CLI_OPT_DEFINE(&model),
      CLI_OPT_SHAPE(&model),
      {"--batch", "N", "batch size (default 128)", &model, cli_parse_batch},
      CLI_OPT_TRAIN(&model),
      {"--infer", NULL, "time the eval forward instead of the training step", &infer, NULL},
      CLI_OPT_THREADS(&engine.threads),
      {"--steps", "K", "timed steps (default 20)", &steps, parse_count},
      {"--warmup", "K", "untimed steps first (default 3)", &warmup, parse_count},
      {"--baseline", "key=value",
       "also time the model with this -D changed, alternating steps (repeatable)", &over,
       cli_parse_define},
      {"--baseline-no-fuse", NULL, "also time the model with --no-fuse, alternating steps", &base_no_fuse, NULL},
      {"--profile", "TOP", "print the TOP kernels by time over the timed steps, sample groups by step", &profile,
       parse_count},
      {"--interp", NULL, "time the reference interpreter instead (slow)", &engine.interp, NULL},
      CLI_OPT_NO_FUSE(&engine.no_fuse),
      {"--json", NULL, "print the result as one JSON object", &json, NULL},
  };
  const cli_spec spec = {"bench", "attnc bench MODEL.lua [-D key=value]... [options]", bench_about,
                         bench_examples, opts, (int)(sizeof opts / sizeof opts[0]), "MODEL", 1, &file};
  int rc = cli_parse(&spec, argc, argv);
  if (rc) {
    cli_model_free(&model);
    cli_model_free(&over);
    return rc == CLI_HELP_SHOWN ? CLI_EXIT_OK : rc;
  }
  if (infer && model.train) rc = cli_usage_error("bench", "--train and --infer exclude each other");
  else if (!cli_is_model(file)) rc = cli_usage_error("bench", "expected a MODEL.lua, got '%s'", file);
  if (!rc) rc = cli_check_readable("bench", file);
  int train = !infer;
  if (!model.batch) model.batch = 128;
  model.train = train;
  char base_text[512] = "";
  int n = over.ndefines || base_no_fuse ? 2 : 1;
  cg_options base_engine = engine;
  base_engine.no_fuse |= base_no_fuse;
  if (!rc && base_no_fuse && (over.ndefines || engine.no_fuse || engine.interp))
    rc = cli_usage_error("bench", "--baseline-no-fuse excludes --baseline, --no-fuse and --interp");
  if (!rc && n == 2) rc = baseline_model(&model, &over, &base, base_text, sizeof base_text);
  if (base_no_fuse) snprintf(base_text, sizeof base_text, "--no-fuse"); /* no -D changed: the same model */
  bench_case cases[2] = {{0}, {0}};
  double *ratio = NULL;
  cg_options profiled = engine; /* the profiled model also counts its sample groups' steps */
  profiled.step_profile = profile > 0;
  if (!rc) rc = bench_load(file, &model, &profiled, train, steps, &cases[0]);
  if (!rc && n == 2 && (rc = bench_load(file, &base, &base_engine, train, steps, &cases[1])))
    fprintf(stderr, "attnc: bench: (in the baseline model, %s)\n", base_text);
  if (!rc && n == 2 && profile) rc = bench_second(&cases[1], &base_engine); /* built A B B A */
  if (!rc && n == 2 && profile) rc = bench_second(&cases[0], &profiled);
  const cg_options built[2] = {profiled, base_engine};
  if (!rc && !(ratio = calloc((size_t)steps, sizeof *ratio))) rc = cli_usage_error("bench", "out of memory");
  if (!rc) rc = bench_run(cases, built, n, train, steps, warmup, profile, ratio);
  if (!rc) {
    for (int i = 0; i < n; i++) bench_summarize(&cases[i], steps, model.batch, train);
    print_result(&cases[0], file, train, model.batch, steps, json, n == 2 ? &cases[1] : NULL, base_text,
                 ratio);
    if (profile) cg_program_print_profile(cases[0].p, json ? stderr : stdout, profile);
    if (profile && n == 2) rc = print_kind_difference(cases, json ? stderr : stdout);
  }
  free(ratio);
  for (int i = 0; i < n; i++) bench_case_free(&cases[i]);
  cli_model_free(&base);
  cli_model_free(&over);
  cli_model_free(&model);
  return rc;
}
