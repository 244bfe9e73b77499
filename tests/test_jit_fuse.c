/* Fused JIT kernels (cg_fuse.c) against the interpreter and the unfused JIT.
 *
 * (a) Hand-made fusion groups on small parsed graphs: LOOP groups with
 *     broadcasts and several outputs (an SGD-like chain, long rows split into
 *     blocks), SAMPLE groups with ECA's conv1d chain, CBAM's 7x7 spatial conv
 *     on [N,2,H,W], SE's matmul MLP, softmax (needs scratch) / topk_mask /
 *     pooling / data movement, and backward ops; 1 and 2 threads, batch
 *     sizes 3 and 5. Every group must really be compiled (fused_kernels).
 * (b) The groups of pass_fuse on ResNet-20 with every attention module:
 *     the eval forward and the training step, fused vs unfused JIT on every
 *     output. Compiling a training step twice takes minutes, so only HAM
 *     (the main job) runs by default; TJF_FILTER="eca cbam" picks modules,
 *     TJF_FILTER=all runs the zoo.
 * (c) The step profile: a sample group's steps' shares, same results.
 * TJF_BENCH=1 prints kernels, traffic and step time of HAM's training step
 * at batch 128, fused vs unfused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cg_internal.h"
#include "ir_interp.h"
#include "passes.h"
#include "util_fe.h"
#include "util_jit.h"

/* One hand-made group: members are node ids [first, last]; steps[] are
 * member indices where steps start (nsteps 0: one step). */
typedef struct {
  pass_fuse_kind kind;
  int first, last;
  int nsteps;
  int steps[16];
} gspec;

/* 1 if node 'id' is read by a node outside [first, last] or is an output. */
static int used_outside(const ir_graph *g, int id, int first, int last) {
  for (int i = 0; i < g->noutputs; i++)
    if (g->outputs[i].node == id) return 1;
  for (int i = 0; i < g->nnodes; i++) {
    if (i >= first && i <= last) continue;
    for (int k = 0; k < g->nodes[i]->nin; k++)
      if (g->nodes[i]->in[k] == id) return 1;
  }
  return 0;
}

/* Builds the pass_fusion of the groups 'specs' over 'g' (outs and ins
 * derived as pass_fuse derives them). */
static void make_fusion(const ir_graph *g, const gspec *specs, int n, pass_fusion *f) {
  memset(f, 0, sizeof *f);
  f->nnodes = g->nnodes;
  f->group_of = malloc((size_t)g->nnodes * sizeof *f->group_of);
  f->groups = calloc((size_t)n, sizeof *f->groups);
  for (int i = 0; i < g->nnodes; i++) f->group_of[i] = -1;
  for (int s = 0; s < n; s++) {
    const gspec *sp = &specs[s];
    pass_fuse_group *gr = &f->groups[f->ngroups++];
    gr->kind = sp->kind;
    gr->label = sp->kind == PASS_FUSE_LOOP ? "elementwise" : "attention";
    gr->nmembers = sp->last - sp->first + 1;
    gr->members = malloc((size_t)gr->nmembers * sizeof(int));
    gr->nsteps = sp->nsteps ? sp->nsteps : 1;
    gr->step_start = calloc((size_t)gr->nsteps, sizeof(int));
    for (int k = 0; k < sp->nsteps; k++) gr->step_start[k] = sp->steps[k];
    gr->outs = malloc((size_t)gr->nmembers * sizeof(int));
    gr->ins = malloc((size_t)g->nnodes * sizeof(int));
    for (int j = 0; j < gr->nmembers; j++) {
      int id = sp->first + j;
      gr->members[j] = id;
      f->group_of[id] = s;
      if (used_outside(g, id, sp->first, sp->last)) gr->outs[gr->nouts++] = id;
    }
    for (int x = 0; x < sp->first; x++) {
      int used = 0;
      for (int j = sp->first; j <= sp->last && !used; j++)
        for (int k = 0; k < g->nodes[j]->nin; k++) used |= g->nodes[j]->in[k] == x;
      if (used) gr->ins[gr->nins++] = x;
    }
  }
}

/* Compiles and runs 'g' (with groups 'f', NULL: pass_fuse's; no_fuse) on
 * 'src'; returns the outputs, and in *next those of a second step after
 * cg_program_feedback (new weights, momenta, statistics fed back). */
