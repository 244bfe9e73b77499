/* attnc gradcheck: compares the analytic gradients autodiff produces for a
 * model's training loss with central finite differences in float64. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "rt_gradcheck.h"
#include "rt_init.h"

static const char gradcheck_about[] =
    "Lowers the training graph of MODEL.lua (batch statistics, cross-entropy loss),\n"
    "fills every parameter, buffer, input and label with seeded random values, and\n"
    "compares the gradient of the loss computed by autodiff's IR with central finite\n"
    "differences, both run by the reference interpreter in float64. Prints the\n"
    "relative error (norm-wise over the checked elements) of every parameter and\n"
    "exits 1 if the worst exceeds --tol. Small inputs keep it quick: by default the\n"
    "spec's channels at 8x8 and batch 2.";

static const char gradcheck_examples[] =
    "attnc gradcheck models/resnet_cifar.lua -D attention=ham\n"
    "attnc gradcheck models/mobilenetv2.lua --shape 3x16x16 --elems 2";

/* Parses a positive double. */
static int parse_double(void *dst, const char *v, char *err, size_t n) {
  char *end;
  double x = strtod(v, &end);
  if (*v == 0 || *end || !(x > 0)) {
    snprintf(err, n, "expected a positive number, got '%s'", v);
    return -1;
  }
  *(double *)dst = x;
  return 0;
}

/* Parses a non-negative int. */
static int parse_count(void *dst, const char *v, char *err, size_t n) {
  long long x;
  if (cli_parse_int(v, 0, 1000000, &x)) {
    snprintf(err, n, "expected a count, got '%s'", v);
    return -1;
  }
  *(int *)dst = (int)x;
  return 0;
}

/* Lowers the training graph; without --shape, at the spec's channels and 8x8. */
static int lower(cli_model *m, const char *file, ir_graph **g) {
  fe_request req;
  if (!m->batch) m->batch = 2;
  m->train = 1;
  if (!m->shape[0] && cli_is_model(file)) {
    cli_model_request(m, file, &req);
    int rc = cli_load_graph("gradcheck", file, &req, g);
    if (rc) return rc;
    const ir_node *in = ir_graph_find_source(*g, IR_OP_input, "input");
    if (in && in->type.rank == 4) {
      m->shape[0] = in->type.dims[1];
      m->shape[1] = m->shape[2] = 8;
    }
    ir_graph_destroy(*g);
    *g = NULL;
  }
  cli_model_request(m, file, &req);
  return cli_load_graph("gradcheck", file, cli_is_model(file) ? &req : NULL, g);
}

/* Prints the report; returns the exit code for tolerance 'tol'. */
static int report(const rt_gradcheck_report *r, double tol) {
  printf("%-48s %8s %12s %12s\n", "parameter", "checked", "rel_error", "fd_norm");
  int worst = -1;
  for (int i = 0; i < r->count; i++) {
    const rt_gradcheck_entry *e = &r->entries[i];
    printf("%-48s %8lld %12.3e %12.3e%s\n", e->name, (long long)e->checked, e->rel_err, e->fd_norm,
           e->rel_err > tol ? "  FAIL" : "");
    if (worst < 0 || e->rel_err > r->entries[worst].rel_err) worst = i;
  }
  if (worst < 0) {
    fprintf(stderr, "attnc: gradcheck: the graph has no parameters\n");
    return CLI_EXIT_FAIL;
  }
  printf("worst relative error %.3e (%s), tolerance %.1e: %s\n", r->worst, r->entries[worst].name, tol,
         r->worst <= tol ? "ok" : "FAILED");
  return r->worst <= tol ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

/* Runs 'attnc gradcheck'. */
int cli_gradcheck(int argc, char **argv) {
  const char *file = NULL;
  cli_model model = {0};
  double tol = 1e-4;
  int elems = 4, seed = 1, tensors = 0;
  const cli_opt opts[] = {
      CLI_OPT_DEFINE(&model),
      CLI_OPT_SHAPE(&model),
      {"--batch", "N", "batch size (default 2)", &model, cli_parse_batch},
      {"--elems", "K", "elements checked per parameter, spread evenly (default 4, 0: all)", &elems,
       parse_count},
      {"--tensors", "K", "parameters checked, spread evenly over the model (default 0: all)", &tensors,
       parse_count},
      {"--tol", "T", "largest relative error accepted (default 1e-4)", &tol, parse_double},
      {"--seed", "S", "seed of the random values (default 1)", &seed, parse_count},
  };
  const cli_spec spec = {"gradcheck", "attnc gradcheck MODEL.lua|FILE.ir [options]", gradcheck_about,
                         gradcheck_examples, opts, (int)(sizeof opts / sizeof opts[0]), "MODEL", 1, &file};
  int rc = cli_parse(&spec, argc, argv);
  if (rc) {
    cli_model_free(&model);
    return rc == CLI_HELP_SHOWN ? CLI_EXIT_OK : rc;
  }
  rc = cli_check_readable("gradcheck", file);
  ir_graph *g = NULL;
  if (!rc) rc = lower(&model, file, &g);
  if (!rc) {
    ir_bundle *vals = ir_bundle_create();
    rt_init_random(g, (uint64_t)seed, vals);
    rt_gradcheck_opts o = {0, 0, elems, tensors, 0};
    rt_gradcheck_report r;
    ir_diag *d = ir_diag_create();
    if (rt_gradcheck(g, "loss", vals, &o, &r, d) != ATTNC_OK)
      rc = cli_diag_fail("gradcheck", d);
    else
      rc = report(&r, tol);
    rt_gradcheck_report_free(&r);
    ir_diag_destroy(d);
    ir_bundle_destroy(vals);
  }
  ir_graph_destroy(g);
  cli_model_free(&model);
  return rc;
}
