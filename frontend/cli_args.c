/* Option parsing and error conventions shared by every attnc command, and
 * the model options (-D key=value, --shape CxHxW, --batch N, --train). */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Prints "attnc: <cmd>: <message>" on stderr; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "attnc: %s: ", cmd);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return CLI_EXIT_USAGE;
}

/* Prints the diagnostics of 'd' on stderr; returns CLI_EXIT_FAIL. */
int cli_diag_fail(const char *cmd, ir_diag *d) {
  if (ir_diag_count(d))
    fputs(ir_diag_text(d), stderr);
  else
    fprintf(stderr, "attnc: %s: failed\n", cmd);
  return CLI_EXIT_FAIL;
}

/* Prints the help of 'spec' to 'f'. */
void cli_print_help(const cli_spec *spec, FILE *f) {
  fprintf(f, "usage: %s\n\n%s\n", spec->usage, spec->about);
  int width = 10;
  for (int i = 0; i < spec->nopts; i++) {
    const cli_opt *o = &spec->opts[i];
    int w = (int)strlen(o->name) + (o->metavar ? 1 + (int)strlen(o->metavar) : 0);
    if (w > width) width = w;
  }
  fprintf(f, "\noptions:\n");
  for (int i = 0; i < spec->nopts; i++) {
    const cli_opt *o = &spec->opts[i];
    char left[128];
    snprintf(left, sizeof left, "%s%s%s", o->name, o->metavar ? " " : "",
             o->metavar ? o->metavar : "");
    fprintf(f, "  %-*s  %s\n", width, left, o->help);
  }
  fprintf(f, "  %-*s  %s\n", width, "-h, --help", "show this help");
  if (spec->examples && *spec->examples) {
    fprintf(f, "\nexamples:\n");
    for (const char *p = spec->examples; *p;) {
      const char *nl = strchr(p, '\n');
      int len = nl ? (int)(nl - p) : (int)strlen(p);
      fprintf(f, "  %.*s\n", len, p);
      p += len + (nl != NULL);
    }
  }
}

/* Returns the option of 'spec' called name[0..len), or NULL. */
static const cli_opt *find_opt(const cli_spec *spec, const char *name, size_t len) {
  for (int i = 0; i < spec->nopts; i++)
    if (strlen(spec->opts[i].name) == len && !strncmp(spec->opts[i].name, name, len))
      return &spec->opts[i];
  return NULL;
}

/* Stores 'value' into option 'o'. Returns 0 or CLI_EXIT_USAGE. */
static int set_opt(const cli_spec *spec, const cli_opt *o, const char *value) {
  if (!o->metavar) {
    if (value) return cli_usage_error(spec->name, "option '%s' takes no value", o->name);
    *(int *)o->dst = 1;
    return 0;
  }
  if (!o->parse) {
    *(const char **)o->dst = value;
    return 0;
  }
  char err[256] = "invalid value";
  if (o->parse(o->dst, value, err, sizeof err))
    return cli_usage_error(spec->name, "%s '%s': %s", o->name, value, err);
  return 0;
}

/* Parses the arguments of a command against 'spec'. */
int cli_parse(const cli_spec *spec, int argc, char **argv) {
  int npos = 0, only_pos = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (only_pos || a[0] != '-' || !a[1]) {
      if (npos >= spec->npos)
        return cli_usage_error(spec->name, "unexpected argument '%s' (see attnc %s --help)", a,
                               spec->name);
      spec->pos[npos++] = a;
      continue;
    }
    if (!strcmp(a, "--")) {
      only_pos = 1;
      continue;
    }
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      cli_print_help(spec, stdout);
      return CLI_HELP_SHOWN;
    }
    /* "--name=value", "--name value", "-Dvalue", "-D value" */
    const char *eq = a[1] == '-' ? strchr(a, '=') : NULL;
    size_t len = eq ? (size_t)(eq - a) : strlen(a);
    const cli_opt *o = find_opt(spec, a, len);
    const char *value = eq ? eq + 1 : NULL;
    if (!o && a[1] != '-' && a[2]) {
      o = find_opt(spec, a, 2);
      if (o && o->metavar) value = a + 2;
      else o = NULL;
    }
    if (!o)
      return cli_usage_error(spec->name, "unknown option '%.*s' (see attnc %s --help)", (int)len,
                             a, spec->name);
    if (o->metavar && !value) {
      if (i + 1 >= argc)
        return cli_usage_error(spec->name, "option '%s' needs a value (%s)", o->name, o->metavar);
      value = argv[++i];
    }
    int rc = set_opt(spec, o, value);
    if (rc) return rc;
  }
  if (npos < spec->npos)
    return cli_usage_error(spec->name, "missing %s argument (see attnc %s --help)", spec->posname,
                           spec->name);
  return 0;
}

