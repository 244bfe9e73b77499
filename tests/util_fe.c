/* Front-end test helpers (prefix tf_): see util_fe.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "cg.h"
#include "ir_interp.h"
#include "passes.h"
#include "rt_safetensors.h"
#include "util_fe.h"


/* Returns $ATTNC_REFERENCE/rel. */
const char *tf_reference(const char *rel) {
  static char buf[4096];
  const char *ref = getenv("ATTNC_REFERENCE");
  snprintf(buf, sizeof buf, "%s/%s", ref && *ref ? ref : "../shared/reference", rel);
  return buf;
}

/* Splits "key=value" strings into the request's option arrays (see util_fe.h). */
void tf_split_opts(fe_request *req, const char *const *opts, int n, tf_opts *store) {
  if (n < 0)
    for (n = 0; opts && opts[n]; n++) {
    }
  if (n > TF_MAX_OPTS) fail_msg("too many options");
  for (int i = 0; i < n; i++) {
    snprintf(store->text[i], sizeof store->text[i], "%s", opts[i]);
    char *eq = strchr(store->text[i], '=');
    if (!eq) fail_msg("option '%s' is not key=value", opts[i]);
    *eq = 0;
    store->keys[i] = store->text[i];
    store->values[i] = eq + 1;
  }
  req->nopts = n;
  req->keys = store->keys;
  req->values = store->values;
}

/* Collects the NULL-terminated variadic strings of 'ap' into opts. */
static int collect(va_list ap, const char **opts) {
  int n = 0;
  for (const char *s; (s = va_arg(ap, const char *));) {
    if (n == TF_MAX_OPTS) fail_msg("too many options");
    opts[n++] = s;
  }
  return n;
}

/* Lowers with explicit option arrays; fails on error. */
static ir_graph *lower_opts(const char *path, fe_mode mode, int64_t batch, const int64_t *shape, const char **opts,
                            int n) {
  tf_opts store;
  fe_request req;
  memset(&req, 0, sizeof req);
  req.path = path;
  req.mode = mode;
  req.batch = batch;
  if (shape) memcpy(req.shape, shape, sizeof req.shape);
  tf_split_opts(&req, opts, n, &store);
  ir_diag *d = ir_diag_create();
  ir_graph *g = NULL;
  attnc_status st = fe_lower(&req, &g, d);
  if (st != ATTNC_OK) {
    print_error("fe_lower(%s) failed with status %d:\n%s\n", path, (int)st, ir_diag_text(d));
    ir_diag_destroy(d);
    fail();
  }
  ir_diag_destroy(d);
  return g;
}

/* Lowers with the options of 'ap'; fails on any error. */
static ir_graph *lower_va(const char *path, fe_mode mode, int64_t batch, const int64_t *shape, va_list ap) {
  const char *opts[TF_MAX_OPTS];
  int n = collect(ap, opts);
  return lower_opts(path, mode, batch, shape, opts, n);
}

/* Lowers 'path' with options; fails on any error. */
ir_graph *tf_lower(const char *path, fe_mode mode, int64_t batch, ...) {
  va_list ap;
  va_start(ap, batch);
  ir_graph *g = lower_va(path, mode, batch, NULL, ap);
  va_end(ap);
  return g;
}

/* Lowers 'path' at input shape 'shape' with options; fails on any error. */
ir_graph *tf_lower_shape(const char *path, fe_mode mode, int64_t batch, const int64_t shape[3], ...) {
  va_list ap;
  va_start(ap, shape);
  ir_graph *g = lower_va(path, mode, batch, shape, ap);
  va_end(ap);
  return g;
}

