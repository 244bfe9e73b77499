/* Internals of the JIT backend shared by the driver (cg_program.c), the LLVM
 * session (cg_jit.c), the IR-building helpers (cg_build.c) and the kernel
 * emitters, one file per op family (cg_ops_<family>.c).
 *
 * A kernel is one LLVM function per distinct (op, types, attributes):
 *
 *   void kernel(i8 **args, i64 begin, i64 end, i8 *scratch)
 *
 * args[0] is the output buffer, args[1 + i] the buffer of input i. The
 * driver splits the kernel's parallel range [0, plan.par) into one
 * contiguous share per thread and calls the kernel once per share; shares of
 * the same kernel run at the same time, so a kernel must only write output
 * elements that belong to its share, and must write every output element
 * exactly once over the whole range (buffers are not cleared between runs).
 * 'scratch' is this thread's own plan.scratch_bytes (64-byte aligned).
 * A kernel whose plan has a second phase (plan.par2 > 0) is then called
 * again, once every thread has finished its share of [0, par), with shares
 * of [par, par + par2); a buffer of plan.shared_bytes seen by every thread
 * (args[1 + nin], e->shared) carries results from the first phase to the
 * second.
 *
 * A fusion group (pass_fuse) compiles to ONE kernel of the same signature
 * whose args are [outs..., ins...]: the buffers of the group's outputs
 * (pass_fuse_group.outs, ascending node ids) then of its inputs
 * (pass_fuse_group.ins, ascending); members that are not outputs have no
 * buffer. A PASS_FUSE_LOOP kernel's range is the work items of its merged
 * loop nest (rows / blocks of the group type); a PASS_FUSE_SAMPLE kernel's
 * range is the batch [0, N): each call computes every member for its
 * samples, internal members living in 'scratch' (see cg_fuse.c).
 *
 * An emitter writes the body of the kernel through cg_emit: e->arg[] are
 * already typed element pointers (float*, double* or i64*), e->begin and
 * e->end the share. All shapes and attributes are compile-time constants:
 * emit them as constants (cg_i64) so LLVM sees exact trip counts. */
#ifndef ATTNC_CG_INTERNAL_H
#define ATTNC_CG_INTERNAL_H
#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>
#include "cg.h"
#include "passes.h"

/* f32 lanes of the host's widest vector registers: 16 with AVX-512F, 8 with
 * AVX2 (this project has run on AMD EPYC machines of both kinds: Zen 1 with
 * AVX2 + FMA and 16 ymm registers, Zen 4 with AVX-512), 4 otherwise.
 * Register-blocked kernels size their tiles from it. */
int cg_host_vector_floats(void);

/* Most operands of an elementwise kernel (output + where's three inputs). */
#define IR_MAX_IN_EW 4

/* How the driver runs one kernel. */
typedef struct {
  int64_t par;           /* independent work items [0, par), >= 1 */
  int64_t scratch_bytes; /* per-thread scratch */
  int64_t par2;          /* work items [par, par + par2) of a second phase, 0 for none */
  int64_t shared_bytes;  /* a buffer shared by every thread (e->shared, 64-byte aligned), or 0 */
  double flops;          /* floating-point operations per run (for reports) */
  const char *algo;      /* the algorithm taken, for reports ("winograd", "direct", ...), or NULL */
} cg_plan;

/* Emission context of one kernel. */
typedef struct {
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LLVMBuilderRef b;
  LLVMValueRef fn;          /* the kernel body function */
  LLVMBasicBlockRef entry;  /* allocas go here (cg_var_new) */
  const ir_graph *g;
  const ir_node *n;
  int nargs;                /* 1 + n->nin */
  LLVMValueRef *arg;        /* typed element pointers, noalias */
  LLVMValueRef begin, end;  /* i64: this call's share of [0, par) */
  LLVMValueRef scratch;     /* i8*: this thread's scratch */
  LLVMValueRef shared;      /* i8*: the plan's shared buffer, NULL without one */
  LLVMTypeRef t_void, t_i1, t_i8, t_i32, t_i64, t_f32, t_f64;
  ir_diag *d;
} cg_emit;

