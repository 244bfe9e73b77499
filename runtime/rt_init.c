/* Parameter initialization and deterministic random numbers. */
#include "rt_init.h"

#include <math.h>
#include <string.h>

void rt_rng_seed(rt_rng *r, uint64_t seed) { r->s = seed; }

/* splitmix64: a tiny generator of good quality, reproducible everywhere. */
uint64_t rt_rng_next(rt_rng *r) {
  uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
double rt_rng_uniform(rt_rng *r) { return (double)(rt_rng_next(r) >> 11) * 0x1.0p-53; }

/* Standard normal (Box-Muller). */
double rt_rng_normal(rt_rng *r) {
  double u = rt_rng_uniform(r), v = rt_rng_uniform(r);
  return sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * M_PI * v);
}

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && !strcmp(s + a - b, suffix);
}

/* FNV-1a of a name, to give each tensor its own stream. */
static uint64_t name_hash(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

/* Number of classes of the graph's "logits" output, or 10. */
static int64_t classes_of(const ir_graph *g) {
  for (int i = 0; i < g->noutputs; i++)
    if (!strcmp(g->outputs[i].name, "logits")) {
      const ir_type *t = &g->nodes[g->outputs[i].node]->type;
      if (t->rank == 2) return t->dims[1];
    }
  return 10;
}

/* Returns the random value of element 'i' of source 'n'. */
static double draw(const ir_node *n, const char *name, int64_t classes, rt_rng *r) {
  const ir_type *t = &n->type;
  if (n->op == IR_OP_input) return t->dtype == IR_I64 ? (double)(rt_rng_next(r) % (uint64_t)classes) : rt_rng_normal(r);
  if (ends_with(name, "running_var")) return 0.5 + rt_rng_uniform(r);
  if (ends_with(name, "running_mean")) return 0.1 * rt_rng_normal(r);
  if (n->op == IR_OP_buffer) return 0;
  if (t->rank == 0) return 0.1 + 0.8 * rt_rng_uniform(r);
  if (t->rank == 1) return ends_with(name, ".weight") ? 0.25 + 0.5 * rt_rng_uniform(r) : 0.1 * rt_rng_normal(r);
  double fan_in = (double)(ir_type_numel(t) / t->dims[0]);
  return sqrt(2.0 / (fan_in > 0 ? fan_in : 1)) * rt_rng_normal(r);
}

/* Fills 'out' with random values for the sources of 'g' it lacks. */
void rt_init_random(const ir_graph *g, uint64_t seed, ir_bundle *out) {
  int64_t classes = classes_of(g);
  for (int i = 0; i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    const char *name = ir_node_name(n);
    if (!name || ir_bundle_get(out, name)) continue;
    ir_tensor *t = ir_tensor_create(n->type);
    if (!t) continue;
    rt_rng r;
    rt_rng_seed(&r, seed ^ name_hash(name));
    int64_t cnt = ir_type_numel(&n->type);
    for (int64_t k = 0; k < cnt; k++) ir_tensor_set(t, k, draw(n, name, classes, &r));
    ir_bundle_put(out, name, t);
  }
}