/* Lowers 'path' expecting an error; returns its status and messages. */
attnc_status tf_lower_error(const char *path, const char **msg, ...) {
  static char text[8192];
  const char *opts[TF_MAX_OPTS];
  va_list ap;
  va_start(ap, msg);
  int n = collect(ap, opts);
  va_end(ap);
  tf_opts store;
  fe_request req;
  memset(&req, 0, sizeof req);
  req.path = path;
  tf_split_opts(&req, opts, n, &store);
  ir_diag *d = ir_diag_create();
  ir_graph *g = NULL;
  attnc_status st = fe_lower(&req, &g, d);
  snprintf(text, sizeof text, "%s", ir_diag_text(d));
  int count = ir_diag_count(d);
  ir_diag_destroy(d);
  if (st == ATTNC_OK || g) {
    ir_graph_destroy(g);
    fail_msg("%s: lowering succeeded, expected an error", path);
  }
  if (count == 0) fail_msg("%s: error status %d without a message", path, (int)st);
  *msg = text;
  return st;
}

/* Returns the element count of the param (or buffer) sources of g. */
int64_t tf_count_sources(const ir_graph *g, int buffers) {
  int64_t total = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    if (n->op == (buffers ? IR_OP_buffer : IR_OP_param)) total += ir_type_numel(&n->type);
  }
  return total;
}

/* Reads a whole file (NUL-terminated); fails if it cannot. */
static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) fail_msg("cannot open %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  assert_non_null(buf);
  size_t got = fread(buf, 1, (size_t)n, f);
  fclose(f);
  buf[got] = 0;
  return buf;
}

/* Returns the JSON file 'path' parsed; fails if it does not parse. */
static cJSON *read_json(const char *path) {
  char *text = slurp(path);
  cJSON *j = cJSON_Parse(text);
  free(text);
  if (!j) fail_msg("%s: not JSON", path);
  return j;
}

/* Formats a JSON shape array like ir_type_format ("f32[16,3,3,3]"). */
static void json_shape(const cJSON *shape, char *buf, size_t size) {
  size_t o = (size_t)snprintf(buf, size, "f32[");
  int i = 0;
  for (const cJSON *d = shape ? shape->child : NULL; d && o < size; d = d->next, i++)
    o += (size_t)snprintf(buf + o, size - o, "%s%lld", i ? "," : "", (long long)d->valuedouble);
  if (o < size) snprintf(buf + o, size - o, "]");
}

/* Counts the differences between g's params/buffers and a keys file. */
int tf_keys_differences(const ir_graph *g, const char *keys_rel, int verbose, int64_t *ref_params) {
  char path[4096];
  snprintf(path, sizeof path, "%s", tf_reference(keys_rel));
  cJSON *j = read_json(path);
  const cJSON *keys = cJSON_GetObjectItemCaseSensitive(j, "keys");
  const cJSON *params = cJSON_GetObjectItemCaseSensitive(j, "params");
  if (!cJSON_IsArray(keys) || !cJSON_IsNumber(params)) fail_msg("%s: no keys/params", path);
  int errors = 0, k = 0;
  const cJSON *key = keys->child;
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    if (n->op != IR_OP_param && n->op != IR_OP_buffer) continue;
    const char *kind = n->op == IR_OP_param ? "param" : "buffer";
    char got[256], want[256];
    ir_type_format(&n->type, got, sizeof got);
    if (!key) {
      if (verbose) print_error("extra %s %s %s (not in %s)\n", kind, ir_node_name(n), got, keys_rel);
      errors++;
      continue;
    }
    const char *name = cJSON_GetObjectItemCaseSensitive(key, "name")->valuestring;
    json_shape(cJSON_GetObjectItemCaseSensitive(key, "shape"), want, sizeof want);
    int trainable = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(key, "trainable"));
    if (strcmp(name, ir_node_name(n)) || strcmp(got, want) || trainable != (n->op == IR_OP_param)) {
      if (verbose)
        print_error("entry %d: graph has %s %s %s, reference %s %s %s\n", k, kind, ir_node_name(n), got,
                    trainable ? "param" : "buffer", name, want);
      errors++;
    }
    key = key->next;
    k++;
  }
  for (; key; key = key->next) {
    if (verbose) print_error("missing %s\n", cJSON_GetObjectItemCaseSensitive(key, "name")->valuestring);
    errors++;
  }
  int64_t want_params = (int64_t)params->valuedouble;
  if (tf_count_sources(g, 0) != want_params) {
    if (verbose)
      print_error("%lld parameters, reference %lld\n", (long long)tf_count_sources(g, 0), (long long)want_params);
    errors++;
  }
  if (ref_params) *ref_params = want_params;
  cJSON_Delete(j);
  return errors;
}

