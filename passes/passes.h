/* Graph-to-graph passes. Each pass is one file named after it; each takes the
 * graph to change and a diagnostics context. */
#ifndef ATTNC_PASSES_H
#define ATTNC_PASSES_H

#include "ir.h"

enum {
  PASS_AD_INPUTS = 1 << 0, /* also differentiate float inputs */
};

/* Appends to 'g' the gradient of its scalar output 'loss' with respect to
 * every float param (and with PASS_AD_INPUTS every float input), as IR, and
 * adds outputs "grad.<name>" (zeros for a source the loss does not use). */
attnc_status pass_autodiff(ir_graph *g, const char *loss, unsigned flags, ir_diag *d);
/* Returns 1 if 'op' has a gradient rule. */
int pass_autodiff_has_rule(ir_opcode op);

/* Counts of a simplification run. */
typedef struct {
  int before, after; /* node counts */
  int dead, cse, folded;
} pass_simplify_stats;

/* Removes dead nodes, merges identical nodes, folds constants and trivial
 * shape ops (reshape to the same shape, x*1, x+0, ...), renumbering 'g' in
 * place. Sources input/param/buffer are kept even if unused. */
attnc_status pass_simplify(ir_graph *g, pass_simplify_stats *stats, ir_diag *d);
/* A copy of 'g' without the nodes no output depends on (input, param and
 * buffer nodes kept); *removed counts the dropped nodes. NULL if out of
 * memory. */
ir_graph *pass_copy_live(const ir_graph *g, int *removed);
/* The users of every node (pass_users.c): node i is read by
 * (*users)[(*ustart)[i] .. (*ustart)[i + 1]), ascending, once per operand;
 * both arrays malloc'd. Returns 0, or -1 if out of memory. */
int pass_users(const ir_graph *g, int **ustart, int **users);

/* Appends the replacement of node 'n' of the graph being rebuilt to 'ng',
 * its operands 'in' already mapped ('map': the new ids of the nodes before
 * n); returns the new id of its value, -2 for a copy of n that reads 'in'
 * (which emit may change), or -1 after reporting an error (pass_rebuild). */
typedef int (*pass_emit)(ir_graph *ng, const ir_node *n, int *in, const int *map, void *ctx);
/* Rebuilds 'g' node by node through 'emit' (pass_rebuild.c); 'what' names
 * the pass in errors. */
attnc_status pass_rebuild(ir_graph *g, pass_emit emit, void *ctx, const char *what, ir_diag *d);

/* Replaces each batchnorm_train(x, gamma, beta) by elementwise ops
 * (x - mean) * gamma/sqrt(var + eps) + beta, with mean and var the rows of
 * one batchnorm_stats(x) (merged with any already there), so the
 * normalization is batch-local and fuses; and each batchnorm_train_grad of
 * more than one channel likewise (see pass_bn_split.c). Only after
 * autodiff: no gradient flows through the stats. *split (if given) counts
 * the replaced nodes. */
attnc_status pass_bn_split(ir_graph *g, int *split, ir_diag *d);

/* Splits each sum or mean over the batch and other axes of a feature map
 * into the per-sample sum and a sum over the batch of its results, so the
 * per-sample part fuses into the sample group that makes the map (see
 * pass_batch_sums.c). Only after autodiff, with fusion. *count (if given)
 * counts the split nodes. */
attnc_status pass_batch_sums(ir_graph *g, int *count, ir_diag *d);

/* Recomputes a cheap elementwise feature map (HAM's masked maps) next to
 * each use that can never share its fused kernel, from operands alive
 * there anyway, instead of storing it; drops it if no use is left. Values
 * unchanged. *cloned (if given) counts the recomputed uses. */
attnc_status pass_remat(ir_graph *g, int *cloned, ir_diag *d);

/* Sinks small batch reductions (a gate parameter's gradient) and small
 * parameter-sized nodes below the batch-local nodes after them, so one
 * sample group can hold a block's whole backward; hoists batch-local nodes above small batch-wide ones
 * (the BN statistics of a [N,1,H,W] attention map) and their small
 * dependents, so HAM's two masked poolings share a group; then moves small
 * cheap nodes (a [N,1,H,W] div, the reshape of a gate) that sit between
 * feature-map-sized elementwise ops up to their operands or down to their
 * users, so those ops are adjacent and fuse into one loop nest; last, a
 * feature map read only after a batch-wide node goes next to its first
 * user, so it is computed there rather than stored. Only
 * reorders: values and node count are unchanged, and what a node passes is
 * small. *moved (if given) counts the nodes moved. */
