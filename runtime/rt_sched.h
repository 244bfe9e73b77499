/* Learning-rate schedules for training: constant, step (StepLR), multistep
 * (MultiStepLR), cosine annealing (CosineAnnealingLR), each optionally
 * preceded by a linear per-iteration warm-up. Values follow PyTorch's
 * formulas when scheduler.step() is called once per epoch. */
#ifndef ATTNC_RT_SCHED_H
#define ATTNC_RT_SCHED_H

#include <stdint.h>

#include "ir_diag.h"

/* Kinds of schedule (rt_schedule.kind). */
enum { RT_SCHED_CONST, RT_SCHED_STEP, RT_SCHED_MULTISTEP, RT_SCHED_COSINE };

/* Largest number of milestones of a multistep schedule. */
#define RT_SCHED_MAX_MILESTONES 32

typedef struct {
  int kind;                  /* RT_SCHED_CONST, RT_SCHED_STEP, RT_SCHED_MULTISTEP, RT_SCHED_COSINE */
  double base_lr;
  double step_size;          /* STEP: every step_size epochs (PyTorch StepLR) */
  int nmilestones; double milestones[RT_SCHED_MAX_MILESTONES]; /* MULTISTEP: epochs (PyTorch MultiStepLR) */
  double factor;             /* gamma of STEP/MULTISTEP */
  double eta_min;            /* COSINE floor (PyTorch CosineAnnealingLR, T_max = total epochs) */
  double warmup_epochs;      /* linear warm-up from ~0 to base_lr over this many epochs, per iteration */
} rt_schedule;

/* Parses "const", "step:S:F", "step:M1,M2,...:F" (a list = multistep, as the
 * HAM paper writes it), "multistep:M1,M2,...:F", "cosine" or "cosine:ETA_MIN"
 * with base lr 'lr' and warm-up 'warmup' epochs into *out. S > 0, F > 0,
 * milestones strictly increasing and >= 0, ETA_MIN >= 0, lr > 0, warmup >= 0.
 * Returns ATTNC_OK, or ATTNC_EPARSE with a message naming what is wrong
 * (unknown kind, bad number, trailing text, ...). */
attnc_status rt_schedule_parse(const char *text, double lr, double warmup, rt_schedule *out, ir_diag *d);

/* Learning rate for iteration 'iter' (0-based) of epoch 'epoch' (0-based) of
 * 'epochs', with 'iters' iterations per epoch. Step-type schedules change at
 * epoch boundaries as PyTorch's do when scheduler.step() is called once per
 * epoch. During warm-up (global iteration g = epoch*iters+iter below
 * W = ceil(warmup_epochs*iters)) the rate is base_lr*(g+1)/W; after it, the
 * schedule's value at the (unshifted) epoch. */
double rt_schedule_lr(const rt_schedule *s, int64_t epoch, int64_t iter, int64_t iters, int64_t epochs);

#endif
