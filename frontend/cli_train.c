/* attnc train: trains a model spec on a data set (SGD with momentum, weight
 * decay, schedules, augmentation), evaluates after every epoch, logs and
 * checkpoints, stops cleanly on SIGINT/SIGTERM and resumes. Also the model
 * loading shared by train, eval and infer (cli_train_lower and friends). */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "passes.h"
#include "rt_train.h"

static const char train_about[] =
    "Trains MODEL.lua on the training split of --data with SGD (momentum, weight decay,\n"
    "optional Nesterov) and a learning-rate schedule, evaluates on the test split after\n"
    "every epoch (top-1, top-5, loss), appends a record per epoch to --log, and writes a\n"
    "checkpoint (weights, batchnorm statistics, momenta, position, options) to --save after\n"
    "every epoch. The input shape, in_channels and classes come from the data set. Training\n"
    "uses full batches only (the last partial batch of an epoch is dropped). SIGINT or\n"
    "SIGTERM stops after the current step and writes a checkpoint (exit status 130);\n"
    "--resume continues it exactly where it stopped. See docs/TRAINING.md.";

static const char train_examples[] =
    "attnc train models/resnet_cifar.lua -D attention=ham --data fashion-mnist --epochs 1\n"
    "attnc train models/resnet_cifar.lua -D attention=se --data cifar10:/data/cifar-10-batches-bin \\\n"
    "    --epochs 200 --schedule step:60,120,160:0.2 --save se.safetensors --log se.csv\n"
    "attnc train models/resnet_cifar.lua -D attention=se --data cifar10:/data/cifar-10-batches-bin \\\n"
    "    --epochs 200 --schedule step:60,120,160:0.2 --resume se.safetensors --save se.safetensors";

/* ---- shared by train, eval and infer ---- */

/* Removes -D 'key' from 'm' (if present). */
static void drop_define(cli_model *m, const char *key) {
  for (int i = 0; i < m->ndefines; i++)
    if (!strcmp(m->keys[i], key)) {
      free(m->keys[i]);
      free(m->values[i]);
      for (int j = i + 1; j < m->ndefines; j++) m->keys[j - 1] = m->keys[j], m->values[j - 1] = m->values[j];
      m->ndefines--;
      return;
    }
}

/* 1 if 'm' has -D 'key'. */
static int has_define(const cli_model *m, const char *key) {
  for (int i = 0; i < m->ndefines; i++)
    if (!strcmp(m->keys[i], key)) return 1;
  return 0;
}

/* Adds -D key=value to 'm' unless it has 'key'; returns 1 if added. */
static int add_define(cli_model *m, const char *key, const char *value) {
  if (has_define(m, key) || m->ndefines >= CLI_MAX_DEFINES) return 0;
  m->keys[m->ndefines] = strdup(key);
  m->values[m->ndefines] = strdup(value);
  if (!m->keys[m->ndefines] || !m->values[m->ndefines]) {
    free(m->keys[m->ndefines]);
    free(m->values[m->ndefines]);
    return 0;
  }
  m->ndefines++;
  return 1;
}

/* 1 if 'd' reports "-D key" as an unknown option of the spec. */
static int unknown_option(ir_diag *d, const char *key) {
  char needle[96];
  snprintf(needle, sizeof needle, "unknown option -D %s ", key);
  for (int i = 0; i < ir_diag_count(d); i++)
    if (strstr(ir_diag_message(d, i), needle)) return 1;
  return 0;
}

/* Lowers 'path' (see cli.h). */
int cli_train_lower(const char *cmd, cli_model *m, const char *path, fe_mode mode, int64_t batch,
                    const int64_t shape[3], int classes, ir_graph **out) {
  *out = NULL;
  int rc = cli_check_readable(cmd, path);
  if (rc) return rc;
  char buf[32];
  int auto_c = 0, auto_k = 0;
  snprintf(buf, sizeof buf, "%lld", (long long)shape[0]);
  auto_c = add_define(m, "in_channels", buf);
  if (classes > 0) {
    snprintf(buf, sizeof buf, "%d", classes);
    auto_k = add_define(m, "classes", buf);
  }
  ir_diag *d = ir_diag_create();
  for (int attempt = 0; attempt < 2; attempt++) {
    fe_request req;
    cli_model_request(m, path, &req);
    memcpy(req.shape, shape, sizeof req.shape);
    req.batch = batch;
    req.mode = mode;
    ir_diag_clear(d);
    if (fe_lower(&req, out, d) == ATTNC_OK) break;
    int retry = 0; /* the spec does not declare an option we added: lower without it */
    if (auto_c && unknown_option(d, "in_channels")) drop_define(m, "in_channels"), auto_c = 0, retry = 1;
    if (auto_k && unknown_option(d, "classes")) drop_define(m, "classes"), auto_k = 0, retry = 1;
    if (!retry) break;
  }
  rc = *out ? CLI_EXIT_OK : cli_diag_fail(cmd, d);
  ir_diag_destroy(d);
  return rc;
}

