/* Model summaries: groups a lowered graph's nodes into layers by module
 * scope and counts parameters, multiply-adds, other arithmetic and
 * activation memory per image. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "fe_summary.h"

#define ROOT_NAME "(root)"

/* Returns the layer named 'name' in s, appending it if new; NULL if out of memory. */
static fe_summary_layer *layer_for(fe_summary *s, const char *name, int *cap) {
  if (!name) name = ROOT_NAME;
  for (int i = 0; i < s->nlayers; i++)
    if (strcmp(s->layers[i].name, name) == 0) return &s->layers[i];
  if (s->nlayers == *cap) {
    int ncap = *cap ? *cap * 2 : 32;
    fe_summary_layer *nl = realloc(s->layers, (size_t)ncap * sizeof *nl);
    if (!nl) return NULL;
    s->layers = nl;
    *cap = ncap;
  }
  fe_summary_layer *l = &s->layers[s->nlayers];
  memset(l, 0, sizeof *l);
  l->name = strdup(name);
  l->ops = strdup("");
  l->shape = ir_type_make(IR_F32, 0, NULL);
  if (!l->name || !l->ops) {
    free(l->name);
    free(l->ops);
    return NULL;
  }
  s->nlayers++;
  return l;
}

/* Adds op kind 'op' to the layer's op list unless present; returns -1 if out of memory. */
static int add_op_name(fe_summary_layer *l, const char *op) {
  size_t n = strlen(op);
  for (const char *p = l->ops; (p = strstr(p, op)); p += n)
    if ((p == l->ops || p[-1] == ',') && (p[n] == 0 || p[n] == ',')) return 0;
  size_t len = strlen(l->ops);
  char *grown = realloc(l->ops, len + n + 2);
  if (!grown) return -1;
  l->ops = grown;
  sprintf(grown + len, "%s%s", len ? "," : "", op);
  return 0;
}

/* Multiply-adds of node n for the whole batch (conv and matmul only). */
static int64_t node_macs(const ir_graph *g, const ir_node *n) {
  int64_t out = ir_type_numel(&n->type);
  if (n->op == IR_OP_conv2d || n->op == IR_OP_conv1d) {
    const ir_type *w = &g->nodes[n->in[1]]->type;
    int64_t k = 1;
    for (int i = 1; i < w->rank; i++) k *= w->dims[i];
    return out * k;
  }
  if (n->op == IR_OP_matmul) {
    const ir_type *a = &g->nodes[n->in[0]]->type;
    int ta = (int)ir_get_int(n, "trans_a");
    return out * a->dims[a->rank - 1 - ta];
  }
  return 0;
}

/* Other arithmetic of node n for the whole batch (0 for data movement). */
static int64_t node_elementwise(const ir_graph *g, const ir_node *n) {
  unsigned f = ir_op_info_get(n->op)->flags;
  if (f & IR_OPF_REDUCTION) return ir_type_numel(&g->nodes[n->in[0]]->type);
  switch (n->op) {
  case IR_OP_conv2d: case IR_OP_conv1d: case IR_OP_matmul:
  case IR_OP_reshape: case IR_OP_transpose: case IR_OP_broadcast_to:
  case IR_OP_concat: case IR_OP_slice: case IR_OP_pad: case IR_OP_cast:
    return 0;
  default: return ir_type_numel(&n->type);
  }
}

/* Summarizes graph 'g'. */
fe_summary *fe_summarize(const ir_graph *g) {
  fe_summary *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  int cap = 0;
  s->batch = 1;
  const ir_node *in = ir_graph_find_source(g, IR_OP_input, "input");
  if (in && in->type.rank > 0 && in->type.dims[0] > 0) s->batch = in->type.dims[0];
  /* layers in the order of their first op, then modules with parameters only */
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < g->nnodes; i++) {
      const ir_node *n = g->nodes[i];
      int src = (ir_op_info_get(n->op)->flags & IR_OPF_SOURCE) != 0;
      if (pass == 0 ? src : (n->op != IR_OP_param && n->op != IR_OP_buffer)) continue;
      fe_summary_layer *l = layer_for(s, n->loc.scope, &cap);
      if (!l) goto oom;
      int64_t numel = ir_type_numel(&n->type);
      if (pass == 1) {
        *(n->op == IR_OP_param ? &l->params : &l->buffers) += numel;
        *(n->op == IR_OP_param ? &s->params : &s->buffers) += numel;
        continue;
      }
      if (add_op_name(l, ir_op_info_get(n->op)->name)) goto oom;
      l->shape = n->type;
      l->macs += node_macs(g, n) / s->batch;
      l->elementwise += node_elementwise(g, n) / s->batch;
      s->activation_bytes += numel * (int64_t)ir_dtype_size(n->type.dtype) / s->batch;
    }
  for (int i = 0; i < s->nlayers; i++) {
    s->macs += s->layers[i].macs;
    s->elementwise += s->layers[i].elementwise;
  }
  return s;
