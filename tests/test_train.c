/* Tests of the training loop and the train/eval/infer commands on a tiny
 * model (conv-bn-relu-mean-linear) and a generated 8x8 IDX data set whose
 * four classes are bright image halves: the loss decreases and accuracy
 * rises, PyTorch-default initial values, a checkpoint evaluates to the same
 * accuracy as training reported, a run interrupted by SIGINT mid-epoch and
 * resumed ends with bit-identical weights to an uninterrupted one, resuming
 * another model's or another recipe's checkpoint is refused, and corrupt
 * checkpoints or missing data fail cleanly. Everything runs on the
 * reference interpreter (--interp) so results do not depend on the JIT,
 * except one interrupt-and-resume run on the JIT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <math.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fe.h"
#include "passes.h"
#include "rt_safetensors.h"
#include "rt_train.h"
#include "util_cli.h"

static const char tiny_spec[] =
    "local nn = require \"nn\"\n"
    "local opt = options { in_channels = 1, classes = 10, width = 4 }\n"
    "input_shape { 1, 8, 8 }\n"
    "local Net = nn.Module \"Tiny\"\n"
    "function Net:init(o)\n"
    "  self.conv = nn.Conv2d(o.in_channels, o.width, 3, { padding = 1 })\n"
    "  self.bn = nn.BatchNorm2d(o.width)\n"
    "  self.fc = nn.Linear(o.width, o.classes)\n"
    "end\n"
    "function Net:forward(x)\n"
    "  x = self.bn(self.conv(x)):relu()\n"
    "  return self.fc(x:mean { 2, 3 })\n"
    "end\n"
    "return Net(opt)\n";

/* Another model: no batchnorm, so its checkpoints do not fit the tiny one. */
static const char other_spec[] =
    "local nn = require \"nn\"\n"
    "local opt = options { in_channels = 1, classes = 10 }\n"
    "input_shape { 1, 8, 8 }\n"
    "local Net = nn.Module \"Other\"\n"
    "function Net:init(o) self.fc = nn.Linear(64 * o.in_channels, o.classes) end\n"
    "function Net:forward(x) return self.fc(x:flatten(1)) end\n"
    "return Net(opt)\n";

/* Writes a big-endian 32-bit value. */
static void be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16), p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

/* Writes "<pre>-images-idx3-ubyte" / "<pre>-labels-idx1-ubyte" with 'n'
 * 8x8 samples: class k in 0..3 is a bright left/right/top/bottom half plus
 * deterministic noise. */
static void write_idx(const char *dir, const char *pre, uint32_t n, uint32_t seed) {
  unsigned char *im = malloc(16 + (size_t)n * 64), *lb = malloc(8 + n);
  assert_non_null(im);
  assert_non_null(lb);
  be32(im, 0x803), be32(im + 4, n), be32(im + 8, 8), be32(im + 12, 8);
  be32(lb, 0x801), be32(lb + 4, n);
  uint32_t r = seed * 2654435761u + 1;
  for (uint32_t k = 0; k < n; k++) {
    r = r * 1664525u + 1013904223u;
    int c = (int)((r >> 16) % 4);
    lb[8 + k] = (unsigned char)c;
    for (int y = 0; y < 8; y++)
      for (int x = 0; x < 8; x++) {
        r = r * 1664525u + 1013904223u;
        int on = (c == 0 && x < 4) || (c == 1 && x >= 4) || (c == 2 && y < 4) || (c == 3 && y >= 4);
        im[16 + k * 64 + y * 8 + x] = (unsigned char)((on ? 180 : 30) + (int)((r >> 16) % 40));
      }
  }
  char name[64];
  snprintf(name, sizeof name, "%s-images-idx3-ubyte", pre);
  char *p = tc_path(dir, name);
  assert_int_equal(tc_write_file(p, im, 16 + (size_t)n * 64), 0);
  free(p);
  snprintf(name, sizeof name, "%s-labels-idx1-ubyte", pre);
  p = tc_path(dir, name);
  assert_int_equal(tc_write_file(p, lb, 8 + n), 0);
  free(p);
  free(im);
  free(lb);
}