/* Reads the -D options recorded in checkpoint 'path' into 'm' (see cli.h). */
int cli_defines_from_checkpoint(const char *cmd, const char *path, cli_model *m) {
  ir_diag *d = ir_diag_create();
  ir_bundle *b = NULL;
  rt_ckpt_info info;
  int rc = rt_ckpt_load(path, &b, &info, d) == ATTNC_OK ? CLI_EXIT_OK : cli_diag_fail(cmd, d);
  if (!rc) cli_train_defines_from(m, info.options);
  ir_bundle_destroy(b);
  ir_diag_destroy(d);
  return rc;
}

/* Adds the "defines" of a checkpoint's options JSON (see cli.h). */
void cli_train_defines_from(cli_model *m, const char *options_json) {
  cJSON *j = options_json && *options_json ? cJSON_Parse(options_json) : NULL;
  const cJSON *defs = cJSON_GetObjectItemCaseSensitive(j, "defines"), *it;
  cJSON_ArrayForEach(it, defs) {
    if (cJSON_IsString(it) && it->string) add_define(m, it->string, it->valuestring);
  }
  cJSON_Delete(j);
}

/* ---- train ---- */

/* Training options as typed. */
typedef struct {
  cli_model model;
  const char *data, *schedule, *augment, *save, *resume, *weights, *log;
  long long epochs, holdout, seed;
  double lr, momentum, wd, warmup;
  int nesterov, threads, interp, no_fuse, json, confusion, force;
} train_args;

/* Parses a non-negative integer into a long long. */
static int parse_count(void *dst, const char *v, char *err, size_t n) {
  long long x;
  if (cli_parse_int(v, 0, LLONG_MAX, &x)) {
    snprintf(err, n, "expected a non-negative integer, got '%s'", v);
    return -1;
  }
  *(long long *)dst = x;
  return 0;
}

/* Parses a finite non-negative number into a double. */
static int parse_number(void *dst, const char *v, char *err, size_t n) {
  char *end;
  errno = 0;
  double x = strtod(v, &end);
  if (!*v || *end || errno || !isfinite(x) || x < 0) {
    snprintf(err, n, "expected a non-negative number, got '%s'", v);
    return -1;
  }
  *(double *)dst = x;
  return 0;
}

/* The options that decide the training trajectory, as JSON (stored in
 * checkpoints; a resume must match them). Keys of -D sorted. malloc'd. */
static char *options_json(const train_args *a, const rt_schedule *s, const rt_train_options *o) {
  cJSON *j = cJSON_CreateObject(), *defs = cJSON_AddObjectToObject(j, "defines");
  int order[CLI_MAX_DEFINES], n = a->model.ndefines;
  for (int i = 0; i < n; i++) order[i] = i;
  for (int i = 1; i < n; i++)
    for (int k = i; k > 0 && strcmp(a->model.keys[order[k - 1]], a->model.keys[order[k]]) > 0; k--) {
      int t = order[k];
      order[k] = order[k - 1];
      order[k - 1] = t;
    }
  for (int i = 0; i < n; i++) cJSON_AddStringToObject(defs, a->model.keys[order[i]], a->model.values[order[i]]);
  cJSON_AddStringToObject(j, "data", a->data);
  cJSON_AddNumberToObject(j, "batch", (double)a->model.batch);
  cJSON_AddNumberToObject(j, "lr", s->base_lr);
  cJSON_AddNumberToObject(j, "momentum", a->momentum);
  cJSON_AddNumberToObject(j, "wd", a->wd);
  cJSON_AddBoolToObject(j, "nesterov", a->nesterov);
  cJSON_AddStringToObject(j, "schedule", a->schedule);
  cJSON_AddNumberToObject(j, "warmup", a->warmup);
  cJSON_AddNumberToObject(j, "seed", (double)a->seed);
  cJSON_AddNumberToObject(j, "pad_crop", o->pad_crop);
  if (o->resized_crop > 0) cJSON_AddNumberToObject(j, "resized_crop", o->resized_crop); /* older runs lack it */
  cJSON_AddBoolToObject(j, "flip", o->flip);
  cJSON_AddNumberToObject(j, "holdout", (double)a->holdout);
  char *text = cJSON_PrintUnformatted(j);
  cJSON_Delete(j);
  return text;
}