oom:
  fe_summary_destroy(s);
  return NULL;
}

/* Frees 's'. */
void fe_summary_destroy(fe_summary *s) {
  if (!s) return;
  for (int i = 0; i < s->nlayers; i++) {
    free(s->layers[i].name);
    free(s->layers[i].ops);
  }
  free(s->layers);
  free(s);
}

/* Writes v with thousands separators into buf. */
static const char *grouped(int64_t v, char *buf, size_t size) {
  char raw[32];
  int n = snprintf(raw, sizeof raw, "%lld", (long long)(v < 0 ? -v : v));
  size_t o = 0;
  if (v < 0 && o + 1 < size) buf[o++] = '-';
  for (int i = 0; i < n && o + 2 < size; i++) {
    if (i > 0 && (n - i) % 3 == 0) buf[o++] = ',';
    buf[o++] = raw[i];
  }
  buf[o] = 0;
  return buf;
}

/* Writes the shape of t as "[1,16,32,32]" into buf ("-" for no ops). */
static const char *shape_text(const ir_type *t, char *buf, size_t size) {
  char full[256];
  ir_type_format(t, full, sizeof full);
  const char *br = strchr(full, '[');
  snprintf(buf, size, "%s", t->rank == 0 && !strcmp(br ? br : "", "[]") ? "-" : (br ? br : full));
  return buf;
}

/* Returns the aligned text table. */
char *fe_summary_text(const fe_summary *s) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f) return NULL;
  int wn = 5, wo = 2;
  for (int i = 0; i < s->nlayers; i++) {
    int a = (int)strlen(s->layers[i].name), b = (int)strlen(s->layers[i].ops);
    if (a > wn) wn = a;
    if (b > wo) wo = b;
  }
  if (wo > 40) wo = 40;
  char b1[64], b2[64], b3[64], b4[256];
  fprintf(f, "%-*s  %-*s  %-16s %12s %14s %14s\n", wn, "layer", wo, "op", "output", "params", "MACs", "elementwise");
  for (int i = 0; i < s->nlayers; i++) {
    const fe_summary_layer *l = &s->layers[i];
    fprintf(f, "%-*s  %-*s  %-16s %12s %14s %14s\n", wn, l->name, wo, l->ops, shape_text(&l->shape, b4, sizeof b4),
            grouped(l->params, b1, sizeof b1), grouped(l->macs, b2, sizeof b2),
            grouped(l->elementwise, b3, sizeof b3));
  }
  fprintf(f, "\nparameters:        %s trainable (%s buffer elements)\n", grouped(s->params, b1, sizeof b1),
          grouped(s->buffers, b2, sizeof b2));
  fprintf(f, "MACs per image:    %s (conv and matmul; elementwise ops %s)\n", grouped(s->macs, b1, sizeof b1),
          grouped(s->elementwise, b2, sizeof b2));
  fprintf(f, "activations/image: %s bytes (%.2f MiB; every op result, no reuse)\n",
          grouped(s->activation_bytes, b1, sizeof b1), (double)s->activation_bytes / (1 << 20));
  fclose(f);
  return text;
}

/* Returns the JSON form of the summary. */
char *fe_summary_json(const fe_summary *s, const char *model) {
  cJSON *root = cJSON_CreateObject();
  if (!root) return NULL;
  cJSON_AddStringToObject(root, "model", model ? model : "");
  cJSON *layers = cJSON_AddArrayToObject(root, "layers");
  for (int i = 0; i < s->nlayers && layers; i++) {
    const fe_summary_layer *l = &s->layers[i];
    cJSON *o = cJSON_CreateObject();
    if (!o) break;
    cJSON_AddItemToArray(layers, o);
    cJSON_AddStringToObject(o, "name", l->name);
    cJSON_AddStringToObject(o, "op", l->ops);
    cJSON *shape = cJSON_AddArrayToObject(o, "shape");
    for (int d = 0; shape && d < l->shape.rank; d++)
      cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)l->shape.dims[d]));
    cJSON_AddNumberToObject(o, "params", (double)l->params);
    cJSON_AddNumberToObject(o, "macs", (double)l->macs);
    cJSON_AddNumberToObject(o, "elementwise", (double)l->elementwise);
  }
  cJSON *t = cJSON_AddObjectToObject(root, "totals");
  if (t) {
    cJSON_AddNumberToObject(t, "params", (double)s->params);
    cJSON_AddNumberToObject(t, "buffers", (double)s->buffers);
    cJSON_AddNumberToObject(t, "macs", (double)s->macs);
    cJSON_AddNumberToObject(t, "elementwise", (double)s->elementwise);
    cJSON_AddNumberToObject(t, "activation_bytes", (double)s->activation_bytes);
  }
  char *text = cJSON_Print(root);
  cJSON_Delete(root);
  return text;
}
