/* attnc show: prints the metadata and tensors of a safetensors file (name,
 * type, a few values, and min/max/mean). */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char show_about[] =
    "Prints the metadata of a safetensors file and, for every tensor, its name, dtype\n"
    "and shape, its first values and its min, max and mean.";

static const char show_examples[] =
    "attnc show docs/examples/eca_tiny.weights.safetensors\n"
    "attnc show out.safetensors --values 0";

/* Parses "--values N" (N >= 0) into the int64_t 'dst'. */
static int parse_count(void *dst, const char *value, char *err, size_t errsize) {
  long long v;
  if (cli_parse_int(value, 0, LLONG_MAX, &v)) {
    snprintf(err, errsize, "expected a non-negative integer");
    return -1;
  }
  *(int64_t *)dst = v;
  return 0;
}

/* Prints tensor 'name' of 't' with at most 'nvalues' values. */
static void show_tensor(const char *name, const ir_tensor *t, int64_t nvalues) {
  char ty[160];
  ir_type_format(&t->type, ty, sizeof ty);
  int64_t n = ir_type_numel(&t->type);
  printf("%s %s", name, ty);
  if (n > 0) {
    double lo = INFINITY, hi = -INFINITY, sum = 0;
    for (int64_t i = 0; i < n; i++) {
      double v = ir_tensor_get(t, i);
      lo = v < lo ? v : lo;
      hi = v > hi ? v : hi;
      sum += v;
    }
    printf("  min %.6g max %.6g mean %.6g", lo, hi, sum / (double)n);
  }
  putchar('\n');
  if (nvalues > 0 && n > 0) {
    fputs("  [", stdout);
    for (int64_t i = 0; i < n && i < nvalues; i++)
      printf(i ? ", %.8g" : "%.8g", ir_tensor_get(t, i));
    puts(n > nvalues ? ", ...]" : "]");
  }
}

/* Runs 'attnc show'. */
int cli_show(int argc, char **argv) {
  const char *file = NULL;
  int64_t nvalues = 8;
  const cli_opt opts[] = {
      {"--values", "N", "print the first N values of each tensor (default 8)", &nvalues,
       parse_count},
  };
  const cli_spec spec = {"show", "attnc show FILE.safetensors [options]", show_about,
                         show_examples, opts, 1, "FILE", 1, &file};
  int rc = cli_parse(&spec, argc, argv);
  if (rc) return rc == CLI_HELP_SHOWN ? CLI_EXIT_OK : rc;
  ir_bundle *b = NULL;
  rc = cli_read_tensors("show", file, &b);
  if (rc) return rc;
  for (int i = 0; i < b->nmeta; i++) printf("# %s = %s\n", b->meta_keys[i], b->meta_values[i]);
  for (int i = 0; i < b->count; i++) show_tensor(b->names[i], b->tensors[i], nvalues);
  ir_bundle_destroy(b);
  return CLI_EXIT_OK;
}
