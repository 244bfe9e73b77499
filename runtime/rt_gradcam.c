/* Grad-CAM: the graph that yields a layer's feature map and the gradient of
 * the explained logits with respect to it, its program, and the maps. */
#include "rt_gradcam.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes.h"
#include "rt_train.h"

struct rt_gradcam {
  ir_graph *g;
  cg_program *p;
  rt_gradcam_target target;
};

/* The scope of 'n' as printed: "(root)" for the top module. */
static const char *scope_name(const ir_node *n) { return n->loc.scope ? n->loc.scope : "(root)"; }

/* 1 if scope 's' is module 'layer' or inside it. */
static int in_layer(const char *s, const char *layer) {
  size_t n = strlen(layer);
  return !strcmp(layer, "(root)") || (!strncmp(s, layer, n) && (s[n] == 0 || s[n] == '.'));
}

/* 1 if 'n' is a value Grad-CAM can explain: a computed 4-D float map. */
static int is_map(const ir_node *n) {
  return !ir_op_source(n->op) && n->type.rank == 4 && n->type.dtype != IR_I64;
}

/* The node id of output 'name' of 'g', or -1 if it has none. */
static int output_node(const ir_graph *g, const char *name) {
  int out = -1;
  for (int i = 0; i < g->noutputs; i++)
    if (!strcmp(g->outputs[i].name, name)) out = g->outputs[i].node;
  return out;
}

/* Marks in 'live' every node that output 'name' depends on; returns its
 * node id, or -1 if the graph has no such output. */
static int mark_live(const ir_graph *g, const char *name, char *live) {
  int out = output_node(g, name);
  if (out < 0) return -1;
  live[out] = 1;
  for (int i = out; i >= 0; i--)
    if (live[i])
      for (int k = 0; k < g->nodes[i]->nin; k++) live[g->nodes[i]->in[k]] = 1;
  return out;
}

/* Reports that 'layer' names no feature map, listing the layers that do. */
static void unknown_layer(const ir_graph *g, const char *layer, const char *live, ir_diag *d) {
  size_t cap = 4096, len = 0;
  char *list = malloc(cap);
  int shown = 0;
  const char *last = NULL;
  for (int i = 0; list && i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    const char *s = scope_name(n);
    if (!live[i] || !is_map(n) || (last && !strcmp(last, s))) continue;
    int seen = 0; /* scopes recur (a block's add after its children) */
    for (int j = 0; j < i && !seen; j++)
      seen = live[j] && is_map(g->nodes[j]) && !strcmp(scope_name(g->nodes[j]), s);
    last = s;
    if (seen) continue;
    if (len + strlen(s) + 8 >= cap) {
      len += (size_t)snprintf(list + len, cap - len, ", ...");
      break;
    }
    len += (size_t)snprintf(list + len, cap - len, "%s%s", shown++ ? ", " : "", s);
  }
  ir_diag_error(d, NULL, 0, "gradcam: no layer '%s' with a feature map [N,C,H,W]; the layers are: %s", layer,
                list ? list : "(out of memory)");
  free(list);
}

/* Finds the node Grad-CAM explains (see rt_gradcam_graph); -1 after an error. */
static int find_target(const ir_graph *g, const char *layer, ir_diag *d) {
  char *live = calloc((size_t)g->nnodes, 1);
  if (!live) {
    ir_diag_error(d, NULL, 0, "gradcam: out of memory");
    return -1;
  }
  int logits = mark_live(g, "logits", live), found = -1;
  const ir_type *lt = logits >= 0 ? &g->nodes[logits]->type : NULL;
  if (!lt || lt->rank != 2 || lt->dtype == IR_I64) {
    ir_diag_error(d, NULL, 0, "gradcam: graph '%s' has no output 'logits' [N,classes]", g->name);
    free(live);
    return -1;
  }
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    if (!live[i] || !is_map(n)) continue;
    if (layer ? in_layer(scope_name(n), layer) : n->type.dims[2] * n->type.dims[3] > 1) found = i;
  }
  if (found < 0 && layer) unknown_layer(g, layer, live, d);
  else if (found < 0) ir_diag_error(d, NULL, 0, "gradcam: the logits depend on no feature map [N,C,H,W]");
  free(live);
  return found;
}

