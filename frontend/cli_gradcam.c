/* attnc gradcam: Grad-CAM pictures of trained weights, for test images of
 * a data set or a batch from a safetensors file. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "rt_data.h"
#include "rt_gradcam.h"
#include "rt_png.h"
#include "rt_safetensors.h"
#include "rt_train.h"

#define MAX_IMAGES 256

static const char gradcam_about[] =
    "Grad-CAM (Selvaraju et al., 2017) of MODEL.lua with the weights W: for each image, where\n"
    "the network found the evidence for a class. The map of a layer with feature maps A_k is\n"
    "ReLU(sum_k alpha_k A_k), alpha_k the mean over the map of d logit / d A_k, from autodiff\n"
    "on the eval graph. --layer names a module (as `attnc summary` lists them; its last\n"
    "feature map); the default is the last feature map the logits depend on. The images are\n"
    "test images of --data (--index) or the batch 'input' of a safetensors file. --out draws\n"
    "one row per image: the image, and the image under the map (jet colours, resized\n"
    "bilinearly). --tensors writes the numbers: 'cam' [N,h,w], 'cam_resized' [N,H,W],\n"
    "'alpha' [N,K], 'logits', 'predicted', 'explained' (the class each map explains) and\n"
    "'input' (the batch as the network saw it).";

static const char gradcam_examples[] =
    "attnc gradcam models/resnet_cifar.lua --weights ham.ckpt --data fashion-mnist --index 0-7 --out cam.png\n"
    "attnc gradcam models/resnet_cifar.lua --weights ham.ckpt --data fashion-mnist --index 3 --class label \\\n"
    "    --layer layers.5 --out cam.png --tensors cam.safetensors\n"
    "attnc gradcam models/resnet_cifar.lua -D attention=se --weights se.safetensors --input x.safetensors \\\n"
    "    --class 3 --out cam.png";

/* The images picked by --index: a list of test indices. */
typedef struct {
  int n;
  int64_t at[MAX_IMAGES];
} index_list;

/* Parses --index "I", "I-J" or a comma list of those into an index_list. */
static int parse_index(void *dst, const char *v, char *err, size_t errsize) {
  index_list *l = dst;
  l->n = 0;
  const char *p = v;
  while (*p) {
    char *end;
    long long a = strtoll(p, &end, 10), b = a;
    if (end == p || a < 0) break;
    if (*end == '-') {
      p = end + 1;
      b = strtoll(p, &end, 10);
      if (end == p || b < a) break;
    }
    for (long long i = a; i <= b; i++) {
      if (l->n == MAX_IMAGES) {
        snprintf(err, errsize, "at most %d images, got more in '%s'", MAX_IMAGES, v);
        return -1;
      }
      l->at[l->n++] = i;
    }
    p = end;
    if (*p == ',' && p[1]) p++;
    else if (*p) break;
  }
  if (*p || l->n == 0) {
    snprintf(err, errsize, "expected indices like 3, 0-7 or 1,4,9-12, got '%s'", v);
    return -1;
  }
  return 0;
}

/* Parses --opacity in [0,1]. */
static int parse_opacity(void *dst, const char *v, char *err, size_t errsize) {
  char *end;
  double x = strtod(v, &end);
  if (!*v || *end || !(x >= 0 && x <= 1)) {
    snprintf(err, errsize, "expected a number from 0 to 1, got '%s'", v);
    return -1;
  }
  *(double *)dst = x;
  return 0;
}

/* Parses --scale 1..64. */
static int parse_scale(void *dst, const char *v, char *err, size_t errsize) {
  long long x;
  if (cli_parse_int(v, 1, 64, &x)) {
    snprintf(err, errsize, "expected a whole number from 1 to 64, got '%s'", v);
    return -1;
  }
  *(int *)dst = (int)x;
  return 0;
}

/* The batch to explain: network inputs, the pixels to draw, and labels. */
typedef struct {
  int64_t n, c, h, w;
  float *input;    /* [n,c,h,w], normalized */
  uint8_t *pixels; /* [n,c,h,w], for the picture */
  int64_t *labels; /* [n], -1 if unknown */
  int64_t *source; /* [n]: test index, or position in the file */
  int nnames;
  char **names; /* the data set's class names, or NULL */
} batch;

static void batch_free(batch *b) {
  for (int i = 0; i < b->nnames; i++) free(b->names[i]);
  free(b->names);
  free(b->input);
  free(b->pixels);
  free(b->labels);
  free(b->source);
}

