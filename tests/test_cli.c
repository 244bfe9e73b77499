/* Tests of the attnc command-line program ($ATTNC_BIN), run as a child
 * process: help texts, exit codes and one-line usage errors, library errors
 * with their locations, and 'run' producing hand-computed outputs. */
#include <math.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <cjson/cJSON.h>

#include "rt_safetensors.h"
#include "util_cli.h"

/* A temporary directory per test, removed afterwards. */
static int setup_dir(void **state) {
  *state = tc_tempdir();
  return *state ? 0 : -1;
}

static int teardown_dir(void **state) {
  tc_rmtree(*state);
  free(*state);
  return 0;
}

/* Runs attnc with args[0..n) and then 'first' and the rest of the
 * NULL-terminated list 'ap'; fails the test if it could not be started. */
static tc_result run_after(const char **args, int n, const char *first, va_list ap) {
  for (const char *a = first; a && n < 31; a = va_arg(ap, const char *)) args[n++] = a;
  args[n] = NULL;
  tc_result r;
  if (tc_run_attnc(args, &r)) fail_msg("cannot run attnc (ATTNC_BIN=%s)", getenv("ATTNC_BIN"));
  return r;
}

/* Runs attnc with the given NULL-terminated arguments; fails the test if it
 * could not be started. */
static tc_result run(const char *first, ...) {
  const char *args[32];
  va_list ap;
  va_start(ap, first);
  tc_result r = run_after(args, 0, first, ap);
  va_end(ap);
  return r;
}

/* Asserts a usage error: exit 2 and exactly one stderr line starting with
 * "attnc: <cmd>: " and containing 'what'. */
static void assert_usage_error(tc_result *r, const char *cmd, const char *what) {
  char prefix[64];
  snprintf(prefix, sizeof prefix, "attnc: %s: ", cmd);
  if (r->code != 2 || tc_count_lines(r->err) != 1 || strncmp(r->err, prefix, strlen(prefix)) ||
      !strstr(r->err, what))
    fail_msg("expected a one-line usage error '%s...%s', got exit %d, stderr '%s'", prefix, what,
             r->code, r->err);
  tc_result_free(r);
}

/* Writes 'text' to dir/name and returns the path (caller frees). */
static char *write_text(const char *dir, const char *name, const char *text) {
  char *p = tc_path(dir, name);
  assert_int_equal(tc_write_file(p, text, strlen(text)), 0);
  return p;
}

/* A small graph: y = relu(x @ w + b), s = sum(y). */
static const char small_ir[] = "graph @small {\n"
                               "  %x = input name=\"x\" : f32[2,2]\n"
                               "  %w = param name=\"w\" : f32[2,2]\n"
                               "  %b = param name=\"b\" : f32[2]\n"
                               "  %m = matmul(%x, %w) : f32[2,2]\n"
                               "  %a = add(%m, %b) : f32[2,2]\n"
                               "  %y = relu(%a) : f32[2,2]\n"
                               "  %s = reduce_sum(%y) axes=[0,1] : f32[]\n"
                               "  output \"y\" = %y\n"
                               "  output \"s\" = %s\n"
                               "}\n";

/* Writes a safetensors file of f32 tensors: names[i] with shapes and values. */
static char *write_tensors(const char *dir, const char *file, int n, const char *const *names,
                           const int *ranks, const int64_t (*dims)[2], const float *const *vals) {
  ir_bundle *b = ir_bundle_create();
  for (int i = 0; i < n; i++) {
    ir_tensor *t = ir_tensor_create(ir_type_make(IR_F32, ranks[i], dims[i]));
    memcpy(t->data, vals[i], (size_t)ir_type_numel(&t->type) * 4);
    ir_bundle_put(b, names[i], t);
  }
  char *p = tc_path(dir, file);
  ir_diag *d = ir_diag_create();
  assert_int_equal(rt_safetensors_write(p, b, d), ATTNC_OK);
  ir_diag_destroy(d);
  ir_bundle_destroy(b);
  return p;
}

static const float x_vals[] = {1, 2, 3, 4}, w_vals[] = {1, -1, 0.5f, 2}, b_vals[] = {0.5f, -10};