/* What the rebuild that adds the probe needs and finds. */
typedef struct {
  int target;   /* the explained node's id in the old graph */
  int features; /* its copy's id in the new one */
  ir_diag *d;
} probe_ctx;

/* A pass_emit: copies every node; after the target, adds the zero param
 * "gradcam.probe" to it, and its users read the sum. */
static int emit_probe(ir_graph *ng, const ir_node *n, int *in, const int *map, void *ctx) {
  (void)map;
  probe_ctx *c = ctx;
  if (n->id != c->target) return -2;
  c->features = ir_graph_copy_node(ng, n, in)->id;
  int sum_in[2] = {c->features, ir_graph_source(ng, IR_OP_param, "gradcam.probe", 0, n->type, n->loc)->id};
  ir_node *sum = ir_graph_append(ng, IR_OP_add, sum_in, 2, n->loc);
  return ir_infer_node(ng, sum, c->d) ? -1 : sum->id;
}

/* Appends output "gradcam.score" = sum(logits * onehot), onehot a new input. */
static attnc_status add_score(ir_graph *g, ir_diag *d) {
  int logits = output_node(g, "logits");
  ir_loc loc = {NULL, 0, NULL};
  int in[2] = {logits, ir_graph_source(g, IR_OP_input, "gradcam.onehot", 0, g->nodes[logits]->type, loc)->id};
  ir_node *mul = ir_graph_append(g, IR_OP_mul, in, 2, loc);
  if (ir_infer_node(g, mul, d)) return ATTNC_EVERIFY;
  ir_node *sum = ir_graph_append(g, IR_OP_reduce_sum, &mul->id, 1, loc);
  int64_t axes[2] = {0, 1};
  ir_set_ints(sum, "axes", axes, 2);
  if (ir_infer_node(g, sum, d)) return ATTNC_EVERIFY;
  ir_graph_add_output(g, "gradcam.score", sum->id);
  return ATTNC_OK;
}

/* Keeps only the outputs Grad-CAM reads, so simplification drops the
 * gradients of the weights. */
static void keep_gradcam_outputs(ir_graph *g) {
  int k = 0;
  for (int i = 0; i < g->noutputs; i++) {
    const char *s = g->outputs[i].name;
    if (!strcmp(s, "logits") || !strcmp(s, "gradcam.features") || !strcmp(s, "grad.gradcam.probe"))
      g->outputs[k++] = g->outputs[i];
    else
      free(g->outputs[i].name);
  }
  g->noutputs = k;
}

/* Builds the forward graph of Grad-CAM from 'eval'. */
attnc_status rt_gradcam_forward(const ir_graph *eval, const char *layer, ir_graph **out, rt_gradcam_target *t,
                                ir_diag *d) {
  *out = NULL;
  int target = find_target(eval, layer, d);
  if (target < 0) return ATTNC_EINVAL;
  const ir_node *a = eval->nodes[target];
  snprintf(t->layer, sizeof t->layer, "%s", scope_name(a));
  snprintf(t->op, sizeof t->op, "%s", ir_op_info_get(a->op)->name);
  t->type = a->type;
  ir_graph *g = ir_graph_clone(eval);
  if (!g) {
    ir_diag_error(d, NULL, 0, "gradcam: out of memory");
    return ATTNC_ENOMEM;
  }
  probe_ctx c = {target, -1, d};
  attnc_status st = pass_rebuild(g, emit_probe, &c, "gradcam", d);
  if (st == ATTNC_OK) {
    ir_graph_add_output(g, "gradcam.features", c.features);
    st = add_score(g, d);
  }
  if (st != ATTNC_OK) {
    ir_graph_destroy(g);
    return st;
  }
  *out = g;
  return ATTNC_OK;
}

