/* The IR text printer: one node per line, every attribute in op-table order,
 * floats in their shortest exact form, so that ir_parse reads back exactly
 * the graph that was printed (print(parse(print(g))) == print(g)). The
 * format is described in docs/IR.md. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

/* Writes 's' double-quoted with \" \\ \n \t and \xHH escapes (NULL as ""). */
static void print_string(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
    if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
    else if (*p == '\n') fputs("\\n", f);
    else if (*p == '\t') fputs("\\t", f);
    else if (*p < 0x20 || *p == 0x7f) fprintf(f, "\\x%02x", *p);
    else fputc(*p, f);
  }
  fputc('"', f);
}

/* Writes 'v' as the shortest %.Ng (N = 1..17) that reads back to the same
 * double; inf, -inf and nan (any sign) as such. */
static void print_float(FILE *f, double v) {
  if (isnan(v)) {
    fputs("nan", f);
    return;
  }
  if (isinf(v)) {
    fputs(v < 0 ? "-inf" : "inf", f);
    return;
  }
  char buf[40];
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (strtod(buf, NULL) == v && signbit(strtod(buf, NULL)) == signbit(v)) break;
  }
  fputs(buf, f);
}

/* Writes a location comment text (file or scope) with control bytes shown
 * as '?', since a comment cannot hold them. */
static void print_comment_text(FILE *f, const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, f);
}

/* Writes the type as "f32[4,3,32,32]" (rank clamped to 0..IR_MAX_RANK). */
static void print_type(FILE *f, const ir_type *t) {
  fprintf(f, "%s[", (unsigned)t->dtype <= IR_I64 ? ir_dtype_name(t->dtype) : "f32");
  int rank = t->rank < 0 ? 0 : t->rank > IR_MAX_RANK ? IR_MAX_RANK : t->rank;
  for (int i = 0; i < rank; i++) fprintf(f, i ? ",%lld" : "%lld", (long long)t->dims[i]);
  fputc(']', f);
}

/* Writes one attribute value of kind 'kind'. */
static void print_attr(FILE *f, const ir_attr *a, ir_attr_kind kind) {
  switch (kind) {
  case IR_ATTR_INT: fprintf(f, "%lld", (long long)a->ints[0]); break;
  case IR_ATTR_INTS: {
    int n = a->n < 0 ? 0 : a->n > IR_MAX_INTS ? IR_MAX_INTS : a->n;
    fputc('[', f);
    for (int i = 0; i < n; i++) fprintf(f, i ? ",%lld" : "%lld", (long long)a->ints[i]);
    fputc(']', f);
    break;
  }
  case IR_ATTR_FLOAT: print_float(f, a->f); break;
  case IR_ATTR_STR: print_string(f, a->s); break;
  }
}

/* Writes the "  # file:line in scope" location comment of 'loc', if any. */
static void print_loc(FILE *f, const ir_loc *loc) {
  if (!loc->file && !loc->scope) return;
  fputs("  #", f);
  if (loc->file) {
    fputc(' ', f);
    print_comment_text(f, loc->file);
    fprintf(f, ":%d", loc->line);
  }
  if (loc->scope) {
    fputs(" in ", f);
    print_comment_text(f, loc->scope);
  }
}

/* Writes node number 'i' of 'g' as one line. */
static void print_node(FILE *f, const ir_graph *g, int i) {
  const ir_node *n = g->nodes[i];
  const ir_op_info *info = ir_op_info_get(n->op);
  fprintf(f, "  %%%d = %s", i, info ? info->name : "invalid_op");
  if (n->nin > 0) {
    fputc('(', f);
    for (int k = 0; k < n->nin; k++) fprintf(f, k ? ", %%%d" : "%%%d", n->in[k]);
    fputc(')', f);
  }
  for (int a = 0; info && a < info->nattrs; a++) {
    fprintf(f, " %s=", info->attrs[a].name);
    print_attr(f, &n->attrs[a], info->attrs[a].kind);
  }
  fputs(" : ", f);
  print_type(f, &n->type);
  print_loc(f, &n->loc);
  fputc('\n', f);
}

/* Returns the text form of 'g' (caller frees), or NULL if out of memory. */
char *ir_print(const ir_graph *g) {
  char *out = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&out, &len);
  if (!f) return NULL;
  /* The graph name keeps to [A-Za-z0-9_.]; anything else prints as '_'. */
  fputs("graph @", f);
  const char *name = g->name && g->name[0] ? g->name : "main";
  for (const char *p = name; *p; p++) {
    int ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
             *p == '_' || *p == '.';
    fputc(ok ? *p : '_', f);
  }
  fputs(" {\n", f);
  for (int i = 0; i < g->nnodes; i++) print_node(f, g, i);
  for (int i = 0; i < g->noutputs; i++) {
    fputs("  output ", f);
    print_string(f, g->outputs[i].name);
    fprintf(f, " = %%%d\n", g->outputs[i].node);
  }
  fputs("}\n", f);
  if (fclose(f)) {
    free(out);
    return NULL;
  }
  return out;
}