/* Writes x.safetensors (input x) and w.safetensors (params w, b) for small_ir. */
static void write_small_tensors(const char *dir, char **xp, char **wp) {
  const char *xn[] = {"x"}, *wn[] = {"w", "b"};
  const int xr[] = {2}, wr[] = {2, 1};
  const int64_t xd[][2] = {{2, 2}}, wd[][2] = {{2, 2}, {2, 0}};
  const float *xv[] = {x_vals}, *wv[] = {w_vals, b_vals};
  *xp = write_tensors(dir, "x.safetensors", 1, xn, xr, xd, xv);
  *wp = write_tensors(dir, "w.safetensors", 2, wn, wr, wd, wv);
}

/* 'attnc --help' and 'attnc <cmd> --help' for every command it lists exit 0
 * and print a usage line; no arguments is a usage error. */
static void test_help(void **state) {
  (void)state;
  tc_result r = run("--help", NULL);
  assert_int_equal(r.code, 0);
  const char *cmds = strstr(r.out, "commands:\n");
  assert_non_null(cmds);
  int seen = 0;
  for (const char *line = strchr(cmds, '\n') + 1; line[0] == ' ' && line[1] == ' ';
       line = strchr(line, '\n') + 1) {
    char name[32];
    assert_int_equal(sscanf(line, " %31s", name), 1);
    tc_result h = run(name, "--help", NULL);
    char usage[64];
    snprintf(usage, sizeof usage, "usage: attnc %s ", name);
    if (h.code != 0 || strncmp(h.out, usage, strlen(usage)) || !strstr(h.out, "examples:"))
      fail_msg("attnc %s --help: exit %d, stdout '%s'", name, h.code, h.out);
    tc_result_free(&h);
    seen++;
  }
  assert_true(seen >= 2);
  assert_non_null(strstr(r.out, "  dump "));
  assert_non_null(strstr(r.out, "  run "));
  tc_result_free(&r);
  r = run(NULL);
  assert_int_equal(r.code, 2);
  tc_result_free(&r);
}

/* Bad commands, options and values are one-line usage errors with exit 2. */
static void test_usage_errors(void **state) {
  const char *dir = *state;
  char *ir = write_text(dir, "small.ir", small_ir);
  tc_result r = run("frobnicate", NULL);
  assert_usage_error(&r, "frobnicate", "unknown command");
  r = run("dump", ir, "--bogus", NULL);
  assert_usage_error(&r, "dump", "unknown option '--bogus'");
  r = run("dump", ir, "--format", NULL);
  assert_usage_error(&r, "dump", "option '--format' needs a value");
  r = run("dump", ir, "--format=svg", NULL);
  assert_usage_error(&r, "dump", "unknown format 'svg'");
  r = run("dump", ir, "--stage", "nope", NULL);
  assert_usage_error(&r, "dump", "unknown stage 'nope'");
  r = run("dump", NULL);
  assert_usage_error(&r, "dump", "missing FILE");
  r = run("dump", ir, ir, NULL);
  assert_usage_error(&r, "dump", "unexpected argument");
  r = run("dump", ir, "-D", "attention=ham", NULL);
  assert_usage_error(&r, "dump", "apply to MODEL.lua only");
  r = run("dump", "m.lua", "--shape", "3x32", NULL);
  assert_usage_error(&r, "dump", "--shape '3x32': expected CxHxW");
  r = run("dump", "m.lua", "--batch", "0", NULL);
  assert_usage_error(&r, "dump", "--batch '0'");
  r = run("dump", "m.lua", "-Dnovalue", NULL);
  assert_usage_error(&r, "dump", "expected key=value");
  r = run("run", ir, "--out", "o.safetensors", NULL);
  assert_usage_error(&r, "run", "missing --input");
  r = run("run", ir, "--input", "x.safetensors", NULL);
  assert_usage_error(&r, "run", "missing --out");
  r = run("run", ir, "--interp=1", "--input", "x", "--out", "y", NULL);
  assert_usage_error(&r, "run", "option '--interp' takes no value");
  free(ir);
}