/* The code generator of one op: fills the plan, then emits the body (which
 * must end with the builder in a block that falls through to the return;
 * the caller adds the 'ret'). emit returns ATTNC_OK or an error to e->d. */
typedef struct {
  void (*plan)(const ir_graph *g, const ir_node *n, cg_plan *p);
  attnc_status (*emit)(cg_emit *e, const cg_plan *p);
} cg_kernel_impl;

/* ---- kernel table (cg_ops.c): each family registers its ops ---- */

/* Returns the table of kernel generators, indexed by opcode; entries of ops
 * without a generator (sources, reshape, which the driver handles) are zero. */
const cg_kernel_impl *cg_kernel_table(void);
void cg_register_elementwise(cg_kernel_impl *t); /* cg_ops_elementwise.c */
void cg_register_reduce(cg_kernel_impl *t);      /* cg_ops_reduce.c */
void cg_register_shape(cg_kernel_impl *t);       /* cg_ops_shape.c */
void cg_register_nn(cg_kernel_impl *t);          /* cg_ops_nn.c: batchnorm, pooling */
void cg_register_conv(cg_kernel_impl *t);        /* cg_ops_conv.c: conv*, matmul */
void cg_register_linear(cg_kernel_impl *t);      /* cg_ops_linear.c: conv1d*, matmul */

/* ---- LLVM session (cg_jit.c) ---- */

typedef struct cg_jit cg_jit;
/* Creates a JIT for the host CPU (its name and features) with the process's
 * symbols (libm) visible to compiled code. */
attnc_status cg_jit_create(cg_jit **out, ir_diag *d);
void cg_jit_destroy(cg_jit *j);
/* The context modules for this JIT must be built in. */
LLVMContextRef cg_jit_context(cg_jit *j);
/* Creates an empty module with the host triple and data layout. */
LLVMModuleRef cg_jit_module(cg_jit *j, const char *name);
/* Verifies 'm' and runs the O3 pipeline over it. */
attnc_status cg_jit_optimize(cg_jit *j, LLVMModuleRef m, ir_diag *d);
/* Builds part 'part' of 'nparts' of a program's kernels into empty module
 * 'm' (in a context of the calling thread's own); called from several
 * threads at once, so it may only read shared state. */
typedef attnc_status (*cg_jit_build_fn)(void *arg, int part, int nparts, LLVMModuleRef m, ir_diag *d);
/* Compiles a program's kernels as 'nparts' modules, each built by 'build',
 * verified, optimized at O3 and turned into machine code on a thread of its
 * own (own LLVM context and target machine), then links them all into the
 * JIT (look the kernels up with cg_jit_lookup). times[0..2] (may be NULL)
 * get the slowest thread's seconds of building, O3 and code generation. */
attnc_status cg_jit_compile(cg_jit *j, int nparts, cg_jit_build_fn build, void *arg, double times[3],
                            ir_diag *d);
/* Address of compiled function 'name' (compiles its module on first use). */
attnc_status cg_jit_lookup(cg_jit *j, const char *name, void **addr, ir_diag *d);
/* Host assembly of 'm' (malloc'd). */
attnc_status cg_jit_asm(cg_jit *j, LLVMModuleRef m, char **out, ir_diag *d);

/* ---- building kernels (cg_build.c) ---- */

/* Emits kernel 'name' for node 'n' of 'g' into 'm' with generator 'impl'
 * and plan 'p': the entry wrapper 'name' with the ABI above and the body. */
attnc_status cg_build_kernel(LLVMModuleRef m, const char *name, const ir_graph *g,
                             const ir_node *n, const cg_kernel_impl *impl, const cg_plan *p,
                             ir_diag *d);
/* A key identifying the kernel of 'n' (op, operand and result types,
 * attributes) written into buf; equal keys mean the same kernel. */
void cg_kernel_key(const ir_graph *g, const ir_node *n, char *buf, size_t size);

/* Row-major strides (in elements) of 't' into s[rank]. */
void cg_strides(const ir_type *t, int64_t *s);
/* Strides to read operand type 'in' broadcast to 'out' (numpy rules, the
 * operand's dims aligned to the right): 0 along broadcast axes. */
void cg_broadcast_strides(const ir_type *in, const ir_type *out, int64_t *s);