attnc_status pass_schedule(ir_graph *g, int *moved, ir_diag *d);

/* Optimizer settings for the training step. */
typedef struct {
  double momentum;     /* 0.9 */
  double weight_decay; /* 5e-4, applied to every param */
  int nesterov;
} pass_sgd_options;

/* Turns a graph with outputs "grad.<p>" into a training step: adds input
 * "lr" (f32 scalar) and, per param p, a buffer "optim.<p>.momentum" and
 * outputs "<p>" (updated) and "optim.<p>.momentum", computing SGD with
 * momentum, weight decay and optional Nesterov exactly as torch.optim.SGD. */
attnc_status pass_sgd(ir_graph *g, const pass_sgd_options *opt, ir_diag *d);

/* Where each node's buffer lives in the one arena of a compiled step. */
typedef struct {
  int nnodes;
  int64_t *offset;     /* byte offset of each node's buffer (its owner's for an alias) */
  int64_t *size;       /* bytes, 64-aligned; 0 for an alias */
  int *first, *last;   /* live from the defining node to the last use (nnodes: to the end) */
  int *owner;          /* node whose buffer this one is (itself unless an alias) */
  int64_t arena_bytes; /* size of the arena */
  int64_t total_bytes; /* sum of all buffers: the arena without reuse */
} pass_memory_plan;

/* Plans the buffers of 'g' in graph order. Sources, constants and outputs
 * stay live for the whole run; with 'reuse' 0 nothing is shared (every
 * buffer its own space). Frees nothing of 'g'. */
attnc_status pass_plan_memory(const ir_graph *g, int reuse, pass_memory_plan *p, ir_diag *d);
void pass_memory_plan_free(pass_memory_plan *p);
/* 1 if node 'n' is a view of its operand's buffer (reshape). */
int pass_plan_is_alias(const ir_node *n);
/* The plan as text, one line per node (malloc'd; NULL if out of memory). */
char *pass_memory_plan_print(const ir_graph *g, const pass_memory_plan *p);

/* ---- fusion (pass_fuse.c) ----
 *
 * Fusion does not rewrite the graph: it partitions some of its nodes into
 * groups, each compiled into one kernel. A group runs at the position of its
 * last member; the pass guarantees that every use of a member by a node
 * outside the group comes after that position, and that operands from
 * outside the group are defined before it.
 *
 * PASS_FUSE_LOOP: two or more elementwise nodes (unary, binary, where, cast,
 * the elementwise *_grad ops) all of the group's output type; each operand
 * is a member or an outside value broadcastable to that type. One loop
 * computes every member per element in registers.
 *
 * PASS_FUSE_SAMPLE: batch-local nodes (every output's axis 0 is the batch N,
 * and sample n of the output depends only on sample n of its batched
 * operands; see pass_fuse_batched). The kernel runs, for each sample of its
 * share of [0, N), every step of the group on that sample's slices, with
 * intermediates in the thread's scratch (cache-resident), so the group
 * reads each outside feature map once from memory and writes each output
 * once. Steps are consecutive runs of members: a step of one member is that
 * op's own kernel on per-sample shapes; a step of several members follows
 * the PASS_FUSE_LOOP rules on per-sample shapes, and may also hold running
 * reductions (sum, mean, max, min over axes other than 0 and the last) of
 * its earlier members that no member of the step reads.
 *
 * Members used by nodes outside the group, or named by graph outputs, are
 * the group's outputs ('outs') and get arena buffers; other members exist
 * only inside the kernel. */
typedef enum { PASS_FUSE_LOOP = 1, PASS_FUSE_SAMPLE = 2 } pass_fuse_kind;