/* Allocates the arrays of 'b' for n images of c x h x w; 0 or -1. */
static int batch_alloc(batch *b, int64_t n, int64_t c, int64_t h, int64_t w) {
  b->n = n, b->c = c, b->h = h, b->w = w;
  size_t e = (size_t)(n * c * h * w);
  b->input = malloc(e * sizeof(float));
  b->pixels = malloc(e);
  b->labels = malloc((size_t)n * sizeof(int64_t));
  b->source = malloc((size_t)n * sizeof(int64_t));
  return b->input && b->pixels && b->labels && b->source ? 0 : -1;
}

/* Takes the test images 'idx' of data set 'spec'; returns an exit code. */
static int batch_from_data(const char *spec, const index_list *idx, batch *b, int *classes) {
  ir_diag *d = ir_diag_create();
  rt_dataset *ds = NULL;
  int rc = CLI_EXIT_OK;
  if (rt_dataset_open_as(spec, RT_SPLIT_TEST, 1, &ds, d) != ATTNC_OK) /* a folder: decode only the chosen images */
    rc = cli_diag_fail("gradcam", d);
  for (int i = 0; !rc && i < idx->n; i++)
    if (idx->at[i] >= ds->count)
      rc = cli_usage_error("gradcam", "--index %lld: the test split of %s has %lld images (0-%lld)",
                           (long long)idx->at[i], ds->name, (long long)ds->count, (long long)ds->count - 1);
  if (!rc && batch_alloc(b, idx->n, ds->channels, ds->height, ds->width))
    rc = cli_usage_error("gradcam", "out of memory");
  int64_t sample = rc ? 0 : ds->channels * ds->height * ds->width;
  for (int i = 0; !rc && i < idx->n; i++) {
    uint8_t *px = b->pixels + i * sample;
    if (rt_dataset_sample(ds, idx->at[i], NULL, px, d) != ATTNC_OK) {
      rc = cli_diag_fail("gradcam", d);
      break;
    }
    for (int64_t j = 0; j < sample; j++)
      b->input[i * sample + j] = rt_dataset_normalized(ds, j / (ds->height * ds->width), px[j]);
    b->labels[i] = ds->labels[idx->at[i]];
    b->source[i] = idx->at[i];
  }
  if (!rc) *classes = ds->classes;
  if (!rc && ds->class_names && (b->names = calloc((size_t)ds->classes, sizeof *b->names))) {
    b->nnames = ds->classes;
    for (int k = 0; k < ds->classes; k++) b->names[k] = strdup(ds->class_names[k]);
  }
  rt_dataset_destroy(ds);
  ir_diag_destroy(d);
  return rc;
}

/* Takes the batch 'input' of safetensors file 'path'; pictures show each
 * image's channels scaled to 0..255. Returns an exit code. */
static int batch_from_file(const char *path, batch *b) {
  ir_bundle *x = NULL;
  int rc = cli_read_tensors("gradcam", path, &x);
  const ir_tensor *xi = x ? ir_bundle_get(x, "input") : NULL;
  ir_tensor *in = NULL;
  if (!rc && (!xi || xi->type.rank != 4 || xi->type.dtype == IR_I64 || xi->type.dims[0] < 1 ||
              (xi->type.dims[1] != 1 && xi->type.dims[1] != 3))) {
    fprintf(stderr, "%s: needs a float tensor 'input' of shape [N,C,H,W] with N >= 1 and C = 1 or 3\n", path);
    rc = CLI_EXIT_FAIL;
  }
  if (!rc && xi->type.dims[0] > MAX_IMAGES) rc = cli_usage_error("gradcam", "%s: at most %d images", path, MAX_IMAGES);
  const int64_t *t = rc ? NULL : xi->type.dims;
  if (!rc && (!(in = ir_tensor_convert(xi, IR_F32)) || batch_alloc(b, t[0], t[1], t[2], t[3])))
    rc = cli_usage_error("gradcam", "out of memory");
  int64_t plane = rc ? 0 : t[2] * t[3];
  for (int64_t i = 0; !rc && i < b->n; i++) {
    b->labels[i] = -1;
    b->source[i] = i;
    for (int64_t c = 0; c < b->c; c++) {
      const float *src = (const float *)in->data + (i * b->c + c) * plane;
      float lo = INFINITY, hi = -INFINITY;
      for (int64_t p = 0; p < plane; p++) lo = fminf(lo, src[p]), hi = fmaxf(hi, src[p]);
      for (int64_t p = 0; p < plane; p++) {
        double v = hi > lo ? (src[p] - lo) / (hi - lo) : 0;
        b->pixels[(i * b->c + c) * plane + p] = (uint8_t)lround(isfinite(v) ? 255 * v : 0);
      }
    }
  }
  if (!rc) memcpy(b->input, in->data, (size_t)(b->n * b->c * plane) * sizeof(float));
  ir_tensor_destroy(in);
  ir_bundle_destroy(x);
  return rc;
}