/* Builds the Grad-CAM graph of 'eval': the forward and its gradient. */
attnc_status rt_gradcam_graph(const ir_graph *eval, const char *layer, ir_graph **out, rt_gradcam_target *t,
                              ir_diag *d) {
  ir_graph *g = NULL;
  attnc_status st = rt_gradcam_forward(eval, layer, &g, t, d);
  if (st == ATTNC_OK) st = pass_autodiff(g, "gradcam.score", 0, d);
  if (st == ATTNC_OK) {
    keep_gradcam_outputs(g);
    st = pass_simplify(g, NULL, d);
  }
  if (st == ATTNC_OK && ir_verify(g, d)) {
    ir_diag_error(d, NULL, 0, "internal error: the Grad-CAM graph does not verify");
    st = ATTNC_EVERIFY;
  }
  if (st != ATTNC_OK) {
    ir_graph_destroy(g);
    g = NULL;
  }
  *out = g;
  return st;
}

/* Compiles the Grad-CAM program and loads its weights. */
attnc_status rt_gradcam_create(const ir_graph *eval, const char *layer, const ir_bundle *weights,
                               const cg_options *co, rt_gradcam **out, ir_diag *d) {
  *out = NULL;
  rt_gradcam *gc = calloc(1, sizeof *gc);
  if (!gc) {
    ir_diag_error(d, NULL, 0, "gradcam: out of memory");
    return ATTNC_ENOMEM;
  }
  attnc_status st = rt_gradcam_graph(eval, layer, &gc->g, &gc->target, d);
  if (st == ATTNC_OK) st = cg_program_create(gc->g, co, &gc->p, d);
  if (st == ATTNC_OK) st = rt_program_load(gc->p, weights, d);
  if (st != ATTNC_OK) {
    rt_gradcam_destroy(gc);
    return st;
  }
  ir_type pt;
  float *probe = cg_program_input(gc->p, "gradcam.probe", &pt);
  memset(probe, 0, (size_t)ir_type_numel(&pt) * sizeof(float));
  *out = gc;
  return ATTNC_OK;
}

/* Frees 'gc' (NULL is fine). */
void rt_gradcam_destroy(rt_gradcam *gc) {
  if (!gc) return;
  cg_program_destroy(gc->p);
  ir_graph_destroy(gc->g);
  free(gc);
}

/* The feature map 'gc' explains. */
const rt_gradcam_target *rt_gradcam_target_of(const rt_gradcam *gc) { return &gc->target; }

/* Index of the largest of x[0..n) (the first on ties). */
static int64_t argmax(const float *x, int64_t n) {
  int64_t best = 0;
  for (int64_t j = 1; j < n; j++)
    if (x[j] > x[best]) best = j;
  return best;
}

/* Computes alpha and the map of every sample from A and dy/dA ('acc':
 * h*w doubles of scratch). */
static void compute_maps(const float *a, const float *grad, double *acc, rt_gradcam_result *r) {
  int64_t k = r->channels, hw = r->h * r->w;
  for (int64_t i = 0; i < r->n; i++) {
    memset(acc, 0, (size_t)hw * sizeof *acc);
    for (int64_t c = 0; c < k; c++) {
      const float *g = grad + (i * k + c) * hw, *f = a + (i * k + c) * hw;
      double s = 0;
      for (int64_t p = 0; p < hw; p++) s += g[p];
      double alpha = s / (double)hw;
      r->alpha[i * k + c] = (float)alpha;
      for (int64_t p = 0; p < hw; p++) acc[p] += alpha * f[p];
    }
    for (int64_t p = 0; p < hw; p++) r->cam[i * hw + p] = acc[p] > 0 ? (float)acc[p] : 0.0f;
  }
}

