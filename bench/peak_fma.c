/* peak_fma.c — measures the machine's FP32 fused-multiply-add peak in GFLOP/s.
 *
 * Each thread runs NCHAIN independent accumulator chains of vector FMAs
 * (acc = acc * a + b), enough chains to hide the FMA latency on every FMA
 * port, and counts 2 FLOPs per lane per FMA. Reports all cores (OpenMP, one
 * thread per core unless OMP_NUM_THREADS says otherwise) and one core.
 * Uses 512-bit FMAs when compiled for AVX-512F, else 256-bit (AVX2 + FMA),
 * so build it for the host:
 *
 *     cc -O2 -march=native -fopenmp bench/peak_fma.c -o peak_fma
 *
 * usage: peak_fma [SECONDS_PER_MEASUREMENT]   (default 1.0)
 * Output: one line per measurement, then a JSON line
 *   {"vector_bits":..,"threads":..,"gflops_all":..,"gflops_1core":..}
 */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#if defined(__AVX512F__)
typedef __m512 vec;
#define VEC_LANES 16
#define VEC_BITS 512
#define vset1(x) _mm512_set1_ps(x)
#define vfma(a, b, c) _mm512_fmadd_ps(a, b, c)
#define vadd(a, b) _mm512_add_ps(a, b)
#define vreduce(a) _mm512_reduce_add_ps(a)
#elif defined(__AVX2__) && defined(__FMA__)
typedef __m256 vec;
#define VEC_LANES 8
#define VEC_BITS 256
#define vset1(x) _mm256_set1_ps(x)
#define vfma(a, b, c) _mm256_fmadd_ps(a, b, c)
#define vadd(a, b) _mm256_add_ps(a, b)
static float vreduce(__m256 a)
{
    float t[8];
    _mm256_storeu_ps(t, a);
    return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
}
#else
#error "peak_fma needs AVX-512F or AVX2+FMA: build with -march=native on an x86-64 host"
#endif

#define NCHAIN 12          /* independent chains: latency 4-5 x 2 FMA ports */
#define INNER 1000         /* FMA rounds per timing check */

/* Returns monotonic wall time in seconds. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Runs `rounds` x INNER x NCHAIN vector FMAs on one thread and returns a sum
 * of the accumulators (so the work cannot be optimized away). */
static float fma_kernel(long rounds, float seed)
{
    vec acc[NCHAIN];
    const vec a = vset1(0.999999f);
    const vec b = vset1(1e-7f * seed);
    for (int i = 0; i < NCHAIN; i++)
        acc[i] = vset1(seed + (float)i);
    for (long r = 0; r < rounds; r++) {
        for (int k = 0; k < INNER; k++) {
#pragma GCC unroll 12
            for (int i = 0; i < NCHAIN; i++)
                acc[i] = vfma(acc[i], a, b);
        }
    }
    vec s = acc[0];
    for (int i = 1; i < NCHAIN; i++)
        s = vadd(s, acc[i]);
    return vreduce(s);
}

/* FLOPs performed by fma_kernel(rounds, .). */
static double kernel_flops(long rounds)
{
    return 2.0 * VEC_LANES * NCHAIN * INNER * (double)rounds;
}

/* Measures GFLOP/s with `threads` threads each running fma_kernel for about
 * `seconds`; the round count is calibrated on one thread first. */
static double measure(int threads, double seconds, float *sink)
{
    long rounds = 100;
    for (;;) {                 /* calibrate: grow until one run takes >= 50 ms */
        double t0 = now_s();
        *sink += fma_kernel(rounds, 1.0f);
        double dt = now_s() - t0;
        if (dt >= 0.05) {
            rounds = (long)((double)rounds * seconds / dt) + 1;
            break;
        }
        rounds *= 4;
    }
    double best = 0.0;
    for (int rep = 0; rep < 3; rep++) {          /* best of 3 */
        float part = 0.0f;
        double t0 = now_s();
#pragma omp parallel num_threads(threads) reduction(+ : part)
        part += fma_kernel(rounds, 1.0f + (float)omp_get_thread_num());
        double dt = now_s() - t0;
        *sink += part;
        double g = kernel_flops(rounds) * threads / dt * 1e-9;
        if (g > best)
            best = g;
    }
    return best;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    if (!(seconds > 0.0)) {
        fprintf(stderr, "usage: peak_fma [SECONDS]\n");
        return 2;
    }
    int nthreads = omp_get_max_threads();
    float sink = 0.0f;
    double all = measure(nthreads, seconds, &sink);
    double one = measure(1, seconds, &sink);
    printf("FP32 FMA peak, %d-bit vectors, %d chains/thread\n", VEC_BITS, NCHAIN);
    printf("  %d threads: %8.1f GFLOP/s\n", nthreads, all);
    printf("  1 thread:  %8.1f GFLOP/s\n", one);
    printf("{\"vector_bits\":%d,\"threads\":%d,\"gflops_all\":%.1f,\"gflops_1core\":%.1f,"
           "\"checksum\":%g}\n", VEC_BITS, nthreads, all, one, (double)sink);
    return 0;
}
