/* attnc infer: classifies the batch of images in a safetensors file with
 * trained weights (eval forward) and prints each sample's top-k classes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "rt_safetensors.h"
#include "rt_train.h"

static const char infer_about[] =
    "Runs the eval forward of MODEL.lua with the weights W on the batch in X (tensor\n"
    "'input', f32[N,C,H,W], already normalized as in training) and prints, for every\n"
    "sample, its K most probable classes with their softmax probabilities. --out writes\n"
    "'logits' and 'probabilities' (f32[N,K]) to a safetensors file, atomically. The -D\n"
    "options recorded in an attnc checkpoint are used unless given again.";

static const char infer_examples[] =
    "attnc infer models/resnet_cifar.lua --weights ham.safetensors --input x.safetensors --topk 3\n"
    "attnc infer models/resnet_cifar.lua --weights ham.safetensors --input x.safetensors --out y.safetensors";

/* Parses --topk K (1..1000). */
static int parse_topk(void *dst, const char *v, char *err, size_t n) {
  long long k;
  if (cli_parse_int(v, 1, 1000, &k)) {
    snprintf(err, n, "expected a count from 1 to 1000, got '%s'", v);
    return -1;
  }
  *(int *)dst = (int)k;
  return 0;
}

/* Softmax of every row of 'logits' [n, k] (double inside) into a new tensor. */
static ir_tensor *softmax_rows(const float *logits, int64_t n, int64_t k) {
  int64_t dims[2] = {n, k};
  ir_tensor *t = ir_tensor_create(ir_type_make(IR_F32, 2, dims));
  if (!t) return NULL;
  float *p = t->data;
  for (int64_t i = 0; i < n; i++) {
    const float *x = logits + i * k;
    double mx = x[0], sum = 0;
    for (int64_t j = 1; j < k; j++) mx = x[j] > mx ? x[j] : mx;
    for (int64_t j = 0; j < k; j++) sum += exp((double)x[j] - mx);
    for (int64_t j = 0; j < k; j++) p[i * k + j] = (float)(exp((double)x[j] - mx) / sum);
  }
  return t;
}

/* Prints the 'topk' most probable classes of every row of 'prob' (ties:
 * the lower class first). */
static void print_topk(const ir_tensor *prob, int topk) {
  int64_t n = prob->type.dims[0], k = prob->type.dims[1];
  const float *p = prob->data;
  if (topk > k) topk = (int)k;
  for (int64_t i = 0; i < n; i++) {
    const float *row = p + i * k;
    printf("sample %lld:", (long long)i);
    for (int r = 0; r < topk; r++)
      for (int64_t j = 0; j < k; j++) { /* the class ranked r-th */
        int64_t rank = 0;
        for (int64_t q = 0; q < k; q++) rank += row[q] > row[j] || (row[q] == row[j] && q < j);
        if (rank == r) printf(" class %lld (%.4f)", (long long)j, row[j]);
      }
    printf("\n");
  }
}

/* Runs the model on 'x' and prints / writes the result; exit code. */
static int infer_run(const ir_graph *g, const ir_bundle *w, const ir_tensor *x, const cg_options *co, int topk,
                     const char *out, const char *wpath) {
  ir_diag *d = ir_diag_create();
  cg_program *p = NULL;
  int rc = CLI_EXIT_OK;
  if (cg_program_create(g, co, &p, d) != ATTNC_OK || rt_program_load(p, w, d) != ATTNC_OK) rc = CLI_EXIT_FAIL;
  ir_type ti, tl;
  void *in = rc ? NULL : cg_program_input(p, "input", &ti);
  if (in) memcpy(in, x->data, (size_t)ir_type_numel(&ti) * sizeof(float));
  if (!rc && cg_program_run(p, d) != ATTNC_OK) rc = CLI_EXIT_FAIL;
  const float *logits = rc ? NULL : cg_program_output(p, "logits", &tl);
  ir_bundle *o = ir_bundle_create();
  if (logits && tl.rank == 2) {
    ir_tensor *lt = ir_tensor_create(tl), *pt = softmax_rows(logits, tl.dims[0], tl.dims[1]);
    if (lt) memcpy(lt->data, logits, (size_t)ir_type_numel(&tl) * sizeof(float));
    if (lt && pt) {
      print_topk(pt, topk);
      ir_bundle_put(o, "logits", lt);
      ir_bundle_put(o, "probabilities", pt);
      ir_bundle_set_meta(o, "producer", "attnc infer");
      ir_bundle_set_meta(o, "weights", wpath);
      if (out && rt_safetensors_write(out, o, d) != ATTNC_OK) rc = CLI_EXIT_FAIL;
      else if (out) printf("wrote logits and probabilities to %s\n", out);
    } else {
      ir_tensor_destroy(lt);
      ir_tensor_destroy(pt);
      ir_diag_error(d, NULL, 0, "out of memory");
      rc = CLI_EXIT_FAIL;
    }
  } else if (!rc) {
    ir_diag_error(d, NULL, 0, "the model has no output 'logits' [N,K]");
    rc = CLI_EXIT_FAIL;
  }
  if (rc) cli_diag_fail("infer", d);
  ir_bundle_destroy(o);
  cg_program_destroy(p);
  ir_diag_destroy(d);
  return rc;
}

