/* attnc summary: lowers a model (or loads IR text) for inference and prints
 * a per-layer table (module, ops, output shape, parameters, multiply-adds)
 * with totals, or the same as one JSON object with --json. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fe_summary.h"

static const char summary_about[] =
    "Lowers MODEL.lua (inference graph) or loads FILE.ir and prints one row per\n"
    "module scope: its ops, output shape, the parameters it owns and its\n"
    "multiply-adds (conv: output elements x Cin/groups x kernel; matmul: M x N x K)\n"
    "and other arithmetic (elementwise, normalization, pooling, reductions).\n"
    "Totals: trainable parameters (buffers apart), MACs per image, and\n"
    "activation memory per image = bytes of every op result, without reuse.\n"
    "Per-image values are the graph's divided by --batch.";

static const char summary_examples[] =
    "attnc summary models/resnet_cifar.lua -D depth=56\n"
    "attnc summary models/resnet_cifar.lua -D attention=ham --json\n"
    "attnc summary models/resnet.lua -D depth=50 --shape 3x224x224";

/* Returns the model name for 'path': the file name without its extension. */
static char *model_name(const char *path) {
  const char *base = strrchr(path, '/');
  char *name = strdup(base ? base + 1 : path);
  char *dot = name ? strrchr(name, '.') : NULL;
  if (dot && dot != name) *dot = 0;
  return name;
}

/* Runs 'attnc summary'. */
int cli_summary(int argc, char **argv) {
  const char *file = NULL;
  int json = 0;
  cli_model model = {0};
  const cli_opt opts[] = {
      {"--json", NULL, "print one JSON object (layers, totals) instead of the table", &json, NULL},
      CLI_OPT_DEFINE(&model),
      CLI_OPT_SHAPE(&model),
      CLI_OPT_BATCH(&model),
  };
  const cli_spec spec = {"summary", "attnc summary MODEL.lua|FILE.ir [options]", summary_about, summary_examples,
                         opts, (int)(sizeof opts / sizeof opts[0]), "MODEL", 1, &file};
  int rc = cli_parse(&spec, argc, argv);
  if (rc) {
    cli_model_free(&model);
    return rc == CLI_HELP_SHOWN ? CLI_EXIT_OK : rc;
  }
  if (!cli_is_model(file) && cli_model_given(&model))
    rc = cli_usage_error("summary", "-D, --shape and --batch apply to MODEL.lua only");
  ir_graph *g = NULL;
  if (!rc) {
    fe_request req;
    cli_model_request(&model, file, &req);
    rc = cli_load_graph("summary", file, &req, &g);
  }
  if (!rc) {
    fe_summary *s = fe_summarize(g);
    char *name = model_name(file);
    char *text = s && name ? (json ? fe_summary_json(s, name) : fe_summary_text(s)) : NULL;
    if (!text) {
      rc = cli_usage_error("summary", "out of memory");
    } else {
      fputs(text, stdout);
      if (json) fputc('\n', stdout);
      if (fflush(stdout)) rc = cli_usage_error("summary", "cannot write to stdout");
    }
    free(text);
    free(name);
    fe_summary_destroy(s);
  }
  ir_graph_destroy(g);
  cli_model_free(&model);
  return rc;
}