/* The default augmentation for a data set: RandomResizedCrop (scale 0.08
 * to 1) and flip for image folders of 64 pixels and more (ImageNet
 * subsets), pad-crop (4 for 32x32, 12 for 96x96) and flip for other color
 * images, none for grayscale. */
static void default_augment(const rt_dataset *ds, rt_train_options *o) {
  o->pad_crop = 0;
  o->resized_crop = 0;
  o->flip = 0;
  if (!strcmp(ds->name, "folder") && ds->height >= 64) {
    o->resized_crop = 0.08;
    o->flip = 1;
  } else if (ds->channels == 3 && (ds->height == 32 || ds->height == 96)) {
    o->pad_crop = ds->height == 32 ? 4 : 12;
    o->flip = 1;
  }
}

/* Parses --augment, '+'-separated parts none, crop, resized-crop[:MIN_SCALE]
 * and flip, into o (pad from the image size). */
static int parse_augment(const char *s, const rt_dataset *ds, rt_train_options *o) {
  o->pad_crop = 0;
  o->resized_crop = 0;
  o->flip = 0;
  char buf[128];
  if (strlen(s) >= sizeof buf) return cli_usage_error("train", "--augment: too long");
  snprintf(buf, sizeof buf, "%s", s);
  int none = 0, parts = 0;
  for (char *save = NULL, *t = strtok_r(buf, "+", &save); t; t = strtok_r(NULL, "+", &save), parts++) {
    char *end;
    if (!strcmp(t, "none")) none = 1;
    else if (!strcmp(t, "crop") && !o->pad_crop) o->pad_crop = ds->height >= 96 ? 12 : 4;
    else if (!strcmp(t, "flip") && !o->flip) o->flip = 1;
    else if (!strcmp(t, "resized-crop") && !o->resized_crop) o->resized_crop = 0.08;
    else if (!strncmp(t, "resized-crop:", 13) && !o->resized_crop && (o->resized_crop = strtod(t + 13, &end)) > 0 &&
             o->resized_crop <= 1 && !*end && end > t + 13)
      continue;
    else
      return cli_usage_error("train",
                             "--augment: expected none, or crop, resized-crop[:MIN_SCALE] (0 < MIN_SCALE <= 1) and "
                             "flip joined by '+', got '%s'",
                             s);
  }
  if (!parts) return cli_usage_error("train", "--augment: empty (use none for no augmentation)");
  if (none && parts > 1) return cli_usage_error("train", "--augment: 'none' stands alone, got '%s'", s);
  if (o->pad_crop && o->resized_crop)
    return cli_usage_error("train", "--augment: crop and resized-crop exclude each other, got '%s'", s);
  return 0;
}

/* The stop flag set by SIGINT/SIGTERM. */
static volatile sig_atomic_t train_stop;

/* SIGINT/SIGTERM: ask the loop to stop after the current step. */
static void on_signal(int sig) {
  (void)sig;
  train_stop = 1;
}

/* Prints the result as one JSON object on stdout. */
static void print_json(const rt_train_result *r) {
  cJSON *j = cJSON_CreateObject();
  cJSON_AddNumberToObject(j, "test_top1", r->test_top1);
  cJSON_AddNumberToObject(j, "test_top5", r->test_top5);
  cJSON_AddNumberToObject(j, "test_loss", r->test_loss);
  cJSON_AddNumberToObject(j, "train_wall_s", r->train_wall_s);
  cJSON_AddNumberToObject(j, "images_per_s", r->images_per_s);
  cJSON_AddNumberToObject(j, "epochs", (double)r->epochs);
  cJSON_AddBoolToObject(j, "interrupted", r->interrupted);
  if (r->saved[0]) cJSON_AddStringToObject(j, "checkpoint", r->saved);
  char *s = cJSON_PrintUnformatted(j);
  if (s) printf("%s\n", s);
  free(s);
  cJSON_Delete(j);
}

