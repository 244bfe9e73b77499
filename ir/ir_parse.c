/* The IR text parser: reads the form ir_print writes (docs/IR.md) line by
 * line. Value names may be any %[A-Za-z0-9_.]+ and may be used before their
 * definition; they are resolved after the last line. Every malformed line
 * is reported as "file:line:col: message" and parsing goes on with the next
 * line, so one run reports the first error of each bad line. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

/* A defined value name: where its text is and which node it names (-1 when
 * its line failed to parse). */
typedef struct {
  const char *s;
  int len;
  int node;
  int line;
} name_entry;

/* A use of a value name, resolved after the last line: operand 'slot' of
 * node 'node', or output number 'slot' when node is -1. */
typedef struct {
  const char *s;
  int len;
  int line, col;
  int node, slot;
} name_use;

typedef struct {
  const char *file;
  ir_diag *d;
  int errors;
  int line;              /* current line number, 1-based */
  const char *ls, *le;   /* current line, without its '\n' or "\r\n" */
  const char *p;         /* cursor in the current line */
  ir_graph *g;
  name_entry *names;     /* open-addressing hash table */
  int ncap, ncount;
  name_use *uses;
  int nuses, usecap;
} parser;

/* Aborts on out-of-memory, like the graph core it feeds. */
static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) abort();
  return q;
}

/* Returns a NUL-terminated copy of s[0..len). */
static char *xstrndup(const char *s, size_t len) {
  char *d = xrealloc(NULL, len + 1);
  memcpy(d, s, len);
  d[len] = 0;
  return d;
}

/* Reports an error at line:col; returns -1. */
static int perr_at(parser *P, int line, int col, const char *fmt, va_list ap) {
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  ir_diag_error(P->d, NULL, 0, "%s:%d:%d: %s", P->file ? P->file : "<input>", line, col, msg);
  P->errors++;
  return -1;
}

