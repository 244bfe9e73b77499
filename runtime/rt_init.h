/* Parameter initialization and deterministic random numbers. */
#ifndef ATTNC_RT_INIT_H
#define ATTNC_RT_INIT_H

#include "ir_tensor.h"

/* A small deterministic generator (splitmix64). */
typedef struct {
  uint64_t s;
} rt_rng;

void rt_rng_seed(rt_rng *r, uint64_t seed);
uint64_t rt_rng_next(rt_rng *r);
/* Uniform in [0, 1). */
double rt_rng_uniform(rt_rng *r);
/* Standard normal. */
double rt_rng_normal(rt_rng *r);

/* Fills 'out' with a random value for every source of 'g' not already in it,
 * as the PyTorch reference points are made: inputs N(0,1) (i64 labels
 * uniform in [0, classes) with classes from the "logits" output), scalar
 * params U(0.1,0.9), rank-1 "*.weight" U(0.25,0.75), other rank-1 params
 * N(0,0.1^2), running_mean N(0,0.1^2), running_var U(0.5,1.5), tensors of
 * rank >= 2 N(0, 2/fan_in). Every value depends only on 'seed' and the name. */
void rt_init_random(const ir_graph *g, uint64_t seed, ir_bundle *out);

#endif
