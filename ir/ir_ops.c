/* The op table: rows from ops.def, with their attribute specs parsed once. */
#include <stdlib.h>
#include <string.h>

#include "ir.h"

typedef struct {
  const char *name;
  int min_in, max_in;
  unsigned flags;
  const char *attrs;
} op_row;

static const op_row rows[IR_OP_COUNT] = {
#define IR_OP(name, mi, ma, fl, at) {#name, mi, ma, fl, at},
#include "ops.def"
#undef IR_OP
};

static ir_op_info infos[IR_OP_COUNT];
static int ready;

/* Parses one "name:kind[=default]" item into *s; aborts on a table typo. */
static void parse_attr_spec(const char *item, size_t len, ir_attr_spec *s) {
  char buf[128];
  if (len >= sizeof buf) abort();
  memcpy(buf, item, len);
  buf[len] = 0;
  char *colon = strchr(buf, ':');
  if (!colon) abort();
  *colon = 0;
  if (strlen(buf) >= sizeof s->name) abort();
  strcpy(s->name, buf);
  char *kind = colon + 1;
  char *eq = strchr(kind, '=');
  if (eq) *eq = 0;
  if (!strcmp(kind, "int")) s->kind = IR_ATTR_INT;
  else if (!strcmp(kind, "ints")) s->kind = IR_ATTR_INTS;
  else if (!strcmp(kind, "float")) s->kind = IR_ATTR_FLOAT;
  else if (!strcmp(kind, "str")) s->kind = IR_ATTR_STR;
  else abort();
  if (!eq) return;
  s->has_default = 1;
  char *v = eq + 1;
  if (s->kind == IR_ATTR_FLOAT) {
    s->f = strtod(v, NULL);
  } else if (s->kind == IR_ATTR_INT) {
    s->ints[0] = strtoll(v, NULL, 10);
    s->n = 1;
  } else if (s->kind == IR_ATTR_INTS) {
    while (*v && s->n < IR_MAX_INTS) {
      s->ints[s->n++] = strtoll(v, &v, 10);
      if (*v == ',') v++;
    }
  }
}

/* Builds the info table from the rows on first use. */
static void init_table(void) {
  for (int op = 0; op < IR_OP_COUNT; op++) {
    ir_op_info *in = &infos[op];
    in->name = rows[op].name;
    in->min_in = rows[op].min_in;
    in->max_in = rows[op].max_in;
    in->flags = rows[op].flags;
    const char *p = rows[op].attrs;
    while (*p) {
      const char *end = strchr(p, ';');
      size_t len = end ? (size_t)(end - p) : strlen(p);
      if (in->nattrs == IR_MAX_ATTRS) abort();
      parse_attr_spec(p, len, &in->attrs[in->nattrs++]);
      p += len;
      if (*p == ';') p++;
    }
  }
  ready = 1;
}

/* Returns the table row of 'op'. */
const ir_op_info *ir_op_info_get(ir_opcode op) {
  if (!ready) init_table();
  if ((int)op < 0 || op >= IR_OP_COUNT) return NULL;
  return &infos[op];
}

/* 1 if 'op' is elementwise (unary, binary or any-arity broadcast). */
int ir_op_elementwise(ir_opcode op) {
  return (ir_op_info_get(op)->flags & (IR_OPF_UNARY | IR_OPF_BINARY | IR_OPF_ELEMENTWISE)) != 0;
}

/* 1 if 'op' is a source node. */
int ir_op_source(ir_opcode op) { return (ir_op_info_get(op)->flags & IR_OPF_SOURCE) != 0; }

/* Returns the op named 'name', or -1. */
int ir_op_lookup(const char *name) {
  for (int op = 0; op < IR_OP_COUNT; op++)
    if (!strcmp(rows[op].name, name)) return op;
  return -1;
}

/* Returns the slot of attribute 'name' of 'op', or -1. */
int ir_op_attr_index(ir_opcode op, const char *name) {
  const ir_op_info *in = ir_op_info_get(op);
  if (!in) return -1;
  for (int i = 0; i < in->nattrs; i++)
    if (!strcmp(in->attrs[i].name, name)) return i;
  return -1;
}
