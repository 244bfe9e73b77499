/* Grad-CAM tests: which value is explained, the gradient against oracles
 * (a linear head's weights, a ReLU's mask, finite differences through a
 * HAM network), the JIT against the interpreter, and the gradcam command
 * end to end (picture, numbers, errors). */
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "rt_data.h"
#include "rt_gradcam.h"
#include "rt_gradcheck.h"
#include "rt_init.h"
#include "rt_safetensors.h"
#include "util_cli.h"
#include "util_jit.h"
#include "util_zoo.h"

#define TINY "tests/data/specs/tiny.lua" /* conv -> bn -> relu -> mean -> fc, 3x8x8, 16 channels */

/* A batch of 'n' random inputs of 'g' (N(0,1), seeded). */
static float *random_input(const ir_graph *g, uint64_t seed) {
  const ir_node *in = ir_graph_find_source(g, IR_OP_input, "input");
  assert_non_null(in);
  int64_t n = ir_type_numel(&in->type);
  float *x = malloc((size_t)n * sizeof(float));
  assert_non_null(x);
  rt_rng r;
  rt_rng_seed(&r, seed);
  for (int64_t i = 0; i < n; i++) x[i] = (float)rt_rng_normal(&r);
  return x;
}

/* Runs eval graph 'g' with an extra output at the last node of 'op' and
 * returns that value for input 'x' (interpreter); the logits go to *logits
 * if not NULL. */
static ir_tensor *value_of_last(const ir_graph *g, ir_opcode op, const ir_bundle *w, const float *x,
                                ir_tensor **logits) {
  ir_graph *c = ir_graph_clone(g);
  int at = -1;
  for (int i = 0; i < c->nnodes; i++)
    if (c->nodes[i]->op == op) at = i;
  assert_true(at >= 0);
  ir_graph_add_output(c, "probe", at);
  cg_options co = {.interp = 1};
  cg_program *p = NULL;
  ir_diag *d = ir_diag_create();
  assert_int_equal(cg_program_create(c, &co, &p, d), ATTNC_OK);
  ir_type ti;
  float *in = cg_program_input(p, "input", &ti);
  memcpy(in, x, (size_t)ir_type_numel(&ti) * sizeof(float));
  ir_bundle *out = ir_bundle_create();
  assert_int_equal(cg_program_run_bundle(p, w, out, d), ATTNC_OK);
  ir_tensor *v = ir_tensor_convert(ir_bundle_get(out, "probe"), IR_F32);
  if (logits) *logits = ir_tensor_convert(ir_bundle_get(out, "logits"), IR_F32);
  ir_bundle_destroy(out);
  cg_program_destroy(p);
  ir_diag_destroy(d);
  ir_graph_destroy(c);
  return v;
}

/* The explained value follows --layer: the last feature map by default, a
 * module's last map otherwise; the graph keeps only what Grad-CAM reads (no
 * weight gradient), and an unknown layer lists the layers there are. */
