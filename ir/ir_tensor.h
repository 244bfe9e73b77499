/* Host tensors and named bundles of them: what the interpreter, the JIT and
 * the safetensors reader/writer exchange. */
#ifndef ATTNC_IR_TENSOR_H
#define ATTNC_IR_TENSOR_H

#include "ir.h"

/* A dense row-major tensor that owns its data. */
typedef struct {
  ir_type type;
  void *data;
} ir_tensor;

/* Creates a zero-filled tensor of type 't'; NULL if out of memory. */
ir_tensor *ir_tensor_create(ir_type t);
/* Frees 't' and its data. */
void ir_tensor_destroy(ir_tensor *t);
/* Returns a copy of 't'. */
ir_tensor *ir_tensor_clone(const ir_tensor *t);
/* Returns element i as a double, whatever the dtype. */
double ir_tensor_get(const ir_tensor *t, int64_t i);
/* Stores v at element i, converted to the dtype. */
void ir_tensor_set(ir_tensor *t, int64_t i, double v);
/* Returns a copy of 't' converted to dtype 'dt'. */
ir_tensor *ir_tensor_convert(const ir_tensor *t, ir_dtype dt);

/* Named tensors (ordered), plus string metadata. */
typedef struct {
  int count, cap;
  char **names;
  ir_tensor **tensors;
  int nmeta;
  char **meta_keys, **meta_values;
} ir_bundle;

ir_bundle *ir_bundle_create(void);
/* Frees the bundle and every tensor in it. */
void ir_bundle_destroy(ir_bundle *b);
/* Adds 't' as 'name', taking ownership; replaces (and frees) an existing one. */
void ir_bundle_put(ir_bundle *b, const char *name, ir_tensor *t);
/* Returns the tensor named 'name', or NULL. */
ir_tensor *ir_bundle_get(const ir_bundle *b, const char *name);
/* Sets metadata key = value (copied). */
void ir_bundle_set_meta(ir_bundle *b, const char *key, const char *value);
/* Returns metadata 'key', or NULL. */
const char *ir_bundle_get_meta(const ir_bundle *b, const char *key);

#endif