/* Runs 'attnc infer'. */
int cli_infer(int argc, char **argv) {
  const char *file = NULL, *wpath = NULL, *xpath = NULL, *out = NULL;
  int topk = 5;
  cg_options co = {0};
  cli_model model = {0};
  const cli_opt opts[] = {
      CLI_OPT_DEFINE(&model),
      {"--weights", "W", "trained weights: attnc checkpoint or state_dict safetensors", &wpath, NULL},
      {"--input", "X.safetensors", "the batch: tensor 'input' f32[N,C,H,W]", &xpath, NULL},
      {"--out", "OUT.safetensors", "write logits and probabilities here", &out, NULL},
      {"--topk", "K", "classes printed per sample (default 5)", &topk, parse_topk},
      CLI_OPT_THREADS(&co.threads),
      {"--interp", NULL, "run on the reference interpreter instead of the JIT", &co.interp, NULL},
      CLI_OPT_NO_FUSE(&co.no_fuse),
  };
  const cli_spec spec = {"infer", "attnc infer MODEL.lua --weights W --input X.safetensors [options]",
                         infer_about, infer_examples, opts, (int)(sizeof opts / sizeof opts[0]), "MODEL", 1, &file};
  int rc = cli_parse(&spec, argc, argv);
  if (rc) {
    cli_model_free(&model);
    return rc == CLI_HELP_SHOWN ? CLI_EXIT_OK : rc;
  }
  if (!wpath) rc = cli_usage_error("infer", "missing --weights W");
  else if (!xpath) rc = cli_usage_error("infer", "missing --input X.safetensors");
  else if (!cli_is_model(file)) rc = cli_usage_error("infer", "%s: expected a MODEL.lua spec", file);
  if (!rc) rc = cli_check_readable("infer", wpath);
  ir_bundle *x = NULL, *w = NULL;
  ir_graph *g = NULL;
  ir_tensor *in = NULL;
  ir_diag *d = ir_diag_create();
  rt_ckpt_info info;
  if (!rc) rc = cli_defines_from_checkpoint("infer", wpath, &model);
  if (!rc) rc = cli_read_tensors("infer", xpath, &x);
  const ir_tensor *xi = x ? ir_bundle_get(x, "input") : NULL;
  if (!rc && (!xi || xi->type.rank != 4 || xi->type.dtype == IR_I64)) {
    fprintf(stderr, "%s: needs a float tensor 'input' of shape [N,C,H,W]\n", xpath);
    rc = CLI_EXIT_FAIL;
  }
  if (!rc && !(in = ir_tensor_convert(xi, IR_F32))) rc = cli_usage_error("infer", "out of memory");
  if (!rc)
    rc = cli_train_lower("infer", &model, file, FE_EVAL, in->type.dims[0], in->type.dims + 1, 0, &g);
  if (!rc && rt_train_load_weights(wpath, g, &w, &info, d) != ATTNC_OK) rc = cli_diag_fail("infer", d);
  if (!rc) rc = infer_run(g, w, in, &co, topk, out, wpath);
  ir_tensor_destroy(in);
  ir_graph_destroy(g);
  ir_bundle_destroy(w);
  ir_bundle_destroy(x);
  ir_diag_destroy(d);
  cli_model_free(&model);
  return rc;
}