static void test_target_and_graph(void **state) {
  (void)state;
  ir_graph *g = tz_lower(TINY, FE_EVAL, 3, NULL, NULL), *gg = NULL;
  ir_diag *d = ir_diag_create();
  rt_gradcam_target t;
  assert_int_equal(rt_gradcam_graph(g, NULL, &gg, &t, d), ATTNC_OK);
  assert_string_equal(t.layer, "(root)");
  assert_string_equal(t.op, "relu");
  char ty[64];
  ir_type_format(&t.type, ty, sizeof ty);
  assert_string_equal(ty, "f32[3,16,8,8]");
  assert_int_equal(gg->noutputs, 3);
  const char *want[3] = {"logits", "gradcam.features", "grad.gradcam.probe"};
  for (int i = 0; i < 3; i++) {
    int found = 0;
    for (int j = 0; j < gg->noutputs; j++) found |= !strcmp(gg->outputs[j].name, want[i]);
    assert_true(found);
  }
  int convs = 0, conv_grads = 0, relus = 0;
  for (int i = 0; i < gg->nnodes; i++) {
    ir_opcode op = gg->nodes[i]->op;
    convs += op == IR_OP_conv2d;
    conv_grads += op == IR_OP_conv2d_grad_weight || op == IR_OP_conv2d_grad_input;
    relus += op == IR_OP_relu;
  }
  assert_int_equal(convs, 1);
  assert_int_equal(conv_grads, 0); /* the map is after the convolution */
  assert_int_equal(relus, 1);
  ir_graph_destroy(gg);
  static const struct {
    const char *layer, *op;
  } layers[] = {{"bn", "batchnorm_eval"}, {"conv", "conv2d"}, {"(root)", "relu"}};
  for (int i = 0; i < 3; i++) {
    assert_int_equal(rt_gradcam_graph(g, layers[i].layer, &gg, &t, d), ATTNC_OK);
    assert_string_equal(t.op, layers[i].op);
    ir_graph_destroy(gg);
  }
  const char *bad[] = {"fc", "nope", "con"}; /* fc's output is [N,10]; "con" is not "conv" */
  for (int i = 0; i < 3; i++) {
    ir_diag_clear(d);
    assert_int_equal(rt_gradcam_graph(g, bad[i], &gg, &t, d), ATTNC_EINVAL);
    assert_null(gg);
    const char *m = ir_diag_text(d);
    assert_non_null(strstr(m, "the layers are: conv, bn, (root)"));
  }
  ir_diag_destroy(d);
  ir_graph_destroy(g);
}

/* With the map right before global average pooling and the linear layer,
 * d logit_c / dA_k = W[c,k] / (h*w) everywhere, so alpha is the class's
 * weight row over 64 and the map is the CAM of Zhou et al.: checked on the
 * interpreter and the JIT, for predicted and chosen classes. */
static void test_linear_head(void **state) {
  (void)state;
  ir_graph *g = tz_lower(TINY, FE_EVAL, 3, NULL, NULL);
  ir_bundle *w = tz_random_weights(g, 5);
  float *x = random_input(g, 11);
  ir_tensor *logits = NULL, *a = value_of_last(g, IR_OP_relu, w, x, &logits);
  const float *fc = ir_bundle_get(w, "fc.weight")->data, *av = a->data;
  int64_t want[3] = {-1, 3, 9};
  for (int interp = 0; interp <= 1; interp++) {
    cg_options co = {.interp = interp, .threads = 2, .poison = 1};
    rt_gradcam *gc = NULL;
    rt_gradcam_result r;
    ir_diag *d = ir_diag_create();
    if (rt_gradcam_create(g, NULL, w, &co, &gc, d) != ATTNC_OK || rt_gradcam_run(gc, x, want, &r, d) != ATTNC_OK)
      fail_msg("%s", ir_diag_text(d));
    assert_int_equal(r.n, 3);
    assert_int_equal(r.channels, 16);
    assert_int_equal(r.h * r.w, 64);
    for (int i = 0; i < 3; i++) {
      const float *l = (const float *)logits->data + i * 10;
      int64_t best = 0;
      for (int j = 1; j < 10; j++) best = l[j] > l[best] ? j : best;
      assert_int_equal(r.predicted[i], best);
      assert_int_equal(r.explained[i], want[i] < 0 ? best : want[i]);
      for (int j = 0; j < 10; j++) assert_true(fabs(r.logits[i * 10 + j] - l[j]) <= 1e-5 * (1 + fabs(l[j])));
      int64_t c = r.explained[i];
      double top = 0;
      for (int k = 0; k < 16; k++) {
        double alpha = fc[c * 16 + k] / 64.0;
        assert_true(fabs(r.alpha[i * 16 + k] - alpha) <= 1e-6 * (1e-3 + fabs(alpha)));
      }
      double cam[64];
      for (int p = 0; p < 64; p++) {
        double s = 0;
        for (int k = 0; k < 16; k++) s += fc[c * 16 + k] / 64.0 * av[(i * 16 + k) * 64 + p];
        cam[p] = s > 0 ? s : 0;
        top = fmax(top, cam[p]);
      }
      assert_true(top > 0);
      for (int p = 0; p < 64; p++) assert_true(fabs(r.cam[i * 64 + p] - cam[p]) <= 1e-5 * top);
    }
    rt_gradcam_result_free(&r);
    rt_gradcam_destroy(gc);
    ir_diag_destroy(d);
  }
  ir_tensor_destroy(a);
  ir_tensor_destroy(logits);
  free(x);
  ir_bundle_destroy(w);
  ir_graph_destroy(g);
}

