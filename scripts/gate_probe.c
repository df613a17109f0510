/* EvoNorm's float32 gate kernels in C, AVX-512 versions, 2048 rows of 256 (32x64x16x16), one thread, the best of
   REPS rounds of 5 calls, ns an element (docs/perf/norm-family.md, "EvoNorm and FRN, session 33" and "EvoNorm's
   gate, session 34"):
   - gate 0's apply, the gate sums of both gates and gate 0's backward apply as phases.h builds them (-DMGP_FBLOCK=N:
     the float sums' block);
   - what limits gate 0's apply: variants of its loop without the division, with vrcp14ps and a Newton step for it,
     without the exp, and with only y = x*sc + of (the bytes alone);
   - with OTHER (another tree, e.g. main's worktree) the same kernels of that tree's phases.h, in the same process,
     round by round beside this tree's (this file built a second time with -DPROBE_OTHER against OTHER's headers).
   Built as setup.py builds the extensions:

     INC=$(python -c "import sysconfig; print(sysconfig.get_paths()['include'])")
     F="-O3 -fno-math-errno -ffp-contract=off -I $INC"
     gcc $F -I minigrad/_ext scripts/gate_probe.c -o /tmp/gp -lm
     gcc $F -DPROBE_OTHER -I OTHER/minigrad/_ext -c scripts/gate_probe.c -o /tmp/gp_other.o    # with OTHER only
     gcc $F -DWITH_OTHER -I minigrad/_ext scripts/gate_probe.c /tmp/gp_other.o -o /tmp/gp -lm  # with OTHER only
     /tmp/gp [REPS]
*/
#include <Python.h>
#include <time.h>
#include <stdio.h>
#include "phases.h"
enum { R = 2048, D = 256 };
/* every timed pass over the R rows: y (the apply's out), o (5 sums a row), x, dy, kept sigmoids */
typedef void (*pass)(float* y, double* o, const float* x, const float* dy, float* keep);
#define ROWS(NAME, CALL)                                                                                     \
    void NAME(float* y, double* o, const float* x, const float* dy, float* keep) {                           \
        (void)y; (void)o; (void)dy; (void)keep;                                                              \
        for (Py_ssize_t r = 0; r < R; r++) CALL;                                                             \
    }
#define KERNELS(P)                                                                                           \
ROWS(P##apply, mgp_row_apply_gate_float_v4(y + r * D, x + r * D, D, 0, 1.0f, 0, 0, 0.7f, 0.1f))           \
ROWS(P##sums0, mgp_row_sums_sig_float_v4(o + r, o + R + r, o + 2 * R + r, dy + r * D, x + r * D, D, 1.0f,  \
                                         keep + r * D))                                                      \
ROWS(P##sums1, mgp_row_sums_den_float_v4(o + r, o + R + r, o + 2 * R + r, o + 3 * R + r, o + 4 * R + r,     \
                                         dy + r * D, x + r * D, D, 1.0f, 0.3f, 0.2f, NULL))                  \
ROWS(P##bapply, mgp_row_backward_apply_gate_float_v4(y + r * D, dy + r * D, x + r * D, D, 0, 0.5f, 0.1f,    \
                                                     0.2f, 0.3f, 1.0f, 0, 0, NULL))
#ifdef PROBE_OTHER
KERNELS(other_)
#else
#ifdef WITH_OTHER
void other_apply(float*, double*, const float*, const float*, float*);
void other_sums0(float*, double*, const float*, const float*, float*);
void other_sums1(float*, double*, const float*, const float*, float*);
void other_bapply(float*, double*, const float*, const float*, float*);
#endif
KERNELS(this_)
static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}
#define V4 __attribute__((target("arch=x86-64-v4"), noinline))
#define FMA16(a, b, c) MGP_FMA_V(mgp_v16f, (a), (b), (c))
#define C16(c) ((mgp_v16f){0} + (c))
/* the variants of gate 0's apply loop (blocks of 16 only: D = 256) */
#define LOOP(NAME, F)                                                                                        \
V4 static void NAME##_row(float* y, const float* x, float v, float sc, float of) {                          \
    const float nv = -v;                                                                                     \
    for (Py_ssize_t d = 0; d + 16 <= D; d += 16) {                                                           \
        mgp_v16f xv, f;                                                                                      \
        memcpy(&xv, x + d, sizeof xv);                                                                       \
        F;                                                                                                   \
        memcpy(y + d, &f, sizeof f);                                                                         \
    }                                                                                                        \
}                                                                                                            \
static ROWS(NAME, NAME##_row(y + r * D, x + r * D, 1.0f, 0.7f, 0.1f))
LOOP(nodiv, f = FMA16(xv * (1 + mgp_expf16_fma_v4(nv * xv)), 0.7f, C16(of)))
LOOP(rcp, const mgp_v16f den = 1 + mgp_expf16_fma_v4(nv * xv);
          mgp_v16f r = (mgp_v16f)_mm512_rcp14_ps((__m512)den); r = r * (2 - den * r);
          f = FMA16(xv * r, sc, C16(of)))
LOOP(noexp, f = FMA16(xv / (1 + nv * xv), sc, C16(of)))
LOOP(copy, (void)nv; f = xv * sc + of)
int main(int argc, char** argv) {
    const int reps = argc > 1 ? atoi(argv[1]) : 30;
    const Py_ssize_t n = (Py_ssize_t)R * D;
    float *x = malloc(n * 4), *dy = malloc(n * 4), *y = malloc(n * 4), *keep = malloc(n * 4);
    double* o = malloc(5 * R * 8);
    for (Py_ssize_t i = 0; i < n; i++) {
        x[i] = (float)((i * 2654435761u % 1000) / 250.0 - 2.0);
        dy[i] = (float)((i * 40503u % 777) / 388.0 - 1.0);
    }
    const pass fs[] = {this_apply, this_sums0, this_sums1, this_bapply, nodiv, rcp, noexp, copy,
#ifdef WITH_OTHER
                       other_apply, other_sums0, other_sums1, other_bapply,
#endif
    };
    const char* names[] = {"apply gate 0", "sums gate 0", "sums gate 1", "backward apply gate 0", "  no division",
                           "  rcp14+newton", "  no exp", "  y = x*sc + of", "OTHER apply gate 0", "OTHER sums gate 0",
                           "OTHER sums gate 1", "OTHER backward apply gate 0"};
    const int K = sizeof fs / sizeof fs[0];
    double best[12];
    for (int k = 0; k < K; k++) best[k] = 1e9;
    for (int rep = 0; rep < reps; rep++)
        for (int k = 0; k < K; k++) {
            const double t0 = now();
            for (int c = 0; c < 5; c++) fs[k](y, o, x, dy, keep);
            const double t = (now() - t0) / 5;
            if (t < best[k]) best[k] = t;
        }
    for (int k = 0; k < K; k++) {
        printf("%-28s %.3f ns/element", names[k], best[k] / n * 1e9);
        if (k >= 8) printf("  (this/OTHER %.3f)", best[k - 8] / best[k]);
        printf("\n");
    }
    printf("(MGP_FBLOCK %d)\n", MGP_FBLOCK);
}
#endif