/* Compares g's params and buffers with the reference keys file. */
int64_t tf_assert_keys(const ir_graph *g, const char *keys_rel) {
  int64_t params = 0;
  int errors = tf_keys_differences(g, keys_rel, 1, &params);
  if (errors) fail_msg("%d differences between the graph's parameters and %s", errors, keys_rel);
  return params;
}

/* Returns ||got - want|| / ||want||. */
double tf_rel_error(const ir_tensor *got, const ir_tensor *want) {
  int64_t n = ir_type_numel(&want->type);
  assert_int_equal(ir_type_numel(&got->type), n);
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; i++) {
    double a = ir_tensor_get(got, i), b = ir_tensor_get(want, i);
    num += (a - b) * (a - b);
    den += b * b;
  }
  return den > 0 ? __builtin_sqrt(num / den) : __builtin_sqrt(num);
}

/* Reads safetensors file dir/name; fails on error. */
static ir_bundle *read_bundle(const char *dir, const char *name) {
  char path[4096];
  if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
    fail_msg("path too long: %s/%s", dir, name);
  ir_diag *d = ir_diag_create();
  ir_bundle *b = NULL;
  if (rt_safetensors_read(path, &b, d) != ATTNC_OK) {
    print_error("%s\n", ir_diag_text(d));
    ir_diag_destroy(d);
    fail_msg("cannot read %s", path);
  }
  ir_diag_destroy(d);
  return b;
}

/* Compares output 'out_name' of 'out' with 'exp_name' of 'exp' within the
 * tolerance (1e-4 or tolerances.json); returns 1 if it fails (printing why). */
static int compare_tol(const char *model, const ir_bundle *out, const char *out_name, const ir_bundle *exp,
                       const char *exp_name, const cJSON *tols, double base) {
  const ir_tensor *got = ir_bundle_get(out, out_name), *want = ir_bundle_get(exp, exp_name);
  if (!got || !want) {
    print_error("%s: %s missing (%s)\n", model, got ? exp_name : out_name, got ? "expected" : "graph output");
    return 1;
  }
  double tol = base;
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(tols, exp_name);
  if (cJSON_IsNumber(t) && t->valuedouble > tol) tol = t->valuedouble;
  double err = tf_rel_error(got, want);
  if (err <= tol) return 0;
  print_error("%s: %s relative error %.3g > %.3g\n", model, exp_name, err, tol);
  return 1;
}

/* compare_tol with the base tolerance of values (1e-4). */
static int compare(const char *model, const ir_bundle *out, const char *out_name, const ir_bundle *exp,
                   const char *exp_name, const cJSON *tols) {
  return compare_tol(model, out, out_name, exp, exp_name, tols, 1e-4);
}

/* Compares every expected "grad.<p>" with the graph's output of that name
 * within 1e-3 (or tolerances.json); returns the failure count. */
static int compare_grads(const char *model, const ir_bundle *out, const ir_bundle *exp, const cJSON *tols) {
  int failures = 0, ngrads = 0;
  for (int i = 0; i < exp->count; i++)
    if (!strncmp(exp->names[i], "grad.", 5)) {
      failures += compare_tol(model, out, exp->names[i], exp, exp->names[i], tols, 1e-3);
      ngrads++;
    }
  if (ngrads == 0) {
    print_error("%s: no gradients in expected.safetensors\n", model);
    failures++;
  }
  return failures;
}

/* How golden() runs and checks a model. */
typedef struct {
  int jit;        /* the JIT (2 threads) rather than the interpreter */
  int no_fuse;    /* the JIT's unfused program (grad rewrites and groups off) */
  int grads;      /* compare the gradients too */
  int cross;      /* also run the interpreter; the JIT must agree with it */
  double cross_tol; /* cross check: relative error allowed (logits and loss
                       a tenth of it) */
  double moved;   /* nonzero: input moved off the golden point, cross only */
} golden_run;