/* Parses --class: a class number, "label" or "predicted" (-1) into want[]. */
static int classes_wanted(const char *cls, const batch *b, int64_t *want) {
  for (int64_t i = 0; i < b->n; i++) want[i] = -1;
  if (!cls || !strcmp(cls, "predicted")) return 0;
  if (!strcmp(cls, "label")) {
    if (b->labels[0] < 0) return cli_usage_error("gradcam", "--class label needs --data (the file has no labels)");
    memcpy(want, b->labels, (size_t)b->n * sizeof(int64_t));
    return 0;
  }
  long long c;
  if (cli_parse_int(cls, 0, 1 << 30, &c))
    return cli_usage_error("gradcam", "--class: expected a class number, 'label' or 'predicted', got '%s'", cls);
  for (int64_t i = 0; i < b->n; i++) want[i] = c;
  return 0;
}

/* Prints class 'k' and, when the data set names it, its name. */
static void print_class(const batch *b, int64_t k) {
  printf("%lld", (long long)k);
  if (k < b->nnames && b->names[k]) printf(" \"%s\"", b->names[k]);
}

/* Prints what each map explains and where it peaks. */
static void print_result(const batch *b, const rt_gradcam_result *r, const rt_gradcam_target *t, int from_data) {
  printf("Grad-CAM of %s (%s, [%lld,%lld,%lld] per image)\n", t->layer, t->op, (long long)r->channels,
         (long long)r->h, (long long)r->w);
  for (int64_t i = 0; i < r->n; i++) {
    const float *l = r->logits + i * r->classes, *cam = r->cam + i * r->h * r->w;
    double mx = l[0], sum = 0;
    for (int64_t j = 1; j < r->classes; j++) mx = fmax(mx, l[j]);
    for (int64_t j = 0; j < r->classes; j++) sum += exp(l[j] - mx);
    int64_t peak = 0;
    for (int64_t p = 1; p < r->h * r->w; p++) peak = cam[p] > cam[peak] ? p : peak;
    printf("image %lld (%s %lld", (long long)i, from_data ? "test" : "input", (long long)b->source[i]);
    if (b->labels[i] >= 0) printf(", label "), print_class(b, b->labels[i]);
    printf("): predicted ");
    print_class(b, r->predicted[i]);
    printf(" (p %.3f), explained ", exp(l[r->predicted[i]] - mx) / sum);
    print_class(b, r->explained[i]);
    printf(" (p %.3f); ", exp(l[r->explained[i]] - mx) / sum);
    if (cam[peak] > 0)
      printf("peak at row %lld, column %lld of %lldx%lld\n", (long long)(peak / r->w), (long long)(peak % r->w),
             (long long)r->h, (long long)r->w);
    else
      printf("no positive evidence at this layer (map all zero)\n");
  }
}

/* Draws every image and its map, one row each, into PNG 'out'. */
static attnc_status write_picture(const char *out, const batch *b, const float *resized, double opacity, int scale,
                                  ir_diag *d) {
  int64_t width = 2 * b->w * scale, row = b->h * scale, stride = 3 * width;
  uint8_t *rgb = malloc((size_t)(stride * row * b->n));
  if (!rgb) {
    ir_diag_error(d, out, 0, "out of memory for a %lldx%lld picture", (long long)width, (long long)(row * b->n));
    return ATTNC_ENOMEM;
  }
  int64_t sample = b->c * b->h * b->w;
  for (int64_t i = 0; i < b->n; i++)
    rt_gradcam_draw(b->pixels + i * sample, b->c, b->h, b->w, resized + i * b->h * b->w, opacity, scale,
                    rgb + i * row * stride, stride);
  attnc_status st = rt_png_write_rgb(out, rgb, width, row * b->n, d);
  free(rgb);
  return st;
}