/* Missing or unreadable files are usage errors naming the file. */
static void test_missing_files(void **state) {
  const char *dir = *state;
  char *ir = write_text(dir, "small.ir", small_ir);
  char *nofile = tc_path(dir, "absent.ir");
  tc_result r = run("dump", nofile, NULL);
  assert_usage_error(&r, "dump", "absent.ir");
  r = run("dump", dir, NULL);
  assert_usage_error(&r, "dump", "is a directory");
  r = run("run", ir, "--input", nofile, "--out", "o.safetensors", NULL);
  assert_usage_error(&r, "run", "cannot open");
  r = run("run", nofile, "--input", ir, "--out", "o.safetensors", NULL);
  assert_usage_error(&r, "run", "absent.ir");
  free(nofile);
  free(ir);
}

/* A malformed IR file fails (exit 1) with file:line:col for each bad line;
 * a wrong-shaped graph fails with the verifier's message. */
static void test_library_errors(void **state) {
  const char *dir = *state;
  char *bad = write_text(dir, "bad.ir",
                         "graph @g {\n"
                         "  %a = input name=\"a\" : f32[2,3]\n"
                         "  %c = frobnicate(%a) : f32[2,3]\n"
                         "  %d = relu(%a) : f32[2,3\n"
                         "  output \"c\" = %a\n"
                         "}\n");
  tc_result r = run("dump", bad, NULL);
  assert_int_equal(r.code, 1);
  regex_t re;
  assert_int_equal(regcomp(&re, "bad\\.ir:3:[0-9]+: .*frobnicate", REG_EXTENDED), 0);
  assert_int_equal(regexec(&re, r.err, 0, NULL, 0), 0);
  regfree(&re);
  assert_int_equal(regcomp(&re, "bad\\.ir:4:[0-9]+: ", REG_EXTENDED), 0);
  assert_int_equal(regexec(&re, r.err, 0, NULL, 0), 0);
  regfree(&re);
  assert_string_equal(r.out, "");
  tc_result_free(&r);

  char *shape = write_text(dir, "shape.ir",
                           "graph @g {\n"
                           "  %a = input name=\"a\" : f32[2,3]\n"
                           "  %b = input name=\"b\" : f32[4]\n"
                           "  %c = add(%a, %b) : f32[2,3]\n"
                           "  %d = matmul(%a, %a) : f32[2,3]\n"
                           "  output \"c\" = %c\n"
                           "}\n");
  r = run("dump", shape, NULL);
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.err, "shape.ir: %2 = add(%0: f32[2,3], %1: f32[4])"));
  assert_non_null(strstr(r.err, "do not broadcast"));
  assert_non_null(strstr(r.err, "shape.ir: %3 = matmul(%0: f32[2,3], %0: f32[2,3])"));
  tc_result_free(&r);
  free(shape);
  free(bad);
}

/* dump prints the graph as IR text that reads back to the same text, or dot. */
static void test_dump(void **state) {
  const char *dir = *state;
  char *ir = write_text(dir, "small.ir", small_ir);
  tc_result r = run("dump", ir, NULL);
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "%3 = matmul(%0, %1) trans_a=0 trans_b=0 : f32[2,2]"));
  assert_non_null(strstr(r.out, "output \"s\" = %6"));
  char *again = write_text(dir, "again.ir", r.out);
  tc_result r2 = run("dump", again, NULL);
  assert_int_equal(r2.code, 0);
  assert_string_equal(r.out, r2.out);
  tc_result_free(&r2);
  tc_result_free(&r);
  r = run("dump", "--format", "dot", ir, NULL);
  assert_int_equal(r.code, 0);
  assert_int_equal(strncmp(r.out, "digraph", 7), 0);
  tc_result_free(&r);
  free(again);
  free(ir);
}

/* Counts the lines of 'text' that contain 'what'. */
static int count_lines_with(const char *text, const char *what) {
  int n = 0;
  for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
    const char *end = strchr(line, '\n'), *hit = strstr(line, what);
    n += hit && (!end || hit < end);
  }
  return n;
}

/* The native stages show what the JIT runs: ECA's conv → mean → conv1d →
 * sigmoid → scale → pool → linear is one kernel whose inner values get no
 * buffer; with --no-fuse every node is its own kernel and buffer, the plan
 * is larger, and there are no groups to show. */
