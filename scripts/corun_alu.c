/* Whether this VM's two vCPUs slow each other down on register-only work (SMT siblings on the host, or a shared
   core): T threads each run the same dependent-FMA chains (no memory traffic), each reports its thread CPU time and
   the wall; at 2 threads truly co-running (wall ~ one thread's CPU), a thread's CPU time for the same work stays
   that of 1 thread on separate cores, and rises (up to ~2x) on SMT siblings.
   gcc -O2 -fopenmp -mfma scripts/corun_alu.c -o /tmp/corun && for i in 1 2 3; do /tmp/corun 1; /tmp/corun 2; done */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <immintrin.h>
static double now(clockid_t c) { struct timespec t; clock_gettime(c, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
int main(int argc, char **argv) {
    int T = argc > 1 ? atoi(argv[1]) : 2; long iters = argc > 2 ? atol(argv[2]) : 4000000000L;
    double cpu[8] = {0}; float sink[8];
    double w0 = now(CLOCK_MONOTONIC);
    #pragma omp parallel num_threads(T)
    {
        int t = omp_get_thread_num(); double c0 = now(CLOCK_THREAD_CPUTIME_ID);
        __m256 a0 = _mm256_set1_ps(1.0f + t), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        __m256 m = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
        for (long i = 0; i < iters / 8; i++) {
            a0 = _mm256_fmadd_ps(a0, m, b); a1 = _mm256_fmadd_ps(a1, m, b); a2 = _mm256_fmadd_ps(a2, m, b);
            a3 = _mm256_fmadd_ps(a3, m, b); a4 = _mm256_fmadd_ps(a4, m, b); a5 = _mm256_fmadd_ps(a5, m, b);
            a6 = _mm256_fmadd_ps(a6, m, b); a7 = _mm256_fmadd_ps(a7, m, b);
        }
        __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                                 _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
        float o[8]; _mm256_storeu_ps(o, s); sink[t] = o[0];
        cpu[t] = now(CLOCK_THREAD_CPUTIME_ID) - c0;
    }
    double w = now(CLOCK_MONOTONIC) - w0;
    printf("T=%d wall %.3f s  thread cpu", T, w);
    for (int t = 0; t < T; t++) printf(" %.3f", cpu[t]);
    printf("  (sink %g)\n", sink[0]);
    return 0;
}