/* Validates the typed options and fills the run's options; exit code. */
static int prepare(train_args *a, const char *file, rt_train_options *o, ir_graph **step, ir_graph **eval) {
  if (!a->data) return cli_usage_error("train", "missing --data SPEC (e.g. fashion-mnist)");
  if (a->epochs < 1) return cli_usage_error("train", "--epochs must be at least 1");
  if (a->lr <= 0) return cli_usage_error("train", "--lr must be positive");
  if (a->momentum >= 1) return cli_usage_error("train", "--momentum must be in [0, 1)");
  if (a->resume && a->weights) return cli_usage_error("train", "--resume and --weights exclude each other");
  if (a->model.shape[0]) return cli_usage_error("train", "the input shape comes from --data (no --shape)");
  if (!a->model.batch) a->model.batch = 128;
  for (const char *p, **f = (const char *[]){a->resume, a->weights, NULL}; (p = *f); f++)
    if (cli_check_readable("train", p)) return CLI_EXIT_USAGE;
  ir_diag *d = ir_diag_create();
  rt_dataset *test = NULL;
  int rc = CLI_EXIT_OK;
  if (rt_schedule_parse(a->schedule, a->lr, a->warmup, &o->sched, d) != ATTNC_OK ||
      rt_dataset_open_as(a->data, RT_SPLIT_TEST, 1, &test, d) != ATTNC_OK) /* its shape: no decoding */
    rc = cli_diag_fail("train", d);
  if (!rc) {
    default_augment(test, o);
    if (a->augment) rc = parse_augment(a->augment, test, o);
  }
  int64_t shape[3] = {test ? test->channels : 0, test ? test->height : 0, test ? test->width : 0};
  int classes = test ? test->classes : 0;
  rt_dataset_destroy(test);
  if (!rc) rc = cli_train_lower("train", &a->model, file, FE_TRAIN, a->model.batch, shape, classes, step);
  if (!rc) rc = cli_train_lower("train", &a->model, file, FE_EVAL, a->model.batch, shape, classes, eval);
  pass_sgd_options sgd = {.momentum = a->momentum, .weight_decay = a->wd, .nesterov = a->nesterov};
  int fuse = !a->no_fuse && !a->interp; /* the fusion rewrites only serve fused kernels */
  if (!rc && pass_train_step(*step, &sgd, fuse, NULL, d) != ATTNC_OK) rc = cli_diag_fail("train", d);
  char hash[17];
  if (!rc && rt_file_hash(file, hash, d) != ATTNC_OK) rc = cli_diag_fail("train", d);
  if (!rc) {
    char *opts = options_json(a, &o->sched, o);
    if (!opts || strlen(opts) >= sizeof o->info.options) rc = cli_usage_error("train", "too many options to record");
    else snprintf(o->info.options, sizeof o->info.options, "%s", opts);
    free(opts);
    snprintf(o->info.model, sizeof o->info.model, "%s", file);
    snprintf(o->info.spec_hash, sizeof o->info.spec_hash, "%s", hash);
  }
  ir_diag_destroy(d);
  return rc;
}

