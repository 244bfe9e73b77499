/* first_touch.c — how fast one core reads a sample's feature map from
 * memory in the first pass of a fused attention gradient, and what slows it.
 *
 * The pass modelled is step 1 of HAM's backward sample group at stage 1 of
 * ResNet-20 (docs/FUSION.md): for each of a thread's 64 samples, read the
 * sample's 16 x 32x32 map (64 KiB) once, recompute its gated value, compare
 * it with the two per-pixel channel maxima, count the ties of each into a
 * [32x32] row and store the two 0/1 tie maps in the thread's scratch (two
 * more 64 KiB maps, which later passes read from L2). The map is either
 * already in the caches or evicted (a 256 MiB buffer written first), and
 * each case runs with and without the two scratch stores and with and
 * without a prefetch of the next row (4 KiB ahead) into L2. The 64
 * samples' maps (4 MiB) fit in L3, not in L2, so 'in cache' means L3.
 *
 * With THREADS > 1 every thread runs the same pass over 64 samples of its
 * own, with its own scratch, at the same time, as the training step's
 * threads do: the figures are then per sample of one thread, and GB/s is
 * what all the threads read together.
 *
 * Build for the host and run (vectors as wide as the host's: gcc 12's
 * -march=native does not know Zen 5 and leaves AVX-512 out there; add
 * -mavx512f on such a host):
 *
 *     cc -O2 -march=native -fopenmp bench/first_touch.c -o first_touch && ./first_touch
 *
 * usage: first_touch [REPS [THREADS]]   (defaults 8 and 1; best of REPS
 * passes over the samples)
 * Output: one line per case (microseconds per sample, GB/s of the map
 * read), then a JSON line with the same figures. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "host_vec.h"

enum { SAMPLES = 64, C = 16, HW = 1024, MAP = C * HW };
/* floats of one thread's maps (a spare one after the last sample), maxima
 * and scratch */
enum { X_FLOATS = (SAMPLES + 1) * MAP, MX_FLOATS = SAMPLES * 2 * HW, SCR_FLOATS = 2 * MAP + 2 * HW };

/* 1.0f where a == b, else 0.0f. */
static vf eq01(vf a, vf b) { return (vf)((a == b) & (vi)splat(1.0f)); }

/* The modelled pass over one sample's map x: counts its ties into the
 * scratch rows and, with 'stores', stores the two tie maps in scratch;
 * with 'prefetch', asks for each next row (the last one's lies in the
 * next sample, or in the spare map after the last) into L2 first. */
static void pass(const float *x, const float *mx, float *scr, int stores, int prefetch) {
  float *eq1 = scr, *eq2 = scr + MAP, *cnt1 = scr + 2 * MAP, *cnt2 = cnt1 + HW;
  vf a = splat(1.25f), b = splat(-0.5f);
  memset(cnt1, 0, 2 * HW * sizeof *cnt1);
  for (int c = 0; c < C; c++) {
    vf g1 = splat(c % 2 ? 1.0f : 0.0f), g2 = splat(c % 2 ? 0.0f : 1.0f);
    const float *row = x + (size_t)c * HW;
    if (prefetch)
      for (int j = 0; j < HW; j += LANES) __builtin_prefetch(row + HW + j, 0, 2);
    for (int j = 0; j < HW; j += LANES) {
      vf v = load(row + j) * a + b;
      vf e1 = eq01(v * g1, load(mx + j)), e2 = eq01(v * g2, load(mx + HW + j));
      store(cnt1 + j, load(cnt1 + j) + e1);
      store(cnt2 + j, load(cnt2 + j) + e2);
      if (stores) {
        store(eq1 + (size_t)c * HW + j, e1);
        store(eq2 + (size_t)c * HW + j, e2);
      }
    }
  }
}

/* Runs the pass over every sample. */
static void all_samples(const float *x, const float *mx, float *scr, int stores, int prefetch) {
  for (int s = 0; s < SAMPLES; s++) pass(x + (size_t)s * MAP, mx + (size_t)s * 2 * HW, scr, stores, prefetch);
}

/* Runs the pass over every sample of each of 'threads' threads at once,
 * thread t on its own maps (x, mx) and scratch (scr), and returns the
 * seconds from the first thread's start to the last one's end. */
static double timed_samples(int threads, float *x, float *mx, float *scr, int stores, int prefetch) {
  double t0 = now_s();
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
  {
    int t = omp_get_thread_num();
    all_samples(x + (size_t)t * X_FLOATS, mx + (size_t)t * MX_FLOATS, scr + (size_t)t * SCR_FLOATS, stores, prefetch);
  }
#else
  (void)threads;
  all_samples(x, mx, scr, stores, prefetch);
#endif
  return now_s() - t0;
}

int main(int argc, char **argv) {
  int reps = argc > 1 ? atoi(argv[1]) : 8;
  int threads = argc > 2 ? atoi(argv[2]) : 1;
  if (reps < 1) reps = 1;
  threads = host_threads(threads, "first_touch");
  if (threads < 0) return 1;
  size_t flush_bytes = (size_t)256 << 20, tn = (size_t)threads;
  float *x = aligned_alloc(4096, tn * X_FLOATS * sizeof(float));
  float *mx = aligned_alloc(64, tn * MX_FLOATS * sizeof(float));
  float *scr = aligned_alloc(4096, tn * SCR_FLOATS * sizeof(float));
  char *flush = malloc(flush_bytes);
  if (!x || !mx || !scr || !flush) {
    fprintf(stderr, "first_touch: out of memory\n");
    return 1;
  }
  for (size_t i = 0; i < tn * X_FLOATS; i++) x[i] = (float)(i % 7);
  for (size_t i = 0; i < tn * MX_FLOATS; i++) mx[i] = 7.0f;
  memset(scr, 0, tn * SCR_FLOATS * sizeof(float));
  printf("threads: %d, %d-bit vectors\n", threads, LANES * 32);
  const char *names[2] = {"in cache", "from memory"};
  double us[2][2][2];
  for (int evict = 0; evict < 2; evict++)
    for (int stores = 0; stores < 2; stores++)
      for (int pf = 0; pf < 2; pf++) {
        double best = 1e30;
        for (int r = 0; r < reps; r++) {
          if (evict) {
            memset(flush, r, flush_bytes);
            __asm__ volatile("" : : "r"(flush) : "memory"); /* the compiler must not drop the writes */
          } else
            timed_samples(threads, x, mx, scr, stores, pf); /* 4 MiB a thread: into L3 */
          double t = timed_samples(threads, x, mx, scr, stores, pf);
          if (t < best) best = t;
        }
        us[evict][stores][pf] = best * 1e6 / SAMPLES;
        printf("%-12s %-16s %-14s %7.2f us/sample  %5.1f GB/s\n", names[evict],
               stores ? "2 scratch maps" : "no scratch maps", pf ? "L2 prefetch" : "no prefetch",
               us[evict][stores][pf], (double)threads * MAP * sizeof(float) / (us[evict][stores][pf] * 1e3));
      }
  printf("{\"threads\":%d,\"vector_bits\":%d,\"us_per_sample\":{", threads, LANES * 32);
  for (int evict = 0; evict < 2; evict++)
    printf("%s\"%s\":{\"no_stores\":[%.3f,%.3f],\"stores\":[%.3f,%.3f]}", evict ? "," : "",
           evict ? "memory" : "cache", us[evict][0][0], us[evict][0][1], us[evict][1][0], us[evict][1][1]);
  printf("}}\n");
  free(x);
  free(mx);
  free(scr);
  free(flush);
  return 0;
}