/* A temp dir with tiny.lua, other.lua and a data set of 'ntrain' training
 * and 64 test samples; *spec gets "mnist:<dir>" (malloc'd). */
static char *make_dir(uint32_t ntrain, char **spec) {
  char *dir = tc_tempdir();
  assert_non_null(dir);
  write_idx(dir, "train", ntrain, 1);
  write_idx(dir, "t10k", 64, 2);
  char *p = tc_path(dir, "tiny.lua");
  assert_int_equal(tc_write_file(p, tiny_spec, strlen(tiny_spec)), 0);
  free(p);
  p = tc_path(dir, "other.lua");
  assert_int_equal(tc_write_file(p, other_spec, strlen(other_spec)), 0);
  free(p);
  *spec = malloc(strlen(dir) + 8);
  assert_non_null(*spec);
  sprintf(*spec, "mnist:%s", dir);
  return dir;
}

/* Lowers the tiny model at batch 'batch' in 'mode' (train: the whole step). */
static ir_graph *lower_tiny(const char *dir, fe_mode mode, int64_t batch) {
  char *path = tc_path(dir, "tiny.lua");
  fe_request req = {.path = path, .shape = {1, 8, 8}, .batch = batch, .mode = mode};
  ir_diag *d = ir_diag_create();
  ir_graph *g = NULL;
  assert_int_equal(fe_lower(&req, &g, d), ATTNC_OK);
  pass_sgd_options sgd = {.momentum = 0.9, .weight_decay = 5e-4, .nesterov = 0};
  if (mode == FE_TRAIN) assert_int_equal(pass_train_step(g, &sgd, 1, NULL, d), ATTNC_OK);
  ir_diag_destroy(d);
  free(path);
  return g;
}

/* Column 'col' (0-based) of CSV line 'line' (1 = first record) of 'text'. */
static double csv_value(const char *text, int line, int col) {
  const char *p = text;
  for (int i = 0; i < line; i++) {
    p = strchr(p, '\n');
    assert_non_null(p);
    p++;
  }
  for (int i = 0; i < col; i++) {
    p = strchr(p, ',');
    assert_non_null(p);
    p++;
  }
  return strtod(p, NULL);
}

/* Three epochs of the library loop: the training loss falls epoch after
 * epoch and the test accuracy ends far above chance (25%); the log has a
 * header and one record per epoch. */
static void test_loss_decreases(void **state) {
  (void)state;
  char *spec, *dir = make_dir(512, &spec);
  ir_graph *step = lower_tiny(dir, FE_TRAIN, 16), *eval = lower_tiny(dir, FE_EVAL, 16);
  char *log = tc_path(dir, "log.csv");
  rt_train_options o;
  memset(&o, 0, sizeof o);
  o.step = step, o.eval = eval, o.data = spec, o.epochs = 3, o.batch = 16, o.seed = 3, o.threads = 1;
  o.interp = 1, o.log = log, o.out = stderr, o.tty = 0;
  ir_diag *d = ir_diag_create();
  assert_int_equal(rt_schedule_parse("const", 0.05, 0, &o.sched, d), ATTNC_OK);
  rt_train_result r;
  attnc_status st = rt_train(&o, &r, d);
  if (st != ATTNC_OK) fail_msg("%s", ir_diag_text(d));
  assert_int_equal(r.epochs, 3);
  assert_int_equal(r.interrupted, 0);
  assert_true(r.test_top1 > 0.5); /* chance: 0.25 */
  assert_non_null(r.test);
  assert_int_equal(r.test->count, 64); /* every test sample, in 4 batches of 16 */
  char *text = tc_read_file(log, NULL);
  assert_non_null(text);
  assert_int_equal(tc_count_lines(text), 4);
  assert_true(strncmp(text, "epoch,lr,train_loss,train_top1,test_loss,test_top1", 50) == 0);
  double l1 = csv_value(text, 1, 2), l2 = csv_value(text, 2, 2), l3 = csv_value(text, 3, 2);
  assert_true(l1 > l2 && l2 > l3);
  assert_true(l1 > 1.0 && l3 < 0.8 * l1);
  assert_true(fabs(csv_value(text, 3, 5) - r.test_top1) < 1e-12);
  free(text);
  rt_train_result_free(&r);
  ir_diag_destroy(d);
  ir_graph_destroy(step);
  ir_graph_destroy(eval);
  free(log);
  free(spec);
  tc_rmtree(dir);
  free(dir);
}