static void test_dump_native_stages(void **state) {
  (void)state;
  const char *eca = "docs/examples/eca_tiny.ir";
  tc_result fused = run("dump", eca, "--stage", "planned", NULL);
  tc_result plain = run("dump", eca, "--stage", "planned", "--no-fuse", NULL);
  assert_int_equal(fused.code, 0);
  assert_int_equal(plain.code, 0);
  assert_true(count_lines_with(fused.out, "no buffer (inside its fused kernel)") >= 8);
  assert_int_equal(count_lines_with(plain.out, "no buffer"), 0);
  long long arena_f = 0, arena_p = 0;
  assert_int_equal(sscanf(strstr(fused.out, "arena "), "arena %lld", &arena_f), 1);
  assert_int_equal(sscanf(strstr(plain.out, "arena "), "arena %lld", &arena_p), 1);
  assert_true(arena_f > 0 && arena_f < arena_p);
  tc_result_free(&fused);
  tc_result_free(&plain);
  fused = run("dump", eca, "--stage", "llvm", NULL);
  plain = run("dump", eca, "--stage", "llvm", "--no-fuse", NULL);
  assert_int_equal(fused.code, 0);
  assert_int_equal(plain.code, 0);
  assert_non_null(strstr(fused.out, "; 1 distinct kernels\n"));
  assert_non_null(strstr(plain.out, "; k0_conv2d: conv2d"));
  assert_true(count_lines_with(plain.out, "; k") >= 8);
  tc_result_free(&fused);
  tc_result_free(&plain);
  tc_result r = run("dump", eca, "--stage", "fused", "--no-fuse", NULL);
  assert_usage_error(&r, "dump", "--no-fuse has none");
}

/* run computes relu(x @ w + b) and its sum, checked against values worked
 * out by hand: x@w = [[2,3],[5,5]], +b = [[2.5,-7],[5.5,-5]]. */
static void test_run_values(void **state) {
  const char *dir = *state;
  char *ir = write_text(dir, "small.ir", small_ir);
  char *xp, *wp, *out = tc_path(dir, "out.safetensors");
  write_small_tensors(dir, &xp, &wp);
  tc_result r = run("run", ir, "--input", xp, "--weights", wp, "--out", out, "--interp", NULL);
  if (r.code != 0) fail_msg("exit %d: %s", r.code, r.err);
  tc_result_free(&r);
  ir_bundle *o = NULL;
  ir_diag *d = ir_diag_create();
  assert_int_equal(rt_safetensors_read(out, &o, d), ATTNC_OK);
  assert_int_equal(o->count, 2);
  assert_string_equal(o->names[0], "y");
  const ir_tensor *y = ir_bundle_get(o, "y"), *s = ir_bundle_get(o, "s");
  const double want[] = {2.5, 0, 5.5, 0};
  for (int i = 0; i < 4; i++) assert_true(ir_tensor_get(y, i) == want[i]);
  assert_int_equal(s->type.rank, 0);
  assert_true(ir_tensor_get(s, 0) == 8.0);
  ir_bundle_destroy(o);
  ir_diag_destroy(d);
  free(out);
  free(xp);
  free(wp);
  free(ir);
}

/* Returns the norm-wise relative error ||a - b|| / ||b|| of two tensors of
 * the same shape. */
static double rel_error(const ir_tensor *a, const ir_tensor *b) {
  assert_true(ir_type_equal(&a->type, &b->type));
  double err = 0, norm = 0;
  for (int64_t i = 0; i < ir_type_numel(&b->type); i++) {
    double e = ir_tensor_get(a, i) - ir_tensor_get(b, i);
    err += e * e;
    norm += ir_tensor_get(b, i) * ir_tensor_get(b, i);
  }
  assert_true(norm > 0);
  return sqrt(err / norm);
}

/* The example of the README runs and matches the logits computed by its
 * independent Python generator. */