/* Explaining the batch norm before the ReLU: the gradient is the linear
 * head's weight where the ReLU passed and zero elsewhere, so alpha_k is
 * W[c,k]/64 times the share of pixels where channel k is positive. */
static void test_through_relu(void **state) {
  (void)state;
  ir_graph *g = tz_lower(TINY, FE_EVAL, 2, NULL, NULL);
  ir_bundle *w = tz_random_weights(g, 6);
  float *x = random_input(g, 12);
  ir_tensor *a = value_of_last(g, IR_OP_batchnorm_eval, w, x, NULL);
  const float *fc = ir_bundle_get(w, "fc.weight")->data, *av = a->data;
  cg_options co = {.threads = 2, .poison = 1};
  rt_gradcam *gc = NULL;
  rt_gradcam_result r;
  ir_diag *d = ir_diag_create();
  int64_t want[2] = {4, 7};
  if (rt_gradcam_create(g, "bn", w, &co, &gc, d) != ATTNC_OK || rt_gradcam_run(gc, x, want, &r, d) != ATTNC_OK)
    fail_msg("%s", ir_diag_text(d));
  assert_string_equal(rt_gradcam_target_of(gc)->op, "batchnorm_eval");
  int partial = 0;
  for (int i = 0; i < 2; i++)
    for (int k = 0; k < 16; k++) {
      int pos = 0;
      for (int p = 0; p < 64; p++) pos += av[(i * 16 + k) * 64 + p] > 0;
      partial += pos > 0 && pos < 64;
      double alpha = fc[want[i] * 16 + k] / 64.0 * pos / 64.0;
      assert_true(fabs(r.alpha[i * 16 + k] - alpha) <= 1e-6 * (1e-3 + fabs(alpha)));
    }
  assert_true(partial > 8); /* the mask matters in most channels */
  rt_gradcam_result_free(&r);
  rt_gradcam_destroy(gc);
  ir_diag_destroy(d);
  ir_tensor_destroy(a);
  free(x);
  ir_bundle_destroy(w);
  ir_graph_destroy(g);
}

/* Through HAM blocks (channel and spatial attention, its masks and 7x7
 * convolution) the gradient with respect to a middle layer's map matches
 * central differences in float64, and the compiled Grad-CAM graph agrees
 * with the interpreter. */
static void test_ham_gradient(void **state) {
  (void)state;
  const char *opts[] = {"depth=8", "attention=ham", NULL};
  ir_graph *g = tz_lower("models/resnet_cifar.lua", FE_EVAL, 2, "3x8x8", opts), *fg = NULL, *gg = NULL;
  ir_diag *d = ir_diag_create();
  rt_gradcam_target t;
  assert_int_equal(rt_gradcam_forward(g, "layers.1", &fg, &t, d), ATTNC_OK);
  assert_string_equal(t.layer, "layers.1");
  ir_bundle *values = tz_random_weights(fg, 8);
  rt_init_random(fg, 9, values); /* input, onehot (any weighting of the logits) and the probe */
  rt_gradcheck_opts o = {.max_elems = 24};
  rt_gradcheck_report rep;
  if (rt_gradcheck(fg, "gradcam.score", values, &o, &rep, d) != ATTNC_OK) fail_msg("%s", ir_diag_text(d));
  int seen = 0;
  for (int i = 0; i < rep.count; i++)
    if (!strcmp(rep.entries[i].name, "gradcam.probe")) {
      seen = 1;
      assert_int_equal(rep.entries[i].checked, 24);
      assert_true(rep.entries[i].fd_norm > 1e-3);
      if (rep.entries[i].rel_err > 1e-6) fail_msg("probe gradient: relative error %g", rep.entries[i].rel_err);
    }
  assert_true(seen);
  rt_gradcheck_report_free(&rep);
  assert_int_equal(rt_gradcam_graph(g, "layers.1", &gg, &t, d), ATTNC_OK);
  tj_compare(gg, NULL, 10, 2, 1e-4);
  ir_graph_destroy(gg);
  ir_bundle_destroy(values);
  ir_graph_destroy(fg);
  ir_diag_destroy(d);
  ir_graph_destroy(g);
}

