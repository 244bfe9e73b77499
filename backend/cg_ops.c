/* The table of kernel generators, filled by each op family. */
#include <pthread.h>
#include "cg_internal.h"

static cg_kernel_impl table[IR_OP_COUNT];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

/* Lets every family register its ops. */
static void fill_table(void) {
  cg_register_elementwise(table);
  cg_register_reduce(table);
  cg_register_shape(table);
  cg_register_nn(table);
  cg_register_conv(table);
  cg_register_linear(table);
}

/* Returns the generator table, indexed by opcode. */
const cg_kernel_impl *cg_kernel_table(void) {
  pthread_once(&table_once, fill_table);
  return table;
}
