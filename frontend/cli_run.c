/* attnc run: runs a graph (IR text or Lua model spec) on tensors read from
 * safetensors files and writes every graph output to a safetensors file. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cg.h"
#include "passes.h"
#include "rt_bind.h"
#include "rt_init.h"
#include "rt_safetensors.h"

static const char run_about[] =
    "Runs FILE.ir or MODEL.lua on the tensors of X (graph inputs, and params and\n"
    "buffers unless --weights gives them) and writes every graph output to OUT,\n"
    "atomically. For MODEL.lua the batch and shape come from the tensor 'input' of X\n"
    "(f32[N,C,H,W]); --train runs the training graph, which also needs 'labels' (i64[N])\n"
    "in X and outputs the loss, the new batchnorm running statistics and grad.<name>, the\n"
    "gradient of the loss for every parameter. With\n"
    "--weights, W must hold exactly the graph's params and buffers with their shapes.\n"
    "The graph is compiled by the JIT (LLVM, for this CPU) unless --interp selects the\n"
    "reference interpreter.";

static const char run_examples[] =
    "attnc run docs/examples/eca_tiny.ir --input docs/examples/eca_tiny.input.safetensors \\\n"
    "    --weights docs/examples/eca_tiny.weights.safetensors --out y.safetensors\n"
    "attnc run models/resnet_cifar.lua -D attention=ham --input x.safetensors \\\n"
    "    --weights w.safetensors --out logits.safetensors";

/* Sets the batch and shape of 'model' from the 'input' tensor of 'x' (and
 * checks 'labels' in train mode). Returns an exit code. */
static int model_shape_from_input(cli_model *model, const ir_bundle *x, const char *xpath) {
  const ir_tensor *in = ir_bundle_get(x, "input");
  if (!in || in->type.rank != 4) {
    fprintf(stderr, "%s: a model needs a tensor 'input' of shape [N,C,H,W]%s\n", xpath,
            in ? " (it has another rank)" : "");
    return CLI_EXIT_FAIL;
  }
  model->batch = in->type.dims[0];
  memcpy(model->shape, in->type.dims + 1, sizeof model->shape);
  const ir_tensor *labels = ir_bundle_get(x, "labels");
  if (model->train && (!labels || labels->type.rank != 1 || labels->type.dims[0] != model->batch)) {
    fprintf(stderr, "%s: --train needs a tensor 'labels' of shape [%lld]\n", xpath,
            (long long)model->batch);
    return CLI_EXIT_FAIL;
  }
  return CLI_EXIT_OK;
}

/* Checks the tensors against 'g', runs it (JIT, or interpreter with
 * o->interp) and writes the outputs to 'out'. 'w' may be NULL. Returns an
 * exit code. */
static int run_graph(const ir_graph *g, const ir_bundle *x, const char *xpath, const ir_bundle *w,
                     const char *wpath, const char *src, const char *out, const cg_options *o) {
  ir_diag *d = ir_diag_create();
  ir_bundle *merged = NULL, *outs = ir_bundle_create();
  int rc = CLI_EXIT_OK;
  if (w && rt_check_weights(g, w, wpath, d) != ATTNC_OK) rc = CLI_EXIT_FAIL;
  if (!rc && w && !(merged = rt_bundle_merge(x, w, d))) rc = CLI_EXIT_FAIL;
  const ir_bundle *all = merged ? merged : x;
  if (!rc && rt_check_inputs(g, all, xpath, d) != ATTNC_OK) rc = CLI_EXIT_FAIL;
  cg_program *prog = NULL;
  if (!rc && cg_program_create(g, o, &prog, d) != ATTNC_OK) rc = CLI_EXIT_FAIL;
  if (!rc && cg_program_run_bundle(prog, all, outs, d) != ATTNC_OK) rc = CLI_EXIT_FAIL;
  cg_program_destroy(prog);
  if (!rc) {
    ir_bundle_set_meta(outs, "producer", o->interp ? "attnc run (interpreter)" : "attnc run (jit)");
    ir_bundle_set_meta(outs, "source", src);
    if (rt_safetensors_write(out, outs, d) != ATTNC_OK) rc = CLI_EXIT_FAIL;
  }
  if (rc) {
    cli_diag_fail("run", d);
  } else {
    for (int i = 0; i < outs->count; i++) {
      char ty[128];
      ir_type_format(&outs->tensors[i]->type, ty, sizeof ty);
      printf("%s: %s %s\n", out, outs->names[i], ty);
    }
  }
  ir_bundle_destroy(merged);
  ir_bundle_destroy(outs);
  ir_diag_destroy(d);
  return rc;
}

