/* host_vec.h — what the single-file loop models of bench/ (first_touch.c,
 * pass_streams.c) share: vectors as wide as the host's, unaligned loads
 * and stores of them, and a monotonic clock. Header-only, so each model
 * still builds with one cc command. */
#ifndef BENCH_HOST_VEC_H
#define BENCH_HOST_VEC_H
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* the host's vector width: 512-bit with AVX-512F, 256-bit with AVX */
#if defined(__AVX512F__)
#define LANES 16
#elif defined(__AVX__)
#define LANES 8
#else
#define LANES 4
#endif
typedef float vf __attribute__((vector_size(LANES * 4)));
typedef int32_t vi __attribute__((vector_size(LANES * 4)));

/* Seconds on the monotonic clock. */
static inline double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The vector at 'p' (any alignment). */
static inline vf load(const float *p) {
  vf v;
  memcpy(&v, p, sizeof v);
  return v;
}

/* Stores 'v' at 'p' (any alignment). */
static inline void store(float *p, vf v) { memcpy(p, &v, sizeof v); }

/* A vector of x in every lane. */
static inline vf splat(float x) {
  vf v;
  for (int i = 0; i < LANES; i++) v[i] = x;
  return v;
}
/* The THREADS argument 't' of model 'prog' as it can run: 1 to 64 with
 * OpenMP (else 1), only 1 without it (else -1, after saying why). */
static inline int host_threads(int t, const char *prog) {
#ifdef _OPENMP
  (void)prog;
  return t < 1 || t > 64 ? 1 : t;
#else
  if (t != 1) {
    fprintf(stderr, "%s: built without -fopenmp, THREADS must be 1\n", prog);
    return -1;
  }
  return 1;
#endif
}
#endif
