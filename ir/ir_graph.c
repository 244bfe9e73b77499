/* Graphs and nodes: creation, ownership, attributes, copying. */
#include <stdlib.h>
#include <string.h>

#include "ir.h"

/* Aborts on out-of-memory in the graph core: callers cannot recover a
 * half-built graph, and allocation here is tiny. */
static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) abort();
  return q;
}

static char *xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = xrealloc(NULL, n);
  memcpy(d, s, n);
  return d;
}

/* Creates an empty graph named 'name'. */
ir_graph *ir_graph_create(const char *name) {
  ir_graph *g = xrealloc(NULL, sizeof *g);
  memset(g, 0, sizeof *g);
  g->name = xstrdup(name ? name : "main");
  return g;
}

/* Frees one node and what it owns. */
static void node_free(ir_node *n) {
  if (!n) return;
  for (int i = 0; i < IR_MAX_ATTRS; i++) free(n->attrs[i].s);
  free(n->in);
  free(n);
}

/* Frees 'g' and all its nodes. */
void ir_graph_destroy(ir_graph *g) {
  if (!g) return;
  for (int i = 0; i < g->nnodes; i++) node_free(g->nodes[i]);
  free(g->nodes);
  for (int i = 0; i < g->noutputs; i++) free(g->outputs[i].name);
  free(g->outputs);
  for (int i = 0; i < g->nfiles; i++) free(g->files[i]);
  free(g->files);
  free(g->name);
  free(g);
}

/* Returns 's' interned in 'g' (NULL stays NULL). */
const char *ir_graph_intern(ir_graph *g, const char *s) {
  if (!s) return NULL;
  for (int i = 0; i < g->nfiles; i++)
    if (!strcmp(g->files[i], s)) return g->files[i];
  g->files = xrealloc(g->files, (size_t)(g->nfiles + 1) * sizeof *g->files);
  g->files[g->nfiles] = xstrdup(s);
  return g->files[g->nfiles++];
}

/* Returns a location whose file name and scope are interned in 'g'. */
ir_loc ir_graph_loc(ir_graph *g, const char *file, int line, const char *scope) {
  ir_loc l = {ir_graph_intern(g, file), line, ir_graph_intern(g, scope)};
  return l;
}

/* Sets the attribute slots of 'n' to the defaults of its op. */
static void set_defaults(ir_node *n) {
  const ir_op_info *info = ir_op_info_get(n->op);
  for (int i = 0; i < info->nattrs; i++) {
    const ir_attr_spec *s = &info->attrs[i];
    ir_attr *a = &n->attrs[i];
    if (!s->has_default) continue;
    a->set = 1;
    a->n = s->n;
    memcpy(a->ints, s->ints, sizeof a->ints);
    a->f = s->f;
  }
}

/* Appends a node of 'op' with operands 'in'. */
ir_node *ir_graph_append(ir_graph *g, ir_opcode op, const int *in, int nin, ir_loc loc) {
  ir_node *n = xrealloc(NULL, sizeof *n);
  memset(n, 0, sizeof *n);
  n->op = op;
  n->id = g->nnodes;
  n->nin = nin;
  n->in = xrealloc(NULL, (size_t)(nin > 0 ? nin : 1) * sizeof(int));
  if (nin > 0) memcpy(n->in, in, (size_t)nin * sizeof(int));
  loc = ir_graph_loc(g, loc.file, loc.line, loc.scope);
  n->loc = loc;
  set_defaults(n);
  if (g->nnodes == g->cap) {
    g->cap = g->cap ? g->cap * 2 : 64;
    g->nodes = xrealloc(g->nodes, (size_t)g->cap * sizeof *g->nodes);
  }
  g->nodes[g->nnodes++] = n;
  return n;
}

/* Appends a source node: input/param/buffer named 'name', or const 'value'. */
ir_node *ir_graph_source(ir_graph *g, ir_opcode op, const char *name, double value,
                         ir_type type, ir_loc loc) {
  ir_node *n = ir_graph_append(g, op, NULL, 0, loc);
  if (op == IR_OP_const)
    ir_set_float(n, "value", value);
  else
    ir_set_str(n, "name", name ? name : "");
  n->type = type;
  return n;
}

/* Adds output 'name' = node 'id'. */
void ir_graph_add_output(ir_graph *g, const char *name, int id) {
  if (g->noutputs == g->outcap) {
    g->outcap = g->outcap ? g->outcap * 2 : 8;
    g->outputs = xrealloc(g->outputs, (size_t)g->outcap * sizeof *g->outputs);
  }
  g->outputs[g->noutputs].name = xstrdup(name);
  g->outputs[g->noutputs].node = id;
  g->noutputs++;
}

