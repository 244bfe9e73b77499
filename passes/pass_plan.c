/* Memory planning: liveness of every node's buffer over the scheduled graph
 * (graph order is the schedule) and offsets in one arena, reusing the space
 * of buffers that are dead. Sources and outputs live for the whole run;
 * a reshape shares its operand's buffer and extends its lifetime. Buffers
 * are placed largest first at the lowest offset that overlaps no placed
 * buffer whose lifetime intersects theirs (the greedy-by-size heuristic of
 * TFLite's and MNN's planners). With fusion groups (pass_fuse), members
 * that are not group outputs get no buffer and every member is scheduled at
 * its group's last member. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "passes.h"

enum { ALIGN = 64 };

static int64_t align_up(int64_t x) { return (x + ALIGN - 1) / ALIGN * ALIGN; }

/* 1 if node 'n' shares its operand's storage. */
int pass_plan_is_alias(const ir_node *n) { return n->op == IR_OP_reshape; }

/* 1 if node 'id' is a member of a fusion group of 'f' (may be NULL). */
static int in_group(const pass_fusion *f, int id) { return f && f->group_of[id] >= 0; }

/* The node that owns the storage of node 'id' (a group member is never an
 * alias: it is computed by its group's kernel). */
static int owner(const ir_graph *g, const pass_fusion *f, int id) {
  while (!in_group(f, id) && pass_plan_is_alias(g->nodes[id])) id = g->nodes[id]->in[0];
  return id;
}

/* Position of node 'id' in the schedule: its group's last member if fused. */
static int position(const pass_fusion *f, int id) {
  if (!in_group(f, id)) return id;
  const pass_fuse_group *gr = &f->groups[f->group_of[id]];
  return pass_fuse_last(gr);
}

/* 1 if 'id' is a group member that is not among its group's outputs. */
static int is_internal(const pass_fusion *f, int id) {
  if (!in_group(f, id)) return 0;
  const pass_fuse_group *gr = &f->groups[f->group_of[id]];
  for (int k = 0; k < gr->nouts; k++)
    if (gr->outs[k] == id) return 0;
  return 1;
}

/* Sort order: larger buffers first, then earlier definitions. */
static const pass_memory_plan *sort_plan;
static int by_size(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  int64_t sx = sort_plan->size[x], sy = sort_plan->size[y];
  if (sx != sy) return sx > sy ? -1 : 1;
  return x - y;
}

/* Interval order: by start offset. */
static int by_start(const void *a, const void *b) {
  int64_t x = ((const int64_t *)a)[0], y = ((const int64_t *)b)[0];
  return x < y ? -1 : x > y;
}

/* Allocates the arrays of 'p' for 'n' nodes. */
static int plan_alloc(pass_memory_plan *p, int n) {
  memset(p, 0, sizeof *p);
  p->nnodes = n;
  p->offset = calloc((size_t)n + 1, sizeof *p->offset);
  p->size = calloc((size_t)n + 1, sizeof *p->size);
  p->first = calloc((size_t)n + 1, sizeof *p->first);
  p->last = calloc((size_t)n + 1, sizeof *p->last);
  p->owner = calloc((size_t)n + 1, sizeof *p->owner);
  return p->offset && p->size && p->first && p->last && p->owner ? 0 : -1;
}

/* Computes lifetimes: first = defining position (0 for sources, whose
 * values exist before the run), last = last use (n for pinned buffers:
 * sources, constants and outputs). */
static void lifetimes(const ir_graph *g, const pass_fusion *f, pass_memory_plan *p, int reuse) {
  int n = g->nnodes;
  for (int i = 0; i < n; i++) {
    const ir_node *nd = g->nodes[i];
    p->owner[i] = owner(g, f, i);
    p->first[i] = position(f, i);
    p->last[i] = position(f, i);
    p->size[i] = p->owner[i] != i || is_internal(f, i)
                     ? 0
                     : align_up(ir_type_numel(&nd->type) * (int64_t)ir_dtype_size(nd->type.dtype));
    /* sources hold their values before the run starts: live throughout */
    if (ir_op_info_get(nd->op)->flags & IR_OPF_SOURCE) p->first[i] = 0;
    if (!reuse || (ir_op_info_get(nd->op)->flags & IR_OPF_SOURCE)) p->last[i] = n;
  }
  for (int i = 0; i < n; i++) {
    const ir_node *nd = g->nodes[i];
    int at = position(f, i);
    for (int k = 0; k < nd->nin; k++) {
      int o = p->owner[nd->in[k]];
      if (p->last[o] < at) p->last[o] = at;
    }
    if (p->owner[i] != i && p->last[p->owner[i]] < at) p->last[p->owner[i]] = at;
  }
  for (int i = 0; i < g->noutputs; i++) p->last[p->owner[g->outputs[i].node]] = n;
}

