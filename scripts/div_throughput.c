/* The divider's throughput on this CPU, for the gate kernels' bound (docs/perf/norm-family.md, "FRN's backward and
   S0's gate against the triad, session 35"): 8 independent chains of vdivps, zmm (16 floats) and ymm (8), best of
   7 runs of 2e7 divisions, CPU time, ns a division and a float; and a chain of dependent zmm adds as the clock's
   yardstick (4 cycles each on Golden Cove). Built without the project's flags (nothing here is its arithmetic):

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
__attribute__((target("arch=x86-64-v4"))) int main(void) {
    const long N = 20000000;
    double add = 1e9, dz = 1e9, dy = 1e9;
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
    }
    printf("dependent zmm add %.3f ns; vdivps zmm %.3f ns (%.3f ns a float); vdivps ymm %.3f ns (%.3f ns a float)\n",
           add * 1e9, dz * 1e9, dz * 1e9 / 16, dy * 1e9, dy * 1e9 / 8);
    return 0;
}
