/* Test helpers for the JIT: run a graph on the reference interpreter and on
 * the JIT with the same seeded random sources and compare every output. */
#ifndef ATTNC_TEST_UTIL_JIT_H
#define ATTNC_TEST_UTIL_JIT_H
#include <stdint.h>
#include "ir.h"
#include "ir_tensor.h"

/* Runs 'g' on the interpreter (f32) and on the JIT with 'threads' threads,
 * sources filled by rt_init_random(seed) plus those in 'given' (may be
 * NULL), and fails the test unless every output agrees elementwise within
 * |jit - ref| <= rtol * (|ref| + max|ref|) (NaN matches NaN). Returns the
 * worst |jit - ref| / (|ref| + max|ref|) seen. */
double tj_compare(const ir_graph *g, const ir_bundle *given, uint64_t seed, int threads, double rtol);
/* Fails the test unless 'got' agrees with 'ref' elementwise within
 * |got - ref| <= rtol * (|ref| + max|ref|) (NaN matches NaN, equal
 * infinities match); 'what' and 'name' label the failure. Returns the worst
 * scaled error. */
double tj_compare_tensor(const char *what, const char *name, const ir_tensor *got, const ir_tensor *ref,
                         double rtol);
/* Returns the worst elementwise |got - ref| / (|ref| + max|ref|) (max over
 * the finite elements of 'ref'), with its index in *at: 0 where both are
 * NaN or equal (infinities), INFINITY where only one is NaN. 'got' must have
 * ref's element count. Asserts nothing (the fuzz targets use it too). */
double tj_scaled_error(const ir_tensor *got, const ir_tensor *ref, int64_t *at);
/* Parses IR text 'text' (must verify) and calls tj_compare. */
double tj_compare_text(const char *text, uint64_t seed, int threads, double rtol);
/* Fills 'dst' with the sources of 'g' that rt_init_random(seed) makes and
 * 'given' lacks, plus everything in 'given' (copies). */
ir_bundle *tj_sources(const ir_graph *g, const ir_bundle *given, uint64_t seed);
struct cg_program;
/* cg_program_print_profile(p, all rows) as a string the caller frees. */
char *tj_profile_text(const struct cg_program *p);
#endif
