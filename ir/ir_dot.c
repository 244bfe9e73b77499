/* Graphviz output of an IR graph: one box per node labelled "%id op" and its
 * shape, edges from operand to user, nodes nested in clusters by the dotted
 * module scope of their location, and one ellipse per graph output. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

/* One cluster per dotted scope prefix ("layers", "layers.0", ...). */
typedef struct {
  char *name;
  int parent; /* cluster index, or -1 at top level */
} dot_cluster;

typedef struct {
  dot_cluster *c;
  int n, cap;
} dot_clusters;

/* Writes 's' inside a double-quoted dot string: quotes and backslashes
 * escaped, newlines as \n, other control bytes as '?'. */
static void dot_escape(FILE *f, const char *s) {
  for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
    if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
    else if (*p == '\n') fputs("\\n", f);
    else if (*p < 0x20 || *p == 0x7f) fputc('?', f);
    else fputc(*p, f);
  }
}

/* Returns the cluster named s[0..len), or -1. */
static int cluster_find(const dot_clusters *cs, const char *s, size_t len) {
  for (int i = 0; i < cs->n; i++)
    if (strlen(cs->c[i].name) == len && !memcmp(cs->c[i].name, s, len)) return i;
  return -1;
}

/* Returns the cluster of 'scope', adding it and its dotted prefixes as needed;
 * -1 for no scope or out of memory. */
static int cluster_get(dot_clusters *cs, const char *scope) {
  if (!scope) return -1;
  int parent = -1;
  size_t len = strlen(scope);
  for (size_t end = 0; end <= len; end++) {
    if (end < len && scope[end] != '.') continue;
    int k = cluster_find(cs, scope, end);
    if (k < 0) {
      if (cs->n == cs->cap) {
        int cap = cs->cap ? cs->cap * 2 : 16;
        dot_cluster *c = realloc(cs->c, (size_t)cap * sizeof *c);
        if (!c) return -1;
        cs->c = c;
        cs->cap = cap;
      }
      char *name = malloc(end + 1);
      if (!name) return -1;
      memcpy(name, scope, end);
      name[end] = 0;
      cs->c[cs->n].name = name;
      cs->c[cs->n].parent = parent;
      k = cs->n++;
    }
    parent = k;
  }
  return parent;
}

/* Writes the declaration of node i: "n<i> [label=...]". */
static void dot_node(FILE *f, const ir_graph *g, int i, const char *indent) {
  const ir_node *n = g->nodes[i];
  const ir_op_info *info = ir_op_info_get(n->op);
  fprintf(f, "%sn%d [label=\"%%%d %s", indent, i, i, info ? info->name : "invalid_op");
  if (n->op == IR_OP_const) {
    fprintf(f, " %g", n->attrs[0].f);
  } else if (ir_node_name(n)) {
    fputs(" \\\"", f);
    dot_escape(f, ir_node_name(n));
    fputs("\\\"", f);
  }
  char type[160];
  ir_type_format(&n->type, type, sizeof type);
  fputs("\\n", f);
  dot_escape(f, type);
  fputs("\"", f);
  if (info && (info->flags & IR_OPF_SOURCE)) fputs(", style=filled, fillcolor=lightgrey", f);
  fputs("];\n", f);
}

/* Writes cluster k with its nodes and sub-clusters, nested by scope. */
static void dot_cluster_emit(FILE *f, const ir_graph *g, const dot_clusters *cs, const int *node_cluster, int k,
                             int depth) {
  char indent[64];
  int w = depth * 2 + 4 < (int)sizeof indent - 1 ? depth * 2 + 4 : (int)sizeof indent - 1;
  memset(indent, ' ', (size_t)w);
  indent[w] = 0;
  const char *inner = indent, *outer = indent + 2; /* node lines, cluster lines */
  fprintf(f, "%ssubgraph cluster_%d {\n%slabel=\"", outer, k, inner);
  dot_escape(f, cs->c[k].name);
  fputs("\";\n", f);
  for (int i = 0; i < g->nnodes; i++)
    if (node_cluster[i] == k) dot_node(f, g, i, inner);
  for (int c = 0; c < cs->n; c++)
    if (cs->c[c].parent == k) dot_cluster_emit(f, g, cs, node_cluster, c, depth + 1);
  fprintf(f, "%s}\n", outer);
}

/* Returns Graphviz dot text of 'g' (caller frees), or NULL if out of memory. */
char *ir_dot(const ir_graph *g) {
  char *out = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&out, &len);
  if (!f) return NULL;
  dot_clusters cs = {NULL, 0, 0};
  int *node_cluster = malloc((size_t)(g->nnodes ? g->nnodes : 1) * sizeof *node_cluster);
  if (node_cluster)
    for (int i = 0; i < g->nnodes; i++) node_cluster[i] = cluster_get(&cs, g->nodes[i]->loc.scope);
  fputs("digraph \"", f);
  dot_escape(f, g->name);
  fputs("\" {\n  node [shape=box, fontname=\"monospace\"];\n", f);
  for (int i = 0; i < g->nnodes; i++)
    if (!node_cluster || node_cluster[i] < 0) dot_node(f, g, i, "  ");
  for (int c = 0; node_cluster && c < cs.n; c++)
    if (cs.c[c].parent < 0) dot_cluster_emit(f, g, &cs, node_cluster, c, 0);
  for (int i = 0; i < g->nnodes; i++)
    for (int k = 0; k < g->nodes[i]->nin; k++) {
      int src = g->nodes[i]->in[k];
      if (src >= 0 && src < g->nnodes) fprintf(f, "  n%d -> n%d;\n", src, i);
    }
  for (int i = 0; i < g->noutputs; i++) {
    fprintf(f, "  out%d [shape=ellipse, label=\"output \\\"", i);
    dot_escape(f, g->outputs[i].name);
    fputs("\\\"\"];\n", f);
    int src = g->outputs[i].node;
    if (src >= 0 && src < g->nnodes) fprintf(f, "  n%d -> out%d;\n", src, i);
  }
  fputs("}\n", f);
  for (int c = 0; c < cs.n; c++) free(cs.c[c].name);
  free(cs.c);
  free(node_cluster);
  if (fclose(f)) {
    free(out);
    return NULL;
  }
  return out;
}
