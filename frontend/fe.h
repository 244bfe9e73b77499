/* The Lua front end: runs a model spec (Lua 5.4, sandboxed) and lowers the
 * network it builds to an IR graph. */
#ifndef ATTNC_FE_H
#define ATTNC_FE_H

#include <stdint.h>

#include "ir.h"

typedef enum {
  FE_EVAL,  /* inference forward: batchnorm with running statistics */
  FE_TRAIN, /* training forward: batch statistics, loss, new running stats */
} fe_mode;

/* What to lower: the spec file, its -D options, the input shape and mode. */
typedef struct {
  const char *path;    /* MODEL.lua */
  int nopts;           /* -D key=value pairs */
  const char **keys;   /* option names */
  const char **values; /* option values, as typed */
  int64_t shape[3];    /* C,H,W from --shape; all 0: the spec's default */
  int64_t batch;       /* N; 0 means 1 */
  fe_mode mode;
} fe_request;

/* Runs the spec of 'req' and lowers it to a verified graph in *out (caller
 * destroys). Eval graphs: input "input" f32[N,C,H,W], params and buffers by
 * their PyTorch state_dict names, output "logits". Train graphs add input
 * "labels" i64[N] and outputs "loss" and "<bn>.running_mean"/"<bn>.running_var"
 * (the updated statistics). Errors (Lua syntax or runtime errors, sandbox
 * violations, budget overruns, shape errors at the spec's file:line, unknown
 * options) go to 'd'. */
attnc_status fe_lower(const fe_request *req, ir_graph **out, ir_diag *d);

#endif
