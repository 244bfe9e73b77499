/* The compilation pipeline: the stages a graph goes through after lowering,
 * in order, with the verifier between them. Each stage can be dumped. */
#include <string.h>

#include "passes.h"

static const char *const stage_names[] = {"ir", "grad"};

/* Parses a stage name; returns 0, or -1 if unknown. */
int pass_stage_parse(const char *s, pass_stage *out) {
  for (int i = 0; i < (int)(sizeof stage_names / sizeof stage_names[0]); i++)
    if (!strcmp(s, stage_names[i])) {
      *out = (pass_stage)i;
      return 0;
    }
  return -1;
}

/* Returns the names of the stages, "ir|grad". */
const char *pass_stage_list(void) { return "ir|grad"; }

/* Verifies 'g' after stage 'what'; reports failures as internal errors. */
static attnc_status check(const ir_graph *g, const char *what, ir_diag *d) {
  if (ir_verify(g, d) == 0) return ATTNC_OK;
  ir_diag_error(d, NULL, 0, "internal error: the graph does not verify after %s", what);
  return ATTNC_EVERIFY;
}

/* The rewrites after autodiff (and SGD): simplification always; with
 * 'fuse', first the batch-norm and batch-sum splits and afterwards
 * rematerialization and scheduling, which only pay off when the JIT
 * fuses. */
static attnc_status rewrite(ir_graph *g, int fuse, pass_simplify_stats *st, ir_diag *d) {
  attnc_status s = ATTNC_OK;
  if (fuse) s = pass_bn_split(g, NULL, d);
  if (fuse && s == ATTNC_OK) s = check(g, "batch-norm split", d);
  if (fuse && s == ATTNC_OK) s = pass_batch_sums(g, NULL, d);
  if (fuse && s == ATTNC_OK) s = check(g, "batch-sum split", d);
  if (s == ATTNC_OK) s = pass_simplify(g, st, d);
  if (s == ATTNC_OK) s = check(g, "simplify", d);
  if (fuse && s == ATTNC_OK) s = pass_remat(g, NULL, d);
  if (fuse && s == ATTNC_OK) s = check(g, "rematerialization", d);
  if (fuse && s == ATTNC_OK) s = pass_schedule(g, NULL, d);
  if (fuse && s == ATTNC_OK) s = check(g, "schedule", d);
  return s;
}

/* Appends the gradients of output "loss" and simplifies. */
attnc_status pass_gradients(ir_graph *g, int fuse, pass_simplify_stats *st, ir_diag *d) {
  attnc_status s = pass_autodiff(g, "loss", 0, d);
  if (s == ATTNC_OK) s = check(g, "autodiff", d);
  if (s == ATTNC_OK) s = rewrite(g, fuse, st, d);
  return s;
}

/* Turns a training-mode forward graph (with output "loss") into the whole
 * training step: forward, loss, backward, SGD update, running statistics. */
attnc_status pass_train_step(ir_graph *g, const pass_sgd_options *o, int fuse, pass_simplify_stats *st,
                             ir_diag *d) {
  attnc_status s = pass_autodiff(g, "loss", 0, d);
  if (s == ATTNC_OK) s = check(g, "autodiff", d);
  if (s == ATTNC_OK) s = pass_sgd(g, o, d);
  if (s == ATTNC_OK) s = check(g, "sgd", d);
  if (s == ATTNC_OK) s = rewrite(g, fuse, st, d);
  return s;
}
