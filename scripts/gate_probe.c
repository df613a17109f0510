/* EvoNorm's float32 gate kernels in C, AVX-512 versions, 2048 rows of 256 (32x64x16x16), one thread, the best of
   REPS rounds of 5 calls, ns an element (docs/perf/norm-family.md, "EvoNorm and FRN, session 33"):
   - the gate sums of both gates and gate 0's apply as phases.h builds them (-DMGP_FBLOCK=N: the float sums' block);
   - what limits gate 0's apply: variants of its loop without the division, with vrcp14ps and a Newton step for it,
     without the exp, with only y = x*sc + of (the bytes alone), and the exp's 2^n by vscalefps, with y = f*sc + of
     as one FMA, and with one FMA fewer in the exp's polynomial (these three change bits; not in the library).
   Built as setup.py builds the extensions:

     INC=$(python -c "import sysconfig; print(sysconfig.get_paths()['include'])")
     gcc -O3 -fno-math-errno -ffp-contract=off -I minigrad/_ext -I $INC scripts/gate_probe.c -o /tmp/gp -lm
     /tmp/gp [REPS]
*/
#include <Python.h>
#include <time.h>
#include <stdio.h>
#include "phases.h"
static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}
#define V4 __attribute__((target("arch=x86-64-v4"), noinline))
#define FMA16(a, b, c) MGP_FMA_V(mgp_v16f, (a), (b), (c))
#define C16(c) ((mgp_v16f){0} + (c))
/* mg_expf.h's gate exp (mgp_expf16_fma_v4) with 2^n by vscalefps; short: P of degree 4 instead of 5 (one FMA
   fewer; Cephes' coefficients truncated, for the timing only: its accuracy is not measured) */
MGP_INLINE MGP_TARGET_V4 mgp_v16f expf16_scalef(mgp_v16f x0, int short_p) {
    const mgp_v16f magic = C16(12582912.0f);
    const mgp_v16f x = mgp_vmax_mgp_v16f(C16(-87.33654f), mgp_vmin_mgp_v16f(C16(88.5f), x0));
    const mgp_v16f t = FMA16(x, 1.44269504088896341f, magic), n = t - magic;
    mgp_v16f r = FMA16(n, -0.693359375f, x);
    r = FMA16(n, 2.12194440e-4f, r);
    const mgp_v16f z = r * r;
    mgp_v16f p = short_p ? FMA16(r, 1.3981999507e-3f, C16(8.3334519073e-3f))
                         : FMA16(FMA16(r, 1.9875691500e-4f, C16(1.3981999507e-3f)), r, C16(8.3334519073e-3f));
    p = FMA16(FMA16(FMA16(p, r, C16(4.1665795894e-2f)), r, C16(1.6666665459e-1f)), r, C16(5.0000001201e-1f));
    p = FMA16(p, z, r) + 1.0f;
    return (mgp_v16f)_mm512_scalef_ps((__m512)p, (__m512)n);
}
/* the variants of gate 0's apply loop (blocks of 16 only: D = 256) */
#define LOOP(NAME, F)                                                                                        \
V4 static void NAME(float* y, const float* x, Py_ssize_t D, float v, float sc, float of) {                   \
    const float nv = -v;                                                                                     \
    for (Py_ssize_t d = 0; d + 16 <= D; d += 16) {                                                           \
        mgp_v16f xv, f;                                                                                      \
        memcpy(&xv, x + d, sizeof xv);                                                                       \
        F;                                                                                                   \
        memcpy(y + d, &f, sizeof f);                                                                         \
    }                                                                                                        \
}
LOOP(nodiv, f = xv * (1 + mgp_expf16_fma_v4(nv * xv)); f = f * sc + of)
LOOP(rcp, const mgp_v16f den = 1 + mgp_expf16_fma_v4(nv * xv);
          mgp_v16f r = (mgp_v16f)_mm512_rcp14_ps((__m512)den); r = r * (2 - den * r); f = xv * r * sc + of)
LOOP(noexp, f = xv / (1 + nv * xv); f = f * sc + of)
LOOP(copy, (void)nv; f = xv * sc + of)
LOOP(scalef, f = xv / (1 + expf16_scalef(nv * xv, 0)); f = f * sc + of)
LOOP(scalef_fma, f = FMA16(xv / (1 + expf16_scalef(nv * xv, 0)), sc, C16(of)))
LOOP(scalef_fma_short, f = FMA16(xv / (1 + expf16_scalef(nv * xv, 1)), sc, C16(of)))
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
    fn fs[] = {cur, nodiv, rcp, noexp, copy, scalef, scalef_fma, scalef_fma_short};
    const char* names[] = {"apply gate 0", "no division", "rcp14+newton", "no exp", "y = x*sc + of", "scalef",
                           "scalef+fma y", "scalef+fma+short P"};
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
