/* The training loop: compiles a training step and an eval forward, keeps
 * the training state (params, batchnorm buffers, SGD momenta) in the step
 * program's sources, runs epochs of mini-batches from the loader, evaluates
 * on the test split after each epoch, logs, writes checkpoints, stops
 * cleanly on a signal and resumes bit-identically. Also the pieces the eval
 * and infer commands share: weight loading and whole-data-set evaluation. */
#ifndef ATTNC_RT_TRAIN_H
#define ATTNC_RT_TRAIN_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "cg.h"
#include "ir.h"
#include "ir_tensor.h"
#include "rt_ckpt.h"
#include "rt_data.h"
#include "rt_metrics.h"
#include "rt_sched.h"

typedef struct {
  const ir_graph *step;      /* training step (pass_train_step applied: inputs input, labels, lr; outputs
                                logits, loss, new params/buffers/momenta under the sources' names) */
  const ir_graph *eval;      /* eval forward (inputs input; output logits) at the same batch */
  const char *data;          /* data set spec */
  int64_t epochs, batch, holdout;
  rt_schedule sched;
  uint64_t seed;             /* data order + init */
  int pad_crop, flip, threads, interp, no_fuse;
  double resized_crop;       /* 0, or RandomResizedCrop's smallest area fraction (a folder set's training
                                images are then decoded from their files every epoch) */
  const char *resume, *weights, *save, *log;   /* paths or NULL */
  int json, confusion;
  rt_ckpt_info info;         /* model/options/spec hash to store in checkpoints */
  FILE *out;                 /* progress and results */
  /* extensions (loop helper) */
  int force;                 /* --resume: accept another spec hash / options */
  const volatile sig_atomic_t *stop; /* set (by a signal handler) to stop after the current step;
                                        may be NULL */
  const char *interrupt_save; /* where an interrupted run without 'save' writes its checkpoint
                                 (NULL: "attnc-interrupted-<pid>.safetensors") */
  int tty;                   /* progress: -1 isatty(out), 0 plain lines, 1 bar */
} rt_train_options;

typedef struct {
  double test_top1, test_top5, test_loss, train_wall_s, images_per_s;
  int64_t epochs;            /* epochs completed (including those of a resumed checkpoint) */
  int interrupted;           /* 1: stopped by o->stop; a checkpoint went to 'saved' */
  char saved[1024];          /* path of the last checkpoint written ("" if none) */
  rt_metrics *test;          /* the last test evaluation (owned by the result: rt_train_result_free) */
} rt_train_result;

/* Trains as described in the file comment. Progress and messages go to
 * o->out; the final test metrics to r. Returns ATTNC_OK (also when
 * interrupted: r->interrupted), or an error naming the file or option
 * (data set, checkpoint, weights, log). Nothing saved before is lost: every
 * checkpoint write is atomic. */
attnc_status rt_train(const rt_train_options *o, rt_train_result *r, ir_diag *d);
/* Frees what r holds. */
void rt_train_result_free(rt_train_result *r);

/* Fills every param and buffer of 'g' with its initial value as PyTorch
 * initializes a fresh model: weights of rank >= 2 (conv, linear)
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform with a = sqrt(5)),
 * the bias of such a weight U(-1/sqrt(fan_in), +), other rank-1 weights
 * (batchnorm gamma) 1 and biases 0, scalar "alpha"/"beta" 0.5 (HAM), other
 * scalars 0 (CSM gamma), running_var 1, every other buffer (running_mean,
 * momenta) 0. Values depend only on 'seed' and the tensor's name. */
ir_bundle *rt_train_init_state(const ir_graph *g, uint64_t seed);

/* Loads weights for graph 'g' from 'path' (an attnc checkpoint or a plain
 * safetensors state_dict, e.g. from PyTorch): keeps the tensors named like a
 * param or buffer of 'g' ("optim.*" momenta and "*.num_batches_tracked" are
 * dropped silently), checks them with rt_check_weights (every one present,
 * shapes, dtypes) and converts them to the graph's dtypes. *info gets the
 * checkpoint's metadata (zeroed for a plain file). */
attnc_status rt_train_load_weights(const char *path, const ir_graph *g, ir_bundle **out, rt_ckpt_info *info,
                                   ir_diag *d);

/* Copies every tensor of 'w' whose name is a source of 'p' into it (dtype
 * converted; a size mismatch is an error naming the tensor). */
attnc_status rt_program_load(cg_program *p, const ir_bundle *w, ir_diag *d);
/* Copies every param and buffer of 'g' (the graph 'p' was compiled from)
 * out of 'p' into a new bundle (NULL if out of memory). */
ir_bundle *rt_program_state(cg_program *p, const ir_graph *g);

/* Runs eval program 'p' (input "input" f32[B,C,H,W], output "logits") over
 * every sample of 'ds' in order, in batches of B (the last one zero-padded,
 * only real samples counted) and adds them to 'm'. Stops early (returning
 * ATTNC_OK) when *stop is set (stop may be NULL). */
attnc_status rt_evaluate(cg_program *p, const rt_dataset *ds, rt_metrics *m, const volatile sig_atomic_t *stop,
                         ir_diag *d);

#endif