/* Runs 'g' on the interpreter, or on the JIT and then, with 'r->cross',
 * also on the interpreter, failing unless the two agree (norm-wise relative
 * error r->cross_tol, a tenth of it for logits and loss). */
static attnc_status run_engine(const char *model, const ir_graph *g, const ir_bundle *feed, const golden_run *r,
                               ir_bundle *out, ir_diag *d) {
  if (!r->jit) return ir_interp_run(g, feed, IR_INTERP_NATIVE, out, d);
  cg_options o = {.threads = 2, .no_fuse = r->no_fuse};
  cg_program *p = NULL;
  attnc_status st = cg_program_create(g, &o, &p, d);
  if (st == ATTNC_OK) st = cg_program_run_bundle(p, feed, out, d);
  cg_program_destroy(p);
  if (st != ATTNC_OK || !r->cross) return st;
  ir_bundle *ref = ir_bundle_create();
  st = ir_interp_run(g, feed, IR_INTERP_NATIVE, ref, d);
  int differ = 0;
  for (int i = 0; st == ATTNC_OK && i < ref->count; i++) {
    const ir_tensor *got = ir_bundle_get(out, ref->names[i]);
    double tol = !strcmp(ref->names[i], "logits") || !strcmp(ref->names[i], "loss") ? r->cross_tol / 10 : r->cross_tol;
    double err = got ? tf_rel_error(got, ref->tensors[i]) : 1;
    if (err > tol) {
      print_error("%s: jit and interpreter differ on %s: relative error %.3g > %.3g\n", model, ref->names[i], err, tol);
      differ++;
    }
  }
  ir_bundle_destroy(ref);
  if (differ) fail_msg("%s: %d outputs differ between the JIT and the interpreter", model, differ);
  return st;
}

/* Runs the golden comparison of one reference model on one engine. With
 * 'moved' nonzero the input is moved off the golden point (x + moved *
 * sin(k), k the element index) and only the JIT-interpreter cross check is
 * made, since the expected values are those of the golden point. */
