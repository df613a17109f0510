/* The divider's throughput on this CPU, for the gate kernels' bound (docs/perf/norm-family.md, "FRN's backward and
   S0's gate against the triad, session 35"): 8 independent chains of vdivps, zmm (16 floats) and ymm (8), best of
   7 runs of 2e7 divisions, CPU time, ns a division and a float; 8 independent chains of zmm FMAs (the throughput
   of the gate's other operations); and a chain of dependent zmm adds as the clock's yardstick (4 cycles each on
   Golden Cove). Built without the project's flags (nothing here is its arithmetic):

     gcc -O2 scripts/div_throughput.c -o /tmp/divt -lm && /tmp/divt
*/
#include <immintrin.h>
#include <math.h>
#include <stdio.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
#define CHAINS(V, DIV, SET)                                                                                    \
    do {                                                                                                       \
        V d[8];                                                                                                \
        for (int j = 0; j < 8; j++) d[j] = SET(1.0f + j);                                                      \
        const V den = SET(1.0000001f);                                                                         \
        const double t0 = now();                                                                               \
        for (long i = 0; i < N / 8; i++) {                                                                     \
            for (int j = 0; j < 8; j++) d[j] = DIV(d[j], den);                                                 \
            __asm__("" : "+v"(d[0]), "+v"(d[1]), "+v"(d[2]), "+v"(d[3]), "+v"(d[4]), "+v"(d[5]), "+v"(d[6]),  \
                    "+v"(d[7]));                                                                               \
        }                                                                                                      \
        best = fmin(best, (now() - t0) / N);                                                                   \
        sink += d[0][0];                                                                                       \
    } while (0)
__attribute__((target("arch=x86-64-v4"), noinline)) static double fma_chains(long N) {
    __m512 f0 = _mm512_set1_ps(1), f1 = f0, f2 = f0, f3 = f0, f4 = f0, f5 = f0, f6 = f0, f7 = f0;
    const __m512 m = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-3f);
    const double t0 = now();
    for (long i = 0; i < N; i++) {
        f0 = _mm512_fmadd_ps(f0, m, b); f1 = _mm512_fmadd_ps(f1, m, b); f2 = _mm512_fmadd_ps(f2, m, b);
        f3 = _mm512_fmadd_ps(f3, m, b); f4 = _mm512_fmadd_ps(f4, m, b); f5 = _mm512_fmadd_ps(f5, m, b);
        f6 = _mm512_fmadd_ps(f6, m, b); f7 = _mm512_fmadd_ps(f7, m, b);
    }
    const double t = (now() - t0) / (8.0 * N);
    volatile float s = f0[0] + f1[0] + f2[0] + f3[0] + f4[0] + f5[0] + f6[0] + f7[0];
    (void)s;
    return t;
}
__attribute__((target("arch=x86-64-v4"))) int main(void) {
    const long N = 20000000;
    double add = 1e9, dz = 1e9, dy = 1e9, fz = 1e9;
    volatile float sink = 0;
    for (int rep = 0; rep < 7; rep++) {
        __m512 a = _mm512_set1_ps(1.0f), b = _mm512_set1_ps(1e-30f);
        const double t0 = now();
        for (long i = 0; i < N; i++) { a = _mm512_add_ps(a, b); __asm__("" : "+v"(a)); }
        add = fmin(add, (now() - t0) / N);
        sink += a[0];
        double best = 1e9;
        CHAINS(__m512, _mm512_div_ps, _mm512_set1_ps);
        dz = fmin(dz, best);
        best = 1e9;
        CHAINS(__m256, _mm256_div_ps, _mm256_set1_ps);
        dy = fmin(dy, best);
        fz = fmin(fz, fma_chains(N / 8));
    }
    printf("dependent zmm add %.3f ns; vdivps zmm %.3f ns (%.3f ns a float); vdivps ymm %.3f ns (%.3f ns a float); "
           "independent zmm FMA %.3f ns\n", add * 1e9, dz * 1e9, dz * 1e9 / 16, dy * 1e9, dy * 1e9 / 8, fz * 1e9);
    return 0;
}
