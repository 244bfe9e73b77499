/* Building blocks shared by the reduction kernels (cg_ops_reduce.c) and the
 * softmax / loss / top-k kernels (cg_ops_softmax.c): identities, the
 * NaN-propagating combine of the interpreter, and a vectorized reduction of
 * one contiguous run with several independent vector accumulators. */
#ifndef ATTNC_CG_REDUCE_H
#define ATTNC_CG_REDUCE_H
#include "cg_internal.h"

typedef enum { CG_RED_SUM, CG_RED_MAX, CG_RED_MIN } cg_red_kind;

/* Most vector accumulators of one contiguous run. */
#define CG_RED_MAX_ACC 4

/* The identity of 'kind' for dtype 'dt' (0, -inf / INT64_MIN, +inf /
 * INT64_MAX), a scalar (width 0) or a splat vector of 'width' lanes. */
LLVMValueRef cg_red_identity(cg_emit *e, cg_red_kind kind, ir_dtype dt, int width);
/* acc combined with v as the interpreter does: acc + v, or v when
 * v > acc (< for min) or v is NaN; scalars or vectors. */
LLVMValueRef cg_red_combine(cg_emit *e, cg_red_kind kind, LLVMValueRef acc, LLVMValueRef v);
/* The lanes of vector 'v' combined into one scalar (a fixed tree order). */
LLVMValueRef cg_red_horizontal(cg_emit *e, cg_red_kind kind, LLVMValueRef v);

/* Vector width and accumulator count for a contiguous run of 'len'
 * elements of dtype 'dt' (512-bit vectors, fewer lanes for short runs). */
void cg_red_shape(int64_t len, ir_dtype dt, int *width, int *nacc);

/* Maps each loaded vector before it is accumulated: 'v' holds the elements
 * at base + idx .. + width - 1, of which the first 'count' are real (the
 * rest read as 0 and are replaced by the identity after the map). Returns
 * the vector to accumulate. */
typedef LLVMValueRef (*cg_red_map)(cg_emit *e, void *ctx, LLVMValueRef v, LLVMValueRef idx, int count);

/* Accumulates the 'len' (a constant) contiguous elements base[off ..
 * off + len) into the vector accumulators acc[0 .. nacc) (cg_var_new
 * locals of 'width' lanes), through 'map' if not NULL. */
void cg_red_run(cg_emit *e, cg_red_kind kind, ir_dtype dt, LLVMValueRef base, LLVMValueRef off,
                int64_t len, LLVMValueRef *acc, int nacc, int width, cg_red_map map, void *ctx);
/* Declares nacc vector accumulators of 'width' lanes set to the identity. */
void cg_red_acc_init(cg_emit *e, cg_red_kind kind, ir_dtype dt, LLVMValueRef *acc, int nacc, int width);
/* Resets accumulators to the identity. */
void cg_red_acc_reset(cg_emit *e, cg_red_kind kind, ir_dtype dt, LLVMValueRef *acc, int nacc, int width);
/* The scalar result of the accumulators (tree over them, then over lanes). */
LLVMValueRef cg_red_acc_result(cg_emit *e, cg_red_kind kind, LLVMValueRef *acc, int nacc);

/* Registers softmax, log_softmax, cross_entropy, cross_entropy_grad and
 * topk_mask (cg_ops_softmax.c); called by cg_register_reduce. */
void cg_register_softmax(cg_kernel_impl *t);

#endif
