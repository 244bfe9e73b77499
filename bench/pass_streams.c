/* pass_streams.c — how many cycles one vector of a many-stream loop pass
 * takes, by where its operands are and where they sit in their 4 KiB pages.
 *
 * The pass modelled is the 13-op pass of HAM's attention-gradient group at
 * stage 1 of ResNet-20 (docs/FUSION.md, stop 38): for each of a thread's
 * 64 samples, channel by channel (16 rows of 1024), read two 0/1 tie maps
 * from the sample's scratch, the gradient g from outside, eight [1,H,W]
 * rows from scratch and two per-channel values, and store one map into
 * scratch: 11 loads, 9 arithmetic operations and one store a vector.
 *
 * Three placements of the streams in their pages:
 *   aligned    every map and row starts at a multiple of 4 KiB, so the 12
 *              streams of a vector all fall in the same L1 set;
 *   staggered  each stream at its own offset in the page (distinct sets);
 *   store+1v   as aligned, but the stored map one vector further on, so each
 *              store shares its page offset with the next vector's loads.
 * Three states of the operands:
 *   L2         g the same map for every sample (the sample's maps in L2);
 *   L3         g a new map for every sample (4 MiB a thread: L3);
 *   memory     g a new map, evicted first (a 64 MiB buffer written).
 *
 * Build for the host and run (add -mavx512f where gcc's -march=native
 * leaves AVX-512 out, as gcc 12 does on Zen 5):
 *
 *     cc -O2 -march=native -fopenmp bench/pass_streams.c -o pass_streams && ./pass_streams
 *
 * usage: pass_streams [REPS [THREADS [GHZ]]]   (defaults 8, 2 (1 without OpenMP) and 3.6:
 * every thread passes over its own samples at once, REPS times; a case's
 * figure is the fastest of those passes; GHZ converts microseconds to
 * cycles)
 * Output: one line per case (microseconds a sample, cycles a vector), then
 * a JSON line with the same figures. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "host_vec.h"

enum { SAMPLES = 64, C = 16, HW = 1024, MAP = C * HW, ROWS = 8, PAGE = 1024 /* floats */ };
enum { ALIGNED, STAGGERED, STORE1V, NLAYOUT };
enum { IN_L2, IN_L3, IN_MEMORY, NSTATE };

/* One thread's buffers: the scratch (tie maps, rows, stored map) and the
 * gradient maps of its samples. */
typedef struct {
  float *scratch, *g;
  const float *e1, *e2, *rows[ROWS];
  float *out;
  size_t g_shift; /* floats added to each sample's g */
} streams;

/* The offset in floats within its page of stream k of 'layout' (k: e1, e2,
 * out, the rows, then g). */
static size_t in_page(int layout, int k) {
  if (layout == STAGGERED) return (size_t)k * 80 % PAGE;
  return layout == STORE1V && k == 2 ? LANES : 0;
}

/* Places the streams of 'layout' in s->scratch (which starts a page). */
static void place(streams *s, int layout) {
  /* e1, e2, out and the rows each a whole number of pages apart, plus the
   * layout's offset within the page */
  size_t at = 0;
  s->e1 = s->scratch + at + in_page(layout, 0), at += MAP + PAGE;
  s->e2 = s->scratch + at + in_page(layout, 1), at += MAP + PAGE;
  s->out = s->scratch + at + in_page(layout, 2), at += MAP + PAGE;
  for (int r = 0; r < ROWS; r++) s->rows[r] = s->scratch + at + in_page(layout, 3 + r), at += HW + PAGE;
  s->g_shift = in_page(layout, 3 + ROWS);
}

/* The modelled pass over one sample, g its gradient map. */
static void pass(const streams *s, const float *g) {
  for (int c = 0; c < C; c++) {
    vf a = splat(0.5f + (float)c), b = splat(1.5f - (float)c);
    size_t o = (size_t)c * HW;
    for (int i = 0; i < HW; i += LANES) {
      vf gg = load(g + o + i);
      vf x1 = load(s->e1 + o + i) * load(s->rows[0] + i) * load(s->rows[1] + i) + gg * load(s->rows[2] + i);
      vf x2 = load(s->e2 + o + i) * load(s->rows[3] + i) * load(s->rows[4] + i) + gg * load(s->rows[5] + i);
      x1 += load(s->rows[6] + i);
      x2 += load(s->rows[7] + i);
      store(s->out + o + i, x1 * a + x2 * b);
    }
  }
}