/* Places every owning buffer; returns 0 or -1 (out of memory). */
static int place(pass_memory_plan *p) {
  int n = p->nnodes, count = 0;
  int *order = malloc(((size_t)n + 1) * sizeof *order);
  int *placed = malloc(((size_t)n + 1) * sizeof *placed);
  int64_t (*busy)[2] = malloc(((size_t)n + 1) * sizeof *busy);
  if (!order || !placed || !busy) {
    free(order);
    free(placed);
    free(busy);
    return -1;
  }
  for (int i = 0; i < n; i++)
    if (p->owner[i] == i && p->size[i] > 0) order[count++] = i;
  sort_plan = p;
  qsort(order, (size_t)count, sizeof *order, by_size);
  int nplaced = 0;
  for (int k = 0; k < count; k++) {
    int b = order[k], nbusy = 0;
    for (int j = 0; j < nplaced; j++) {
      int o = placed[j];
      if (p->first[o] <= p->last[b] && p->first[b] <= p->last[o]) {
        busy[nbusy][0] = p->offset[o];
        busy[nbusy][1] = p->offset[o] + p->size[o];
        nbusy++;
      }
    }
    /* lowest gap that fits: scan the busy intervals in offset order */
    qsort(busy, (size_t)nbusy, sizeof *busy, by_start);
    int64_t at = 0;
    for (int j = 0; j < nbusy && busy[j][0] < at + p->size[b]; j++)
      if (busy[j][1] > at) at = busy[j][1];
    p->offset[b] = at;
    if (at + p->size[b] > p->arena_bytes) p->arena_bytes = at + p->size[b];
    placed[nplaced++] = b;
  }
  for (int i = 0; i < n; i++) {
    p->total_bytes += p->owner[i] == i ? p->size[i] : 0;
    if (p->owner[i] != i) p->offset[i] = p->offset[p->owner[i]];
  }
  free(order);
  free(placed);
  free(busy);
  return 0;
}

/* Plans the buffers of 'g'. */
attnc_status pass_plan_memory(const ir_graph *g, int reuse, pass_memory_plan *p, ir_diag *d) {
  return pass_plan_memory_fused(g, NULL, reuse, p, d);
}

/* Plans the buffers of 'g' with fusion groups 'f' (may be NULL). */
attnc_status pass_plan_memory_fused(const ir_graph *g, const pass_fusion *f, int reuse,
                                    pass_memory_plan *p, ir_diag *d) {
  if (plan_alloc(p, g->nnodes) || (lifetimes(g, f, p, reuse), place(p))) {
    pass_memory_plan_free(p);
    ir_diag_error(d, NULL, 0, "out of memory planning buffers");
    return ATTNC_ENOMEM;
  }
  return ATTNC_OK;
}

/* Frees the arrays of 'p'. */
void pass_memory_plan_free(pass_memory_plan *p) {
  free(p->offset);
  free(p->size);
  free(p->first);
  free(p->last);
  free(p->owner);
  memset(p, 0, sizeof *p);
}

/* Appends printf-formatted text to a growing buffer. */
static int appendf(char **buf, size_t *len, size_t *cap, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int appendf(char **buf, size_t *len, size_t *cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int w = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (*len + (size_t)w + 1 > *cap) {
    size_t nc = (*cap + (size_t)w + 1) * 2;
    char *nb = realloc(*buf, nc);
    if (!nb) return -1;
    *buf = nb;
    *cap = nc;
  }
  va_start(ap, fmt);
  vsnprintf(*buf + *len, *cap - *len, fmt, ap);
  va_end(ap);
  *len += (size_t)w;
  return 0;
}

/* Text form of the plan: one line per node with its buffer. */
char *pass_memory_plan_print(const ir_graph *g, const pass_memory_plan *p) {
  size_t len = 0, cap = 0;
  char *buf = NULL;
  int err = appendf(&buf, &len, &cap,
                    "# memory plan of @%s: arena %lld bytes (%.1f MiB), %lld bytes without reuse (%.1f MiB)\n"
                    "# %%id op type: offset size live [first, last] ('-' = shares the buffer of %%owner, or none: "
                    "inside a fused kernel; last = %d: kept to the end)\n",
                    g->name ? g->name : "", (long long)p->arena_bytes, (double)p->arena_bytes / 1048576.0,
                    (long long)p->total_bytes, (double)p->total_bytes / 1048576.0, g->nnodes);
  for (int i = 0; !err && i < g->nnodes; i++) {
    const ir_node *n = g->nodes[i];
    char ty[128];
    ir_type_format(&n->type, ty, sizeof ty);
    const char *name = ir_node_name(n);
    if (p->owner[i] != i)
      err = appendf(&buf, &len, &cap, "%%%d %s %s: - shares %%%d\n", n->id, ir_op_info_get(n->op)->name, ty,
                    g->nodes[p->owner[i]]->id);
    else if (p->size[i] == 0)
      err = appendf(&buf, &len, &cap, "%%%d %s %s: - no buffer (inside its fused kernel)\n", n->id,
                    ir_op_info_get(n->op)->name, ty);
    else
      err = appendf(&buf, &len, &cap, "%%%d %s%s%s%s %s: offset %lld size %lld live [%d, %d]\n", n->id,
                    ir_op_info_get(n->op)->name, name ? " \"" : "", name ? name : "", name ? "\"" : "", ty,
                    (long long)p->offset[i], (long long)p->size[i], p->first[i], p->last[i]);
  }
  if (err) {
    free(buf);
    return NULL;
  }
  return buf;
}
