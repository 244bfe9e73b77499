/* attnc bench: compiles a model's training step or inference forward once,
 * warms up, times steps on seeded random data and reports ms/step, images/s,
 * GFLOP/s, compile time, peak memory and kernels per step. */
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
    "the forward pass, times 3 for a training step (the convention of bench/).";

static const char bench_examples[] =
    "attnc bench models/resnet_cifar.lua -D attention=ham --batch 128 --train\n"
    "attnc bench models/resnet_cifar.lua --infer --threads 1 --json\n"
    "attnc bench models/resnet_cifar.lua --profile 15";

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

/* Prints the result as text or JSON. */
static void print_result(const bench_result *r, const cg_stats *st, const char *file, int train,
                         int64_t batch, int steps, int json) {
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
    cJSON_AddNumberToObject(o, "arena_bytes", (double)st->arena_bytes);
    cJSON_AddNumberToObject(o, "buffer_bytes", (double)st->buffer_bytes);
    cJSON_AddNumberToObject(o, "kernels_per_step", st->kernels);
    cJSON_AddNumberToObject(o, "unique_kernels", st->unique_kernels);
    cJSON_AddNumberToObject(o, "fused_kernels", st->fused_kernels);
    cJSON_AddNumberToObject(o, "fused_nodes", st->fused_nodes);
    cJSON_AddNumberToObject(o, "traffic_bytes", (double)st->traffic_bytes);
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
  printf("  memory      peak RSS %.1f MiB; buffer arena %.1f MiB\n", (double)r->peak_bytes / 1048576.0,
         (double)st->arena_bytes / 1048576.0);
}

/* Compiles 'g', runs and times it. Returns an exit code. */
static int bench_graph(const ir_graph *g, const cg_options *o, int train, int steps, int warmup,
                       double flops, int64_t batch, int profile, bench_result *r, const cg_stats **st_out,
                       cg_program **out) {
  ir_diag *d = ir_diag_create();
  double t0 = now_s();
  cg_program *p = NULL;
  if (cg_program_create(g, o, &p, d) != ATTNC_OK) {
    int rc = cli_diag_fail("bench", d);
    ir_diag_destroy(d);
    return rc;
  }
  r->compile_s = now_s() - t0;
  fill_sources(p, g, 1);
  double *ms = calloc((size_t)steps, sizeof *ms);
  int rc = ms ? CLI_EXIT_OK : cli_usage_error("bench", "out of memory");
  for (int s = 0; !rc && s < warmup + steps; s++) {
    if (s == warmup && profile) cg_program_set_profile(p, 1);
    double a = now_s();
    if (cg_program_run(p, d) != ATTNC_OK) rc = cli_diag_fail("bench", d);
    if (train) cg_program_feedback(p);
    if (s >= warmup) ms[s - warmup] = (now_s() - a) * 1e3;
  }
  if (!rc) {
    qsort(ms, (size_t)steps, sizeof *ms, by_value);
    r->median_ms = steps % 2 ? ms[steps / 2] : 0.5 * (ms[steps / 2 - 1] + ms[steps / 2]);
    r->min_ms = ms[0];
    r->max_ms = ms[steps - 1];
    r->images_per_s = (double)batch / (r->median_ms * 1e-3);
    r->gflops = flops * (train ? 3 : 1) / (r->median_ms * 1e-3) * 1e-9;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    r->peak_bytes = (int64_t)ru.ru_maxrss * 1024;
  }
  free(ms);
  ir_diag_destroy(d);
  *st_out = cg_program_stats(p);
  *out = p;
  return rc;
}

/* Parses a positive count into an int. */
static int parse_count(void *dst, const char *v, char *err, size_t n) {
  char *end;
  long x = strtol(v, &end, 10);
  if (!*v || *end || x < 1 || x > 100000) {
    snprintf(err, n, "expected a count from 1 to 100000, got '%s'", v);
    return -1;
  }
  *(int *)dst = (int)x;
  return 0;
}

/* Runs 'attnc bench'. */
int cli_bench(int argc, char **argv) {
  const char *file = NULL;
  int infer = 0, json = 0, steps = 20, warmup = 3, profile = 0;
  cg_options engine = {0};
  cli_model model = {0};
  const cli_opt opts[] = {
      CLI_OPT_DEFINE(&model),
      CLI_OPT_SHAPE(&model),
      {"--batch", "N", "batch size (default 128)", &model, cli_parse_batch},
      CLI_OPT_TRAIN(&model),
      {"--infer", NULL, "time the eval forward instead of the training step", &infer, NULL},
      CLI_OPT_THREADS(&engine.threads),
      {"--steps", "K", "timed steps (default 20)", &steps, parse_count},
      {"--warmup", "K", "untimed steps first (default 3)", &warmup, parse_count},
      {"--profile", "TOP", "print the TOP kernels by time over the timed steps", &profile, parse_count},
      {"--interp", NULL, "time the reference interpreter instead (slow)", &engine.interp, NULL},
      CLI_OPT_NO_FUSE(&engine.no_fuse),
      {"--json", NULL, "print the result as one JSON object", &json, NULL},
  };
  const cli_spec spec = {"bench", "attnc bench MODEL.lua [-D key=value]... [options]", bench_about,
                         bench_examples, opts, (int)(sizeof opts / sizeof opts[0]), "MODEL", 1, &file};
  int rc = cli_parse(&spec, argc, argv);
  if (rc) {
    cli_model_free(&model);
    return rc == CLI_HELP_SHOWN ? CLI_EXIT_OK : rc;
  }
  if (infer && model.train) rc = cli_usage_error("bench", "--train and --infer exclude each other");
  else if (!cli_is_model(file)) rc = cli_usage_error("bench", "expected a MODEL.lua, got '%s'", file);
  if (!rc) rc = cli_check_readable("bench", file);
  int train = !infer;
  if (!model.batch) model.batch = 128;
  model.train = train;
  ir_graph *g = NULL;
  if (!rc) {
    fe_request req;
    cli_model_request(&model, file, &req);
    rc = cli_load_graph("bench", file, &req, &g);
  }
  double flops = g ? model_flops(g) : 0;
  if (!rc && train) {
    ir_diag *d = ir_diag_create();
    pass_sgd_options so = {0.9, 5e-4, 0};
    int fuse = !engine.no_fuse && !engine.interp; /* the fusion rewrites only serve fused kernels */
    if (pass_train_step(g, &so, fuse, NULL, d) != ATTNC_OK) rc = cli_diag_fail("bench", d);
    ir_diag_destroy(d);
  }
  cg_program *p = NULL;
  if (!rc) {
    bench_result r = {0};
    const cg_stats *st = NULL;
    rc = bench_graph(g, &engine, train, steps, warmup, flops, model.batch, profile, &r, &st, &p);
    if (!rc) {
      print_result(&r, st, file, train, model.batch, steps, json);
      if (profile) cg_program_print_profile(p, json ? stderr : stdout, profile);
    }
  }
  cg_program_destroy(p);
  ir_graph_destroy(g);
  cli_model_free(&model);
  return rc;
}