/* Bilinear resizing samples at pixel centres (PyTorch's align_corners=False):
 * the same size is a copy, 2x2 -> 4x4 has the known weights, and a constant
 * stays constant. */
static void test_resize(void **state) {
  (void)state;
  const float src[4] = {0, 1, 2, 3};
  float same[4], big[16];
  rt_gradcam_resize(src, 2, 2, same, 2, 2);
  assert_memory_equal(same, src, sizeof src);
  rt_gradcam_resize(src, 2, 2, big, 4, 4);
  /* rows of F.interpolate([[0,1],[2,3]], size=4, mode='bilinear') */
  const float want[16] = {0, 0.25f, 0.75f, 1, 0.5f, 0.75f, 1.25f, 1.5f, 1.5f, 1.75f, 2.25f, 2.5f, 2, 2.25f, 2.75f, 3};
  for (int i = 0; i < 16; i++) assert_float_equal(big[i], want[i], 1e-6);
  const float flat[6] = {2, 2, 2, 2, 2, 2};
  float out[35];
  rt_gradcam_resize(flat, 2, 3, out, 5, 7);
  for (int i = 0; i < 35; i++) assert_float_equal(out[i], 2, 1e-6);
}

/* Writes the params and buffers of 'g' (random, seed 'seed') to 'path'. */
static void write_weights(const ir_graph *g, unsigned seed, const char *path) {
  ir_bundle *w = tz_random_weights(g, seed);
  ir_diag *d = ir_diag_create();
  assert_int_equal(rt_safetensors_write(path, w, d), ATTNC_OK);
  ir_diag_destroy(d);
  ir_bundle_destroy(w);
}

/* Reads PNG 'path' as 8-bit RGB; sets *w, *h. */
static uint8_t *read_png(const char *path, int *w, int *h) {
  png_image im;
  memset(&im, 0, sizeof im);
  im.version = PNG_IMAGE_VERSION;
  assert_true(png_image_begin_read_from_file(&im, path));
  im.format = PNG_FORMAT_RGB;
  uint8_t *buf = malloc(PNG_IMAGE_SIZE(im));
  assert_non_null(buf);
  assert_true(png_image_finish_read(&im, NULL, buf, 0, NULL));
  *w = (int)im.width, *h = (int)im.height;
  return buf;
}

/* The command on a batch file: the numbers it writes are the library's,
 * the picture has the image on the left and the map (jet: dark red at the
 * peak, dark blue where it is zero) on the right; errors leave an existing
 * picture untouched. */