static ir_bundle *run_jit(const ir_graph *g, const pass_fusion *f, int no_fuse, int threads, const ir_bundle *src,
                          cg_stats *stats, ir_bundle **next) {
  ir_diag *d = ir_diag_create();
  cg_options o = {.threads = threads, .poison = 1, .no_fuse = no_fuse};
  cg_program *p = NULL;
  attnc_status st = f ? cg_program_create_fused(g, &o, f, &p, d) : cg_program_create(g, &o, &p, d);
  if (st != ATTNC_OK) fail_msg("jit compile: %s", ir_diag_text(d));
  ir_bundle *out = ir_bundle_create();
  if (cg_program_run_bundle(p, src, out, d) != ATTNC_OK) fail_msg("jit run: %s", ir_diag_text(d));
  /* a second run over the same sources must give the same results */
  ir_bundle *again = ir_bundle_create();
  if (cg_program_run_bundle(p, src, again, d) != ATTNC_OK) fail_msg("jit run: %s", ir_diag_text(d));
  for (int i = 0; i < out->count; i++) tj_compare_tensor("rerun", out->names[i], ir_bundle_get(again, out->names[i]), out->tensors[i], 0);
  if (stats) *stats = *cg_program_stats(p);
  cg_program_feedback(p);
  *next = ir_bundle_create();
  if (cg_program_run_bundle(p, NULL, *next, d) != ATTNC_OK) fail_msg("jit run: %s", ir_diag_text(d));
  ir_bundle_destroy(again);
  cg_program_destroy(p);
  ir_diag_destroy(d);
  return out;
}

/* Parses 'text', fuses it with 'specs', and checks fused JIT == interpreter
 * == unfused JIT (1e-5 scaled) with 1 and 2 threads; every group must be
 * compiled as one kernel. */
static void check_groups(const char *text, const gspec *specs, int n, uint64_t seed) {
  ir_diag *d = ir_diag_create();
  ir_graph *g = ir_parse(text, "<test>", d);
  if (!g || ir_verify(g, d) != 0) fail_msg("graph: %s\n%s", ir_diag_text(d), text);
  pass_fusion f;
  make_fusion(g, specs, n, &f);
  ir_bundle *src = tj_sources(g, NULL, seed), *ref = ir_bundle_create();
  if (ir_interp_run(g, src, IR_INTERP_NATIVE, ref, d) != ATTNC_OK) fail_msg("interpreter: %s", ir_diag_text(d));
  int members = 0, views = 0; /* views: reshapes, which have no kernel unfused */
  for (int s = 0; s < n; s++) members += specs[s].last - specs[s].first + 1;
  for (int s = 0; s < n; s++)
    for (int i = specs[s].first; i <= specs[s].last; i++) views += pass_plan_is_alias(g->nodes[i]);
  for (int threads = 1; threads <= 2; threads++) {
    cg_stats fs, us;
    ir_bundle *fused2, *plain2;
    ir_bundle *fused = run_jit(g, &f, 0, threads, src, &fs, &fused2);
    ir_bundle *plain = run_jit(g, NULL, 1, threads, src, &us, &plain2);
    assert_int_equal(fs.fused_kernels, n);
    assert_int_equal(fs.fused_nodes, members);
    assert_int_equal(us.fused_kernels, 0);
    assert_int_equal(fs.kernels, us.kernels - (members - views) + n);
    assert_true(fs.traffic_bytes <= us.traffic_bytes);
    for (int i = 0; i < ref->count; i++) {
      tj_compare_tensor("fused vs interpreter", ref->names[i], ir_bundle_get(fused, ref->names[i]), ref->tensors[i], 1e-5);
      tj_compare_tensor("fused vs unfused", ref->names[i], ir_bundle_get(fused, ref->names[i]), ir_bundle_get(plain, ref->names[i]), 1e-5);
      tj_compare_tensor("fused vs unfused, step 2", ref->names[i], ir_bundle_get(fused2, ref->names[i]), ir_bundle_get(plain2, ref->names[i]), 1e-5);
    }
    ir_bundle_destroy(fused);
    ir_bundle_destroy(plain);
    ir_bundle_destroy(fused2);
    ir_bundle_destroy(plain2);
  }
  ir_bundle_destroy(src);
  ir_bundle_destroy(ref);
  pass_fusion_free(&f);
  ir_graph_destroy(g);
  ir_diag_destroy(d);
}

/* LOOP: broadcast operands (per-channel, scalar, leading 1), where, a
 * backward op, three outs (two graph outputs, one read outside). */
static void test_loop_broadcast(void **state) {
  (void)state;
  const char *text =
      "graph @t {\n"
      "  %x = input name=\"x\" : f32[3,4,5,6]\n"
      "  %b = input name=\"b\" : f32[4,1,1]\n"
      "  %s = input name=\"s\" : f32[]\n"
      "  %c = input name=\"c\" : f32[1,4,5,6]\n"
      "  %a = add(%x, %b) : f32[3,4,5,6]\n"
      "  %m = mul(%a, %s) : f32[3,4,5,6]\n"
      "  %r = relu(%m) : f32[3,4,5,6]\n"
      "  %t = sub(%r, %c) : f32[3,4,5,6]\n"
      "  %w = where(%t, %m, %x) : f32[3,4,5,6]\n"
      "  %q = sigmoid_grad(%r, %w) : f32[3,4,5,6]\n"
      "  %u = reduce_sum(%t) axes=[1] : f32[3,5,6]\n"
      "  output \"m\" = %m\n  output \"q\" = %q\n  output \"u\" = %u\n}\n";
  gspec g[] = {{PASS_FUSE_LOOP, 4, 9, 0, {0}}};
  check_groups(text, g, 1, 3);
}