/* Points 'e' at module 'm' (ctx, mod) and fills its type shorthands. */
void cg_emit_init(cg_emit *e, LLVMModuleRef m);
/* Sets the attributes every kernel function gets: the host's full vector
 * width, no unwinding. */
void cg_kernel_attrs(LLVMContextRef ctx, LLVMValueRef f);
/* The function type of the kernel ABI: void(i8** args, i64 begin, i64 end, i8* scratch). */
LLVMTypeRef cg_kernel_abi_type(cg_emit *e);
LLVMTypeRef cg_type(cg_emit *e, ir_dtype dt);
LLVMValueRef cg_i64(cg_emit *e, int64_t v);
/* A constant of dtype 'dt' (float or integer). */
LLVMValueRef cg_const(cg_emit *e, ir_dtype dt, double v);

/* Converts 'v' (scalar or vector) to dtype 'to' (float casts, saturating
 * float to i64, i64 to float). */
LLVMValueRef cg_convert(cg_emit *e, LLVMValueRef v, ir_dtype to);

/* Counted loop: for (iv = start; iv < end; iv += step). Use as
 *   cg_loop l; LLVMValueRef i = cg_loop_begin(e, &l, a, b, 1); ...body...; cg_loop_end(e, &l);
 * Loops nest; 'end' is evaluated once before the loop. */
typedef struct {
  LLVMBasicBlockRef head, body, exit;
  LLVMValueRef iv, end;
  int64_t step;
} cg_loop;
LLVMValueRef cg_loop_begin(cg_emit *e, cg_loop *l, LLVMValueRef start, LLVMValueRef end,
                           int64_t step);
void cg_loop_end(cg_emit *e, cg_loop *l);
/* Loop hints on a loop 'l' just closed by cg_loop_end (llvm.loop metadata):
 * cg_loop_no_unroll keeps it rolled (unrolling a register-tiled loop only
 * adds register pressure); cg_loop_reorder lets the vectorizer reassociate
 * its floating-point reductions (llvm.loop.vectorize.enable) and gives it
 * the host's full f32 width (llvm.loop.vectorize.width): LLVM sizes a loop
 * by its widest type, so a row of f32 summed in f64 would otherwise run at
 * half the width (8 lanes with AVX-512). */
void cg_loop_no_unroll(cg_emit *e, const cg_loop *l);
void cg_loop_reorder(cg_emit *e, const cg_loop *l);

/* A mutable local (an alloca in the entry block; LLVM promotes it to a register). */
LLVMValueRef cg_var_new(cg_emit *e, LLVMTypeRef t, LLVMValueRef init);
LLVMValueRef cg_var_get(cg_emit *e, LLVMValueRef var);
void cg_var_set(cg_emit *e, LLVMValueRef var, LLVMValueRef v);

/* if (cond) { then } [else { other }]: cg_if_begin, ..., [cg_if_else, ...], cg_if_end. */
typedef struct {
  LLVMBasicBlockRef then_bb, else_bb, end_bb;
  int has_else;
} cg_if;
void cg_if_begin(cg_emit *e, cg_if *c, LLVMValueRef cond);
void cg_if_else(cg_emit *e, cg_if *c);
void cg_if_end(cg_emit *e, cg_if *c);