typedef struct {
  pass_fuse_kind kind;
  const char *label;  /* structural class, static: "channel-attention",
                         "spatial-attention", "attention", "attention-grad",
                         "elementwise", "sgd", ... (from op kinds, never names) */
  int nmembers;
  int *members;       /* node ids in execution order: ascending for a LOOP
                         group; a SAMPLE group's in a topological order of
                         its own (its passes over the map adjacent) */
  int nsteps;
  int *step_start;    /* index into members where each step starts (LOOP: one step) */
  int nouts;
  int *outs;          /* member node ids materialized, ascending */
  int nins;
  int *ins;           /* outside node ids read by members, ascending */
} pass_fuse_group;

typedef struct {
  int nnodes;
  int *group_of;      /* per node: its group's index, or -1 */
  int ngroups;
  pass_fuse_group *groups;
} pass_fusion;

/* Partitions the nodes of 'g' (verified, not changed) into fusion groups
 * into *f (groups in order of their last member). Returns ATTNC_OK or an
 * error (out of memory). */
attnc_status pass_fuse(const ir_graph *g, pass_fusion *f, ir_diag *d);
void pass_fusion_free(pass_fusion *f);
/* The smallest and the largest member id of 'gr' (it runs at its largest). */
int pass_fuse_first(const pass_fuse_group *gr);
int pass_fuse_last(const pass_fuse_group *gr);
/* The number of steps of group 'gr' (one when it lists none). */
int pass_fuse_nsteps(const pass_fuse_group *gr);
/* Members [*first, *end) of step s of group 'gr'. */
void pass_fuse_step(const pass_fuse_group *gr, int s, int *first, int *end);
/* For a batch-local node 'n' of batch size 'batch': 1 if its operand 'k' is
 * sliced per sample (axis 0 is the batch), 0 if read whole (a weight, a
 * broadcast scalar), -1 if 'n' is not batch-local for this batch size. */
int pass_fuse_batched(const ir_graph *g, const ir_node *n, int k, int64_t batch);
/* 1 if 'n' may join a SAMPLE group of batch 'batch': batch-local, and
 * cheap enough (convs with at most 512 weights, small matmuls). */
int pass_fuse_sample_eligible(const ir_graph *g, const ir_node *n, int64_t batch);
/* 1 if a running reduction of op 'op' in a loop step may reduce the last
 * axis (a sum or mean, which the loop adds along each row, reassociated);
 * the fusion pass and the JIT both follow it. */
int pass_fuse_row_reduction(ir_opcode op);
/* The batch of 'g': dims[0] of the float input "x", else of the first
 * rank-4 float input; -1 if neither exists. */
int64_t pass_fuse_graph_batch(const ir_graph *g);
/* The graph with its groups as text (the --stage fused dump): every node as
 * ir_print prints it, each group introduced by a line naming its kind,
 * label, members, steps, inputs and outputs (malloc'd; NULL if out of memory). */
char *pass_fusion_print(const ir_graph *g, const pass_fusion *f);

/* pass_plan_memory for a fused graph: members of a group that are not its
 * outputs get no buffer; every other member is defined, and every group
 * input is read, at the position of the group's last member. f may be NULL. */
attnc_status pass_plan_memory_fused(const ir_graph *g, const pass_fusion *f, int reuse,
                                    pass_memory_plan *p, ir_diag *d);

/* The stages a graph can be dumped at, in pipeline order. */
typedef enum { PASS_STAGE_IR, PASS_STAGE_GRAD } pass_stage;
/* Parses a stage name; returns 0, or -1 if unknown. */
int pass_stage_parse(const char *s, pass_stage *out);
/* Returns the stage names joined by '|'. */
const char *pass_stage_list(void);
/* Appends the gradients of output "loss" ("grad.<param>") and simplifies.
 * 'fuse' adds the rewrites that serve fusion (batch-norm split, remat,
 * schedule); pass 0 for a program the JIT will run unfused (--no-fuse). */
attnc_status pass_gradients(ir_graph *g, int fuse, pass_simplify_stats *st, ir_diag *d);
/* Turns a training-mode forward graph (output "loss") into the whole training
 * step: autodiff, the SGD update, simplification (and with 'fuse' the
 * rewrites that serve fusion, as for pass_gradients); verified after each. */
attnc_status pass_train_step(ir_graph *g, const pass_sgd_options *o, int fuse, pass_simplify_stats *st,
                             ir_diag *d);

#endif