static void golden(const char *model, const char *spec, const golden_run *r, va_list ap) {
  char dir[4096], rel[512];
  snprintf(rel, sizeof rel, "golden/%s", model);
  snprintf(dir, sizeof dir, "%s", tf_reference(rel));
  ir_bundle *weights = read_bundle(dir, "weights.safetensors");
  ir_bundle *input = read_bundle(dir, "input.safetensors");
  ir_bundle *exp = read_bundle(dir, "expected.safetensors");
  char tolpath[4200];
  snprintf(tolpath, sizeof tolpath, "%s/tolerances.json", dir);
  cJSON *tols = read_json(tolpath);

  /* options from the weights' metadata, then the caller's */
  static const char *const meta_keys[] = {"depth", "attention", "classes", "in_channels"};
  char meta_opts[4][128];
  const char *opts[TF_MAX_OPTS];
  int n = 0;
  for (int i = 0; i < 4; i++) {
    const char *v = ir_bundle_get_meta(weights, meta_keys[i]);
    if (!v) continue;
    snprintf(meta_opts[n], sizeof meta_opts[n], "%s=%s", meta_keys[i], v);
    opts[n] = meta_opts[n];
    n++;
  }
  n += collect(ap, opts + n);

  ir_tensor *x = (ir_tensor *)ir_bundle_get(input, "input");
  assert_non_null(x);
  if (r->moved != 0)
    for (int64_t k = 0; k < ir_type_numel(&x->type); k++)
      ir_tensor_set(x, k, ir_tensor_get(x, k) + r->moved * sin((double)k));
  int64_t batch = x->type.dims[0], shape[3] = {x->type.dims[1], x->type.dims[2], x->type.dims[3]};
  ir_bundle *feed = ir_bundle_create();
  for (int i = 0; i < weights->count; i++) ir_bundle_put(feed, weights->names[i], ir_tensor_clone(weights->tensors[i]));
  for (int i = 0; i < input->count; i++) ir_bundle_put(feed, input->names[i], ir_tensor_clone(input->tensors[i]));

  int failures = 0;
  for (int mode = FE_EVAL; mode <= FE_TRAIN; mode++) {
    ir_graph *g = lower_opts(spec, (fe_mode)mode, batch, shape, opts, n);
    ir_bundle *out = ir_bundle_create();
    ir_diag *d = ir_diag_create();
    if (mode == FE_TRAIN && r->grads && pass_gradients(g, !r->no_fuse, NULL, d) != ATTNC_OK) {
      print_error("%s: autodiff failed:\n%s\n", model, ir_diag_text(d));
      failures++;
    } else if (run_engine(model, g, feed, r, out, d) != ATTNC_OK) {
      print_error("%s: %s failed:\n%s\n", model, r->jit ? "jit" : "interpreter", ir_diag_text(d));
      failures++;
    } else if (r->moved != 0) {
      /* off the golden point: run_engine's cross check is the test */
    } else if (mode == FE_EVAL) {
      failures += compare(model, out, "logits", exp, "eval.logits", tols);
    } else {
      failures += compare(model, out, "logits", exp, "train.logits", tols);
      failures += compare(model, out, "loss", exp, "train.loss", tols);
      if (r->grads) failures += compare_grads(model, out, exp, tols);
      int nstats = 0;
      for (int i = 0; i < exp->count; i++) {
        const char *name = exp->names[i];
        size_t len = strlen(name);
        if (strncmp(name, "train.", 6) || len < 12 || (strcmp(name + len - 12, ".running_var") &&
                                                       (len < 13 || strcmp(name + len - 13, ".running_mean"))))
          continue;
        failures += compare(model, out, name + 6, exp, name, tols);
        nstats++;
      }
      if (nstats == 0) {
        print_error("%s: no running statistics in expected.safetensors\n", model);
        failures++;
      }
    }
    ir_diag_destroy(d);
    ir_bundle_destroy(out);
    ir_graph_destroy(g);
  }
  cJSON_Delete(tols);
  ir_bundle_destroy(feed);
  ir_bundle_destroy(exp);
  ir_bundle_destroy(input);
  ir_bundle_destroy(weights);
  if (failures) fail_msg("%s: %d golden comparisons failed", model, failures);
}

/* Golden comparison on the interpreter (see util_fe.h). */
void tf_golden(const char *model, const char *spec, ...) {
  va_list ap;
  va_start(ap, spec);
  golden(model, spec, &(golden_run){.grads = 1}, ap);
  va_end(ap);
}

/* Golden comparison on the JIT. */
void tf_golden_jit(const char *model, const char *spec, ...) {
  va_list ap;
  va_start(ap, spec);
  golden(model, spec, &(golden_run){.jit = 1, .grads = 1}, ap);
  va_end(ap);
}

/* Golden comparison on the JIT's unfused program. */
void tf_golden_jit_unfused(const char *model, const char *spec, ...) {
  va_list ap;
  va_start(ap, spec);
  golden(model, spec, &(golden_run){.jit = 1, .no_fuse = 1, .grads = 1}, ap);
  va_end(ap);
}

/* Golden comparison on the JIT, which must also agree with the interpreter. */
void tf_golden_jit_cross(const char *model, const char *spec, ...) {
  va_list ap;
  va_start(ap, spec);
  golden(model, spec, &(golden_run){.jit = 1, .grads = 1, .cross = 1, .cross_tol = 1e-4}, ap);
  va_end(ap);
}

/* tf_golden_jit without gradients. */
void tf_golden_jit_values(const char *model, const char *spec, ...) {
  va_list ap;
  va_start(ap, spec);
  golden(model, spec, &(golden_run){.jit = 1}, ap);
  va_end(ap);
}

/* JIT against the interpreter on every output and gradient within 'tol',
 * at the golden weights and the golden input moved by 'moved' * sin(k). */
void tf_jit_cross_moved(const char *model, const char *spec, double moved, double tol, ...) {
  va_list ap;
  va_start(ap, tol);
  golden(model, spec, &(golden_run){.jit = 1, .grads = 1, .cross = 1, .cross_tol = tol, .moved = moved}, ap);
  va_end(ap);
}