/* i64 arithmetic (constant-folded by the builder when both sides are constants). */
LLVMValueRef cg_add(cg_emit *e, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_sub(cg_emit *e, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_mul(cg_emit *e, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_min(cg_emit *e, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_max(cg_emit *e, LLVMValueRef a, LLVMValueRef b);
/* a*k + c with constants k and c. */
LLVMValueRef cg_affine(cg_emit *e, LLVMValueRef a, int64_t k, int64_t c);

/* Element pointer base + idx, load and store of scalars. */
LLVMValueRef cg_gep(cg_emit *e, LLVMValueRef base, LLVMValueRef idx);
LLVMValueRef cg_load(cg_emit *e, LLVMValueRef base, LLVMValueRef idx);
void cg_store(cg_emit *e, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef v);
/* Vectors of 'width' lanes: unaligned load/store at base + idx, splat. */
LLVMTypeRef cg_vec_type(cg_emit *e, ir_dtype dt, int width);
LLVMValueRef cg_vload(cg_emit *e, LLVMValueRef base, LLVMValueRef idx, int width);
void cg_vstore(cg_emit *e, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef v);
LLVMValueRef cg_splat(cg_emit *e, LLVMValueRef scalar, int width);
/* Masked vector load/store of the first 'count' lanes (others read as 0);
 * a plain load/store when count >= width. */
LLVMValueRef cg_vload_first(cg_emit *e, LLVMValueRef base, LLVMValueRef idx, int width, int count);
void cg_vstore_first(cg_emit *e, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef v, int count);
/* Horizontal sum of a float vector. */
LLVMValueRef cg_vsum(cg_emit *e, LLVMValueRef v);
/* Transposes the square matrix of the 'n' vectors v (n lanes each, n a
 * power of two) in place: lane j of v[i] becomes lane i of v[j]. */
void cg_vtranspose(cg_emit *e, LLVMValueRef *v, int n);
/* Lanes first, first + 2, ... of v: 'n' of them. */
LLVMValueRef cg_every_other(cg_emit *e, LLVMValueRef v, int first, int n);
/* Prefetches the cache line of base + idx into every level, for a later
 * write when 'write'. */
void cg_prefetch(cg_emit *e, LLVMValueRef base, LLVMValueRef idx, int write);
/* The cycle counter (rdtsc on x86), an i64. */
LLVMValueRef cg_cycle_count(cg_emit *e);
/* Prefetches the cache lines of the n elements at base + at (for a write
 * when 'write'). */
void cg_prefetch_row(cg_emit *e, LLVMValueRef base, LLVMValueRef at, int64_t n, int write);
/* A typed pointer into this thread's scratch at 'byte_offset'. */
LLVMValueRef cg_scratch(cg_emit *e, int64_t byte_offset, ir_dtype dt);
/* A typed pointer into the plan's shared buffer at 'byte_offset'. */
LLVMValueRef cg_shared(cg_emit *e, int64_t byte_offset, ir_dtype dt);

/* Calls LLVM intrinsic 'name' ("llvm.exp", "llvm.fmuladd", "llvm.maxnum",
 * ...) overloaded on the type of args[0] (scalar or vector). */
LLVMValueRef cg_intrinsic(cg_emit *e, const char *name, LLVMValueRef *args, int nargs);
/* Calls intrinsic 'name', which is not overloaded (a target's own, e.g.
 * llvm.x86.avx.max.ps.256), on args. */
LLVMValueRef cg_intrinsic_fixed(cg_emit *e, const char *name, LLVMValueRef *args, int nargs);
/* The constant c of type 't': an integer or float scalar, or a splat
 * vector of one. */
LLVMValueRef cg_const_of(LLVMTypeRef t, double c);
/* exp(x), scalars or vectors: for f32 a polynomial the vectorizer keeps
 * in vector registers (within 2 ulp of the correctly rounded value,
 * subnormal results included; exp(-inf) = 0, overflow gives inf, NaN stays
 * NaN) instead of one libm call per lane; llvm.exp for f64. */
LLVMValueRef cg_exp(cg_emit *e, LLVMValueRef x);
/* a*b + c (fused where the CPU has FMA); scalars or vectors. */
LLVMValueRef cg_fma(cg_emit *e, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c);

/* The value of elementwise op 'op' (unary, binary, where, cast, *_grad
 * binary ops; not broadcast_to) applied to already-loaded operands v[] of
 * dtype 'in_dt', giving the result dtype 'out_dt'. Works on scalars and on
 * vectors. 'n' supplies attributes (cast). Also the building block of
 * fused kernels. */
LLVMValueRef cg_elementwise_value(cg_emit *e, const ir_node *n, ir_dtype in_dt, ir_dtype out_dt,
                                  LLVMValueRef *v);

/* ---- elementwise loop nests (cg_ops_elementwise.c; also fused kernels) ---- */

/* Most operands of one merged loop nest (fused kernels: outs + ins). */
#define CG_EW_MAX_OPS 48
/* Rows of at most this many inner elements are one work item. */
#define CG_EW_BLOCK 16384

/* The merged loop nest over one index space (a type) read or written by
 * several operands through element strides (0 along broadcast axes). */
typedef struct {
  int rank;
  int64_t dims[IR_MAX_RANK];
  int nops;
  int64_t strides[CG_EW_MAX_OPS][IR_MAX_RANK];
  int64_t outer, blocks; /* work items: outer * blocks */
} cg_ew_layout;

/* Fills *l for index space 't' and 'nops' (<= CG_EW_MAX_OPS) operands whose
 * strides over t's axes are s[k] (cg_strides for stored operands,
 * cg_broadcast_strides for broadcast reads): axes of size 1 dropped,
 * adjacent axes contiguous for every operand merged, the inner row split
 * into blocks of CG_EW_BLOCK. */
void cg_ew_layout_make(const ir_type *t, int nops, int64_t (*s)[IR_MAX_RANK], cg_ew_layout *l);

/* Called once per element by cg_ew_loops with idx[k] the element offset of
 * operand k; emits the element's loads, math and stores. */
typedef attnc_status (*cg_ew_body)(cg_emit *e, void *ctx, LLVMValueRef *idx);
/* Called once per row, before its inner loop, with idx[k] the offset of
 * operand k at the row's start and inv[k] 1 if that offset stays the same
 * along the row: the place to load row-invariant operands once, which LLVM
 * cannot hoist itself when the row's stores might alias them. */
typedef void (*cg_ew_row)(cg_emit *e, void *ctx, LLVMValueRef *idx, const int *inv);
/* Emits the loop nest of 'l' over work items [begin, end) (i64 values);
 * 'row' (before each row) and 'row_end' (after it, with the same offsets)
 * may be NULL. With a 'row_end', the body may accumulate along the row
 * into locals that row_end stores: the row's loop is then vectorized with
 * those sums reassociated (a fixed order, the same on every run). */
attnc_status cg_ew_loops(cg_emit *e, const cg_ew_layout *l, LLVMValueRef begin, LLVMValueRef end,
                         cg_ew_row row, cg_ew_row row_end, cg_ew_body body, void *ctx);

/* ---- fusion groups (cg_fuse.c) ---- */

/* A fusion group prepared for compilation: its plan and the per-sample
 * graphs of its steps. */
typedef struct cg_fused cg_fused;
/* Prepares group 'grp' of 'g' (kept by pointer until cg_fused_free):
 * checks it can be compiled (else returns NULL with nothing reported: the
 * caller runs its members unfused) and fills *plan. */
cg_fused *cg_fused_prepare(const ir_graph *g, const pass_fuse_group *grp, cg_plan *plan);
void cg_fused_free(cg_fused *k);
/* Emits the group's kernel 'name' into 'm' (ABI above). With 'step_cycles'
 * (SAMPLE groups; NULL: none), the kernel adds the cycles each thread
 * spends in step s of the group to step_cycles[s] (atomically; the array
 * must outlive the kernel). */
attnc_status cg_fused_build(LLVMModuleRef m, const char *name, cg_fused *k, int64_t *step_cycles, ir_diag *d);
/* The dedup key of group 'grp' (malloc'd; NULL if out of memory): the
 * kind, the numbers of outs and ins, the step starts, and per member its
 * cg_kernel_key, the wiring of each operand (m<j>: member j, i<k>: input k)
 * and its index among the outs (o-1: internal). Equal keys compile to the
 * same code, so the identical blocks of a ResNet stage share one kernel. */
char *cg_fused_key(const ir_graph *g, const pass_fuse_group *grp);

/* Creates a program like cg_program_create with the fusion groups 'f'
 * (copied; groups the JIT cannot compile run unfused) instead of running
 * pass_fuse (tests). */
attnc_status cg_program_create_fused(const ir_graph *g, const cg_options *o, const pass_fusion *f,
                                     cg_program **out, ir_diag *d);

/* Bytes of the host's widest vector register (64 with AVX-512F, else 32);
 * kernels size their vectors and register blocks by it (cg_ops_nn.c). */
int cg_host_vector_bytes(void);

/* Reports an error about node 'e->n' ("<op> %N: ...") to e->d; returns ATTNC_ERUNTIME. */
attnc_status cg_error(cg_emit *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