/* Initial values follow PyTorch's defaults and depend on the seed only. */
static void test_init_state(void **state) {
  (void)state;
  char *spec, *dir = make_dir(16, &spec);
  ir_graph *step = lower_tiny(dir, FE_TRAIN, 4);
  ir_bundle *a = rt_train_init_state(step, 7), *b = rt_train_init_state(step, 7), *c = rt_train_init_state(step, 8);
  const ir_tensor *w = ir_bundle_get(a, "conv.weight"), *fb = ir_bundle_get(a, "fc.bias");
  assert_non_null(w);
  double bound = 1.0 / 3.0, mx = 0; /* fan_in 1*3*3 */
  for (int i = 0; i < 36; i++) mx = fmax(mx, fabs(ir_tensor_get(w, i)));
  assert_true(mx <= bound && mx > 0.6 * bound);
  for (int i = 0; i < 10; i++) assert_true(fabs(ir_tensor_get(fb, i)) <= 0.5); /* fan_in 4 */
  assert_true(ir_tensor_get(fb, 0) != 0);
  for (int i = 0; i < 4; i++) {
    assert_true(ir_tensor_get(ir_bundle_get(a, "bn.weight"), i) == 1);
    assert_true(ir_tensor_get(ir_bundle_get(a, "bn.bias"), i) == 0);
    assert_true(ir_tensor_get(ir_bundle_get(a, "bn.running_var"), i) == 1);
    assert_true(ir_tensor_get(ir_bundle_get(a, "bn.running_mean"), i) == 0);
  }
  assert_true(ir_tensor_get(ir_bundle_get(a, "optim.conv.weight.momentum"), 0) == 0);
  assert_memory_equal(w->data, ir_bundle_get(b, "conv.weight")->data, 36 * sizeof(float));
  assert_true(memcmp(w->data, ir_bundle_get(c, "conv.weight")->data, 36 * sizeof(float)) != 0);
  ir_bundle_destroy(a);
  ir_bundle_destroy(b);
  ir_bundle_destroy(c);
  ir_graph_destroy(step);
  free(spec);
  tc_rmtree(dir);
  free(dir);
}

/* Value of "key": in the JSON text 's' (-1 if absent). */
static double json_num(const char *s, const char *key) {
  char k[64];
  snprintf(k, sizeof k, "\"%s\":", key);
  const char *p = s ? strstr(s, k) : NULL;
  return p ? strtod(p + strlen(k), NULL) : -1;
}

/* train --save then eval of the checkpoint: the same test accuracy and loss
 * (eval at another batch size, so the padding of the last batch counts
 * only real samples); infer writes probabilities that sum to 1. */
