/* Fusion test helpers (prefix tfu_): running pass_fuse with every invariant
 * of its contract checked, and finding groups by label and block. Helpers
 * fail the running cmocka test instead of returning an error.
 *
 *   pass_fusion f;
 *   tfu_fuse(g, &f);                                  // pass_fuse + tfu_check
 *   int i = tfu_block_group(g, &f, 3, "channel-attention");
 *   assert_true(tfu_group_has_op(g, &f.groups[i], IR_OP_conv1d));
 *   pass_fusion_free(&f);
 */
#ifndef ATTNC_TESTS_UTIL_FUSE_H
#define ATTNC_TESTS_UTIL_FUSE_H

#include <stdint.h>

#include "passes.h"

/* The batch the contract derives for 'g' (dims[0] of float input "x", else
 * of the first rank-4 float input; -1 if none), computed independently. */
int64_t tfu_batch(const ir_graph *g);

/* Fails unless 'f' satisfies the contract on 'g': group_of consistent,
 * groups ordered by last member, 2..64 ascending non-source members, steps
 * partitioning the members, ins = the outside operands, outs = the members
 * used outside or named by outputs (both ascending), every outside user of
 * a member after the group's last member, LOOP members elementwise of one
 * type, SAMPLE members batch-local with member operands sliced, small
 * convs/matmuls only, every loop cluster within 16 arguments. */
void tfu_check(const ir_graph *g, const pass_fusion *f);

/* pass_fuse on 'g' (must succeed) followed by tfu_check. */
void tfu_fuse(const ir_graph *g, pass_fusion *f);

/* Number of groups labelled 'label'. */
int tfu_count_label(const pass_fusion *f, const char *label);

/* Index of the one group labelled 'label' with a member in scope
 * "layers.<block>.att" (or below it); fails if there is none or several. */
int tfu_block_group(const ir_graph *g, const pass_fusion *f, int block, const char *label);

/* 1 if group 'gr' has a member of op 'op'. */
int tfu_group_has_op(const ir_graph *g, const pass_fuse_group *gr, ir_opcode op);

/* Kernel launches of 'g' without fusion (nodes that are not sources or
 * reshapes) and with the groups of 'f' (each group one launch). */
int tfu_kernels(const ir_graph *g, const pass_fusion *f);

#endif