/* LOOP: an SGD update (outs: new param and momentum), rows longer than a
 * block, and a second group of the same shape (one compiled kernel). */
static void test_loop_sgd(void **state) {
  (void)state;
  const char *text =
      "graph @t {\n"
      "  %p = param name=\"p\" : f32[2,40000]\n"
      "  %g = input name=\"g\" : f32[2,40000]\n"
      "  %v = buffer name=\"v\" : f32[2,40000]\n"
      "  %lr = input name=\"lr\" : f32[]\n"
      "  %wd = const value=0.0005 : f32[]\n"
      "  %mu = const value=0.9 : f32[]\n"
      "  %d = mul(%p, %wd) : f32[2,40000]\n"
      "  %g2 = add(%g, %d) : f32[2,40000]\n"
      "  %m2 = mul(%v, %mu) : f32[2,40000]\n"
      "  %v2 = add(%m2, %g2) : f32[2,40000]\n"
      "  %u = mul(%v2, %lr) : f32[2,40000]\n"
      "  %p2 = sub(%p, %u) : f32[2,40000]\n"
      "  %e = exp(%p2) : f32[2,40000]\n"
      "  %e2 = mul(%e, %wd) : f32[2,40000]\n"
      "  %e3 = neg(%e2) : f32[2,40000]\n"
      "  output \"p\" = %p2\n  output \"v\" = %v2\n  output \"e\" = %e3\n}\n";
  gspec g[] = {{PASS_FUSE_LOOP, 6, 11, 0, {0}}, {PASS_FUSE_LOOP, 12, 14, 0, {0}}};
  check_groups(text, g, 2, 5);
}

/* LOOP: a chain of 64 members (more than one loop nest's operands), the
 * middle one also an output. */
static void test_loop_long(void **state) {
  (void)state;
  static const char *const ops[] = {"add", "mul", "maximum", "sub"};
  char text[8192];
  int len = snprintf(text, sizeof text,
                     "graph @t {\n  %%x = input name=\"x\" : f32[5,7]\n  %%y = input name=\"y\" : f32[7]\n"
                     "  %%c0 = tanh(%%x) : f32[5,7]\n");
  for (int i = 1; i < 64; i++)
    len += snprintf(text + len, sizeof text - (size_t)len, "  %%c%d = %s(%%c%d, %%y) : f32[5,7]\n", i, ops[i % 4], i - 1);
  snprintf(text + len, sizeof text - (size_t)len, "  output \"mid\" = %%c31\n  output \"z\" = %%c63\n}\n");
  gspec g[] = {{PASS_FUSE_LOOP, 2, 65, 0, {0}}};
  check_groups(text, g, 1, 9);
}

/* SAMPLE: ECA (reduce_mean, reshape, conv1d, sigmoid, reshape, mul + relu as
 * one loop step), sigmoid also an output; N = 3 and 5. */
static void test_sample_eca(void **state) {
  (void)state;
  char text[2048];
  for (int n = 3; n <= 5; n += 2) {
    snprintf(text, sizeof text,
             "graph @t {\n"
             "  %%x = input name=\"x\" : f32[%d,8,5,5]\n"
             "  %%w = param name=\"w\" : f32[1,1,3]\n"
             "  %%r = reduce_mean(%%x) axes=[2,3] keepdims=1 : f32[%d,8,1,1]\n"
             "  %%r2 = reshape(%%r) shape=[%d,1,8] : f32[%d,1,8]\n"
             "  %%c = conv1d(%%r2, %%w) pad=[1] : f32[%d,1,8]\n"
             "  %%s = sigmoid(%%c) : f32[%d,1,8]\n"
             "  %%s2 = reshape(%%s) shape=[%d,8,1,1] : f32[%d,8,1,1]\n"
             "  %%y = mul(%%x, %%s2) : f32[%d,8,5,5]\n"
             "  %%z = relu(%%y) : f32[%d,8,5,5]\n"
             "  output \"z\" = %%z\n  output \"s\" = %%s\n}\n",
             n, n, n, n, n, n, n, n, n, n);
    gspec g[] = {{PASS_FUSE_SAMPLE, 2, 8, 6, {0, 1, 2, 3, 4, 5}}};
    check_groups(text, g, 1, 7 + (uint64_t)n);
  }
}