/* Runs 'gc' on 'input' and computes every sample's map. */
attnc_status rt_gradcam_run(rt_gradcam *gc, const float *input, const int64_t *want, rt_gradcam_result *r,
                            ir_diag *d) {
  memset(r, 0, sizeof *r);
  ir_type ti, to, tl, tf, tg;
  float *in = cg_program_input(gc->p, "input", &ti), *onehot = cg_program_input(gc->p, "gradcam.onehot", &to);
  const float *logits = cg_program_output(gc->p, "logits", &tl);
  const float *a = cg_program_output(gc->p, "gradcam.features", &tf);
  const float *grad = cg_program_output(gc->p, "grad.gradcam.probe", &tg);
  if (!in || !onehot || !logits || !a || !grad || ti.dtype != IR_F32) {
    ir_diag_error(d, NULL, 0, "gradcam: the program lacks its f32 input or one of its outputs");
    return ATTNC_EINVAL;
  }
  r->n = tl.dims[0], r->classes = tl.dims[1];
  r->channels = tf.dims[1], r->h = tf.dims[2], r->w = tf.dims[3];
  for (int64_t i = 0; want && i < r->n; i++)
    if (want[i] >= r->classes) {
      ir_diag_error(d, NULL, 0, "gradcam: class %lld of sample %lld is out of range: the model has %lld classes",
                    (long long)want[i], (long long)i, (long long)r->classes);
      return ATTNC_EINVAL;
    }
  size_t n = (size_t)r->n;
  r->logits = malloc(n * (size_t)r->classes * sizeof(float));
  r->predicted = malloc(n * sizeof(int64_t));
  r->explained = malloc(n * sizeof(int64_t));
  r->alpha = malloc(n * (size_t)r->channels * sizeof(float));
  r->cam = malloc(n * (size_t)(r->h * r->w) * sizeof(float));
  double *acc = malloc((size_t)(r->h * r->w) * sizeof(double));
  if (!r->logits || !r->predicted || !r->explained || !r->alpha || !r->cam || !acc) {
    rt_gradcam_result_free(r);
    free(acc);
    ir_diag_error(d, NULL, 0, "gradcam: out of memory");
    return ATTNC_ENOMEM;
  }
  memcpy(in, input, (size_t)ir_type_numel(&ti) * sizeof(float));
  memset(onehot, 0, (size_t)ir_type_numel(&to) * sizeof(float));
  int need_prediction = 0;
  for (int64_t i = 0; i < r->n; i++) need_prediction |= !want || want[i] < 0;
  /* The logits do not depend on onehot: a first run finds the predictions. */
  attnc_status st = need_prediction ? cg_program_run(gc->p, d) : ATTNC_OK;
  for (int64_t i = 0; st == ATTNC_OK && i < r->n; i++) {
    r->predicted[i] = argmax(logits + i * r->classes, r->classes);
    r->explained[i] = want && want[i] >= 0 ? want[i] : r->predicted[i];
    onehot[i * r->classes + r->explained[i]] = 1;
  }
  if (st == ATTNC_OK) st = cg_program_run(gc->p, d);
  if (st != ATTNC_OK) {
    rt_gradcam_result_free(r);
    free(acc);
    return st;
  }
  memcpy(r->logits, logits, n * (size_t)r->classes * sizeof(float));
  for (int64_t i = 0; i < r->n; i++) r->predicted[i] = argmax(logits + i * r->classes, r->classes);
  compute_maps(a, grad, acc, r);
  free(acc);
  return ATTNC_OK;
}

/* Frees the arrays of 'r' and zeroes it. */
void rt_gradcam_result_free(rt_gradcam_result *r) {
  free(r->logits);
  free(r->predicted);
  free(r->explained);
  free(r->alpha);
  free(r->cam);
  memset(r, 0, sizeof *r);
}