/* Appends the gradient of the loss with respect to every parameter
 * (outputs "grad.<name>"), for a program fused if 'fuse'. Returns an exit
 * code. */
static int add_gradients(ir_graph *g, int fuse) {
  ir_diag *d = ir_diag_create();
  int rc = pass_gradients(g, fuse, NULL, d) == ATTNC_OK ? CLI_EXIT_OK : cli_diag_fail("run", d);
  ir_diag_destroy(d);
  return rc;
}

/* Parses a seed (a non-negative integer) into a long long. */
static int cli_parse_seed(void *dst, const char *v, char *err, size_t n) {
  long long x;
  if (cli_parse_int(v, 0, LLONG_MAX, &x)) {
    snprintf(err, n, "expected a non-negative integer seed, got '%s'", v);
    return -1;
  }
  *(long long *)dst = x;
  return 0;
}

/* Adds to 'x' seeded random values for the sources of 'g' that neither
 * 'x' nor 'w' holds (rt_init_random). */
static void fill_random(const ir_graph *g, ir_bundle *x, const ir_bundle *w, uint64_t seed) {
  ir_bundle *all = ir_bundle_create();
  rt_init_random(g, seed, all);
  for (int i = 0; i < all->count; i++)
    if (!ir_bundle_get(x, all->names[i]) && !(w && ir_bundle_get(w, all->names[i]))) {
      ir_bundle_put(x, all->names[i], all->tensors[i]);
      all->tensors[i] = NULL;
    }
  ir_bundle_destroy(all);
}

/* Runs 'attnc run'. */
int cli_run(int argc, char **argv) {
  const char *file = NULL, *xpath = NULL, *wpath = NULL, *out = NULL;
  cg_options engine = {0};
  long long init = -1;
  cli_model model = {0};
  const cli_opt opts[] = {
      {"--input", "X.safetensors", "graph inputs (and params/buffers without --weights)", &xpath,
       NULL},
      {"--weights", "W.safetensors", "params and buffers, checked against the graph", &wpath,
       NULL},
      {"--out", "OUT.safetensors", "where to write every graph output (atomically)", &out, NULL},
      {"--interp", NULL, "run on the reference interpreter instead of the JIT", &engine.interp, NULL},
      CLI_OPT_NO_FUSE(&engine.no_fuse),
      CLI_OPT_THREADS(&engine.threads),
      {"--init", "SEED",
       "fill every source the files do not give with seeded random values (no --input needed)",
       &init, cli_parse_seed},
      CLI_OPT_DEFINE(&model),
      CLI_OPT_SHAPE(&model),
      CLI_OPT_BATCH(&model),
      CLI_OPT_TRAIN(&model),
  };
  const cli_spec spec = {"run",
                         "attnc run FILE.ir|MODEL.lua --input X.safetensors [--weights "
                         "W.safetensors] --out OUT.safetensors [options]",
                         run_about, run_examples, opts, (int)(sizeof opts / sizeof opts[0]),
                         "FILE", 1, &file};
  int rc = cli_parse(&spec, argc, argv);
  if (rc) {
    cli_model_free(&model);
    return rc == CLI_HELP_SHOWN ? CLI_EXIT_OK : rc;
  }
  if (!xpath && init < 0) rc = cli_usage_error("run", "missing --input X.safetensors (or --init SEED)");
  else if (xpath && (model.shape[0] || model.batch))
    rc = cli_usage_error("run", "--shape and --batch come from the input tensor when --input is given");
  else if (!out) rc = cli_usage_error("run", "missing --out OUT.safetensors");
  else if (!cli_is_model(file) && cli_model_given(&model))
    rc = cli_usage_error("run", "-D and --train apply to MODEL.lua only");
  if (!rc) rc = cli_check_readable("run", file);
  ir_bundle *x = NULL, *w = NULL;
  ir_graph *g = NULL;
  if (!rc && xpath) rc = cli_read_tensors("run", xpath, &x);
  if (!rc && !x) x = ir_bundle_create();
  if (!rc && wpath) rc = cli_read_tensors("run", wpath, &w);
  if (!rc && cli_is_model(file) && xpath) rc = model_shape_from_input(&model, x, xpath);
  if (!rc) {
    fe_request req;
    cli_model_request(&model, file, &req);
    rc = cli_load_graph("run", file, &req, &g);
  }
  if (!rc && model.train) rc = add_gradients(g, !engine.no_fuse && !engine.interp);
  if (!rc && init >= 0) fill_random(g, x, w, (uint64_t)init);
  if (!rc) rc = run_graph(g, x, xpath, w, wpath, file, out, &engine);
  ir_graph_destroy(g);
  ir_bundle_destroy(x);
  ir_bundle_destroy(w);
  cli_model_free(&model);
  return rc;
}
