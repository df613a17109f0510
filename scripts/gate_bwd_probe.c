/* The gate backward's passes in C, float32, AVX-512 versions, one thread, 32768 values (rows of 64: 16x32x8x8's
   backward; of 256 in a second run), median of REPS rounds, each kernel timed once a round, interleaved, CPU time,
   ns a value (docs/perf/norm-family.md, "The gate backward's chain, session 35"):
   - gate 1 (EvoNorm-B0): the sums without and with the quotients kept, the backward apply recomputing them and
     reading them back;
   - gate 0 (EvoNorm-S0): the sums (sigmoids kept) as phases.h builds them (blocks of 16 two at a time: two
     independent exp/division chains in flight) and a copy of the loop before, one block at a time (the same bits,
     checked here);
   - a copy (y = x*a + b), the bytes alone.
   Built as setup.py builds the extensions:

     INC=$(python -c "import sysconfig; print(sysconfig.get_paths()['include'])")
     gcc -O3 -fno-math-errno -ffp-contract=off -I $INC -I minigrad/_ext scripts/gate_bwd_probe.c -o /tmp/gbp -lm
     /tmp/gbp [D] [REPS]
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
/* mgp_row_sums_sig_float_v4 before session 35: one block of 16 at a time (D >= 16 here, D % 16 = 0: no blocks of 8
   or tail) */
MGP_TARGET_V4 static void sums_sig_one(double* sdy, double* sdyf, double* sdv, const float* restrict dy,
                                       const float* restrict x, Py_ssize_t D, float v, float* restrict keep) {
    mgp_v8d as = {0, 0, 0, 0, 0, 0, 0, 0}, fs = as, gs = as;
    mgp_v16f ab = {0}, fb = ab, gb = ab;
    const float nv = -v, p = mgp_dy_scale_float(dy, D);
    for (Py_ssize_t i = 0; i + 16 <= D; i += 16) {
        mgp_v16f xv, dv;
        memcpy(&xv, x + i, sizeof xv);
        memcpy(&dv, dy + i, sizeof dv);
        const mgp_v16f s = 1 / (1 + mgp_expf16_fma_v4(nv * xv));
        memcpy(keep + i, &s, sizeof s);
        const mgp_v16f fv = xv * s, gv = fv * (xv * (1.0f - s));
        dv *= p;
        ab += dv; fb += dv * fv; gb += dv * gv;
        if ((i + 16) % MGP_FBLOCK == 0 || i + 32 > D) {
            mgp_fblock_flush(&as, &ab); mgp_fblock_flush(&fs, &fb); mgp_fblock_flush(&gs, &gb);
        }
    }
    const double q = 1 / (double)p;
    *sdy = mgp_hsum(mgp_half8d(as, 0), mgp_half8d(as, 1)) * q;
    *sdyf = mgp_hsum(mgp_half8d(fs, 0), mgp_half8d(fs, 1)) * q;
    *sdv = mgp_hsum(mgp_half8d(gs, 0), mgp_half8d(gs, 1)) * q;
}
enum { N = 1 << 15, K = 7 };
static double med(double* t, int n) {
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (t[j] < t[i]) { const double s = t[i]; t[i] = t[j]; t[j] = s; }
    return t[n / 2];
}
int main(int argc, char** argv) {
    const Py_ssize_t D = argc > 1 ? atoi(argv[1]) : 64, R = N / D;
    const int reps = argc > 2 ? atoi(argv[2]) : 41;
    float *x = malloc(N * 4), *dy = malloc(N * 4), *dx = malloc(N * 4), *kp = malloc(N * 4), *k2 = malloc(N * 4);
    double *o = malloc(5 * R * 8), *o2 = malloc(5 * R * 8), *t = malloc(K * reps * 8);
    unsigned long long g = 88172645463325252ULL;
    for (Py_ssize_t i = 0; i < N; i++) {
        g ^= g << 13; g ^= g >> 7; g ^= g << 17;
        x[i] = (float)((g >> 11) * (1.0 / 9007199254740992.0)) * 4 - 1.7f;
        dy[i] = (float)((g >> 40) * (1.0 / 16777216.0)) - 0.5f;
    }
    const char* names[K] = {"gate 1 sums", "gate 1 sums, r kept", "gate 1 apply", "gate 1 apply, r kept",
                            "gate 0 sums (pairs)", "gate 0 sums, one", "copy"};
    for (int rep = 0; rep < reps; rep++)
        for (int k = 0; k < K; k++) {
            const double t0 = now();
            for (int c = 0; c < 20; c++)
                for (Py_ssize_t r = 0; r < R; r++) {
                    const Py_ssize_t e = r * D;
                    switch (k) {
                    case 0: mgp_row_sums_den_float_v4(o + r, o + R + r, o + 2 * R + r, o + 3 * R + r, o + 4 * R + r,
                                                      dy + e, x + e, D, 0.8f, 0.9f, 0.7f, NULL); break;
                    case 1: mgp_row_sums_den_float_v4(o + r, o + R + r, o + 2 * R + r, o + 3 * R + r, o + 4 * R + r,
                                                      dy + e, x + e, D, 0.8f, 0.9f, 0.7f, kp + e); break;
                    case 2: mgp_row_backward_apply_gate_float_v4(dx + e, dy + e, x + e, D, 1, 0.5f, 0.1f, 0.2f, 0.3f,
                                                                 0.8f, 0.9f, 0.7f, NULL); break;
                    case 3: mgp_row_backward_apply_gate_float_v4(dx + e, dy + e, x + e, D, 1, 0.5f, 0.1f, 0.2f, 0.3f,
                                                                 0.8f, 0.9f, 0.7f, kp + e); break;
                    case 4: mgp_row_sums_sig_float_v4(o + r, o + R + r, o + 2 * R + r, dy + e, x + e, D, 1.1f, kp + e);
                            break;
                    case 5: sums_sig_one(o2 + r, o2 + R + r, o2 + 2 * R + r, dy + e, x + e, D, 1.1f, k2 + e); break;
                    case 6: for (Py_ssize_t d = 0; d < D; d++) dx[e + d] = x[e + d] * 0.5f + dy[e + d]; break;
                    }
                }
            t[k * reps + rep] = (now() - t0) / 20 / N * 1e9;
        }
    printf("D = %zd, %d rounds, ns a value (median, min)\n", D, reps);
    for (int k = 0; k < K; k++) {
        double m = t[k * reps];
        for (int r = 1; r < reps; r++) m = t[k * reps + r] < m ? t[k * reps + r] : m;
        printf("  %-22s %.3f (%.3f)\n", names[k], med(t + k * reps, reps), m);
    }
    printf("gate 0 one and pairs' bits: %s\n", !memcmp(o, o2, 3 * R * 8) && !memcmp(kp, k2, N * 4) ? "identical" : "DIFFER");
    return 0;
}
