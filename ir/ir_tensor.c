/* Host tensors and named bundles. */
#include "ir_tensor.h"

#include <stdlib.h>
#include <string.h>

/* Creates a zero-filled tensor of type 't'. */
ir_tensor *ir_tensor_create(ir_type t) {
  ir_tensor *x = calloc(1, sizeof *x);
  if (!x) return NULL;
  x->type = t;
  size_t bytes = (size_t)ir_type_numel(&t) * ir_dtype_size(t.dtype);
  x->data = calloc(bytes ? bytes : 1, 1);
  if (!x->data) {
    free(x);
    return NULL;
  }
  return x;
}

/* Frees 't' and its data. */
void ir_tensor_destroy(ir_tensor *t) {
  if (!t) return;
  free(t->data);
  free(t);
}

/* Returns a copy of 't'. */
ir_tensor *ir_tensor_clone(const ir_tensor *t) {
  ir_tensor *c = ir_tensor_create(t->type);
  if (c) memcpy(c->data, t->data, (size_t)ir_type_numel(&t->type) * ir_dtype_size(t->type.dtype));
  return c;
}

/* Returns element i as a double. */
double ir_tensor_get(const ir_tensor *t, int64_t i) {
  switch (t->type.dtype) {
  case IR_F32: return ((const float *)t->data)[i];
  case IR_F64: return ((const double *)t->data)[i];
  case IR_I64: return (double)((const int64_t *)t->data)[i];
  }
  return 0;
}

/* Stores v at element i. */
void ir_tensor_set(ir_tensor *t, int64_t i, double v) {
  switch (t->type.dtype) {
  case IR_F32: ((float *)t->data)[i] = (float)v; break;
  case IR_F64: ((double *)t->data)[i] = v; break;
  case IR_I64: ((int64_t *)t->data)[i] = (int64_t)v; break;
  }
}

/* Returns a copy of 't' converted to dtype 'dt'. */
ir_tensor *ir_tensor_convert(const ir_tensor *t, ir_dtype dt) {
  ir_type ty = t->type;
  ty.dtype = dt;
  ir_tensor *c = ir_tensor_create(ty);
  if (!c) return NULL;
  int64_t n = ir_type_numel(&ty);
  if (dt == IR_I64 && t->type.dtype == IR_I64)
    memcpy(c->data, t->data, (size_t)n * 8);
  else
    for (int64_t i = 0; i < n; i++) ir_tensor_set(c, i, ir_tensor_get(t, i));
  return c;
}

ir_bundle *ir_bundle_create(void) { return calloc(1, sizeof(ir_bundle)); }

/* Frees the bundle and every tensor in it. */
void ir_bundle_destroy(ir_bundle *b) {
  if (!b) return;
  for (int i = 0; i < b->count; i++) {
    free(b->names[i]);
    ir_tensor_destroy(b->tensors[i]);
  }
  for (int i = 0; i < b->nmeta; i++) {
    free(b->meta_keys[i]);
    free(b->meta_values[i]);
  }
  free(b->names);
  free(b->tensors);
  free(b->meta_keys);
  free(b->meta_values);
  free(b);
}

/* Adds 't' as 'name', taking ownership. */
void ir_bundle_put(ir_bundle *b, const char *name, ir_tensor *t) {
  for (int i = 0; i < b->count; i++)
    if (!strcmp(b->names[i], name)) {
      ir_tensor_destroy(b->tensors[i]);
      b->tensors[i] = t;
      return;
    }
  if (b->count == b->cap) {
    int cap = b->cap ? b->cap * 2 : 16;
    char **n = realloc(b->names, (size_t)cap * sizeof *n);
    if (n) b->names = n;
    ir_tensor **ts = realloc(b->tensors, (size_t)cap * sizeof *ts);
    if (ts) b->tensors = ts;
    if (!n || !ts) abort();
    b->cap = cap;
  }
  b->names[b->count] = strdup(name);
  b->tensors[b->count] = t;
  b->count++;
}

/* Returns the tensor named 'name', or NULL. */
ir_tensor *ir_bundle_get(const ir_bundle *b, const char *name) {
  for (int i = 0; i < b->count; i++)
    if (!strcmp(b->names[i], name)) return b->tensors[i];
  return NULL;
}

/* Sets metadata key = value. */
void ir_bundle_set_meta(ir_bundle *b, const char *key, const char *value) {
  for (int i = 0; i < b->nmeta; i++)
    if (!strcmp(b->meta_keys[i], key)) {
      free(b->meta_values[i]);
      b->meta_values[i] = strdup(value);
      return;
    }
  char **k = realloc(b->meta_keys, (size_t)(b->nmeta + 1) * sizeof *k);
  if (k) b->meta_keys = k;
  char **v = realloc(b->meta_values, (size_t)(b->nmeta + 1) * sizeof *v);
  if (v) b->meta_values = v;
  if (!k || !v) abort();
  b->meta_keys[b->nmeta] = strdup(key);
  b->meta_values[b->nmeta] = strdup(value);
  b->nmeta++;
}

/* Returns metadata 'key', or NULL. */
const char *ir_bundle_get_meta(const ir_bundle *b, const char *key) {
  for (int i = 0; i < b->nmeta; i++)
    if (!strcmp(b->meta_keys[i], key)) return b->meta_values[i];
  return NULL;
}