/* The profile of ECA's sample group (6 steps) run twice with 2 threads,
 * compiled with or without step counters (caller frees); its outputs in
 * *out. */
static char *step_profile_of(int steps, ir_bundle **out) {
  const char *text =
      "graph @t {\n"
      "  %x = input name=\"x\" : f32[4,8,5,5]\n"
      "  %w = param name=\"w\" : f32[1,1,3]\n"
      "  %r = reduce_mean(%x) axes=[2,3] keepdims=1 : f32[4,8,1,1]\n"
      "  %r2 = reshape(%r) shape=[4,1,8] : f32[4,1,8]\n"
      "  %c = conv1d(%r2, %w) pad=[1] : f32[4,1,8]\n"
      "  %s = sigmoid(%c) : f32[4,1,8]\n"
      "  %s2 = reshape(%s) shape=[4,8,1,1] : f32[4,8,1,1]\n"
      "  %y = mul(%x, %s2) : f32[4,8,5,5]\n"
      "  %z = relu(%y) : f32[4,8,5,5]\n"
      "  output \"z\" = %z\n  output \"s\" = %s\n}\n";
  ir_diag *d = ir_diag_create();
  ir_graph *g = ir_parse(text, "<test>", d);
  assert_non_null(g);
  gspec sp[] = {{PASS_FUSE_SAMPLE, 2, 8, 6, {0, 1, 2, 3, 4, 5}}};
  pass_fusion f;
  make_fusion(g, sp, 1, &f);
  cg_options o = {.threads = 2, .step_profile = steps};
  cg_program *p = NULL;
  if (cg_program_create_fused(g, &o, &f, &p, d) != ATTNC_OK) fail_msg("jit compile: %s", ir_diag_text(d));
  ir_bundle *src = tj_sources(g, NULL, 21);
  *out = ir_bundle_create();
  cg_program_set_profile(p, 1);
  for (int r = 0; r < 2; r++)
    if (cg_program_run_bundle(p, src, *out, d) != ATTNC_OK) fail_msg("jit run: %s", ir_diag_text(d));
  char *buf = tj_profile_text(p);
  ir_bundle_destroy(src);
  cg_program_destroy(p);
  pass_fusion_free(&f);
  ir_graph_destroy(g);
  ir_diag_destroy(d);
  return buf;
}

/* With step counters the profile lists each step of a sample group under
 * it, in order, with the step's ops and a share of the group's time (the
 * shares add up to 100%); the results are the same bits as without them,
 * whose profile lists no steps. */