static void test_run_example(void **state) {
  const char *dir = *state;
  char *out = tc_path(dir, "eca.safetensors");
  tc_result r = run("run", "docs/examples/eca_tiny.ir", "--input",
                    "docs/examples/eca_tiny.input.safetensors", "--weights",
                    "docs/examples/eca_tiny.weights.safetensors", "--out", out, NULL);
  if (r.code != 0) fail_msg("exit %d: %s", r.code, r.err);
  tc_result_free(&r);
  ir_diag *d = ir_diag_create();
  ir_bundle *got = NULL, *want = NULL;
  assert_int_equal(rt_safetensors_read(out, &got, d), ATTNC_OK);
  assert_int_equal(
      rt_safetensors_read("docs/examples/eca_tiny.expected.safetensors", &want, d), ATTNC_OK);
  assert_true(rel_error(ir_bundle_get(got, "logits"), ir_bundle_get(want, "logits")) <= 1e-5);
  ir_bundle_destroy(got);
  ir_bundle_destroy(want);
  ir_diag_destroy(d);
  free(out);
}

/* run on a Lua model with PyTorch's weights and input gives PyTorch's eval
 * logits; weights of another model are rejected with the names listed. */
static void test_run_model(void **state) {
  const char *dir = *state, *ref = getenv("ATTNC_REFERENCE");
  if (!ref) skip();
  char x[4096], w[4096], none_w[4096], exp[4096];
  snprintf(x, sizeof x, "%s/golden/resnet20_ham/input.safetensors", ref);
  snprintf(w, sizeof w, "%s/golden/resnet20_ham/weights.safetensors", ref);
  snprintf(none_w, sizeof none_w, "%s/golden/resnet20_none/weights.safetensors", ref);
  snprintf(exp, sizeof exp, "%s/golden/resnet20_ham/expected.safetensors", ref);
  char *out = tc_path(dir, "logits.safetensors");
  tc_result r = run("run", "models/resnet_cifar.lua", "-D", "attention=ham", "--input", x,
                    "--weights", none_w, "--out", out, NULL);
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.err, "missing param 'layers.0.att.alpha' f32[]"));
  assert_non_null(strstr(r.err, "more missing"));
  assert_int_equal(tc_count_lines(r.err), 11);
  tc_result_free(&r);
  r = run("run", "models/resnet_cifar.lua", "-D", "attention=ham", "--input", x, "--weights", w,
          "--out", out, NULL);
  if (r.code != 0) fail_msg("exit %d: %s", r.code, r.err);
  tc_result_free(&r);
  ir_diag *d = ir_diag_create();
  ir_bundle *got = NULL, *want = NULL;
  assert_int_equal(rt_safetensors_read(out, &got, d), ATTNC_OK);
  assert_int_equal(rt_safetensors_read(exp, &want, d), ATTNC_OK);
  double e = rel_error(ir_bundle_get(got, "logits"), ir_bundle_get(want, "eval.logits"));
  if (e > 1e-4) fail_msg("eval logits relative error %g > 1e-4", e);
  ir_bundle_destroy(got);
  ir_bundle_destroy(want);
  ir_diag_destroy(d);
  free(out);
}

/* dump lowers a Lua model; an error in it is reported at the spec's line;
 * run --train on a model needs 'labels' in the input file. */
static void test_model_dump_and_checks(void **state) {
  (void)state;
  tc_result r = run("dump", "models/resnet_cifar.lua", "-D", "attention=eca", "--shape", "3x8x8",
                    "--batch", "2", NULL);
  if (r.code != 0) fail_msg("exit %d: %s", r.code, r.err);
  assert_non_null(strstr(r.out, "input name=\"input\" : f32[2,3,8,8]"));
  assert_non_null(strstr(r.out, "output \"logits\" = %"));
  tc_result_free(&r);
  r = run("dump", "models/resnet_cifar.lua", "--shape", "1x28x28", NULL);
  assert_int_equal(r.code, 1);
  regex_t re;
  assert_int_equal(regcomp(&re, "resnet_cifar\\.lua:[0-9]+: .*input has 1 channels", REG_EXTENDED),
                   0);
  assert_int_equal(regexec(&re, r.err, 0, NULL, 0), 0);
  regfree(&re);
  tc_result_free(&r);
  r = run("run", "models/resnet_cifar.lua", "--train", "--input",
          "docs/examples/eca_tiny.input.safetensors", "--out", "/nonexistent/o.safetensors", NULL);
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.err, "--train needs a tensor 'labels' of shape [2]"));
  tc_result_free(&r);
}