static void test_checkpoint_eval(void **state) {
  (void)state;
  char *spec, *dir = make_dir(256, &spec);
  char *model = tc_path(dir, "tiny.lua"), *ck = tc_path(dir, "ck.safetensors");
  tc_result r;
  const char *train[] = {"train", model, "--data", spec, "--epochs", "2", "--batch", "16", "--lr", "0.05",
                         "--interp", "--threads", "1", "--save", ck, "--json", NULL};
  assert_int_equal(tc_run_attnc(train, &r), 0);
  if (r.code != 0) fail_msg("train: %s", r.err);
  double top1 = json_num(r.out, "test_top1"), loss = json_num(r.out, "test_loss");
  assert_true(top1 > 0.5 && loss > 0);
  assert_true(json_num(r.out, "epochs") == 2);
  tc_result_free(&r);
  const char *eval[] = {"eval", model, "--weights", ck, "--data", spec, "--batch", "24", "--interp", "--json", NULL};
  assert_int_equal(tc_run_attnc(eval, &r), 0);
  if (r.code != 0) fail_msg("eval: %s", r.err);
  assert_true(json_num(r.out, "test_top1") == top1);
  assert_true(fabs(json_num(r.out, "test_loss") - loss) < 1e-5);
  assert_true(json_num(r.out, "test_count") == 64);
  tc_result_free(&r);
  /* infer on 3 images */
  ir_bundle *x = ir_bundle_create();
  int64_t dims[4] = {3, 1, 8, 8};
  ir_tensor *t = ir_tensor_create(ir_type_make(IR_F32, 4, dims));
  for (int i = 0; i < 192; i++) ((float *)t->data)[i] = (i % 8) < 4 ? 1.5f : -0.5f;
  ir_bundle_put(x, "input", t);
  char *xp = tc_path(dir, "x.safetensors"), *yp = tc_path(dir, "y.safetensors");
  ir_diag *d = ir_diag_create();
  assert_int_equal(rt_safetensors_write(xp, x, d), ATTNC_OK);
  const char *infer[] = {"infer", model, "--weights", ck, "--input", xp, "--out", yp, "--topk", "2", "--interp", NULL};
  assert_int_equal(tc_run_attnc(infer, &r), 0);
  if (r.code != 0) fail_msg("infer: %s", r.err);
  assert_non_null(strstr(r.out, "sample 2: class "));
  tc_result_free(&r);
  ir_bundle *y = NULL;
  assert_int_equal(rt_safetensors_read(yp, &y, d), ATTNC_OK);
  const ir_tensor *pr = ir_bundle_get(y, "probabilities");
  assert_non_null(pr);
  assert_non_null(ir_bundle_get(y, "logits"));
  for (int s = 0; s < 3; s++) {
    double sum = 0;
    for (int k = 0; k < 10; k++) sum += ir_tensor_get(pr, s * 10 + k);
    assert_true(fabs(sum - 1) < 1e-5);
  }
  ir_bundle_destroy(y);
  ir_bundle_destroy(x);
  ir_diag_destroy(d);
  free(xp);
  free(yp);
  free(model);
  free(ck);
  free(spec);
  tc_rmtree(dir);
  free(dir);
}

/* Starts attnc with 'args' (argv without argv[0]), stdout/stderr to 'errpath'. */
static pid_t spawn_attnc(const char *const *args, const char *errpath) {
  const char *bin = getenv("ATTNC_BIN");
  if (!bin || !*bin) bin = "build/attnc";
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    const char *argv[64];
    int n = 0;
    argv[n++] = bin;
    for (int i = 0; args[i] && n < 62; i++) argv[n++] = args[i];
    argv[n] = NULL;
    FILE *f = fopen(errpath, "w");
    if (!f) _exit(99);
    dup2(fileno(f), 1);
    dup2(fileno(f), 2);
    execv(bin, (char *const *)argv);
    _exit(98);
  }
  return pid;
}