/* Runs the pass over every sample of one thread; returns its seconds. */
static double run(const streams *s, int state, float *flush, size_t flush_floats) {
  if (state == IN_MEMORY)
    for (size_t i = 0; i < flush_floats; i += 16) flush[i] += 1.0f;
  double t0 = now_s();
  for (int k = 0; k < SAMPLES; k++) pass(s, s->g + s->g_shift + (state == IN_L2 ? 0 : (size_t)k * MAP));
  return now_s() - t0;
}

int main(int argc, char **argv) {
  int reps = argc > 1 ? atoi(argv[1]) : 8;
#ifdef _OPENMP
  int threads = argc > 2 ? atoi(argv[2]) : 2;
#else
  int threads = argc > 2 ? atoi(argv[2]) : 1;
#endif
  double ghz = argc > 3 ? atof(argv[3]) : 3.6;
  if (reps < 1) reps = 1;
  if (ghz <= 0) ghz = 3.6;
  threads = host_threads(threads, "pass_streams");
  if (threads < 0) return 1;
  double best[NLAYOUT][NSTATE];
  for (int l = 0; l < NLAYOUT; l++)
    for (int st = 0; st < NSTATE; st++) best[l][st] = 1e30;
  size_t scratch_floats = 3 * (MAP + PAGE) + ROWS * (HW + PAGE) + PAGE;
  size_t g_floats = (size_t)(SAMPLES + 1) * MAP, flush_floats = (size_t)16 << 20;
  streams s[64];
  float *flush[64];
  int failed = 0;
  for (int t = 0; t < threads; t++) { /* every thread's buffers first, so none waits alone at a barrier */
    s[t].scratch = aligned_alloc(4096, scratch_floats * sizeof(float));
    s[t].g = aligned_alloc(4096, g_floats * sizeof(float));
    flush[t] = aligned_alloc(4096, flush_floats * sizeof(float));
    failed |= !s[t].scratch || !s[t].g || !flush[t];
  }
  double checksum = 0;
  if (!failed) {
#ifdef _OPENMP
#pragma omp parallel num_threads(threads) reduction(+ : checksum)
#endif
    {
#ifdef _OPENMP
      streams *my = &s[omp_get_thread_num()];
      float *fl = flush[omp_get_thread_num()];
#else
      streams *my = &s[0];
      float *fl = flush[0];
#endif
      for (size_t i = 0; i < scratch_floats; i++) my->scratch[i] = (float)(i % 13) * 0.125f;
      for (size_t i = 0; i < g_floats; i++) my->g[i] = (float)(i % 97) * 1e-3f;
      memset(fl, 0, flush_floats * sizeof(float));
      for (int l = 0; l < NLAYOUT; l++) {
        place(my, l);
        for (int st = 0; st < NSTATE; st++)
          for (int r = 0; r < reps; r++) {
#ifdef _OPENMP
#pragma omp barrier
#endif
            double t = run(my, st, fl, flush_floats);
#ifdef _OPENMP
#pragma omp critical
#endif
            if (t < best[l][st]) best[l][st] = t;
          }
        checksum += my->out[5] + my->out[MAP - 1];
      }
    }
  }
  for (int t = 0; t < threads; t++) {
    free(s[t].scratch);
    free(s[t].g);
    free(flush[t]);
  }
  if (failed) {
    fprintf(stderr, "pass_streams: out of memory\n");
    return 1;
  }
  static const char *lname[NLAYOUT] = {"aligned", "staggered", "store+1v"};
  static const char *sname[NSTATE] = {"L2", "L3", "memory"};
  double vectors = (double)MAP / LANES;
  printf("threads: %d, %d-bit vectors, cycles at %.2f GHz\n", threads, LANES * 32, ghz);
  for (int l = 0; l < NLAYOUT; l++)
    for (int st = 0; st < NSTATE; st++)
      printf("%-10s g from %-7s %7.2f us/sample  %5.1f cycles/vector\n", lname[l], sname[st],
             best[l][st] / SAMPLES * 1e6, best[l][st] / SAMPLES * ghz * 1e9 / vectors);
  printf("{\"threads\":%d,\"vector_bits\":%d,\"ghz\":%.2f,\"us_per_sample\":{", threads, LANES * 32, ghz);
  for (int l = 0; l < NLAYOUT; l++) {
    printf("%s\"%s\":[", l ? "," : "", lname[l]);
    for (int st = 0; st < NSTATE; st++) printf("%s%.3f", st ? "," : "", best[l][st] / SAMPLES * 1e6);
    printf("]");
  }
  printf("},\"checksum\":%.3f}\n", checksum);
  return 0;
}
