/* The training state outside the loop itself: initial values of params and
 * buffers, loading weights for a graph, copying state in and out of a
 * compiled program, and evaluating a program over a whole data set. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt_bind.h"
#include "rt_init.h"
#include "rt_loader.h"
#include "rt_train.h"

/* 1 if 's' ends with 'suffix'. */
static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && !strcmp(s + a - b, suffix);
}

/* FNV-1a of a name: each tensor gets its own random stream. */
static uint64_t name_hash(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

/* The param of 'g' named 'name', or NULL. */
static const ir_node *find_param(const ir_graph *g, const char *name) {
  return ir_graph_find_source(g, IR_OP_param, name);
}

/* Fan-in bound 1/sqrt(fan_in) of the rank >= 2 weight "<prefix>.weight"
 * for a bias "<prefix>.bias", or 0 if there is none. */
static double bias_bound(const ir_graph *g, const char *bias) {
  size_t n = strlen(bias);
  if (n < 5 || !ends_with(bias, ".bias") || n + 8 > 1024) return 0;
  char w[1024];
  memcpy(w, bias, n - 5);
  strcpy(w + n - 5, ".weight");
  const ir_node *p = find_param(g, w);
  if (!p || p->type.rank < 2 || p->type.dims[0] <= 0) return 0;
  double fan_in = (double)(ir_type_numel(&p->type) / p->type.dims[0]);
  return fan_in > 0 ? 1.0 / sqrt(fan_in) : 0;
}

/* Fills tensor 't' of source 'n' named 'name' with its initial value. */
static void init_one(const ir_graph *g, const ir_node *n, const char *name, ir_tensor *t, uint64_t seed) {
  rt_rng r;
  rt_rng_seed(&r, seed ^ name_hash(name));
  int64_t count = ir_type_numel(&t->type);
  double fill = 0, bound = 0;
  if (n->op == IR_OP_buffer) {
    fill = ends_with(name, "running_var") ? 1 : 0;
  } else if (t->type.rank >= 2) {
    double fan_in = (double)(count / (t->type.dims[0] > 0 ? t->type.dims[0] : 1));
    bound = 1.0 / sqrt(fan_in > 0 ? fan_in : 1);
  } else if (t->type.rank == 1) {
    bound = bias_bound(g, name);
    if (bound == 0) fill = ends_with(name, ".weight") ? 1 : 0;
  } else {
    fill = ends_with(name, "alpha") || ends_with(name, "beta") ? 0.5 : 0;
  }
  for (int64_t i = 0; i < count; i++)
    ir_tensor_set(t, i, bound > 0 ? bound * (2 * rt_rng_uniform(&r) - 1) : fill);
}

/* Initial values of every param and buffer of 'g' (see rt_train.h). */
ir_bundle *rt_train_init_state(const ir_graph *g, uint64_t seed) {
  ir_bundle *b = ir_bundle_create();
  if (!b) return NULL;
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    if (n->op != IR_OP_param && n->op != IR_OP_buffer) continue;
    const char *name = ir_node_name(n);
    ir_tensor *t = ir_tensor_create(n->type);
    if (!t) {
      ir_bundle_destroy(b);
      return NULL;
    }
    init_one(g, n, name, t, seed);
    ir_bundle_put(b, name, t);
  }
  return b;
}

/* The param or buffer node of 'g' named 'name', or NULL. */
static const ir_node *find_state(const ir_graph *g, const char *name) {
  const ir_node *n = ir_graph_find_source(g, IR_OP_param, name);
  return n ? n : ir_graph_find_source(g, IR_OP_buffer, name);
}

/* Loads and checks the weights of 'g' from 'path' (see rt_train.h). */
attnc_status rt_train_load_weights(const char *path, const ir_graph *g, ir_bundle **out, rt_ckpt_info *info,
                                   ir_diag *d) {
  *out = NULL;
  ir_bundle *all = NULL;
  attnc_status st = rt_ckpt_load(path, &all, info, d);
  if (st != ATTNC_OK) return st;
  ir_bundle *w = ir_bundle_create();
  for (int i = 0; w && i < all->count; i++) {
    const char *name = all->names[i];
    if (!strncmp(name, "optim.", 6) && !find_state(g, name)) continue;
    if (ends_with(name, ".num_batches_tracked") && !find_state(g, name)) continue;
    ir_bundle_put(w, name, all->tensors[i]);
    all->tensors[i] = NULL;
  }
  ir_bundle_destroy(all);
  if (!w) return ATTNC_ENOMEM;
  st = rt_check_weights(g, w, path, d);
  for (int i = 0; st == ATTNC_OK && i < w->count; i++) {
    const ir_node *n = find_state(g, w->names[i]);
    if (n && w->tensors[i]->type.dtype != n->type.dtype) {
      ir_tensor *c = ir_tensor_convert(w->tensors[i], n->type.dtype);
      if (!c) st = ATTNC_ENOMEM;
      else ir_bundle_put(w, w->names[i], c);
    }
  }
  if (st != ATTNC_OK) {
    ir_bundle_destroy(w);
    return st;
  }
  *out = w;
  return ATTNC_OK;
}

