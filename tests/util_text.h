/* Test helpers for the IR text form: a graph that uses every op of ops.def
 * with non-default attributes, and a whole-file reader. */
#ifndef ATTNC_TESTS_UTIL_TEXT_H
#define ATTNC_TESTS_UTIL_TEXT_H

#include "ir.h"

/* Builds a graph with at least one node of every op in ops.def (attributes
 * set to non-default values where the op has any, types inferred), several
 * locations, awkward strings and floats. Returns NULL if shape inference
 * rejects a node (the message goes to 'd'). Caller destroys. */
ir_graph *textutil_all_ops_graph(ir_diag *d);
/* Returns the bytes of file 'path' NUL-terminated (caller frees), or NULL. */
char *textutil_read_file(const char *path, size_t *len);

#endif