/* Exit code of 'pid' (-1 if killed). */
static int wait_code(pid_t pid) {
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* SIGINT mid-epoch: exit 130 with a checkpoint inside the epoch; --resume
 * to the end gives bit-identical weights, buffers and momenta to an
 * uninterrupted run on the same engine and thread count: the interpreter
 * on one thread ('jit' 0, 2048 samples), or the JIT on two threads ('jit' 1,
 * 16384 samples so the signal lands mid-epoch however fast the steps are).
 * On the interpreter also: resuming with another model or another --lr is
 * refused and leaves the checkpoint intact. */
static void interrupt_resume(int jit) {
  const uint32_t ntrain = jit ? 16384 : 2048, batches = ntrain / 16;
  char *spec, *dir = make_dir(ntrain, &spec);
  char *model = tc_path(dir, "tiny.lua"), *full = tc_path(dir, "full.safetensors"),
       *part = tc_path(dir, "part.safetensors"), *errp = tc_path(dir, "err.txt");
  /* the last argument: the interpreter, or NULL (ends the list) for the JIT */
  const char *engine = jit ? NULL : "--interp", *threads = jit ? "2" : "1";
#define RUN_ARGS "train", model, "--data", spec, "--epochs", "2", "--batch", "16", "--seed", "5", \
                 "--threads", threads, "--lr", "0.05"
  const char *a_full[] = {RUN_ARGS, "--save", full, engine, NULL};
  const char *a_part[] = {RUN_ARGS, "--save", part, engine, NULL};
  const char *a_resume[] = {RUN_ARGS, "--save", part, "--resume", part, engine, NULL};
  tc_result r;
  assert_int_equal(tc_run_attnc(a_full, &r), 0);
  if (r.code != 0) fail_msg("full run: %s", r.err);
  if (jit) { /* the compile line gives the memory of the step (its arena and scratch) and of the eval forward */
    const char *m = strstr(r.err, "; memory: step "); /* progress and figures go to stderr */
    assert_non_null(m);
    double v[4] = {0};
    char u[4][4];
    assert_int_equal(sscanf(m, "; memory: step %lf %3s (buffers planned into an arena of %lf %3s from %lf %3s), "
                               "eval forward %lf %3s", &v[0], u[0], &v[1], u[1], &v[2], u[2], &v[3], u[3]), 8);
    for (int i = 0; i < 4; i++) {
      assert_true(!strcmp(u[i], "KiB") || !strcmp(u[i], "MiB"));
      v[i] *= u[i][0] == 'M' ? 1024 : 1; /* KiB */
    }
    assert_true(v[1] > 0 && v[1] <= v[0] && v[1] <= v[2] && v[3] > 0); /* arena within the step and the plan */
  }
  tc_result_free(&r);

  pid_t pid = spawn_attnc(a_part, errp);
  for (int i = 0; i < 6000; i++) { /* until the progress shows batches of epoch 1 */
    char *t = tc_read_file(errp, NULL);
    int seen = t && strstr(t, "epoch 1/2 batch ");
    free(t);
    if (seen) break;
    usleep(10000);
  }
  kill(pid, SIGINT);
  assert_int_equal(wait_code(pid), 130);
  char *t = tc_read_file(errp, NULL);
  assert_non_null(t);
  assert_non_null(strstr(t, "checkpoint written to"));
  free(t);
  ir_bundle *ck = NULL;
  rt_ckpt_info info;
  ir_diag *d = ir_diag_create();
  assert_int_equal(rt_ckpt_load(part, &ck, &info, d), ATTNC_OK);
  assert_int_equal(info.epoch, 0);
  assert_true(info.batch > 0 && info.batch < (int64_t)batches);
  assert_int_equal(info.step, info.batch);
  ir_bundle_destroy(ck);
  assert_false(tc_same_tensors(full, part));

  char *other = tc_path(dir, "other.lua");
  if (!jit) { /* resuming with another model / another recipe is refused, the file kept */
    const char *a_other[] = {"train", other, "--data", spec, "--batch", "16", "--interp", "--resume", part, NULL};
    assert_int_equal(tc_run_attnc(a_other, &r), 0);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "spec hash"));
    tc_result_free(&r);
    const char *a_lr[] = {"train", model, "--data", spec, "--epochs", "2", "--batch", "16", "--seed", "5",
                          "--interp", "--lr", "0.1", "--resume", part, NULL};
    assert_int_equal(tc_run_attnc(a_lr, &r), 0);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "options"));
    tc_result_free(&r);
    ck = NULL;
    assert_int_equal(rt_ckpt_load(part, &ck, &info, d), ATTNC_OK);
    ir_bundle_destroy(ck);
  }

  assert_int_equal(tc_run_attnc(a_resume, &r), 0);
  if (r.code != 0) fail_msg("resume: %s", r.err);
  tc_result_free(&r);
  assert_true(tc_same_tensors(full, part));
  ck = NULL;
  assert_int_equal(rt_ckpt_load(part, &ck, &info, d), ATTNC_OK);
  assert_int_equal(info.epoch, 2);
  assert_int_equal(info.batch, 0);
  assert_int_equal(info.step, 2 * (int64_t)batches);
  ir_bundle_destroy(ck);
  ir_diag_destroy(d);