/* Runs 'attnc train'. */
int cli_train(int argc, char **argv) {
  const char *file = NULL;
  train_args a = {.schedule = "const", .epochs = 1, .lr = 0.1, .momentum = 0.9, .wd = 5e-4, .seed = 0};
  const cli_opt opts[] = {
      CLI_OPT_DEFINE(&a.model),
      {"--data", "SPEC", CLI_DATA_SPECS, &a.data, NULL},
      {"--epochs", "N", "epochs to train (default 1)", &a.epochs, parse_count},
      {"--batch", "N", "batch size (default 128)", &a.model, cli_parse_batch},
      {"--lr", "LR", "base learning rate (default 0.1)", &a.lr, parse_number},
      {"--momentum", "M", "SGD momentum (default 0.9)", &a.momentum, parse_number},
      {"--wd", "WD", "weight decay on every parameter (default 5e-4)", &a.wd, parse_number},
      {"--nesterov", NULL, "Nesterov momentum", &a.nesterov, NULL},
      {"--schedule", "KIND", "const | step:S:F | step:M1,M2,..:F | multistep:M1,..:F | cosine[:ETA_MIN]",
       &a.schedule, NULL},
      {"--warmup", "E", "linear learning-rate warm-up over E epochs (default 0)", &a.warmup, parse_number},
      {"--seed", "S", "seed of the initialization, data order and augmentation (default 0)", &a.seed, parse_count},
      {"--augment", "A", "none, or crop, resized-crop[:MIN_SCALE] and flip joined by '+' (default resized-crop+flip for folder sets of 64 pixels and more, crop+flip for 32x32/96x96 color, else none)",
       &a.augment, NULL},
      {"--holdout", "N", "move N random training samples to a held-out split, evaluated every epoch", &a.holdout,
       parse_count},
      CLI_OPT_THREADS(&a.threads),
      {"--interp", NULL, "run on the reference interpreter instead of the JIT (slow)", &a.interp, NULL},
      CLI_OPT_NO_FUSE(&a.no_fuse),
      {"--save", "CKPT", "checkpoint written (atomically) after every epoch and on SIGINT", &a.save, NULL},
      {"--resume", "CKPT", "continue a run from its checkpoint (same model and options)", &a.resume, NULL},
      {"--force", NULL, "--resume even if the model file or options differ", &a.force, NULL},
      {"--weights", "W", "start from these weights (attnc checkpoint or PyTorch state_dict safetensors)",
       &a.weights, NULL},
      {"--log", "FILE", "append one record per epoch (.csv, else JSON lines)", &a.log, NULL},
      {"--json", NULL, "print the final result as one JSON object", &a.json, NULL},
      {"--confusion", NULL, "print per-class accuracy and the confusion matrix of the test split", &a.confusion,
       NULL},
  };
  const cli_spec spec = {"train", "attnc train MODEL.lua --data SPEC [options]", train_about, train_examples, opts,
                         (int)(sizeof opts / sizeof opts[0]), "MODEL", 1, &file};
  int rc = cli_parse(&spec, argc, argv);
  if (rc) {
    cli_model_free(&a.model);
    return rc == CLI_HELP_SHOWN ? CLI_EXIT_OK : rc;
  }
  rt_train_options o;
  memset(&o, 0, sizeof o);
  ir_graph *step = NULL, *eval = NULL;
  if (!cli_is_model(file)) rc = cli_usage_error("train", "%s: expected a MODEL.lua spec", file);
  if (!rc) rc = prepare(&a, file, &o, &step, &eval);
  if (!rc) {
    o.step = step;
    o.eval = eval;
    o.data = a.data;
    o.epochs = a.epochs;
    o.batch = a.model.batch;
    o.holdout = a.holdout;
    o.seed = (uint64_t)a.seed;
    o.threads = a.threads;
    o.interp = a.interp;
    o.no_fuse = a.no_fuse;
    o.resume = a.resume;
    o.weights = a.weights;
    o.save = a.save;
    o.log = a.log;
    o.json = a.json;
    o.confusion = a.confusion;
    o.force = a.force;
    o.out = stderr;
    o.tty = -1;
    o.stop = &train_stop;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    ir_diag *d = ir_diag_create();
    rt_train_result r;
    if (rt_train(&o, &r, d) != ATTNC_OK) {
      rc = cli_diag_fail("train", d);
    } else {
      if (a.json) print_json(&r);
      else if (!r.interrupted)
        printf("test top-1 %.2f%%, top-5 %.2f%%, loss %.4f after %lld epoch(s); %.1f s, %.0f images/s%s%s\n",
               100 * r.test_top1, 100 * r.test_top5, r.test_loss, (long long)r.epochs, r.train_wall_s,
               r.images_per_s, r.saved[0] ? "; checkpoint " : "", r.saved);
      if (a.confusion && r.test && !r.interrupted) rt_metrics_print(r.test, stdout, 1);
      rc = r.interrupted ? 130 : CLI_EXIT_OK;
    }
    rt_train_result_free(&r);
    ir_diag_destroy(d);
  }
  ir_graph_destroy(step);
  ir_graph_destroy(eval);
  cli_model_free(&a.model);
  return rc;
}
