/* EvoNorm's float32 gate kernels in C, AVX-512 versions, 2048 rows of 256 (32x64x16x16), one thread, the best of
   REPS rounds of 5 calls, ns an element (docs/perf/norm-family.md, "EvoNorm and FRN, session 33"):
   - the gate sums of both gates and gate 0's apply as phases.h builds them (-DMGP_FBLOCK=N: the float sums' block);
   - what limits gate 0's apply: variants of its loop without the division, with vrcp14ps and a Newton step for it,
     without the exp, with only y = x*sc + of (the bytes alone), and the exp's 2^n by vscalefps, with y = f*sc + of
     as one FMA, and with a degree-5 polynomial (these three change bits; not in the library).
   Built as setup.py builds the extensions:

     INC=$(python -c "import sysconfig; print(sysconfig.get_paths()['include'])")
     gcc -O3 -fno-math-errno -ffp-contract=off -I minigrad/_ext -I $INC scripts/gate_probe.c -o /tmp/gp -lm
     /tmp/gp [REPS]
*/
#include <Python.h>
#include <time.h>
#include <stdio.h>
#include "phases.h"
static double now(void) { struct timespec t; clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
#define V4 __attribute__((target("arch=x86-64-v4"), noinline))
V4 static void nodiv(float* y, const float* x, Py_ssize_t D, float v, float sc, float of) {
    const float nv = -v;
    for (Py_ssize_t d = 0; d + 16 <= D; d += 16) { mgp_v16f xv; memcpy(&xv, x + d, 64);
        mgp_v16f f = xv * (1 + mgp_expf16_fma_v4(nv * xv)); f = f * sc + of; memcpy(y + d, &f, 64); }
}
V4 static void rcp(float* y, const float* x, Py_ssize_t D, float v, float sc, float of) {
    const float nv = -v;
    for (Py_ssize_t d = 0; d + 16 <= D; d += 16) { mgp_v16f xv; memcpy(&xv, x + d, 64);
        mgp_v16f den = 1 + mgp_expf16_fma_v4(nv * xv);
        mgp_v16f r = (mgp_v16f)_mm512_rcp14_ps((__m512)den);
        r = r * (2 - den * r);
        mgp_v16f f = xv * r; f = f * sc + of; memcpy(y + d, &f, 64); }
}
V4 static void noexp(float* y, const float* x, Py_ssize_t D, float v, float sc, float of) {
    const float nv = -v;
    for (Py_ssize_t d = 0; d + 16 <= D; d += 16) { mgp_v16f xv; memcpy(&xv, x + d, 64);
        mgp_v16f f = xv / (1 + nv * xv); f = f * sc + of; memcpy(y + d, &f, 64); }
}
V4 static void copy(float* y, const float* x, Py_ssize_t D, float v, float sc, float of) {
    for (Py_ssize_t d = 0; d + 16 <= D; d += 16) { mgp_v16f xv; memcpy(&xv, x + d, 64);
        mgp_v16f f = xv * sc + of; memcpy(y + d, &f, 64); }
}

#define EXPF_SCALEF(F, X0, DEG5)                                                                  \
    const F magic = (F){0} + 12582912.0f;                                                                    \
    const F x = mgp_vmax_mgp_v16f((F){0} - 87.33654f, mgp_vmin_mgp_v16f((F){0} + 88.5f, X0));\
    const F t = MGP_FMA_V(F, x, 1.44269504088896341f, magic);                                                       \
    const F n = t - magic;                                                                                   \
    F r = MGP_FMA_V(F, n, -0.693359375f, x);                                                                        \
    r = MGP_FMA_V(F, n, 2.12194440e-4f, r);                                                                         \
    const F z = r * r;                                                                                       \
    F p = DEG5 ? MGP_FMA_V(F, MGP_FMA_V(F, MGP_FMA_V(F, MGP_FMA_V(F, r, 8.3334519073e-3f, (F){0}+4.1665795894e-2f), r, (F){0} + 1.6666665459e-1f), r, (F){0} + 5.0000001201e-1f), (F){0}+1.0f, (F){0}) : MGP_FMA_V(F, MGP_FMA_V(F, MGP_FMA_V(F, MGP_FMA_V(F, MGP_FMA_V(F, r, 1.9875691500e-4f, (F){0} + 1.3981999507e-3f), r,                  \
                               (F){0} + 8.3334519073e-3f), r, (F){0} + 4.1665795894e-2f), r,                 \
                     (F){0} + 1.6666665459e-1f), r, (F){0} + 5.0000001201e-1f);                              \
    p = MGP_FMA_V(F, p, z, r) + 1.0f;                                                                               \
    return (F)_mm512_scalef_ps((__m512)p, (__m512)n);
MGP_INLINE MGP_TARGET_V4 mgp_v16f expf16_scalef(mgp_v16f x0) { EXPF_SCALEF(mgp_v16f, x0, 0) }
MGP_INLINE MGP_TARGET_V4 mgp_v16f expf16_scalef5(mgp_v16f x0) { EXPF_SCALEF(mgp_v16f, x0, 1) }
V4 static void scalef(float* y, const float* x, Py_ssize_t D, float v, float sc, float of) {
    const float nv = -v;
    for (Py_ssize_t d = 0; d + 16 <= D; d += 16) { mgp_v16f xv; memcpy(&xv, x + d, 64);
        mgp_v16f f = xv / (1 + expf16_scalef(nv * xv)); f = f * sc + of; memcpy(y + d, &f, 64); }
}
V4 static void scalef_fma(float* y, const float* x, Py_ssize_t D, float v, float sc, float of) {
    const float nv = -v;
    for (Py_ssize_t d = 0; d + 16 <= D; d += 16) { mgp_v16f xv; memcpy(&xv, x + d, 64);
        mgp_v16f f = xv / (1 + expf16_scalef(nv * xv)); f = MGP_FMA_V(mgp_v16f, f, sc, (mgp_v16f){0} + of); memcpy(y + d, &f, 64); }
}
V4 static void scalef5(float* y, const float* x, Py_ssize_t D, float v, float sc, float of) {
    const float nv = -v;
    for (Py_ssize_t d = 0; d + 16 <= D; d += 16) { mgp_v16f xv; memcpy(&xv, x + d, 64);
        mgp_v16f f = xv / (1 + expf16_scalef5(nv * xv)); f = MGP_FMA_V(mgp_v16f, f, sc, (mgp_v16f){0} + of); memcpy(y + d, &f, 64); }
}
static void cur(float* y, const float* x, Py_ssize_t D, float v, float sc, float of) {
    mgp_row_apply_gate_float_v4(y, x, D, 0, v, 0, 0, sc, of);
}
typedef void (*fn)(float*, const float*, Py_ssize_t, float, float, float);
int main(int argc, char** argv) {
    const int reps = argc > 1 ? atoi(argv[1]) : 30;
    const Py_ssize_t R = 2048, D = 256, n = R * D;
    float *x = malloc(n * 4), *dy = malloc(n * 4), *y = malloc(n * 4);
    double *o = malloc(5 * R * 8);
    for (Py_ssize_t i = 0; i < n; i++) {
        x[i] = (float)((i * 2654435761u % 1000) / 250.0 - 2.0);
        dy[i] = (float)((i * 40503u % 777) / 388.0 - 1.0);
    }
    fn fs[] = {cur, nodiv, rcp, noexp, copy, scalef, scalef_fma, scalef5};
    const char* names[] = {"apply gate 0", "no division", "rcp14+newton", "no exp", "y = x*sc + of", "scalef",
                           "scalef+fma y", "scalef+fma+deg5"};
    double best[10];
    for (int k = 0; k < 10; k++) best[k] = 1e9;
    for (int rep = 0; rep < reps; rep++) {
        for (int k = 0; k < 8; k++) {
            double t0 = now();
            for (int c = 0; c < 5; c++)
                for (Py_ssize_t r = 0; r < R; r++) fs[k](y + r * D, x + r * D, D, 1.0f, 1.0f, 0.0f);
            double t = (now() - t0) / 5;
            if (t < best[k]) best[k] = t;
        }
        double t0 = now();
        for (int c = 0; c < 5; c++)
            for (Py_ssize_t r = 0; r < R; r++)
                mgp_row_sums_sig_float_v4(o + r, o + R + r, o + 2 * R + r, dy + r * D, x + r * D, D, 1.0f, NULL);
        double t = (now() - t0) / 5;
        if (t < best[8]) best[8] = t;
        t0 = now();
        for (int c = 0; c < 5; c++)
            for (Py_ssize_t r = 0; r < R; r++)
                mgp_row_sums_den_float_v4(o + r, o + R + r, o + 2 * R + r, o + 3 * R + r, o + 4 * R + r, dy + r * D,
                                          x + r * D, D, 1.0f, 0.3f, 0.2f);
        t = (now() - t0) / 5;
        if (t < best[9]) best[9] = t;
    }
    for (int k = 0; k < 8; k++) printf("%-18s %.3f ns/element\n", names[k], best[k] / n * 1e9);
    printf("%-18s %.3f ns/element (MGP_FBLOCK %d)\n", "sums gate 0", best[8] / n * 1e9, MGP_FBLOCK);
    printf("%-18s %.3f ns/element\n", "sums gate 1", best[9] / n * 1e9);
}