/* Copies 'n' values into a new f32 (or i64) tensor of 'rank' dims. */
static ir_tensor *tensor_of(ir_dtype dt, const void *data, int rank, const int64_t *dims) {
  ir_tensor *t = ir_tensor_create(ir_type_make(dt, rank, dims));
  if (t) memcpy(t->data, data, (size_t)ir_type_numel(&t->type) * ir_dtype_size(dt));
  return t;
}

/* Writes the numbers of 'r' to safetensors file 'path'. */
static attnc_status write_tensors(const char *path, const rt_gradcam_result *r, const float *resized,
                                  const batch *b, const rt_gradcam_target *t, const char *wpath, ir_diag *d) {
  ir_bundle *o = ir_bundle_create();
  int64_t cam[3] = {r->n, r->h, r->w}, big[3] = {r->n, b->h, b->w}, alpha[2] = {r->n, r->channels},
          logits[2] = {r->n, r->classes}, input[4] = {b->n, b->c, b->h, b->w};
  ir_tensor *ts[7] = {tensor_of(IR_F32, r->cam, 3, cam),          tensor_of(IR_F32, resized, 3, big),
                      tensor_of(IR_F32, r->alpha, 2, alpha),      tensor_of(IR_F32, r->logits, 2, logits),
                      tensor_of(IR_I64, r->predicted, 1, &r->n), tensor_of(IR_I64, r->explained, 1, &r->n),
                      tensor_of(IR_F32, b->input, 4, input)};
  static const char *const names[7] = {"cam", "cam_resized", "alpha", "logits", "predicted", "explained", "input"};
  int ok = o != NULL;
  for (int i = 0; i < 7; i++) {
    ok = ok && ts[i];
    if (o && ts[i]) ir_bundle_put(o, names[i], ts[i]);
    else ir_tensor_destroy(ts[i]);
  }
  attnc_status st = ATTNC_ENOMEM;
  if (ok) {
    ir_bundle_set_meta(o, "producer", "attnc gradcam");
    ir_bundle_set_meta(o, "weights", wpath);
    ir_bundle_set_meta(o, "layer", t->layer);
    st = rt_safetensors_write(path, o, d);
  } else {
    ir_diag_error(d, path, 0, "out of memory");
  }
  ir_bundle_destroy(o);
  return st;
}

/* Compiles, runs and writes the Grad-CAM of batch 'b'; returns an exit code. */
static int gradcam_run(const ir_graph *g, const ir_bundle *w, const batch *b, const int64_t *want, const char *layer,
                       const cg_options *co, const char *out, const char *tensors, double opacity, int scale,
                       const char *wpath) {
  ir_diag *d = ir_diag_create();
  rt_gradcam *gc = NULL;
  rt_gradcam_result r = {0};
  float *resized = NULL;
  int rc = CLI_EXIT_OK;
  if (rt_gradcam_create(g, layer, w, co, &gc, d) != ATTNC_OK || rt_gradcam_run(gc, b->input, want, &r, d) != ATTNC_OK)
    rc = CLI_EXIT_FAIL;
  int64_t plane = b->h * b->w;
  if (!rc && !(resized = malloc((size_t)(b->n * plane) * sizeof(float)))) {
    ir_diag_error(d, NULL, 0, "out of memory");
    rc = CLI_EXIT_FAIL;
  }
  for (int64_t i = 0; !rc && i < b->n; i++)
    rt_gradcam_resize(r.cam + i * r.h * r.w, r.h, r.w, resized + i * plane, b->h, b->w);
  if (!rc) print_result(b, &r, rt_gradcam_target_of(gc), b->labels[0] >= 0);
  if (!rc && out && write_picture(out, b, resized, opacity, scale, d) != ATTNC_OK) rc = CLI_EXIT_FAIL;
  else if (!rc && out) printf("wrote %s\n", out);
  if (!rc && tensors && write_tensors(tensors, &r, resized, b, rt_gradcam_target_of(gc), wpath, d) != ATTNC_OK)
    rc = CLI_EXIT_FAIL;
  else if (!rc && tensors) printf("wrote %s\n", tensors);
  if (rc) cli_diag_fail("gradcam", d);
  free(resized);
  rt_gradcam_result_free(&r);
  rt_gradcam_destroy(gc);
  ir_diag_destroy(d);
  return rc;
}