/* Reports an error at column 'at' of the current line; returns -1. */
static int perr(parser *P, const char *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int perr(parser *P, const char *at, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  perr_at(P, P->line, (int)(at - P->ls) + 1, fmt, ap);
  va_end(ap);
  return -1;
}

/* Reports an error at line:col; returns -1. */
static int perr_line(parser *P, int line, int col, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int perr_line(parser *P, int line, int col, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  perr_at(P, line, col, fmt, ap);
  va_end(ap);
  return -1;
}

/* ---- value names ---- */

static unsigned hash_name(const char *s, int len) {
  unsigned h = 2166136261u;
  for (int i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h;
}

/* Returns the entry of name s[0..len), or NULL. */
static name_entry *name_find(parser *P, const char *s, int len) {
  if (!P->ncap) return NULL;
  for (unsigned i = hash_name(s, len) & (unsigned)(P->ncap - 1);; i = (i + 1) & (unsigned)(P->ncap - 1)) {
    name_entry *e = &P->names[i];
    if (!e->s) return NULL;
    if (e->len == len && !memcmp(e->s, s, (size_t)len)) return e;
  }
}

/* Stores entry 'e' in the first free slot of its probe sequence. */
static void name_insert(parser *P, name_entry e) {
  unsigned i = hash_name(e.s, e.len) & (unsigned)(P->ncap - 1);
  while (P->names[i].s) i = (i + 1) & (unsigned)(P->ncap - 1);
  P->names[i] = e;
}

/* Adds name s[0..len) (not yet present) naming 'node'. */
static void name_add(parser *P, const char *s, int len, int node) {
  if (2 * (P->ncount + 1) > P->ncap) {
    name_entry *old = P->names;
    int oldcap = P->ncap;
    P->ncap = oldcap ? oldcap * 2 : 64;
    P->names = xrealloc(NULL, (size_t)P->ncap * sizeof *P->names);
    memset(P->names, 0, (size_t)P->ncap * sizeof *P->names);
    for (int i = 0; i < oldcap; i++)
      if (old[i].s) name_insert(P, old[i]);
    free(old);
  }
  name_entry e = {s, len, node, P->line};
  name_insert(P, e);
  P->ncount++;
}

/* Records a use of a value name, to resolve after the last line. */
static void use_add(parser *P, const char *s, int len, const char *at, int node, int slot) {
  if (P->nuses == P->usecap) {
    P->usecap = P->usecap ? P->usecap * 2 : 64;
    P->uses = xrealloc(P->uses, (size_t)P->usecap * sizeof *P->uses);
  }
  name_use u = {s, len, P->line, (int)(at - P->ls) + 1, node, slot};
  P->uses[P->nuses++] = u;
}

/* ---- lexing within the current line ---- */

static int is_ident_start(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_ident(int c) { return is_ident_start(c) || is_digit(c); }
static int is_name_char(int c) { return is_ident(c) || c == '.'; }

static void skip_ws(parser *P) {
  while (P->p < P->le && (*P->p == ' ' || *P->p == '\t')) P->p++;
}

/* Returns 1 if only blanks and a comment remain on the line. */
static int at_line_end(parser *P) {
  skip_ws(P);
  return P->p == P->le || *P->p == '#';
}

/* Reports what was found at the cursor instead of 'wanted'; returns -1. */
static int unexpected(parser *P, const char *wanted) {
  if (P->p == P->le || *P->p == '#') return perr(P, P->p, "expected %s at end of line", wanted);
  unsigned char c = (unsigned char)*P->p;
  if (c < 0x20 || c >= 0x7f) return perr(P, P->p, "unexpected byte 0x%02x, expected %s", c, wanted);
  return perr(P, P->p, "unexpected '%c', expected %s", c, wanted);
}

/* Skips blanks and consumes character 'c', or reports it missing. */
static int expect_char(parser *P, char c, const char *wanted) {
  skip_ws(P);
  if (P->p < P->le && *P->p == c) {
    P->p++;
    return 0;
  }
  return unexpected(P, wanted);
}

/* Reads an identifier into *s and *len, or reports 'wanted'. */
static int lex_ident(parser *P, const char **s, int *len, const char *wanted) {
  skip_ws(P);
  if (P->p == P->le || !is_ident_start((unsigned char)*P->p)) return unexpected(P, wanted);
  *s = P->p;
  while (P->p < P->le && is_ident((unsigned char)*P->p)) P->p++;
  *len = (int)(P->p - *s);
  return 0;
}

/* Reads a value name "%[A-Za-z0-9_.]+" into *s and *len (without the '%'). */
static int lex_value_name(parser *P, const char **s, int *len) {
  skip_ws(P);
  if (P->p == P->le || *P->p != '%') return unexpected(P, "a value name like %0");
  const char *at = P->p++;
  *s = P->p;
  while (P->p < P->le && is_name_char((unsigned char)*P->p)) P->p++;
  *len = (int)(P->p - *s);
  if (!*len) return perr(P, at, "empty value name after '%%'");
  return 0;
}

/* Reads a decimal int64 (optional '-') into *v. */
static int lex_int(parser *P, int64_t *v) {
  skip_ws(P);
  const char *at = P->p;
  int neg = P->p < P->le && *P->p == '-';
  if (neg) P->p++;
  if (P->p == P->le || !is_digit((unsigned char)*P->p)) {
    P->p = at;
    return unexpected(P, "an integer");
  }
  uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, u = 0;
  int overflow = 0;
  while (P->p < P->le && is_digit((unsigned char)*P->p)) {
    unsigned dgt = (unsigned)(*P->p++ - '0');
    if (u > (limit - dgt) / 10) overflow = 1;
    else u = u * 10 + dgt;
  }
  if (P->p < P->le && (is_name_char((unsigned char)*P->p) || *P->p == '+' || *P->p == '-'))
    return perr(P, at, "expected an integer");
  if (overflow) return perr(P, at, "integer out of range");
  *v = neg ? (int64_t)(0 - u) : (int64_t)u;
  return 0;
}

/* Reads a float: decimal/scientific notation, inf, -inf or nan. */
static int lex_float(parser *P, double *v) {
  skip_ws(P);
  const char *at = P->p, *q = P->p;
  if (q < P->le && (*q == '-' || *q == '+')) q++;
  if (P->le - q >= 3 && (!strncmp(q, "inf", 3) || !strncmp(q, "nan", 3)) &&
      (P->le - q == 3 || !is_name_char((unsigned char)q[3]))) {
    *v = q[0] == 'n' ? NAN : *at == '-' ? -INFINITY : INFINITY;
    P->p = q + 3;
    return 0;
  }
  int digits = 0;
  while (q < P->le && is_digit((unsigned char)*q)) q++, digits++;
  if (q < P->le && *q == '.') q++;
  while (q < P->le && is_digit((unsigned char)*q)) q++, digits++;
  if (!digits) return unexpected(P, "a number");
  if (q < P->le && (*q == 'e' || *q == 'E')) {
    q++;
    if (q < P->le && (*q == '-' || *q == '+')) q++;
    if (q == P->le || !is_digit((unsigned char)*q)) return perr(P, at, "malformed exponent");
    while (q < P->le && is_digit((unsigned char)*q)) q++;
  }
  if (q < P->le && (is_name_char((unsigned char)*q) || *q == '+' || *q == '-')) return perr(P, at, "malformed number");
  char *buf = xstrndup(at, (size_t)(q - at));
  errno = 0;
  *v = strtod(buf, NULL);
  int range = errno == ERANGE && isinf(*v);
  free(buf);
  if (range) return perr(P, at, "number out of range");
  P->p = q;
  return 0;
}

/* Returns the value 0..15 of hex digit c, or -1. */
static int hex_value(int c) {
  if (is_digit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Reads a double-quoted string with \" \\ \n \t \xHH escapes into a new
 * string *out (caller frees). */
static int lex_string(parser *P, char **out) {
  skip_ws(P);
  if (P->p == P->le || *P->p != '"') return unexpected(P, "a string");
  const char *at = P->p++;
  char *s = xrealloc(NULL, (size_t)(P->le - P->p) + 1);
  size_t n = 0;
  for (;;) {
    if (P->p == P->le) {
      free(s);
      return perr(P, at, "unterminated string");
    }
    unsigned char c = (unsigned char)*P->p;
    if (c == '"') break;
    if (c < 0x20 || c == 0x7f) {
      free(s);
      return perr(P, P->p, "control byte 0x%02x in a string (write it as \\x%02x)", c, c);
    }
    if (c != '\\') {
      s[n++] = (char)c;
      P->p++;
      continue;
    }
    const char *esc = P->p++;
    char e = P->p < P->le ? *P->p++ : 0;
    if (e == '"' || e == '\\') s[n++] = e;
    else if (e == 'n') s[n++] = '\n';
    else if (e == 't') s[n++] = '\t';
    else if (e == 'x' && P->le - P->p >= 2 && hex_value((unsigned char)P->p[0]) >= 0 &&
             hex_value((unsigned char)P->p[1]) >= 0) {
      int b = hex_value((unsigned char)P->p[0]) * 16 + hex_value((unsigned char)P->p[1]);
      P->p += 2;
      if (!b) {
        free(s);
        return perr(P, esc, "NUL byte in a string");
      }
      s[n++] = (char)b;
    } else {
      free(s);
      return perr(P, esc, "bad escape in a string (use \\\" \\\\ \\n \\t or \\xHH)");
    }
  }
  P->p++;
  s[n] = 0;
  *out = s;
  return 0;
}

/* Reads the rest of an int list after its '[' up to and including ']' into
 * v[0..*n). 'attr' names the attribute, or is NULL for the dims of a type
 * (which must be >= 0 and at most IR_MAX_RANK). */
static int lex_int_list(parser *P, int64_t *v, int *n, const char *attr) {
  int max = attr ? IR_MAX_INTS : IR_MAX_RANK;
  skip_ws(P);
  *n = 0;
  if (P->p < P->le && *P->p == ']') {
    P->p++;
    return 0;
  }
  for (;;) {
    skip_ws(P);
    const char *at = P->p;
    int64_t x;
    if (lex_int(P, &x)) return -1;
    if (!attr && x < 0) return perr(P, at, "negative dimension %lld", (long long)x);
    if (*n == max && attr) return perr(P, at, "more than %d ints in attribute '%s'", max, attr);
    if (*n == max) return perr(P, at, "rank exceeds %d", max);
    v[(*n)++] = x;
    skip_ws(P);
    if (P->p < P->le && *P->p == ']') break;
    if (expect_char(P, ',', "',' or ']'")) return -1;
  }
  P->p++;
  return 0;
}

/* Reads a type "f32[4,3,32,32]" into *t. */
static int lex_type(parser *P, ir_type *t) {
  const char *s;
  int len;
  if (lex_ident(P, &s, &len, "a type like f32[4,3]")) return -1;
  char name[8];
  if (len >= (int)sizeof name) return perr(P, s, "unknown dtype '%.*s'", len > 32 ? 32 : len, s);
  memcpy(name, s, (size_t)len);
  name[len] = 0;
  memset(t, 0, sizeof *t);
  if (ir_dtype_parse(name, &t->dtype)) return perr(P, s, "unknown dtype '%s' (f32, f64 or i64)", name);
  if (P->p == P->le || *P->p != '[') return unexpected(P, "'[' after the dtype");
  P->p++;
  return lex_int_list(P, t->dims, &t->rank, NULL);
}

/* Reads "[1,2,3]" (at most IR_MAX_INTS entries) into a. */
static int lex_ints(parser *P, ir_attr *a, const char *attr) {
  skip_ws(P);
  if (P->p == P->le || *P->p != '[') return perr(P, P->p, "attribute '%s' takes a list of ints like [1,2]", attr);
  P->p++;
  return lex_int_list(P, a->ints, &a->n, attr);
}

/* Reads the value of attribute 'spec' into a. */
static int lex_attr_value(parser *P, const ir_attr_spec *spec, ir_attr *a) {
  skip_ws(P);
  const char *at = P->p;
  a->set = 1;
  switch (spec->kind) {
  case IR_ATTR_INT:
    if (P->p < P->le && (*P->p == '[' || *P->p == '"'))
      return perr(P, at, "attribute '%s' takes one integer", spec->name);
    a->n = 1;
    return lex_int(P, &a->ints[0]);
  case IR_ATTR_INTS: return lex_ints(P, a, spec->name);
  case IR_ATTR_FLOAT:
    if (P->p < P->le && (*P->p == '[' || *P->p == '"'))
      return perr(P, at, "attribute '%s' takes one number", spec->name);
    return lex_float(P, &a->f);
  case IR_ATTR_STR:
    if (P->p < P->le && *P->p != '"') return perr(P, at, "attribute '%s' takes a string", spec->name);
    return lex_string(P, &a->s);
  }
  return -1;
}

/* ---- location comments ---- */

/* Reads a decimal int (optional '-') spanning exactly s[0..len) into *v;
 * returns 0, or -1 if it is not one or does not fit an int. */
static int read_line_number(const char *s, size_t len, int *v) {
  if (!len) return -1;
  size_t i = s[0] == '-';
  if (i == len) return -1;
  long long x = 0;
  for (; i < len; i++) {
    if (!is_digit((unsigned char)s[i])) return -1;
    x = x * 10 + (s[i] - '0');
    if (x > INT32_MAX) return -1;
  }
  *v = (int)(s[0] == '-' ? -x : x);
  return 0;
}

/* Interprets the comment at c ('#') to the end of the line as a location:
 * "# <file>:<line>[ in <scope>]" or "# in <scope>". Fills *loc (interned
 * in the graph) and returns 1, or returns 0 for any other comment. */
static int parse_loc_comment(parser *P, const char *c, ir_loc *loc) {
  const char *end = P->le;
  if (end - c < 2 || c[1] != ' ') return 0;
  const char *s = c + 2;
  const char *file_end = NULL, *scope = NULL;
  int line = 0;
  for (const char *k = s; k < end && !file_end; k++) {
    if (*k != ':') continue;
    const char *e = k + 1;
    if (e < end && *e == '-') e++;
    while (e < end && is_digit((unsigned char)*e)) e++;
    int at_end = e == end, before_scope = end - e >= 4 && !memcmp(e, " in ", 4);
    if ((at_end || before_scope) && !read_line_number(k + 1, (size_t)(e - k - 1), &line)) {
      file_end = k;
      if (before_scope) scope = e + 4;
    }
  }
  if (!file_end) {
    if (end - s < 3 || memcmp(s, "in ", 3)) return 0;
    scope = s + 3;
  }
  char *file = file_end ? xstrndup(s, (size_t)(file_end - s)) : NULL;
  char *sc = scope ? xstrndup(scope, (size_t)(end - scope)) : NULL;
  *loc = ir_graph_loc(P->g, file, line, sc);
  free(file);
  free(sc);
  return 1;
}

/* ---- lines ---- */

/* Reads the header "graph @name {"; creates the graph. */
static int parse_header(parser *P) {
  const char *s;
  int len;
  if (lex_ident(P, &s, &len, "'graph @name {'")) return -1;
  if (len != 5 || memcmp(s, "graph", 5)) return perr(P, s, "expected 'graph @name {'");
  if (expect_char(P, '@', "'@' and the graph name")) return -1;
  const char *name = P->p;
  while (P->p < P->le && is_name_char((unsigned char)*P->p)) P->p++;
  const char *name_end = P->p;
  if (P->p == name) return unexpected(P, "a graph name [A-Za-z0-9_.]+");
  if (expect_char(P, '{', "'{'")) return -1;
  if (!at_line_end(P)) return unexpected(P, "end of line after '{'");
  char *n = xstrndup(name, (size_t)(name_end - name));
  ir_graph_destroy(P->g);
  P->g = ir_graph_create(n);
  free(n);
  return 0;
}

/* Reads 'output "name" = %value'. */
static int parse_output(parser *P) {
  char *name;
  if (lex_string(P, &name)) return -1;
  const char *vs;
  int vlen;
  if (expect_char(P, '=', "'='")) {
    free(name);
    return -1;
  }
  skip_ws(P);
  const char *at = P->p;
  if (lex_value_name(P, &vs, &vlen) || (!at_line_end(P) && unexpected(P, "end of line"))) {
    free(name);
    return -1;
  }
  use_add(P, vs, vlen, at, -1, P->g->noutputs);
  ir_graph_add_output(P->g, name, -1);
  free(name);
  return 0;
}

/* Reads "(%a, %b, ...)" after an op name, recording each use for node 'node'. */
static int parse_operands(parser *P, int node, int *nin) {
  P->p++;
  for (;;) {
    skip_ws(P);
    const char *at = P->p, *s;
    int len;
    if (lex_value_name(P, &s, &len)) return -1;
    use_add(P, s, len, at, node, (*nin)++);
    skip_ws(P);
    if (P->p < P->le && *P->p == ')') break;
    if (expect_char(P, ',', "',' or ')'")) return -1;
  }
  P->p++;
  return 0;
}

/* Reads the attributes and type of a node of 'op' into attrs / *t; 'opname'
 * points at the op in the line, for the missing-attribute error. */
static int parse_attrs_and_type(parser *P, ir_opcode op, const char *opname, ir_attr *attrs, ir_type *t) {
  const ir_op_info *info = ir_op_info_get(op);
  for (;;) {
    skip_ws(P);
    if (P->p < P->le && *P->p == ':') break;
    const char *s;
    int len;
    if (lex_ident(P, &s, &len, "an attribute or ': type'")) return -1;
    int slot = -1;
    for (int i = 0; i < info->nattrs; i++)
      if ((int)strlen(info->attrs[i].name) == len && !memcmp(info->attrs[i].name, s, (size_t)len)) slot = i;
    if (slot < 0) return perr(P, s, "op '%s' has no attribute '%.*s'", info->name, len > 32 ? 32 : len, s);
    if (attrs[slot].set) return perr(P, s, "attribute '%s' given twice", info->attrs[slot].name);
    if (P->p == P->le || *P->p != '=') return unexpected(P, "'=' after the attribute name");
    P->p++;
    if (lex_attr_value(P, &info->attrs[slot], &attrs[slot])) return -1;
  }
  P->p++;
  for (int i = 0; i < info->nattrs; i++)
    if (!attrs[i].set && !info->attrs[i].has_default)
      return perr(P, opname, "op '%s' needs attribute '%s'", info->name, info->attrs[i].name);
  skip_ws(P);
  if (lex_type(P, t)) return -1;
  if (!at_line_end(P)) return unexpected(P, "end of line or a comment");
  return 0;
}

/* Reads a node line "%name = op(%a, ...) attr=value ... : type  # loc". */
static int parse_node(parser *P) {
  const char *name, *at = P->p;
  int len;
  if (lex_value_name(P, &name, &len)) return -1;
  name_entry *prev = name_find(P, name, len);
  if (prev) return perr(P, at, "%%%.*s is already defined on line %d", len > 32 ? 32 : len, name, prev->line);
  int node = P->g->nnodes, nuses = P->nuses, nin = 0, rc = -1;
  ir_attr attrs[IR_MAX_ATTRS];
  memset(attrs, 0, sizeof attrs);
  ir_type t;
  const char *op_at, *op_s;
  int op_len, op = -1;
  if (expect_char(P, '=', "'='") || lex_ident(P, &op_s, &op_len, "an op name")) goto done;
  op_at = op_s;
  if (op_len < 32) {
    char buf[32];
    memcpy(buf, op_s, (size_t)op_len);
    buf[op_len] = 0;
    op = ir_op_lookup(buf);
  }
  if (op < 0) {
    perr(P, op_at, "unknown op '%.*s'", op_len > 32 ? 32 : op_len, op_s);
    goto done;
  }
  if (P->p < P->le && *P->p == '(' && parse_operands(P, node, &nin)) goto done;
  if (parse_attrs_and_type(P, (ir_opcode)op, op_at, attrs, &t)) goto done;
  ir_loc loc = {NULL, 0, NULL};
  skip_ws(P);
  if (P->p < P->le && *P->p == '#') parse_loc_comment(P, P->p, &loc);
  int *in = xrealloc(NULL, (size_t)(nin ? nin : 1) * sizeof *in);
  for (int i = 0; i < nin; i++) in[i] = -1;
  ir_node *n = ir_graph_append(P->g, (ir_opcode)op, in, nin, loc);
  free(in);
  const ir_op_info *info = ir_op_info_get((ir_opcode)op);
  for (int i = 0; i < info->nattrs; i++)
    if (attrs[i].set) {
      n->attrs[i] = attrs[i];
      attrs[i].s = NULL;
    }
  n->type = t;
  rc = 0;
done:
  for (int i = 0; i < IR_MAX_ATTRS; i++) free(attrs[i].s);
  if (rc) P->nuses = nuses;
  name_add(P, name, len, rc ? -1 : node);
  return rc;
}

/* Reads one line of the graph body; returns 1 after the closing '}'. */
static int parse_body_line(parser *P) {
  if (*P->p == '}') {
    P->p++;
    if (!at_line_end(P)) unexpected(P, "end of line after '}'");
    return 1;
  }
  if (*P->p == '%') {
    parse_node(P);
    return 0;
  }
  const char *s;
  int len;
  const char *at = P->p;
  if (is_ident_start((unsigned char)*P->p) && !lex_ident(P, &s, &len, "") && len == 6 && !memcmp(s, "output", 6)) {
    parse_output(P);
    return 0;
  }
  P->p = at;
  unexpected(P, "a node '%name = ...', an output or '}'");
  return 0;
}

/* Resolves every recorded use of a value name; reports undefined ones. */
static void resolve_uses(parser *P) {
  for (int i = 0; i < P->nuses; i++) {
    name_use *u = &P->uses[i];
    name_entry *e = name_find(P, u->s, u->len);
    if (!e) {
      perr_line(P, u->line, u->col, "undefined value %%%.*s", u->len > 32 ? 32 : u->len, u->s);
      continue;
    }
    if (u->node >= 0) P->g->nodes[u->node]->in[u->slot] = e->node;
    else P->g->outputs[u->slot].node = e->node;
  }
}

/* Parses 'text' into a graph; see ir.h. */
ir_graph *ir_parse(const char *text, const char *file, ir_diag *d) {
  parser P;
  memset(&P, 0, sizeof P);
  P.file = file;
  P.d = d;
  P.g = ir_graph_create("main");
  enum { HEADER, BODY, AFTER } state = HEADER;
  const char *p = text ? text : "";
  int last_line = 1, last_col = 1; /* end of the last line with content */
  while (*p) {
    const char *nl = strchr(p, '\n');
    P.ls = P.p = p;
    P.le = nl ? nl : p + strlen(p);
    p = nl ? nl + 1 : P.le;
    if (P.le > P.ls && P.le[-1] == '\r') P.le--;
    P.line++;
    if (at_line_end(&P)) continue;
    last_line = P.line;
    last_col = (int)(P.le - P.ls) + 1;
    if (state == HEADER) {
      parse_header(&P);
      state = BODY;
    } else if (state == BODY) {
      if (parse_body_line(&P)) state = AFTER;
    } else {
      perr(&P, P.p, "text after the closing '}'");
    }
  }
  if (state != AFTER)
    perr_line(&P, last_line, last_col,
              state == HEADER ? "expected 'graph @name {' before the end of the input"
                              : "expected '}' before the end of the input");
  resolve_uses(&P);
  free(P.names);
  free(P.uses);
  if (P.errors) {
    ir_graph_destroy(P.g);
    return NULL;
  }
  return P.g;
}