#undef RUN_ARGS
  free(other);
  free(model);
  free(full);
  free(part);
  free(errp);
  free(spec);
  tc_rmtree(dir);
  free(dir);
}

/* Interrupt and resume on the interpreter. */
static void test_interrupt_resume(void **state) {
  (void)state;
  interrupt_resume(0);
}

/* Interrupt and resume on the JIT (two threads, fused kernels). */
static void test_interrupt_resume_jit(void **state) {
  (void)state;
  interrupt_resume(1);
}

/* Bad inputs: a truncated checkpoint, another model's checkpoint, a missing
 * data directory, a shape mismatch: exit 1 with a message naming the file,
 * never a crash. */
static void test_bad_inputs(void **state) {
  (void)state;
  char *spec, *dir = make_dir(64, &spec);
  char *model = tc_path(dir, "tiny.lua"), *other = tc_path(dir, "other.lua"), *ck = tc_path(dir, "ck.safetensors"),
       *bad = tc_path(dir, "bad.safetensors");
  tc_result r;
  const char *train[] = {"train", other, "--data", spec, "--batch", "16", "--interp", "--save", ck, NULL};
  assert_int_equal(tc_run_attnc(train, &r), 0);
  if (r.code != 0) fail_msg("train: %s", r.err);
  tc_result_free(&r);
  size_t n = 0;
  char *bytes = tc_read_file(ck, &n);
  assert_non_null(bytes);
  assert_int_equal(tc_write_file(bad, bytes, n / 2), 0);
  free(bytes);
  const char *e_bad[] = {"eval", model, "--weights", bad, "--data", spec, "--interp", NULL};
  assert_int_equal(tc_run_attnc(e_bad, &r), 0);
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.err, bad));
  tc_result_free(&r);
  const char *e_other[] = {"eval", model, "--weights", ck, "--data", spec, "--interp", NULL};
  assert_int_equal(tc_run_attnc(e_other, &r), 0);
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.err, "missing param 'conv.weight'"));
  tc_result_free(&r);
  char *nodata = malloc(strlen(dir) + 32);
  sprintf(nodata, "mnist:%s/nothing", dir);
  const char *t_nodata[] = {"train", model, "--data", nodata, "--interp", NULL};
  assert_int_equal(tc_run_attnc(t_nodata, &r), 0);
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.err, "nothing"));
  tc_result_free(&r);
  const char *t_res[] = {"train", model, "--data", spec, "--batch", "16", "--interp", "--resume", bad, NULL};
  assert_int_equal(tc_run_attnc(t_res, &r), 0);
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.err, bad));
  tc_result_free(&r);
  const char *t_aug[] = {"train", model, "--data", spec, "--augment", "rotate", NULL};
  assert_int_equal(tc_run_attnc(t_aug, &r), 0);
  assert_int_equal(r.code, 2);
  tc_result_free(&r);
  free(nodata);
  free(model);
  free(other);
  free(ck);
  free(bad);
  free(spec);
  tc_rmtree(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_loss_decreases),   cmocka_unit_test(test_init_state),
      cmocka_unit_test(test_checkpoint_eval),  cmocka_unit_test(test_interrupt_resume), cmocka_unit_test(test_interrupt_resume_jit),
      cmocka_unit_test(test_bad_inputs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