/* Returns the first source node of kind 'op' named 'name', or NULL. */
ir_node *ir_graph_find_source(const ir_graph *g, ir_opcode op, const char *name) {
  for (int i = 0; i < g->nnodes; i++) {
    ir_node *n = g->nodes[i];
    if (n->op == op && n->attrs[0].s && !strcmp(n->attrs[0].s, name)) return n;
  }
  return NULL;
}

/* Returns a deep copy of 'g'. */
ir_graph *ir_graph_clone(const ir_graph *g) {
  ir_graph *c = ir_graph_create(g->name);
  for (int i = 0; i < g->nnodes; i++) ir_graph_copy_node(c, g->nodes[i], g->nodes[i]->in);
  for (int i = 0; i < g->noutputs; i++) ir_graph_add_output(c, g->outputs[i].name, g->outputs[i].node);
  return c;
}

/* Appends a copy of 'n' with operands 'in'. */
ir_node *ir_graph_copy_node(ir_graph *g, const ir_node *n, const int *in) {
  ir_node *m = ir_graph_append(g, n->op, in, n->nin, n->loc);
  m->type = n->type;
  for (int a = 0; a < IR_MAX_ATTRS; a++) {
    m->attrs[a] = n->attrs[a];
    m->attrs[a].s = n->attrs[a].s ? xstrdup(n->attrs[a].s) : NULL;
  }
  return m;
}

/* Moves the contents of 'from' into 'g' and destroys 'from'. */
void ir_graph_take(ir_graph *g, ir_graph *from) {
  ir_graph tmp = *g;
  *g = *from;
  *from = tmp;
  ir_graph_destroy(from);
}

/* Returns the slot of 'name' on n if it has 'kind', else -1. */
static int slot(const ir_node *n, const char *name, ir_attr_kind kind) {
  int i = ir_op_attr_index(n->op, name);
  if (i < 0 || ir_op_info_get(n->op)->attrs[i].kind != kind) return -1;
  return i;
}

/* Sets an int attribute. */
int ir_set_int(ir_node *n, const char *name, int64_t v) {
  int i = slot(n, name, IR_ATTR_INT);
  if (i < 0) return -1;
  n->attrs[i].set = 1;
  n->attrs[i].n = 1;
  n->attrs[i].ints[0] = v;
  return 0;
}

/* Sets an ints attribute (at most IR_MAX_INTS values). */
int ir_set_ints(ir_node *n, const char *name, const int64_t *v, int count) {
  int i = slot(n, name, IR_ATTR_INTS);
  if (i < 0 || count < 0 || count > IR_MAX_INTS) return -1;
  n->attrs[i].set = 1;
  n->attrs[i].n = count;
  if (count) memcpy(n->attrs[i].ints, v, (size_t)count * sizeof *v);
  return 0;
}

/* Sets a float attribute. */
int ir_set_float(ir_node *n, const char *name, double v) {
  int i = slot(n, name, IR_ATTR_FLOAT);
  if (i < 0) return -1;
  n->attrs[i].set = 1;
  n->attrs[i].f = v;
  return 0;
}

/* Sets a string attribute (copied). */
int ir_set_str(ir_node *n, const char *name, const char *v) {
  int i = slot(n, name, IR_ATTR_STR);
  if (i < 0) return -1;
  free(n->attrs[i].s);
  n->attrs[i].s = xstrdup(v);
  n->attrs[i].set = 1;
  return 0;
}

/* Returns an int attribute, or 0 if absent. */
int64_t ir_get_int(const ir_node *n, const char *name) {
  int i = slot(n, name, IR_ATTR_INT);
  return i < 0 ? 0 : n->attrs[i].ints[0];
}

/* Returns an ints attribute and its count, or NULL and 0 if absent. */
const int64_t *ir_get_ints(const ir_node *n, const char *name, int *count) {
  int i = slot(n, name, IR_ATTR_INTS);
  if (i < 0) {
    if (count) *count = 0;
    return NULL;
  }
  if (count) *count = n->attrs[i].n;
  return n->attrs[i].ints;
}

/* Returns a float attribute, or 0 if absent. */
double ir_get_float(const ir_node *n, const char *name) {
  int i = slot(n, name, IR_ATTR_FLOAT);
  return i < 0 ? 0.0 : n->attrs[i].f;
}

/* Returns a string attribute, or NULL if absent. */
const char *ir_get_str(const ir_node *n, const char *name) {
  int i = slot(n, name, IR_ATTR_STR);
  return i < 0 ? NULL : n->attrs[i].s;
}

/* Returns the name of a source node (input/param/buffer), or NULL. */
const char *ir_node_name(const ir_node *n) {
  if (n->op == IR_OP_input || n->op == IR_OP_param || n->op == IR_OP_buffer) return n->attrs[0].s;
  return NULL;
}