/* Copies the tensors of 'w' into the sources of 'p' (see rt_train.h). */
attnc_status rt_program_load(cg_program *p, const ir_bundle *w, ir_diag *d) {
  for (int i = 0; i < w->count; i++) {
    ir_type t;
    void *dst = cg_program_input(p, w->names[i], &t);
    if (!dst) continue;
    const ir_tensor *src = w->tensors[i];
    if (ir_type_numel(&src->type) != ir_type_numel(&t)) {
      char a[128], b[128];
      ir_type_format(&src->type, a, sizeof a);
      ir_type_format(&t, b, sizeof b);
      ir_diag_error(d, NULL, 0, "tensor '%s' is %s, the program expects %s", w->names[i], a, b);
      return ATTNC_EINVAL;
    }
    if (src->type.dtype == t.dtype) {
      memcpy(dst, src->data, (size_t)ir_type_numel(&t) * ir_dtype_size(t.dtype));
    } else {
      ir_tensor *c = ir_tensor_convert(src, t.dtype);
      if (!c) return ATTNC_ENOMEM;
      memcpy(dst, c->data, (size_t)ir_type_numel(&t) * ir_dtype_size(t.dtype));
      ir_tensor_destroy(c);
    }
  }
  return ATTNC_OK;
}

/* Copies the params and buffers of 'g' out of 'p' (see rt_train.h). */
ir_bundle *rt_program_state(cg_program *p, const ir_graph *g) {
  ir_bundle *b = ir_bundle_create();
  for (int i = 0; b && i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    if (n->op != IR_OP_param && n->op != IR_OP_buffer) continue;
    const char *name = ir_node_name(n);
    ir_type t;
    const void *src = cg_program_input(p, name, &t);
    ir_tensor *c = src ? ir_tensor_create(t) : NULL;
    if (!c) {
      ir_bundle_destroy(b);
      return NULL;
    }
    memcpy(c->data, src, (size_t)ir_type_numel(&t) * ir_dtype_size(t.dtype));
    ir_bundle_put(b, name, c);
  }
  return b;
}

/* Evaluates 'p' over all of 'ds' (see rt_train.h). */
attnc_status rt_evaluate(cg_program *p, const rt_dataset *ds, rt_metrics *m, const volatile sig_atomic_t *stop,
                         ir_diag *d) {
  ir_type ti, tl;
  float *in = cg_program_input(p, "input", &ti);
  if (!in || ti.rank != 4 || ti.dtype != IR_F32 || !cg_program_output(p, "logits", &tl) || tl.rank != 2) {
    ir_diag_error(d, NULL, 0, "the eval program needs an input 'input' f32[N,C,H,W] and an output 'logits' [N,K]");
    return ATTNC_EINVAL;
  }
  if (ti.dims[1] != ds->channels || ti.dims[2] != ds->height || ti.dims[3] != ds->width) {
    ir_diag_error(d, NULL, 0, "data set %s has %lldx%lldx%lld images, the model takes %lldx%lldx%lld", ds->name,
                  (long long)ds->channels, (long long)ds->height, (long long)ds->width, (long long)ti.dims[1],
                  (long long)ti.dims[2], (long long)ti.dims[3]);
    return ATTNC_EINVAL;
  }
  if (tl.dims[1] != m->classes) {
    ir_diag_error(d, NULL, 0, "the model has %lld classes, data set %s has %d", (long long)tl.dims[1], ds->name,
                  m->classes);
    return ATTNC_EINVAL;
  }
  int64_t batch = ti.dims[0];
  int64_t *labels = malloc((size_t)batch * sizeof *labels);
  rt_loader *l = NULL;
  rt_loader_options lo = {.batch = batch, .shuffle = 0, .seed = 0, .pad_crop = 0, .flip = 0, .drop_last = 0};
  attnc_status st = labels ? rt_loader_create(ds, &lo, &l, d) : ATTNC_ENOMEM;
  if (st == ATTNC_OK) {
    rt_loader_start(l, 0, 0);
    int64_t n;
    while ((n = rt_loader_next(l, in, labels)) > 0 && !(stop && *stop)) {
      if ((st = cg_program_run(p, d)) != ATTNC_OK) break;
      rt_metrics_add(m, cg_program_output(p, "logits", NULL), labels, n);
    }
    if (n < 0) {
      ir_diag_error(d, NULL, 0, "%s: %s", ds->name, rt_loader_error(l));
      st = ATTNC_EPARSE;
    }
  }
  rt_loader_destroy(l);
  free(labels);
  return st;
}