/* The number 'key' of JSON object 'o'; fails the test if it is missing. */
static double json_num(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!cJSON_IsNumber(v)) fail_msg("no number '%s' in the bench JSON", key);
  return v->valuedouble;
}

/* Runs 'attnc bench' on a small ResNet (depth 8, 3x8x8, batch 2, 1 thread,
 * one warm-up step, JSON) with the NULL-terminated extra arguments. */
static tc_result run_bench(const char *first, ...) {
  const char *args[32] = {"bench",   "models/resnet_cifar.lua", "-D", "depth=8", "--shape", "3x8x8", "--batch",
                          "2",       "--threads", "1", "--warmup", "1", "--json"};
  va_list ap;
  va_start(ap, first);
  tc_result r = run_after(args, 13, first, ap);
  va_end(ap);
  return r;
}

/* bench --baseline compiles the model with the given options changed beside
 * it: the baseline is the plain network (its kernel count is that of a
 * plain bench run) and the per-pair ratios come with consistent quantiles;
 * both are built afresh for every round of 10 pairs (21 pairs: 3 builds
 * each), or twice each with --profile, whose program must hold the whole
 * profile (both are profiled, and their difference by kind of kernel
 * printed); bad baseline options are errors naming them. */
static void test_bench_baseline(void **state) {
  (void)state;
  tc_result r = run_bench("-D", "attention=eca", "--baseline", "attention=none", "--steps", "21", NULL);
  if (r.code != 0) fail_msg("exit %d: %s", r.code, r.err);
  cJSON *o = cJSON_Parse(r.out);
  assert_non_null(o);
  const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "baseline");
  assert_non_null(b);
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(b, "defines")->valuestring, "-D attention=none");
  double q1 = json_num(o, "ratio_q1"), med = json_num(o, "ratio_median"), q3 = json_num(o, "ratio_q3");
  assert_true(json_num(o, "ratio_min") > 0 && json_num(o, "ratio_min") <= q1 && q1 <= med && med <= q3 &&
              q3 <= json_num(o, "ratio_max"));
  assert_true(json_num(b, "ms_min") > 0 && json_num(b, "ms_min") <= json_num(b, "ms_per_step"));
  int base_kernels = (int)json_num(b, "kernels_per_step");
  assert_true(base_kernels < (int)json_num(o, "kernels_per_step")); /* ECA adds its kernels */
  assert_int_equal((int)json_num(o, "builds"), 3);
  assert_int_equal((int)json_num(b, "builds"), 3);
  cJSON_Delete(o);
  tc_result_free(&r);

  r = run_bench("-D", "attention=eca", "--baseline", "attention=none", "--steps", "21", "--profile", "3", NULL);
  if (r.code != 0) fail_msg("exit %d: %s", r.code, r.err);
  o = cJSON_Parse(r.out);
  assert_non_null(o);
  assert_int_equal((int)json_num(o, "builds"), 2);
  assert_int_equal((int)json_num(cJSON_GetObjectItemCaseSensitive(o, "baseline"), "builds"), 2);
  /* both profiled: the kinds' calls add up to each program's kernels per
   * step, and ECA's groups are the model's alone */
  const char *kinds = strstr(r.err, "by kind of kernel");
  assert_non_null(kinds);
  double ms, base_ms, diff, calls = -1, base_calls = -1;
  char kind[64] = "";
  int own = 0, rows = 0;
  const char *line = strchr(strchr(kinds, '\n') + 1, '\n'); /* after the title and the header */
  for (; line && sscanf(line + 1, "%lf %lf %lf %lf %lf %63s", &ms, &base_ms, &diff, &calls, &base_calls, kind) == 6;
       line = strchr(line + 1, '\n'), rows++) {
    assert_true(ms >= 0 && base_ms >= 0 && fabs(diff - (ms - base_ms)) < 2e-3);
    if (!strcmp(kind, "total")) break;
    if (!strcmp(kind, "fused:channel-attention") || !strcmp(kind, "fused:channel-attention-grad")) {
      assert_true(calls > 0 && base_calls == 0 && base_ms == 0);
      own++;
    }
  }
  assert_string_equal(kind, "total");
  assert_true(rows > 5);
  assert_int_equal(own, 2);
  assert_int_equal((int)calls, (int)json_num(o, "kernels_per_step"));
  assert_int_equal((int)base_calls, (int)json_num(cJSON_GetObjectItemCaseSensitive(o, "baseline"), "kernels_per_step"));
  cJSON_Delete(o);
  tc_result_free(&r);

  r = run_bench("--steps", "1", NULL);
  if (r.code != 0) fail_msg("exit %d: %s", r.code, r.err);
  o = cJSON_Parse(r.out);
  assert_non_null(o);
  assert_int_equal((int)json_num(o, "kernels_per_step"), base_kernels);
  assert_null(cJSON_GetObjectItemCaseSensitive(o, "baseline"));
  /* the step's memory is its arena and scratch, all resident in the process */
  double arena = json_num(o, "arena_bytes"), scratch = json_num(o, "scratch_bytes");
  assert_true(arena > 0 && scratch > 0 && arena <= json_num(o, "buffer_bytes"));
  assert_true(json_num(o, "step_bytes") == arena + scratch);
  assert_true(json_num(o, "peak_bytes") >= arena + scratch);
  cJSON_Delete(o);
  tc_result_free(&r);

  r = run("bench", "models/resnet_cifar.lua", "--baseline", "nokey", NULL);
  assert_usage_error(&r, "bench", "--baseline 'nokey': expected key=value");
  r = run("bench", "models/resnet_cifar.lua", "--batch", "2", "--baseline", "bogus=1", NULL);
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.err, "unknown option -D bogus"));
  assert_non_null(strstr(r.err, "in the baseline model, -D bogus=1"));
  tc_result_free(&r);
}

