/* Kernels of reductions, softmax, log_softmax, cross_entropy and its gradient, topk_mask. */
#include "cg_internal.h"

/* Registers this family's ops. */
void cg_register_reduce(cg_kernel_impl *t) { (void)t; }