static void test_cli_input(void **state) {
  (void)state;
  char *dir = tc_tempdir();
  char *wp = tc_path(dir, "w.safetensors"), *xp = tc_path(dir, "x.safetensors"), *png = tc_path(dir, "cam.png"),
       *tp = tc_path(dir, "cam.safetensors");
  ir_graph *g = tz_lower(TINY, FE_EVAL, 2, NULL, NULL);
  write_weights(g, 21, wp);
  float *x = random_input(g, 22);
  ir_bundle *xb = ir_bundle_create();
  int64_t dims[4] = {2, 3, 8, 8};
  ir_tensor *xt = ir_tensor_create(ir_type_make(IR_F32, 4, dims));
  memcpy(xt->data, x, 384 * sizeof(float));
  ir_bundle_put(xb, "input", xt);
  ir_diag *d = ir_diag_create();
  assert_int_equal(rt_safetensors_write(xp, xb, d), ATTNC_OK);
  tc_result r;
  const char *args[] = {"gradcam", TINY, "--weights", wp, "--input", xp, "--class", "4", "--out", png,
                        "--tensors", tp, "--threads", "1", NULL};
  assert_int_equal(tc_run_attnc(args, &r), 0);
  if (r.code) fail_msg("gradcam: %s", r.err);
  assert_non_null(strstr(r.out, "Grad-CAM of (root) (relu, [16,8,8] per image)"));
  assert_non_null(strstr(r.out, "image 1 (input 1): predicted "));
  assert_non_null(strstr(r.out, "explained 4 "));
  tc_result_free(&r);
  ir_bundle *t = NULL;
  assert_int_equal(rt_safetensors_read(tp, &t, d), ATTNC_OK);
  const ir_tensor *cam = ir_bundle_get(t, "cam"), *big = ir_bundle_get(t, "cam_resized"),
                  *ex = ir_bundle_get(t, "explained");
  assert_non_null(cam);
  assert_non_null(big);
  assert_int_equal(ir_tensor_get(ex, 0), 4);
  assert_int_equal(ir_tensor_get(ex, 1), 4);
  assert_memory_equal(cam->data, big->data, 128 * sizeof(float)); /* 8x8 to 8x8 */
  /* the library's result for the same batch */
  cg_options co = {.threads = 1};
  rt_gradcam *gc = NULL;
  rt_gradcam_result res;
  ir_bundle *w = NULL;
  int64_t want[2] = {4, 4};
  assert_int_equal(rt_safetensors_read(wp, &w, d), ATTNC_OK);
  assert_int_equal(rt_gradcam_create(g, NULL, w, &co, &gc, d), ATTNC_OK);
  assert_int_equal(rt_gradcam_run(gc, x, want, &res, d), ATTNC_OK);
  assert_memory_equal(res.cam, cam->data, 128 * sizeof(float));
  /* the picture: 2 rows of 128 pixels (scale 16), image and map side by side */
  int pw, ph;
  uint8_t *px = read_png(png, &pw, &ph);
  assert_int_equal(pw, 256);
  assert_int_equal(ph, 256);
  for (int i = 0; i < 2; i++) {
    const float *c = res.cam + i * 64, *xi = x + i * 192;
    int peak = 0, zero = -1;
    for (int p = 0; p < 64; p++) {
      peak = c[p] > c[peak] ? p : peak;
      if (c[p] == 0) zero = p;
    }
    float lo = INFINITY, hi = -INFINITY; /* channel 0 as drawn: min-max scaled */
    for (int p = 0; p < 64; p++) lo = fminf(lo, xi[p]), hi = fmaxf(hi, xi[p]);
    const int at[2] = {peak, zero};
    const double jet[2][3] = {{0.5, 0, 0}, {0, 0, 0.5}}; /* at 1 and at 0 */
    for (int k = 0; k < 2; k++) {
      if (at[k] < 0) continue;
      int y = i * 128 + (at[k] / 8) * 16 + 7, xx = (at[k] % 8) * 16 + 7;
      const uint8_t *left = px + (y * 256 + xx) * 3, *right = px + (y * 256 + 128 + xx) * 3;
      long img = lround(255.0 * (xi[at[k]] - lo) / (hi - lo));
      assert_int_equal(left[0], img);
      for (int ch = 0; ch < 3; ch++)
        assert_int_equal(right[ch], (long)lround(0.5 * left[ch] + 0.5 * 255 * jet[k][ch]));
    }
  }
  free(px);
  rt_gradcam_result_free(&res);
  rt_gradcam_destroy(gc);
  ir_bundle_destroy(w);
  ir_bundle_destroy(t);
  /* errors: exit 1 or 2 with the reason; the picture written above stays */
  struct stat before, after;
  assert_int_equal(stat(png, &before), 0);
  static const struct {
    const char *opt, *value;
    int code;
    const char *msg;
  } bad[] = {
      {"--layer", "nope", 1, "no layer 'nope' with a feature map [N,C,H,W]; the layers are: conv, bn, (root)"},
      {"--class", "10", 1, "class 10 of sample 0 is out of range: the model has 10 classes"},
      {"--class", "label", 2, "--class label needs --data"},
      {"--index", "3", 2, "--index picks test images of --data"},
      {"--opacity", "2", 2, "expected a number from 0 to 1"},
      {"--class", "x", 2, "--class: expected a class number, 'label' or 'predicted', got 'x'"},
      {"--scale", "0", 2, "expected a whole number from 1 to 64"},
      {"--index", "4,", 2, "expected indices like 3, 0-7 or 1,4,9-12, got '4,'"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    const char *a[] = {"gradcam", TINY, "--weights", wp, "--input", xp, "--out", png, bad[i].opt, bad[i].value, NULL};
    assert_int_equal(tc_run_attnc(a, &r), 0);
    assert_int_equal(r.code, bad[i].code);
    if (!strstr(r.err, bad[i].msg)) fail_msg("%s %s: %s", bad[i].opt, bad[i].value, r.err);
    tc_result_free(&r);
  }
  assert_int_equal(stat(png, &after), 0);
  assert_true(before.st_mtim.tv_sec == after.st_mtim.tv_sec && before.st_mtim.tv_nsec == after.st_mtim.tv_nsec);
  char *missing = tc_path(dir, "no/such/dir.png");
  const char *a[] = {"gradcam", TINY, "--weights", wp, "--input", xp, "--out", missing, NULL};
  assert_int_equal(tc_run_attnc(a, &r), 0);
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.err, "cannot create a temporary file beside it"));
  tc_result_free(&r);
  free(missing);
  ir_diag_destroy(d);
  ir_bundle_destroy(xb);
  free(x);
  ir_graph_destroy(g);
  free(wp);
  free(xp);
  free(png);
  free(tp);
  tc_rmtree(dir);
  free(dir);
}