/* bench --baseline-no-fuse times the same model unfused beside it: the
 * baseline has every node as a kernel of its own (its kernel count is a
 * --no-fuse run's, above the fused one) and more feature-map traffic; it
 * excludes --baseline and --no-fuse. */
static void test_bench_baseline_no_fuse(void **state) {
  (void)state;
  tc_result r = run_bench("-D", "attention=eca", "--baseline-no-fuse", "--steps", "3", NULL);
  if (r.code != 0) fail_msg("exit %d: %s", r.code, r.err);
  cJSON *o = cJSON_Parse(r.out);
  assert_non_null(o);
  const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "baseline");
  assert_non_null(b);
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(b, "defines")->valuestring, "--no-fuse");
  int fused = (int)json_num(o, "kernels_per_step"), unfused = (int)json_num(b, "kernels_per_step");
  assert_true(fused < unfused);
  assert_true(json_num(o, "traffic_bytes") < json_num(b, "traffic_bytes"));
  assert_true(json_num(o, "ratio_median") > 0);
  cJSON_Delete(o);
  tc_result_free(&r);

  r = run_bench("-D", "attention=eca", "--no-fuse", "--steps", "1", NULL);
  if (r.code != 0) fail_msg("exit %d: %s", r.code, r.err);
  o = cJSON_Parse(r.out);
  assert_non_null(o);
  assert_int_equal((int)json_num(o, "kernels_per_step"), unfused);
  cJSON_Delete(o);
  tc_result_free(&r);

  r = run("bench", "models/resnet_cifar.lua", "--baseline-no-fuse", "--baseline", "attention=none", NULL);
  assert_usage_error(&r, "bench", "--baseline-no-fuse excludes --baseline, --no-fuse and --interp");
  r = run("bench", "models/resnet_cifar.lua", "--baseline-no-fuse", "--no-fuse", NULL);
  assert_usage_error(&r, "bench", "--baseline-no-fuse excludes");
}