/* Runs 'attnc gradcam'. */
int cli_gradcam(int argc, char **argv) {
  const char *file = NULL, *wpath = NULL, *data = NULL, *xpath = NULL, *out = NULL, *tensors = NULL, *layer = NULL,
             *cls = NULL;
  index_list idx = {0, {0}}; /* n 0: not given (image 0) */
  double opacity = 0.5;
  int scale = 0;
  cg_options co = {0};
  cli_model model = {0};
  const cli_opt opts[] = {
      CLI_OPT_DEFINE(&model),
      {"--weights", "W", "trained weights: attnc checkpoint or state_dict safetensors", &wpath, NULL},
      {"--data", "SPEC", "test images of " CLI_DATA_SPECS, &data, NULL},
      {"--index", "LIST", "which test images: 3, 0-7 or 1,4,9-12 (default 0; at most 256)", &idx, parse_index},
      {"--input", "X.safetensors", "or the batch 'input' f32[N,C,H,W] of a file, normalized as in training", &xpath,
       NULL},
      {"--class", "C|label|predicted", "the class each map explains (default: the predicted one)", &cls, NULL},
      {"--layer", "NAME", "the module whose output is explained (default: the last feature map)", &layer, NULL},
      {"--out", "OUT.png", "draw the images and their maps here", &out, NULL},
      {"--tensors", "T.safetensors", "write the maps, channel weights and logits here", &tensors, NULL},
      {"--opacity", "A", "of the heat map over the image, 0 to 1 (default 0.5)", &opacity, parse_opacity},
      {"--scale", "S", "pixels drawn per image pixel (default: images at least 128 high)", &scale, parse_scale},
      CLI_OPT_THREADS(&co.threads),
      {"--interp", NULL, "run on the reference interpreter instead of the JIT", &co.interp, NULL},
      CLI_OPT_NO_FUSE(&co.no_fuse),
  };
  const cli_spec spec = {"gradcam", "attnc gradcam MODEL.lua --weights W (--data SPEC [--index LIST] | --input X) "
                         "--out OUT.png [options]",
                         gradcam_about, gradcam_examples, opts, (int)(sizeof opts / sizeof opts[0]), "MODEL", 1, &file};
  int rc = cli_parse(&spec, argc, argv);
  if (rc) {
    cli_model_free(&model);
    return rc == CLI_HELP_SHOWN ? CLI_EXIT_OK : rc;
  }
  if (!wpath) rc = cli_usage_error("gradcam", "missing --weights W");
  else if (!data == !xpath) rc = cli_usage_error("gradcam", "give the images with either --data SPEC or --input X");
  else if (idx.n && !data) rc = cli_usage_error("gradcam", "--index picks test images of --data");
  else if (!out && !tensors) rc = cli_usage_error("gradcam", "missing --out OUT.png (or --tensors T.safetensors)");
  else if (!cli_is_model(file)) rc = cli_usage_error("gradcam", "%s: expected a MODEL.lua spec", file);
  if (!rc) rc = cli_check_readable("gradcam", wpath);
  batch b = {0};
  int classes = 0;
  int64_t want[MAX_IMAGES];
  ir_bundle *w = NULL;
  ir_graph *g = NULL;
  ir_diag *d = ir_diag_create();
  rt_ckpt_info info;
  if (!rc) rc = cli_defines_from_checkpoint("gradcam", wpath, &model);
  if (!idx.n) idx.n = 1;
  if (!rc) rc = data ? batch_from_data(data, &idx, &b, &classes) : batch_from_file(xpath, &b);
  if (!rc) rc = classes_wanted(cls, &b, want);
  int64_t shape[3] = {b.c, b.h, b.w};
  if (!rc) rc = cli_train_lower("gradcam", &model, file, FE_EVAL, b.n, shape, classes, &g);
  if (!rc && rt_train_load_weights(wpath, g, &w, &info, d) != ATTNC_OK) rc = cli_diag_fail("gradcam", d);
  if (!scale) scale = b.h >= 128 ? 1 : (int)((127 + b.h) / (b.h ? b.h : 1));
  if (!rc) rc = gradcam_run(g, w, &b, want, layer, &co, out, tensors, opacity, scale, wpath);
  batch_free(&b);
  ir_graph_destroy(g);
  ir_bundle_destroy(w);
  ir_diag_destroy(d);
  cli_model_free(&model);
  return rc;
}
