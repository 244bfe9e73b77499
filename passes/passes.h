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

/* The stages a graph can be dumped at, in pipeline order. */
typedef enum { PASS_STAGE_IR, PASS_STAGE_GRAD } pass_stage;
/* Parses a stage name; returns 0, or -1 if unknown. */
int pass_stage_parse(const char *s, pass_stage *out);
/* Returns the stage names joined by '|'. */
const char *pass_stage_list(void);
/* Appends the gradients of output "loss" ("grad.<param>") and simplifies. */
attnc_status pass_gradients(ir_graph *g, pass_simplify_stats *st, ir_diag *d);
/* Turns a training-mode forward graph (output "loss") into the whole training
 * step: autodiff, the SGD update, simplification; verified after each. */
attnc_status pass_train_step(ir_graph *g, const pass_sgd_options *o, pass_simplify_stats *st, ir_diag *d);

#endif