/* show prints metadata, each tensor's type, stats and first values. */
static void test_show(void **state) {
  const char *dir = *state;
  char *xp, *wp;
  write_small_tensors(dir, &xp, &wp);
  tc_result r = run("show", wp, "--values", "3", NULL);
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "w f32[2,2]  min -1 max 2 mean 0.625\n  [1, -1, 0.5, ...]\n"));
  assert_non_null(strstr(r.out, "b f32[2]  min -10 max 0.5 mean -4.75\n  [0.5, -10]\n"));
  tc_result_free(&r);
  r = run("show", wp, "--values", "x", NULL);
  assert_usage_error(&r, "show", "--values 'x'");
  free(xp);
  free(wp);
}

/* Wrong weights (missing, extra, wrong shape), a wrong-shaped input and a
 * corrupt input file fail with exit 1 and messages naming them; a failed run
 * leaves an existing output file untouched. */
static void test_run_errors(void **state) {
  const char *dir = *state;
  char *ir = write_text(dir, "small.ir", small_ir);
  char *xp, *wp, *out = write_text(dir, "out.safetensors", "keep");
  write_small_tensors(dir, &xp, &wp);
  const char *wn[] = {"w", "bias"};
  const int wr[] = {1, 1};
  const int64_t wd[][2] = {{4, 0}, {2, 0}};
  const float *wv[] = {w_vals, b_vals};
  char *badw = write_tensors(dir, "badw.safetensors", 2, wn, wr, wd, wv);
  tc_result r = run("run", ir, "--input", xp, "--weights", badw, "--out", out, NULL);
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.err, "missing param 'b' f32[2]"));
  assert_non_null(strstr(r.err, "param 'w' is f32[4], the graph expects f32[2,2]"));
  assert_non_null(strstr(r.err, "'bias' is not a param or buffer"));
  tc_result_free(&r);

  const char *xn[] = {"x"};
  const int xr[] = {1};
  const int64_t xd[][2] = {{3, 0}};
  const float *xv[] = {x_vals};
  char *badx = write_tensors(dir, "badx.safetensors", 1, xn, xr, xd, xv);
  r = run("run", ir, "--input", badx, "--weights", wp, "--out", out, NULL);
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.err, "input 'x' is f32[3], the graph expects f32[2,2]"));
  tc_result_free(&r);

  char *corrupt = tc_path(dir, "corrupt.safetensors");
  assert_int_equal(tc_write_file(corrupt, "\x04\0\0\0\0\0\0\0{\"a\"", 12), 0);
  r = run("run", ir, "--input", corrupt, "--weights", wp, "--out", out, NULL);
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.err, "corrupt.safetensors: header is not valid JSON"));
  tc_result_free(&r);

  r = run("run", ir, "--input", xp, "--weights", xp, "--out", out, NULL);
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.err, "'x' is not a param or buffer"));
  tc_result_free(&r);

  char *kept = tc_read_file(out, NULL);
  assert_string_equal(kept, "keep");
  free(kept);
  free(corrupt);
  free(badx);
  free(badw);
  free(out);
  free(xp);
  free(wp);
  free(ir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_help, setup_dir, teardown_dir),
      cmocka_unit_test_setup_teardown(test_usage_errors, setup_dir, teardown_dir),
      cmocka_unit_test_setup_teardown(test_missing_files, setup_dir, teardown_dir),
      cmocka_unit_test_setup_teardown(test_library_errors, setup_dir, teardown_dir),
      cmocka_unit_test_setup_teardown(test_dump, setup_dir, teardown_dir),
      cmocka_unit_test_setup_teardown(test_dump_native_stages, setup_dir, teardown_dir),
      cmocka_unit_test_setup_teardown(test_run_values, setup_dir, teardown_dir),
      cmocka_unit_test_setup_teardown(test_run_example, setup_dir, teardown_dir),
      cmocka_unit_test_setup_teardown(test_run_errors, setup_dir, teardown_dir),
      cmocka_unit_test_setup_teardown(test_show, setup_dir, teardown_dir),
      cmocka_unit_test_setup_teardown(test_run_model, setup_dir, teardown_dir),
      cmocka_unit_test_setup_teardown(test_model_dump_and_checks, setup_dir, teardown_dir),
      cmocka_unit_test(test_bench_baseline), cmocka_unit_test(test_bench_baseline_no_fuse),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
