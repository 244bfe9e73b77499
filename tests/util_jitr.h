/* Test helpers for the JIT reduction and data-movement tests: a growing
 * IR text buffer and a compare that takes IR text plus given inputs. */
#ifndef ATTNC_TEST_UTIL_JITR_H
#define ATTNC_TEST_UTIL_JITR_H
#include <stdint.h>
#include "ir.h"
#include "ir_tensor.h"

/* A growing text buffer (zero-initialize, then append). */
typedef struct {
  char *s;
  size_t len, cap;
} tjr_text;
/* Appends printf-formatted text. */
void tjr_printf(tjr_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Frees the text and resets it to empty. */
void tjr_text_free(tjr_text *t);

/* Parses IR text 'text' (fails the test unless it verifies) and runs
 * tj_compare with 'given' (may be NULL). Returns the worst scaled error. */
double tjr_compare(const char *text, const ir_bundle *given, uint64_t seed, int threads, double rtol);
/* Runs IR text 'text' on the JIT with 1 and with 2 threads over the same
 * seeded sources and fails unless every output is bitwise equal. */
void tjr_same_bits(const char *text, uint64_t seed);
/* A tensor of type 't' with element i = f(i, arg), put into 'b' as 'name'. */
void tjr_put(ir_bundle *b, const char *name, ir_type t, double (*f)(int64_t i, double arg), double arg);
#endif