/* Parses all of 's' as a decimal integer from 'lo' to 'hi' into *out. */
int cli_parse_int(const char *s, long long lo, long long hi, long long *out) {
  if (!((*s >= '0' && *s <= '9') || (*s == '-' && s[1] >= '0' && s[1] <= '9'))) return -1;
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || *end || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

/* Sets model option 'key' to 'value' in 'm' (a key set again takes the new
 * value); returns 0, or -1 after writing a short reason into err. */
int cli_model_set(cli_model *m, const char *key, size_t keylen, const char *value, char *err,
                  size_t errsize) {
  for (int i = 0; i < m->ndefines; i++) /* a repeated key: the last one wins */
    if (strlen(m->keys[i]) == keylen && !strncmp(m->keys[i], key, keylen)) {
      char *val = strdup(value);
      if (!val) {
        snprintf(err, errsize, "out of memory");
        return -1;
      }
      free(m->values[i]);
      m->values[i] = val;
      return 0;
    }
  if (m->ndefines >= CLI_MAX_DEFINES) {
    snprintf(err, errsize, "more than %d -D options", CLI_MAX_DEFINES);
    return -1;
  }
  char *k = strndup(key, keylen), *val = strdup(value);
  if (!k || !val) {
    free(k);
    free(val);
    snprintf(err, errsize, "out of memory");
    return -1;
  }
  m->keys[m->ndefines] = k;
  m->values[m->ndefines++] = val;
  return 0;
}

/* Parses one "-D key=value" into the cli_model 'dst'. */
int cli_parse_define(void *dst, const char *value, char *err, size_t errsize) {
  const char *eq = strchr(value, '=');
  if (!eq || eq == value) {
    snprintf(err, errsize, "expected key=value");
    return -1;
  }
  return cli_model_set(dst, value, (size_t)(eq - value), eq + 1, err, errsize);
}

/* Parses "--shape CxHxW" into the cli_model 'dst'. */
int cli_parse_shape(void *dst, const char *value, char *err, size_t errsize) {
  cli_model *m = dst;
  int64_t dims[3];
  const char *p = value;
  for (int i = 0; i < 3; i++) {
    char *end = (char *)p;
    errno = 0;
    long long v = *p >= '0' && *p <= '9' ? strtoll(p, &end, 10) : 0;
    if (errno || v <= 0 || v > (1 << 20) || *end != (i < 2 ? 'x' : '\0')) {
      snprintf(err, errsize, "expected CxHxW with three positive integers, like 3x32x32");
      return -1;
    }
    dims[i] = v;
    p = end + 1;
  }
  memcpy(m->shape, dims, sizeof dims);
  return 0;
}

/* Parses "--batch N" into the cli_model 'dst'. */
int cli_parse_batch(void *dst, const char *value, char *err, size_t errsize) {
  long long v;
  if (cli_parse_int(value, 1, 1 << 20, &v)) {
    snprintf(err, errsize, "expected a positive integer");
    return -1;
  }
  ((cli_model *)dst)->batch = v;
  return 0;
}

/* Parses --threads N (1..1024) into an int. */
int cli_parse_threads(void *dst, const char *value, char *err, size_t errsize) {
  long long v;
  if (cli_parse_int(value, 1, 1024, &v)) {
    snprintf(err, errsize, "expected a thread count from 1 to 1024");
    return -1;
  }
  *(int *)dst = (int)v;
  return 0;
}

/* Fills *req from the options of 'm'. */
void cli_model_request(const cli_model *m, const char *path, fe_request *req) {
  memset(req, 0, sizeof *req);
  req->path = path;
  req->nopts = m->ndefines;
  req->keys = (const char **)m->keys;
  req->values = (const char **)m->values;
  memcpy(req->shape, m->shape, sizeof req->shape);
  req->batch = m->batch;
  req->mode = m->train ? FE_TRAIN : FE_EVAL;
}

/* Returns 1 if any model option was given. */
int cli_model_given(const cli_model *m) {
  return m->ndefines || m->shape[0] || m->batch || m->train;
}

/* Frees the strings held by 'm'. */
void cli_model_free(cli_model *m) {
  for (int i = 0; i < m->ndefines; i++) {
    free(m->keys[i]);
    free(m->values[i]);
  }
  m->ndefines = 0;
}
