/* Tensor types: dtypes, shapes, element counts, formatting. */
#include <stdio.h>
#include <string.h>

#include "ir.h"

static const char *const dtype_names[] = {"f32", "f64", "i64"};

/* Returns the text name of 't'. */
const char *ir_dtype_name(ir_dtype t) {
  return (unsigned)t < 3 ? dtype_names[t] : "?";
}

/* Parses a dtype name; returns 0, or -1 if unknown. */
int ir_dtype_parse(const char *s, ir_dtype *out) {
  for (int i = 0; i < 3; i++)
    if (!strcmp(s, dtype_names[i])) {
      *out = (ir_dtype)i;
      return 0;
    }
  return -1;
}

/* Returns the size in bytes of one element of 't'. */
size_t ir_dtype_size(ir_dtype t) { return t == IR_F32 ? 4 : 8; }

/* Returns the number of elements of 't' (1 for a scalar). */
int64_t ir_type_numel(const ir_type *t) {
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++) n *= t->dims[i];
  return n;
}

/* Returns 1 if a and b have the same dtype and shape. */
int ir_type_equal(const ir_type *a, const ir_type *b) {
  if (a->dtype != b->dtype || a->rank != b->rank) return 0;
  for (int i = 0; i < a->rank; i++)
    if (a->dims[i] != b->dims[i]) return 0;
  return 1;
}

/* Makes a type from a dims array. */
ir_type ir_type_make(ir_dtype dt, int rank, const int64_t *dims) {
  ir_type t;
  memset(&t, 0, sizeof t);
  t.dtype = dt;
  t.rank = rank;
  for (int i = 0; i < rank && i < IR_MAX_RANK; i++) t.dims[i] = dims[i];
  return t;
}

/* Writes "f32[4,3,32,32]" into buf. */
void ir_type_format(const ir_type *t, char *buf, size_t size) {
  size_t o = (size_t)snprintf(buf, size, "%s[", ir_dtype_name(t->dtype));
  for (int i = 0; i < t->rank && o < size; i++)
    o += (size_t)snprintf(buf + o, size - o, i ? ",%lld" : "%lld", (long long)t->dims[i]);
  if (o < size) snprintf(buf + o, size - o, "]");
}