static void test_step_profile(void **state) {
  (void)state;
  ir_bundle *with, *without;
  char *prof = step_profile_of(1, &with), *plain = step_profile_of(0, &without);
  assert_null(strstr(plain, "step 1:"));
  double sum = 0;
  int steps = 0;
  char *save = NULL;
  for (char *line = strtok_r(prof, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    char *at = strstr(line, "step ");
    if (!at) continue;
    double ms, share;
    int k;
    if (sscanf(line, "%lf %lf", &ms, &share) != 2 || sscanf(at, "step %d:", &k) != 1) fail_msg("step line: %s", line);
    assert_int_equal(k, ++steps);
    assert_true(ms >= 0 && share >= 0 && share <= 100);
    sum += share;
    if (k == 1) assert_non_null(strstr(at, "reduce_mean f32[4,8,1,1]"));
    if (k == 6) assert_non_null(strstr(at, "loop of 2: mul relu"));
  }
  assert_int_equal(steps, 6);
  assert_true(fabs(sum - 100) < 0.5);
  for (int i = 0; i < without->count; i++)
    tj_compare_tensor("step counters", without->names[i], ir_bundle_get(with, without->names[i]), without->tensors[i], 0);
  free(prof);
  free(plain);
  ir_bundle_destroy(with);
  ir_bundle_destroy(without);
}

/* The profile's wait% column: a kernel of one work item run by 2 threads
 * leaves one idle, so at least half of their time in it is waiting (in
 * one of five profiles at least: see below); the total line gives the
 * step's share. */
static void test_profile_wait(void **state) {
  (void)state;
  const char *text = "graph @t {\n"
                     "  %x = input name=\"x\" : f32[256,1024]\n"
                     "  %s = reduce_sum(%x) axes=[0,1] keepdims=0 : f32[]\n"
                     "  %y = add(%x, %x) : f32[256,1024]\n"
                     "  output \"s\" = %s\n  output \"y\" = %y\n}\n";
  ir_diag *d = ir_diag_create();
  ir_graph *g = ir_parse(text, "<test>", d);
  assert_non_null(g);
  cg_options o = {.threads = 2, .no_fuse = 1};
  cg_program *p = NULL;
  if (cg_program_create(g, &o, &p, d) != ATTNC_OK) fail_msg("jit compile: %s", ir_diag_text(d));
  ir_bundle *src = tj_sources(g, NULL, 5), *out = ir_bundle_create();
  double best = 0; /* the reduction's wait% */
  for (int trial = 0; trial < 5 && best < 49.9; trial++) {
    cg_program_set_profile(p, 1);
    for (int r = 0; r < 3; r++) assert_int_equal(cg_program_run_bundle(p, src, out, d), ATTNC_OK);
    char *prof = tj_profile_text(p), *save = NULL;
    int seen = 0;
    for (char *line = strtok_r(prof, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
      double ms, share, gf, wait;
      int calls;
      if (strstr(line, "total over")) {
        assert_non_null(strstr(line, "of the threads' time waiting"));
        seen |= 4;
      }
      if (sscanf(line, "%lf %lf %d %lf %lf", &ms, &share, &calls, &gf, &wait) != 5) continue;
      assert_true(wait >= 0 && wait <= 100);
      if (strstr(line, "reduce_sum")) {
        best = wait > best ? wait : best;
        seen |= 1;
      }
      if (strstr(line, "add f32")) seen |= 2;
    }
    assert_int_equal(seen, 7);
    free(prof);
  }
  /* the thread with no item waits the whole call: its busy time is none,
   * and thread 0's share fits in the call's time on its own clock, so the
   * reduction's wait% is at least 50 however busy the machine is (before
   * the idle thread's time was left out, a CI run on a loaded machine saw
   * less in all five trials) */
  assert_true(best >= 49.9);
  cg_program_destroy(p);
  ir_bundle_destroy(src);
  ir_bundle_destroy(out);
  ir_graph_destroy(g);
  ir_diag_destroy(d);
}

/* SAMPLE: CBAM's spatial attention, a 7x7 conv over [N,2,H,W] (scratch). */
static void test_sample_spatial(void **state) {
  (void)state;
  char text[2048];
  for (int n = 3; n <= 5; n += 2) {
    snprintf(text, sizeof text,
             "graph @t {\n"
             "  %%x = input name=\"x\" : f32[%d,6,9,9]\n"
             "  %%w = param name=\"w\" : f32[1,2,7,7]\n"
             "  %%mx = reduce_max(%%x) axes=[1] keepdims=1 : f32[%d,1,9,9]\n"
             "  %%mn = reduce_mean(%%x) axes=[1] keepdims=1 : f32[%d,1,9,9]\n"
             "  %%cat = concat(%%mx, %%mn) axis=1 : f32[%d,2,9,9]\n"
             "  %%cv = conv2d(%%cat, %%w) stride=[1,1] pad=[3,3] : f32[%d,1,9,9]\n"
             "  %%sg = sigmoid(%%cv) : f32[%d,1,9,9]\n"
             "  %%y = mul(%%x, %%sg) : f32[%d,6,9,9]\n"
             "  output \"y\" = %%y\n}\n",
             n, n, n, n, n, n, n);
    gspec g[] = {{PASS_FUSE_SAMPLE, 2, 7, 6, {0, 1, 2, 3, 4, 5}}};
    check_groups(text, g, 1, 11 + (uint64_t)n);
  }
}

/* SAMPLE: SE's MLP (matmul with a shared weight, relu, matmul, sigmoid). */
static void test_sample_mlp(void **state) {
  (void)state;
  const char *text =
      "graph @t {\n"
      "  %x = input name=\"x\" : f32[5,16,4,4]\n"
      "  %w1 = param name=\"w1\" : f32[16,4]\n"
      "  %w2 = param name=\"w2\" : f32[4,16]\n"
      "  %p = reduce_mean(%x) axes=[2,3] : f32[5,16]\n"
      "  %h = matmul(%p, %w1) : f32[5,4]\n"
      "  %hr = relu(%h) : f32[5,4]\n"
      "  %o = matmul(%hr, %w2) : f32[5,16]\n"
      "  %s = sigmoid(%o) : f32[5,16]\n"
      "  %s4 = reshape(%s) shape=[5,16,1,1] : f32[5,16,1,1]\n"
      "  %y = mul(%x, %s4) : f32[5,16,4,4]\n"
      "  output \"y\" = %y\n}\n";
  gspec g[] = {{PASS_FUSE_SAMPLE, 3, 9, 7, {0, 1, 2, 3, 4, 5, 6}}};
  check_groups(text, g, 1, 21);
}

/* SAMPLE: softmax over channels (needs step scratch), topk_mask, their
 * product as an output, max pooling, transpose, pad, slice, concat. */
static void test_sample_movement(void **state) {
  (void)state;
  const char *text =
      "graph @t {\n"
      "  %x = input name=\"x\" : f32[3,4,6,6]\n"
      "  %sm = softmax(%x) axis=1 : f32[3,4,6,6]\n"
      "  %tk = topk_mask(%x) axis=1 k=2 : f32[3,4,6,6]\n"
      "  %p = mul(%sm, %tk) : f32[3,4,6,6]\n"
      "  %mp = max_pool2d(%p) kernel=[2,2] stride=[2,2] : f32[3,4,3,3]\n"
      "  %tr = transpose(%mp) perm=[0,2,3,1] : f32[3,3,3,4]\n"
      "  %pd = pad(%tr) pads=[0,0,1,0,0,1,0,0] : f32[3,4,4,4]\n"
      "  %sl = slice(%pd) axis=3 start=1 end=4 : f32[3,4,4,3]\n"
      "  %cc = concat(%sl, %sl) axis=3 : f32[3,4,4,6]\n"
      "  output \"cc\" = %cc\n  output \"p\" = %p\n}\n";
  gspec g[] = {{PASS_FUSE_SAMPLE, 1, 8, 8, {0, 1, 2, 3, 4, 5, 6, 7}}};
  check_groups(text, g, 1, 31);
}

/* SAMPLE: backward ops (in_shape attributes name the batch): avg and max
 * pool gradients, a relu_grad loop step, conv2d_grad_input. */
static void test_sample_backward(void **state) {
  (void)state;
  const char *text =
      "graph @t {\n"
      "  %x = input name=\"x\" : f32[5,3,6,6]\n"
      "  %dy = input name=\"dy\" : f32[5,3,3,3]\n"
      "  %w = param name=\"w\" : f32[3,3,3,3]\n"
      "  %a = avg_pool2d_grad(%dy) kernel=[2,2] stride=[2,2] in_shape=[5,3,6,6] : f32[5,3,6,6]\n"
      "  %m = max_pool2d_grad(%x, %dy) kernel=[2,2] stride=[2,2] : f32[5,3,6,6]\n"
      "  %s = add(%a, %m) : f32[5,3,6,6]\n"
      "  %r = relu_grad(%x, %s) : f32[5,3,6,6]\n"
      "  %ci = conv2d_grad_input(%r, %w) pad=[1,1] in_shape=[5,3,6,6] : f32[5,3,6,6]\n"
      "  output \"ci\" = %ci\n}\n";
  gspec g[] = {{PASS_FUSE_SAMPLE, 3, 7, 4, {0, 1, 2, 4}}};
  check_groups(text, g, 1, 41);
}

/* SAMPLE: reductions folded into a loop step as running sums, maxima,
 * means and minima (over the channels, keepdims 0 and 1; over axes 1 and
 * 2; over axis 2 alone), a later step reading them; N = 3 and 5. */
static void test_sample_running_reductions(void **state) {
  (void)state;
  char text[2048];
  for (int n = 3; n <= 5; n += 2) {
    snprintf(text, sizeof text,
             "graph @t {\n"
             "  %%x = input name=\"x\" : f32[%d,6,5,7]\n"
             "  %%y = input name=\"y\" : f32[%d,6,5,7]\n"
             "  %%m = mul(%%x, %%y) : f32[%d,6,5,7]\n"
             "  %%e = relu(%%m) : f32[%d,6,5,7]\n"
             "  %%rs = reduce_sum(%%m) axes=[1] keepdims=0 : f32[%d,5,7]\n"
             "  %%rx = reduce_max(%%e) axes=[1] keepdims=1 : f32[%d,1,5,7]\n"
             "  %%ra = reduce_mean(%%m) axes=[1,2] keepdims=1 : f32[%d,1,1,7]\n"
             "  %%ri = reduce_min(%%m) axes=[2] keepdims=1 : f32[%d,6,1,7]\n"
             "  %%t = add(%%m, %%rx) : f32[%d,6,5,7]\n"
             "  %%u = mul(%%t, %%ra) : f32[%d,6,5,7]\n"
             "  output \"rs\" = %%rs\n  output \"ri\" = %%ri\n  output \"u\" = %%u\n}\n",
             n, n, n, n, n, n, n, n, n, n);
    gspec g[] = {{PASS_FUSE_SAMPLE, 2, 9, 2, {0, 6}}};
    check_groups(text, g, 1, 51 + (uint64_t)n);
  }
}

/* SAMPLE: sums along the rows of a loop step: over H,W (a channel's
 * pooled sum, as a BN's per-sample sums), over C,H,W as a mean (keepdims),
 * over W alone (rows of 7); a reshape and a second loop reading them;
 * N = 3 and 5. */
static void test_sample_row_sums(void **state) {
  (void)state;
  char text[2048];
  for (int n = 3; n <= 5; n += 2) {
    snprintf(text, sizeof text,
             "graph @t {\n"
             "  %%x = input name=\"x\" : f32[%d,6,5,7]\n"
             "  %%y = input name=\"y\" : f32[%d,6,5,7]\n"
             "  %%m = mul(%%x, %%y) : f32[%d,6,5,7]\n"
             "  %%e = relu(%%m) : f32[%d,6,5,7]\n"
             "  %%rs = reduce_sum(%%m) axes=[2,3] keepdims=0 : f32[%d,6]\n"
             "  %%ra = reduce_mean(%%e) axes=[1,2,3] keepdims=1 : f32[%d,1,1,1]\n"
             "  %%rw = reduce_sum(%%m) axes=[3] keepdims=1 : f32[%d,6,5,1]\n"
             "  %%rr = reshape(%%rs) shape=[%d,6,1,1] : f32[%d,6,1,1]\n"
             "  %%t = mul(%%e, %%rr) : f32[%d,6,5,7]\n"
             "  %%u = add(%%t, %%ra) : f32[%d,6,5,7]\n"
             "  %%v = add(%%u, %%rw) : f32[%d,6,5,7]\n"
             "  output \"rs\" = %%rs\n  output \"v\" = %%v\n}\n",
             n, n, n, n, n, n, n, n, n, n, n, n);
    gspec g[] = {{PASS_FUSE_SAMPLE, 2, 10, 3, {0, 5, 6}}};
    check_groups(text, g, 1, 61 + (uint64_t)n);
  }
}

/* Lowers ResNet-20 with attention 'att' in 'mode' at 'batch' (a training
 * step for FE_TRAIN: gradients and the SGD update). */
static ir_graph *resnet20(const char *att, fe_mode mode, int64_t batch) {
  char opt[64];
  snprintf(opt, sizeof opt, "attention=%s", att);
  ir_graph *g = tf_lower("models/resnet_cifar.lua", mode, batch, "depth=20", opt, NULL);
  if (mode == FE_TRAIN) {
    ir_diag *d = ir_diag_create();
    pass_sgd_options o = {.momentum = 0.9, .weight_decay = 5e-4};
    if (pass_train_step(g, &o, 1, NULL, d) != ATTNC_OK) fail_msg("train step: %s", ir_diag_text(d));
    ir_diag_destroy(d);
  }
  return g;
}

/* ResNet-20 + one attention module (state): eval forward at batch 3 and
 * training step at batch 4 with random weights, fused (pass_fuse's groups)
 * vs unfused JIT on every output (logits, loss, gradients, new params,
 * momenta, running statistics) within 1e-5 scaled. */
static void test_model(void **state) {
  const char *att = *state;
  const char *filter = getenv("TJF_FILTER");
  if (filter ? strcmp(filter, "all") && !strstr(filter, att) : strcmp(att, "ham") != 0) skip();
  for (int mode = FE_EVAL; mode <= FE_TRAIN; mode++) {
    ir_graph *g = resnet20(att, (fe_mode)mode, mode == FE_EVAL ? 3 : 4);
    ir_bundle *given = ir_bundle_create();
    if (mode == FE_TRAIN) {
      ir_tensor *lr = ir_tensor_create(ir_type_make(IR_F32, 0, NULL));
      ir_tensor_set(lr, 0, 0.1);
      ir_bundle_put(given, "lr", lr);
    }
    ir_bundle *src = tj_sources(g, given, 1234);
    cg_stats fs, us;
    ir_bundle *fused2, *plain2;
    ir_bundle *fused = run_jit(g, NULL, 0, 2, src, &fs, &fused2);
    ir_bundle *plain = run_jit(g, NULL, 1, 2, src, &us, &plain2);
    assert_int_equal(fused->count, plain->count);
    double worst = 0;
    for (int i = 0; i < plain->count; i++) {
      double w = tj_compare_tensor(att, plain->names[i], ir_bundle_get(fused, plain->names[i]), plain->tensors[i], 1e-5);
      if (w > worst) worst = w;
      w = tj_compare_tensor(att, plain->names[i], ir_bundle_get(fused2, plain->names[i]), ir_bundle_get(plain2, plain->names[i]), 1e-5);
      if (w > worst) worst = w;
    }
    assert_int_equal(us.fused_kernels, 0);
    pass_fusion f; /* every group of the pass is compiled as one kernel */
    ir_diag *d = ir_diag_create();
    assert_int_equal(pass_fuse(g, &f, d), ATTNC_OK);
    assert_int_equal(fs.fused_kernels, f.ngroups);
    pass_fusion_free(&f);
    ir_diag_destroy(d);
    print_message("%s %s: %d outputs agree over two steps (worst %.2g); kernels %d -> %d (%d groups of %d nodes; distinct "
                  "%d -> %d), traffic %.1f -> %.1f MB, compile %.1f s unfused, %.1f s fused (O3 %.1f s)\n",
                  att, mode == FE_EVAL ? "eval" : "train", plain->count, worst, us.kernels, fs.kernels,
                  fs.fused_kernels, fs.fused_nodes, us.unique_kernels, fs.unique_kernels,
                  (double)us.traffic_bytes / 1e6, (double)fs.traffic_bytes / 1e6, us.lower_s + us.opt_s + us.jit_s,
                  fs.lower_s + fs.opt_s + fs.jit_s, fs.opt_s);
    ir_bundle_destroy(fused);
    ir_bundle_destroy(plain);
    ir_bundle_destroy(fused2);
    ir_bundle_destroy(plain2);
    ir_bundle_destroy(src);
    ir_bundle_destroy(given);
    ir_graph_destroy(g);
  }
}

/* Compiles 'g' (fused or not) and returns the mean seconds of 'runs' runs
 * after one warm-up run; *st receives the program's figures. */
static double time_step(const ir_graph *g, int no_fuse, int runs, cg_stats *st) {
  ir_diag *d = ir_diag_create();
  cg_options o = {.no_fuse = no_fuse};
  cg_program *p = NULL;
  if (cg_program_create(g, &o, &p, d) != ATTNC_OK) fail_msg("jit compile: %s", ir_diag_text(d));
  ir_bundle *src = tj_sources(g, NULL, 5);
  ir_tensor *lr = ir_tensor_create(ir_type_make(IR_F32, 0, NULL));
  ir_tensor_set(lr, 0, 0.01);
  ir_bundle_put(src, "lr", lr);
  if (cg_program_run_bundle(p, src, NULL, d) != ATTNC_OK) fail_msg("jit run: %s", ir_diag_text(d));
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int r = 0; r < runs; r++) cg_program_run(p, d);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  *st = *cg_program_stats(p);
  cg_program_destroy(p);
  ir_bundle_destroy(src);
  ir_diag_destroy(d);
  return ((double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec)) / runs;
}

/* TJF_BENCH=1: kernels, traffic and step time of ResNet-20 + HAM's training
 * step at batch 128, unfused vs fused (every core; figures printed). */
static void test_bench(void **state) {
  (void)state;
  if (!getenv("TJF_BENCH")) skip();
  ir_graph *g = resnet20("ham", FE_TRAIN, 128);
  cg_stats us, fs;
  double tu = time_step(g, 1, 3, &us), tf = time_step(g, 0, 3, &fs);
  print_message("ham train step, batch 128, %d threads:\n"
                "  unfused: %d kernels (%d distinct), traffic %.1f MB, arena %.1f MB, %.1f ms/step, compile %.1f s\n"
                "  fused:   %d kernels (%d distinct; %d groups of %d nodes), traffic %.1f MB, arena %.1f MB, "
                "%.1f ms/step, compile %.1f s\n",
                us.threads, us.kernels, us.unique_kernels, (double)us.traffic_bytes / 1e6, (double)us.arena_bytes / 1e6,
                tu * 1e3, us.lower_s + us.opt_s + us.jit_s, fs.kernels, fs.unique_kernels, fs.fused_kernels,
                fs.fused_nodes, (double)fs.traffic_bytes / 1e6, (double)fs.arena_bytes / 1e6, tf * 1e3,
                fs.lower_s + fs.opt_s + fs.jit_s);
  assert_true(fs.kernels < us.kernels);
  ir_graph_destroy(g);
}

static const char *const modules[] = {"none", "se",  "eca",    "cbam", "ham",    "lgam",
                                      "ssa",  "csm", "cam",    "sam",  "csm_sc", "spatial_softmax"};

int main(void) {
  static const struct CMUnitTest hand[] = {
      cmocka_unit_test(test_bench),           cmocka_unit_test(test_loop_long),
      cmocka_unit_test(test_loop_broadcast),  cmocka_unit_test(test_loop_sgd),
      cmocka_unit_test(test_step_profile),    cmocka_unit_test(test_profile_wait),
      cmocka_unit_test(test_sample_eca),      cmocka_unit_test(test_sample_spatial),
      cmocka_unit_test(test_sample_mlp),      cmocka_unit_test(test_sample_movement),
      cmocka_unit_test(test_sample_backward), cmocka_unit_test(test_sample_running_reductions),
      cmocka_unit_test(test_sample_row_sums),
  };
  /* the hand-written tests, then test_model once per module (the count of
   * the first is the array's, so that none is overwritten) */
  enum { NM = sizeof modules / sizeof *modules, NH = sizeof hand / sizeof *hand };
  struct CMUnitTest tests[NH + NM];
  for (int i = 0; i < NH; i++) tests[i] = hand[i];
  for (int i = 0; i < NM; i++) tests[NH + i] = (struct CMUnitTest){modules[i], test_model, NULL, NULL, (void *)modules[i]};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