/* attnc dump --gradcam prints the graph attnc gradcam compiles: it parses
 * back and verifies, has the probe, the onehot input and the three outputs,
 * and --stage fused shows its fusion groups; misuse is a usage error. */
static void test_dump(void **state) {
  (void)state;
  char *dir = tc_tempdir(), *ir = tc_path(dir, "gradcam.ir");
  tc_result r;
  const char *args[] = {"dump", TINY, "--gradcam", "bn", "--batch", "2", NULL};
  assert_int_equal(tc_run_attnc(args, &r), 0);
  if (r.code) fail_msg("dump: %s", r.err);
  assert_non_null(strstr(r.out, "param name=\"gradcam.probe\" : f32[2,16,8,8]"));
  assert_non_null(strstr(r.out, "input name=\"gradcam.onehot\" : f32[2,10]"));
  assert_non_null(strstr(r.out, "output \"grad.gradcam.probe\" = "));
  assert_int_equal(tc_write_file(ir, r.out, strlen(r.out)), 0);
  tc_result_free(&r);
  const char *back[] = {"dump", ir, NULL};
  assert_int_equal(tc_run_attnc(back, &r), 0);
  if (r.code) fail_msg("dump of the dump: %s", r.err);
  tc_result_free(&r);
  const char *fused[] = {"dump", TINY, "--gradcam", "last", "--stage", "fused", NULL};
  assert_int_equal(tc_run_attnc(fused, &r), 0);
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "# fusion summary:"));
  tc_result_free(&r);
  const char *bad[] = {"dump", TINY, "--gradcam", "bn", "--stage", "grad", NULL};
  assert_int_equal(tc_run_attnc(bad, &r), 0);
  assert_int_equal(r.code, 2);
  assert_non_null(strstr(r.err, "--gradcam takes a MODEL.lua, without --train or --stage grad"));
  tc_result_free(&r);
  free(ir);
  tc_rmtree(dir);
  free(dir);
}

