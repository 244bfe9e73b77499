/* The JIT backend: compiles one IR function (an eval forward, a training
 * step) into native kernels through LLVM (shape-specialized loops, O3, the
 * host CPU's vector units, ORC LLJIT) and runs them in order over buffers of
 * one arena, in parallel over the machine's cores.
 *
 * A cg_program owns the storage of every source (input, param, buffer) and
 * every output of the graph. Callers write sources in place, run, and read
 * outputs in place; nothing is copied per run. The same program can run the
 * reference interpreter instead (cg_options.interp) so callers such as the
 * training loop and the tests can compare the two through one interface. */
#ifndef ATTNC_CG_H
#define ATTNC_CG_H
#include <stdio.h>
#include "ir.h"
#include "ir_diag.h"
#include "ir_tensor.h"

typedef struct cg_program cg_program;

typedef struct {
  int threads; /* worker threads; 0 = every core */
  int interp;  /* 1: run the reference interpreter (f32 native), no LLVM */
  int no_reuse; /* 1: every buffer its own arena space (no memory planning) */
  int poison;   /* 1: fill the arena with NaNs at creation (tests: a kernel must
                   write all of its output and never read it first) */
  int no_fuse;  /* 1: one kernel per node (no pass_fuse groups) */
  int step_profile; /* 1: sample-group kernels also count the cycles of each
                       of their steps, for cg_program_print_profile */
} cg_options;

/* Compile-time and run-time figures of a program. */
typedef struct {
  /* Compilation runs on one thread per worker (one module each): each
   * stage's figure is the slowest thread's. */
  double lower_s;        /* building LLVM IR for the kernels */
  double opt_s;          /* LLVM's O3 pipeline */
  double jit_s;          /* machine code, then linking and lookup (ORC LLJIT) */
  int kernels;           /* kernel launches per run */
  int unique_kernels;    /* distinct compiled kernels (same op, types, attrs: one) */
  int threads;           /* threads used per run */
  int64_t arena_bytes;   /* bytes of the buffer arena */
  int64_t buffer_bytes;  /* sum of all node buffers (before any reuse) */
  int64_t scratch_bytes; /* per-thread scratch, all threads, and the kernels' shared buffer */
  double flops;          /* floating-point operations per run (2 per multiply-add) */
  int fused_kernels;     /* launches per run that are fusion groups */
  int fused_nodes;       /* nodes computed inside those groups */
  int64_t traffic_bytes; /* per run: bytes of arena buffers of at least
                            4096 elements read or written by kernels
                            (each operand buffer read once, each output
                            written once per launch: feature-map traffic) */
} cg_stats;

/* Compiles graph 'g' (which must verify; it is not kept) into *out.
 * 'o' may be NULL (defaults). Returns ATTNC_OK, or an error reported to 'd'
 * naming the op (an op without a kernel, an LLVM failure, out of memory). */
attnc_status cg_program_create(const ir_graph *g, const cg_options *o, cg_program **out,
                               ir_diag *d);
/* Frees 'p' and all its storage. NULL is allowed. */
void cg_program_destroy(cg_program *p);

/* Storage of the source named 'name' (input, param or buffer), NULL if the
 * graph has none; its type goes to *t if t is not NULL. Write it before
 * cg_program_run; it keeps its value across runs until overwritten. */
void *cg_program_input(cg_program *p, const char *name, ir_type *t);
/* Storage of the graph output named 'name', NULL if none. Its address is
 * fixed for the life of the program; its contents are valid after a run and
 * until the next one. An output may share storage with a source. */
void *cg_program_output(cg_program *p, const char *name, ir_type *t);
/* Number of sources / outputs, and the name and type of the i-th (graph order). */
int cg_program_input_count(const cg_program *p);
const char *cg_program_input_name(const cg_program *p, int i, ir_type *t);
int cg_program_output_count(const cg_program *p);
const char *cg_program_output_name(const cg_program *p, int i, ir_type *t);

/* Runs the program once over the current contents of its sources.
 * Results are deterministic for a given thread count. */
attnc_status cg_program_run(cg_program *p, ir_diag *d);

/* Copies every tensor of 'in' whose name is a source into that source
 * (float dtypes converted; a shape mismatch is an error naming the tensor),
 * runs, and puts a copy of every output into 'out' (may be NULL). Sources
 * not in 'in' keep their current contents (zero at creation). */
attnc_status cg_program_run_bundle(cg_program *p, const ir_bundle *in, ir_bundle *out,
                                   ir_diag *d);

/* Copies every output whose name is also a source into that source (the
 * new weights, momenta and running statistics of a training step become
 * the next step's inputs). Returns the number of tensors copied. */
int cg_program_feedback(cg_program *p);

/* The program's figures. */
const cg_stats *cg_program_stats(const cg_program *p);

/* Turns per-kernel timing on or off (off at creation); turning it on clears
 * the accumulated times. */
void cg_program_set_profile(cg_program *p, int on);
/* Prints the accumulated time per kernel, grouped by op with shapes, largest
 * first, at most 'top' rows (0: all), to 'f'; under each sample group, with
 * cg_options.step_profile, its steps' shares of its time. */
void cg_program_print_profile(const cg_program *p, FILE *f, int top);

/* One kind of kernel in a profile: an op's name, or "fused:<label>" for
 * the fused groups of one label; its time per profiled run and its calls
 * per run. */
typedef struct {
  char kind[40];
  double ms;
  int calls;
} cg_profile_kind;

/* Fills out[0..max) with the accumulated time per kind of kernel, largest
 * first; returns the number of kinds (more than max if they did not fit),
 * or -1 if out of memory. */
int cg_program_profile_kinds(const cg_program *p, cg_profile_kind *out, int max);

/* Text of the kernels of 'g' after optimization: LLVM IR (asm = 0) or the
 * host assembly (asm = 1), one function per distinct kernel, each preceded by
 * a comment naming the op, its types and attributes. The kernels are those a
 * program compiled with options 'o' (NULL: defaults) runs: fused unless
 * o->no_fuse. *out is malloc'd. */
attnc_status cg_emit_text(const ir_graph *g, const cg_options *o, int asm_text, char **out, ir_diag *d);

#endif
