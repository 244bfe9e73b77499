/* attnc dump: loads a graph (IR text or Lua model spec), verifies it, and
 * prints it as IR text or Graphviz dot. */
#include <stdlib.h>
#include <string.h>

#include "cg.h"
#include "cli.h"
#include "passes.h"
#include "rt_gradcam.h"

static const char dump_about[] =
    "Loads FILE.ir (parsed, then verified: every error is reported) or MODEL.lua\n"
    "(run and lowered by the Lua front end) and prints the graph on stdout as IR\n"
    "text or as a Graphviz dot graph.";

static const char dump_examples[] =
    "attnc dump docs/examples/eca_tiny.ir\n"
    "attnc dump docs/examples/eca_tiny.ir --format dot | dot -Tsvg > eca_tiny.svg\n"
    "attnc dump models/resnet_cifar.lua -D attention=ham -D in_channels=1 --shape 1x28x28 --batch 8";

/* Prints what the JIT makes of 'g' (of the training step of 'g' if
 * 'train'), fused unless 'no_fuse': the fusion groups ("fused"), the memory
 * plan ("planned"), or the kernels as optimized LLVM IR ("llvm") or
 * assembly ("asm"). Returns an exit code. */
static int dump_native(ir_graph *g, const char *stage, int train, int no_fuse) {
  int rc = train ? cli_apply_stage("dump", "grad", !no_fuse, &g) : CLI_EXIT_OK;
  if (rc) return rc;
  ir_diag *d = ir_diag_create();
  char *text = NULL;
  pass_memory_plan plan;
  pass_fusion fu = {0};
  cg_options engine = {.no_fuse = no_fuse};
  if (!strcmp(stage, "fused")) {
    if (pass_fuse(g, &fu, d) == ATTNC_OK) {
      text = pass_fusion_print(g, &fu);
      pass_fusion_free(&fu);
      if (!text) ir_diag_error(d, NULL, 0, "out of memory printing the fused graph");
    }
    if (!text) rc = cli_diag_fail("dump", d);
    else fputs(text, stdout);
  } else if (!strcmp(stage, "planned")) {
    /* the plan the JIT lays out: a fused group's inner values get no buffer */
    if ((no_fuse || pass_fuse(g, &fu, d) == ATTNC_OK) &&
        pass_plan_memory_fused(g, no_fuse ? NULL : &fu, 1, &plan, d) == ATTNC_OK) {
      text = pass_memory_plan_print(g, &plan);
      pass_memory_plan_free(&plan);
    }
    pass_fusion_free(&fu);
    if (!text) rc = cli_diag_fail("dump", d);
    else fputs(text, stdout);
  } else if (cg_emit_text(g, &engine, !strcmp(stage, "asm"), &text, d) != ATTNC_OK) {
    rc = cli_diag_fail("dump", d);
  } else {
    fputs(text, stdout);
    if (fflush(stdout)) rc = cli_usage_error("dump", "cannot write to stdout");
  }
  free(text);
  ir_diag_destroy(d);
  return rc;
}

/* Replaces eval graph *g by its Grad-CAM graph for 'layer' ("last": the
 * default layer); returns an exit code. */
static int gradcam_graph(const char *layer, ir_graph **g) {
  ir_diag *d = ir_diag_create();
  ir_graph *gg = NULL;
  rt_gradcam_target t;
  int rc = rt_gradcam_graph(*g, strcmp(layer, "last") ? layer : NULL, &gg, &t, d) == ATTNC_OK
               ? CLI_EXIT_OK
               : cli_diag_fail("dump", d);
  if (!rc) {
    ir_graph_destroy(*g);
    *g = gg;
  }
  ir_diag_destroy(d);
  return rc;
}

/* Runs 'attnc dump'. */
int cli_dump(int argc, char **argv) {
  const char *file = NULL, *format = "text", *stage = NULL, *gradcam = NULL;
  int no_fuse = 0;
  cli_model model = {0};
  const cli_opt opts[] = {
      {"--format", "text|dot", "output format (default text)", &format, NULL},
      {"--stage", "ir|grad|fused|planned|llvm|asm",
       "stage to print: ir (as lowered, default), grad (the whole training step), fused (the "
       "graph with its fusion groups: each group's kind, members, inputs and outputs), planned "
       "(each buffer's arena offset and lifetime), llvm / asm (the JIT's kernels after O3, as "
       "LLVM IR / host assembly); fused, planned, llvm and asm are of the training step with --train",
       &stage, NULL},
      {"--no-fuse", NULL,
       "the unfused program (as run with --no-fuse): grad without the rewrites that serve fusion, "
       "planned / llvm / asm with one buffer and one kernel per node",
       &no_fuse, NULL},
      CLI_OPT_DEFINE(&model),
      CLI_OPT_SHAPE(&model),
      CLI_OPT_BATCH(&model),
      CLI_OPT_TRAIN(&model),
      {"--gradcam", "LAYER|last",
       "the Grad-CAM graph of MODEL.lua that attnc gradcam compiles, for that layer (last: the default "
       "layer); with --stage ir (default), fused, planned, llvm or asm",
       &gradcam, NULL},
  };
  const cli_spec spec = {"dump", "attnc dump FILE.ir|MODEL.lua [options]", dump_about,
                         dump_examples, opts, (int)(sizeof opts / sizeof opts[0]), "FILE", 1,
                         &file};
  int rc = cli_parse(&spec, argc, argv);
  if (rc) {
    cli_model_free(&model);
    return rc == CLI_HELP_SHOWN ? CLI_EXIT_OK : rc;
  }
  if (strcmp(format, "text") && strcmp(format, "dot"))
    rc = cli_usage_error("dump", "unknown format '%s' (text or dot)", format);
  else if (!cli_is_model(file) && cli_model_given(&model))
    rc = cli_usage_error("dump", "-D, --shape, --batch and --train apply to MODEL.lua only");
  else if (gradcam && (!cli_is_model(file) || model.train || (stage && !strcmp(stage, "grad"))))
    rc = cli_usage_error("dump", "--gradcam takes a MODEL.lua, without --train or --stage grad");
  if (stage && !strcmp(stage, "grad")) model.train = 1; /* the step starts from the training graph */
  int native = stage && (!strcmp(stage, "llvm") || !strcmp(stage, "asm") || !strcmp(stage, "planned") ||
                         !strcmp(stage, "fused"));
  if (native && strcmp(format, "text")) rc = cli_usage_error("dump", "--stage %s prints text only", stage);
  if (!rc && no_fuse && stage && !strcmp(stage, "fused"))
    rc = cli_usage_error("dump", "--stage fused shows fusion groups; --no-fuse has none");
  ir_graph *g = NULL;
  if (!rc) {
    fe_request req;
    cli_model_request(&model, file, &req);
    rc = cli_load_graph("dump", file, &req, &g);
  }
  if (!rc && gradcam) rc = gradcam_graph(gradcam, &g);
  if (!rc && native) {
    rc = dump_native(g, stage, model.train, no_fuse);
    ir_graph_destroy(g);
    cli_model_free(&model);
    return rc;
  }
  if (!rc) rc = cli_apply_stage("dump", stage, !no_fuse, &g);
  if (!rc) {
    char *text = strcmp(format, "dot") ? ir_print(g) : ir_dot(g);
    if (!text) {
      rc = cli_usage_error("dump", "out of memory printing the graph");
    } else {
      fputs(text, stdout);
      free(text);
      if (fflush(stdout)) rc = cli_usage_error("dump", "cannot write to stdout");
    }
  }
  ir_graph_destroy(g);
  cli_model_free(&model);
  return rc;
}