/* The command on Fashion-MNIST test images (Debian's dataset-fashion-mnist,
 * which the README's set-up installs) with a ResNet-8 with HAM: the labels
 * it prints are the data set's, --class label explains them, and an index
 * past the test split is a usage error naming its size. */
static void test_cli_data(void **state) {
  (void)state;
  ir_diag *d = ir_diag_create();
  rt_dataset *ds = NULL;
  if (rt_dataset_open("fashion-mnist", RT_SPLIT_TEST, &ds, d) != ATTNC_OK)
    fail_msg("Fashion-MNIST (scripts/setup.sh installs it): %s", ir_diag_text(d));
  char *dir = tc_tempdir(), *wp = tc_path(dir, "w.safetensors"), *tp = tc_path(dir, "t.safetensors");
  const char *opts[] = {"depth=8", "attention=ham", "in_channels=1", NULL};
  ir_graph *g = tz_lower("models/resnet_cifar.lua", FE_EVAL, 1, "1x28x28", opts);
  write_weights(g, 31, wp);
  tc_result r;
  const char *args[] = {"gradcam", "models/resnet_cifar.lua", "-D",      "depth=8",  "-D",
                        "attention=ham",           "--weights", wp,        "--data",   "fashion-mnist",
                        "--index",                 "2,5-6",     "--class", "label",    "--layer",
                        "layers.2.att",            "--tensors", tp,        NULL};
  assert_int_equal(tc_run_attnc(args, &r), 0);
  if (r.code) fail_msg("gradcam: %s", r.err);
  assert_non_null(strstr(r.out, "Grad-CAM of layers.2.att ("));
  const int64_t idx[3] = {2, 5, 6};
  ir_bundle *t = NULL;
  assert_int_equal(rt_safetensors_read(tp, &t, d), ATTNC_OK);
  for (int i = 0; i < 3; i++) {
    char want[128];
    snprintf(want, sizeof want, "image %d (test %lld, label %lld \"%s\"): predicted ", i, (long long)idx[i],
             (long long)ds->labels[idx[i]], ds->class_names[ds->labels[idx[i]]]);
    assert_non_null(strstr(r.out, want));
    assert_int_equal(ir_tensor_get(ir_bundle_get(t, "explained"), i), ds->labels[idx[i]]);
  }
  const ir_tensor *big = ir_bundle_get(t, "cam_resized");
  assert_int_equal(big->type.dims[1], 28);
  assert_int_equal(big->type.dims[2], 28);
  tc_result_free(&r);
  const char *past[] = {"gradcam", "models/resnet_cifar.lua", "-D", "depth=8", "--weights", wp, "--data",
                        "fashion-mnist", "--index", "9999-10000", "--tensors", tp, NULL};
  assert_int_equal(tc_run_attnc(past, &r), 0);
  assert_int_equal(r.code, 2);
  assert_non_null(strstr(r.err, "--index 10000: the test split of fashion-mnist has 10000 images (0-9999)"));
  tc_result_free(&r);
  ir_bundle_destroy(t);
  ir_graph_destroy(g);
  rt_dataset_destroy(ds);
  ir_diag_destroy(d);
  free(wp);
  free(tp);
  tc_rmtree(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_target_and_graph), cmocka_unit_test(test_linear_head),
      cmocka_unit_test(test_through_relu),     cmocka_unit_test(test_ham_gradient),
      cmocka_unit_test(test_resize),           cmocka_unit_test(test_cli_input),
      cmocka_unit_test(test_cli_data),         cmocka_unit_test(test_dump),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
