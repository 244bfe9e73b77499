/* attnc eval: top-1/top-5 accuracy, loss and per-class accuracy of trained
 * weights (an attnc checkpoint or a PyTorch state_dict) on the test split
 * of a data set. */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "rt_train.h"

static const char eval_about[] =
    "Evaluates MODEL.lua with the weights W on the test split of --data: top-1 and top-5\n"
    "accuracy, mean cross-entropy and the accuracy of every class (--confusion adds the\n"
    "confusion matrix). W is an attnc checkpoint (its -D options are used unless given\n"
    "again) or a safetensors state_dict with the model's parameter and buffer names (e.g.\n"
    "saved from PyTorch). Every test sample counts: the last batch is zero-padded.";

static const char eval_examples[] =
    "attnc eval models/resnet_cifar.lua --weights ham.safetensors --data fashion-mnist\n"
    "attnc eval models/resnet_cifar.lua -D attention=se --weights se.safetensors \\\n"
    "    --data cifar10:/data/cifar-10-batches-bin --json";

/* Prints the metrics as one JSON object on stdout. */
static void print_eval_json(const rt_metrics *m) {
  cJSON *j = cJSON_CreateObject();
  cJSON_AddNumberToObject(j, "test_top1", rt_metrics_top1(m));
  cJSON_AddNumberToObject(j, "test_top5", rt_metrics_top5(m));
  cJSON_AddNumberToObject(j, "test_loss", rt_metrics_loss(m));
  cJSON_AddNumberToObject(j, "test_count", (double)m->count);
  char *s = cJSON_PrintUnformatted(j);
  if (s) printf("%s\n", s);
  free(s);
  cJSON_Delete(j);
}

/* Runs 'attnc eval'. */
int cli_eval(int argc, char **argv) {
  const char *file = NULL, *wpath = NULL, *data = NULL;
  int json = 0, confusion = 0;
  cg_options co = {0};
  cli_model model = {0};
  const cli_opt opts[] = {
      CLI_OPT_DEFINE(&model),
      {"--weights", "W", "trained weights: attnc checkpoint or state_dict safetensors", &wpath, NULL},
      {"--data", "SPEC", CLI_DATA_SPECS, &data, NULL},
      {"--batch", "N", "batch size (default 128)", &model, cli_parse_batch},
      {"--json", NULL, "print the result as one JSON object", &json, NULL},
      {"--confusion", NULL, "also print the confusion matrix", &confusion, NULL},
      CLI_OPT_THREADS(&co.threads),
      {"--interp", NULL, "run on the reference interpreter instead of the JIT (slow)", &co.interp, NULL},
      CLI_OPT_NO_FUSE(&co.no_fuse),
  };
  const cli_spec spec = {"eval", "attnc eval MODEL.lua --weights W --data SPEC [options]", eval_about,
                         eval_examples, opts, (int)(sizeof opts / sizeof opts[0]), "MODEL", 1, &file};
  int rc = cli_parse(&spec, argc, argv);
  if (rc) {
    cli_model_free(&model);
    return rc == CLI_HELP_SHOWN ? CLI_EXIT_OK : rc;
  }
  if (!wpath) rc = cli_usage_error("eval", "missing --weights W");
  else if (!data) rc = cli_usage_error("eval", "missing --data SPEC");
  else if (!cli_is_model(file)) rc = cli_usage_error("eval", "%s: expected a MODEL.lua spec", file);
  else if (model.shape[0]) rc = cli_usage_error("eval", "the input shape comes from --data (no --shape)");
  if (!rc) rc = cli_check_readable("eval", wpath);
  if (!rc) rc = cli_defines_from_checkpoint("eval", wpath, &model);
  ir_diag *d = ir_diag_create();
  rt_dataset *test = NULL;
  ir_graph *g = NULL;
  ir_bundle *w = NULL;
  cg_program *p = NULL;
  rt_metrics *m = NULL;
  if (!rc && rt_dataset_open(data, RT_SPLIT_TEST, &test, d) != ATTNC_OK) rc = cli_diag_fail("eval", d);
  if (!rc) {
    int64_t shape[3] = {test->channels, test->height, test->width};
    rc = cli_train_lower("eval", &model, file, FE_EVAL, model.batch ? model.batch : 128, shape, test->classes, &g);
  }
  if (!rc && (rt_train_load_weights(wpath, g, &w, &(rt_ckpt_info){0}, d) != ATTNC_OK ||
              cg_program_create(g, &co, &p, d) != ATTNC_OK || rt_program_load(p, w, d) != ATTNC_OK))
    rc = cli_diag_fail("eval", d);
  if (!rc && (!(m = rt_metrics_create(test->classes)) || rt_metrics_name_classes(m, test->class_names)))
    rc = cli_usage_error("eval", "out of memory");
  if (!rc && rt_evaluate(p, test, m, NULL, d) != ATTNC_OK) rc = cli_diag_fail("eval", d);
  if (!rc && json) print_eval_json(m);
  if (!rc && !json) {
    printf("%s on %s (%lld test images): top-1 %.2f%%, top-5 %.2f%%, loss %.4f\n", wpath, test->name,
           (long long)m->count, 100 * rt_metrics_top1(m), 100 * rt_metrics_top5(m), rt_metrics_loss(m));
    rt_metrics_print(m, stdout, confusion);
  } else if (!rc && confusion) { /* stdout holds only the JSON object */
    rt_metrics_print(m, stderr, 1);
  }
  rt_metrics_destroy(m);
  cg_program_destroy(p);
  ir_bundle_destroy(w);
  ir_graph_destroy(g);
  rt_dataset_destroy(test);
  ir_diag_destroy(d);
  cli_model_free(&model);
  return rc;
}
