/* Helpers for the model-zoo tests: see util_zoo.h. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util_fe.h"
#include "util_zoo.h"

/* Runs fe_lower; returns its status and fills *g and the diagnostics text. */
static attnc_status lower(const char *path, fe_mode mode, int64_t batch, const char *shape,
                          const char *const *opts, ir_graph **g, char *msg, size_t msgsize) {
  tf_opts store;
  fe_request req;
  memset(&req, 0, sizeof req);
  req.path = path;
  req.batch = batch;
  req.mode = mode;
  tf_split_opts(&req, opts, -1, &store);
  if (shape) {
    long long c, h, w;
    if (sscanf(shape, "%lldx%lldx%lld", &c, &h, &w) != 3) fail_msg("tz: bad shape '%s'", shape);
    req.shape[0] = c;
    req.shape[1] = h;
    req.shape[2] = w;
  }
  ir_diag *d = ir_diag_create();
  *g = NULL;
  attnc_status st = fe_lower(&req, g, d);
  if (st == ATTNC_OK && *g && ir_verify(*g, d) != 0) st = ATTNC_EVERIFY;
  snprintf(msg, msgsize, "%s", ir_diag_text(d));
  ir_diag_destroy(d);
  return st;
}

/* Lowers and verifies a spec or fails the test. */
ir_graph *tz_lower(const char *path, fe_mode mode, int64_t batch, const char *shape, const char *const *opts) {
  static char msg[8192];
  ir_graph *g = NULL;
  attnc_status st = lower(path, mode, batch, shape, opts, &g, msg, sizeof msg);
  if (st != ATTNC_OK || !g) {
    if (g) ir_graph_destroy(g);
    fail_msg("lowering %s (%s) failed with status %d:\n%s", path, mode == FE_TRAIN ? "train" : "eval", (int)st,
             msg);
  }
  return g;
}

/* Returns 1 if an earlier node than 'i' is a source of the same op and name. */
static int seen_before(const ir_graph *g, int i) {
  const ir_node *n = g->nodes[i];
  for (int j = 0; j < i; j++) {
    const ir_node *m = g->nodes[j];
    if (m->op == n->op && strcmp(ir_node_name(m), ir_node_name(n)) == 0) return 1;
  }
  return 0;
}

/* Returns a reproducible uniform value in [-1, 1) from state *s (xorshift). */
static double uniform(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return (double)(*s >> 11) / (double)(1ull << 52) - 1.0;
}

/* Returns 1 if 's' ends with 'suffix'. */
static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Fills every param and buffer of g with scaled random values. */
ir_bundle *tz_random_weights(const ir_graph *g, unsigned seed) {
  ir_bundle *b = ir_bundle_create();
  uint64_t s = 0x9e3779b97f4a7c15ull ^ seed;
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    if ((n->op != IR_OP_param && n->op != IR_OP_buffer) || seen_before(g, i)) continue;
    const char *name = ir_node_name(n);
    ir_tensor *t = ir_tensor_create(n->type);
    if (!t) fail_msg("tz_random_weights: out of memory");
    int64_t numel = ir_type_numel(&n->type);
    double scale = 0.1, base = 0.0;
    if (n->type.rank == 0) {
      base = 0.5;
      scale = 0.0;
    } else if (ends_with(name, "running_var")) {
      base = 1.0;
      scale = 0.0;
    } else if (ends_with(name, "running_mean")) {
      scale = 0.0;
    } else if (n->type.rank == 1 && ends_with(name, ".weight")) {
      base = 1.0; /* BN scale */
    } else if (n->type.rank >= 2) {
      scale = sqrt(3.0 / (double)(numel / n->type.dims[0])); /* variance 1/fan_in */
    }
    for (int64_t j = 0; j < numel; j++) ir_tensor_set(t, j, base + scale * uniform(&s));
    ir_bundle_put(b, name, t);
  }
  return b;
}

