/* Loading shared by attnc commands: graphs from IR text or Lua model specs,
 * tensors from safetensors files, and the --stage selection. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "passes.h"
#include "rt_safetensors.h"

/* Returns 1 if 'path' ends in ".lua". */
int cli_is_model(const char *path) {
  size_t n = strlen(path);
  return n > 4 && !strcmp(path + n - 4, ".lua");
}

/* Checks that 'path' is a readable regular file. */
int cli_check_readable(const char *cmd, const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return cli_usage_error(cmd, "cannot open '%s': %s", path, strerror(errno));
  struct stat sb;
  int is_dir = fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode);
  close(fd);
  if (is_dir) return cli_usage_error(cmd, "'%s' is a directory", path);
  return CLI_EXIT_OK;
}

/* Reads the text file 'path' whole into a NUL-terminated string, or NULL. */
static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len + 4096 + 1 > cap) {
      cap = cap ? cap * 2 : 65536;
      char *nb = realloc(buf, cap);
      if (!nb) break;
      buf = nb;
    }
    size_t r = fread(buf + len, 1, cap - len - 1, f);
    len += r;
    if (r == 0) {
      if (ferror(f)) break;
      fclose(f);
      buf[len] = 0;
      return buf;
    }
  }
  fclose(f);
  free(buf);
  return NULL;
}

/* Prints the messages of 'd' on stderr, prefixing "path: " to those that do
 * not name a file already (nodes parsed from IR text have no location).
 * Returns CLI_EXIT_FAIL. */
static int print_located(const char *path, ir_diag *d) {
  int i = 0;
  size_t n = strlen(path);
  for (const char *m; (m = ir_diag_message(d, i)); i++)
    if (!strncmp(m, path, n) && m[n] == ':')
      fprintf(stderr, "%s\n", m);
    else
      fprintf(stderr, "%s: %s\n", path, m);
  if (ir_diag_count(d) > i) fprintf(stderr, "(%d more errors)\n", ir_diag_count(d) - i);
  return CLI_EXIT_FAIL;
}

/* Parses and verifies the IR text file 'path'. */
static int load_ir(const char *cmd, const char *path, ir_graph **out, ir_diag *d) {
  char *text = read_text(path);
  if (!text) return cli_usage_error(cmd, "cannot read '%s': %s", path, strerror(errno));
  ir_graph *g = ir_parse(text, path, d);
  free(text);
  if (!g) return cli_diag_fail(cmd, d);
  if (ir_verify(g, d) > 0) {
    ir_graph_destroy(g);
    return print_located(path, d);
  }
  *out = g;
  return CLI_EXIT_OK;
}

/* Loads 'path' (IR text or a Lua model spec) into a verified graph. */
int cli_load_graph(const char *cmd, const char *path, const fe_request *req, ir_graph **out) {
  *out = NULL;
  int rc = cli_check_readable(cmd, path);
  if (rc) return rc;
  ir_diag *d = ir_diag_create();
  if (!d) return cli_usage_error(cmd, "out of memory");
  if (!cli_is_model(path)) {
    rc = load_ir(cmd, path, out, d);
  } else if (fe_lower(req, out, d) != ATTNC_OK) {
    ir_graph_destroy(*out);
    *out = NULL;
    rc = cli_diag_fail(cmd, d);
  } else if (ir_verify(*out, d) > 0) {
    ir_graph_destroy(*out);
    *out = NULL;
    rc = cli_diag_fail(cmd, d);
  }
  ir_diag_destroy(d);
  return rc;
}

/* Reads the safetensors file 'path'. */
int cli_read_tensors(const char *cmd, const char *path, ir_bundle **out) {
  *out = NULL;
  int rc = cli_check_readable(cmd, path);
  if (rc) return rc;
  ir_diag *d = ir_diag_create();
  if (!d) return cli_usage_error(cmd, "out of memory");
  if (rt_safetensors_read(path, out, d) != ATTNC_OK) rc = cli_diag_fail(cmd, d);
  ir_diag_destroy(d);
  return rc;
}

/* Applies compilation stage 'stage' to *g: "grad" builds the training step
 * (autodiff, SGD with PyTorch's CIFAR settings, simplification, and with
 * 'fuse' the rewrites that serve fusion) and reports op counts before and
 * after simplification on stderr. */
int cli_apply_stage(const char *cmd, const char *stage, int fuse, ir_graph **g) {
  pass_stage st;
  if (!stage) return CLI_EXIT_OK;
  if (pass_stage_parse(stage, &st))
    return cli_usage_error(cmd, "unknown stage '%s' (available: %s)", stage, pass_stage_list());
  if (st == PASS_STAGE_IR) return CLI_EXIT_OK;
  ir_diag *d = ir_diag_create();
  pass_sgd_options o = {0.9, 5e-4, 0};
  pass_simplify_stats ss;
  int forward = (*g)->nnodes, rc = CLI_EXIT_OK;
  if (pass_train_step(*g, &o, fuse, &ss, d) != ATTNC_OK)
    rc = cli_diag_fail(cmd, d);
  else
    fprintf(stderr, "%s: training step: %d forward ops, %d after autodiff and SGD, %d after simplification "
                    "(%d folded, %d merged, %d dead)\n",
            cmd, forward, ss.before, ss.after, ss.folded, ss.cse, ss.dead);
  ir_diag_destroy(d);
  return rc;
}
