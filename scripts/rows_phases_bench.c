/* FRN + TLU's backward and the row statistics in C, one row at a time (as the drivers called them before
   2026-12-07, session 30: the per-row kernel composed of the same inline helpers, with the same clones) against this header's row-run
   kernels (mgp_rows_norm_backward_max_T: the next row's sums before a row's apply; mgp_rows_stats_T: two rows a
   loop), float32, one thread, interleaved: the best of REPS rounds of 5 calls each, ns per element, with a C triad
   (a = b + s*c over 1 MiB arrays) timed in the same rounds, and whether both give the same bytes
   (docs/perf/norm-family.md, "2026-12-07 (session 30)"). Built as setup.py builds the extensions:

     INC=$(python -c "import sysconfig; print(sysconfig.get_paths()['include'])")
     gcc -O3 -fno-math-errno -ffp-contract=off -I minigrad/_ext -I $INC scripts/rows_phases_bench.c -o /tmp/rpb -lm
     /tmp/rpb [REPS]
*/
#include <Python.h>
#include <time.h>
#include <stdio.h>
#include "phases.h"
static double now(void) { struct timespec t; clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
static unsigned long long rng = 88172645463325252ULL;
static float rnd(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return (float)((rng >> 11) * (1.0 / 9007199254740992.0) - 0.5); }
static void triad(float* a, const float* b, const float* c, float s, Py_ssize_t n) { for (Py_ssize_t i = 0; i < n; i++) a[i] = b[i] + s * c[i]; }
MG_CLONES static void backward_per_row(float* dx, double* sg, double* sgx, double* st, const float* dy, const float* x, const double* rstd,
                             const float* w, const float* sc, const float* of, const float* tau, Py_ssize_t R, Py_ssize_t D, Py_ssize_t C) {
    for (Py_ssize_t r = 0; r < R; r++) {
        const Py_ssize_t c = r % C;
        mgp_row_sums_max_in_float(sg + r, sgx + r, st + r, dx + r * D, 1, dy + r * D, x + r * D, D, 0.0, 0.0f, sc[r], of[c], tau[c], 1);
        mgp_row_norm_apply_max_float(dx + r * D, x + r * D, D, rstd[r], w[c], sgx[r]);
    }
}
int main(int argc, char** argv) {
    const int reps = argc > 1 ? atoi(argv[1]) : 60;
    const Py_ssize_t shapes[][3] = {{512, 64, 32}, {2048, 256, 64}, {256, 2048, 16}, {513, 67, 9}};  /* R D C */
    const Py_ssize_t tn = 1 << 18;
    float *ta = malloc(tn * 4), *tb = malloc(tn * 4), *tc = malloc(tn * 4);
    for (Py_ssize_t i = 0; i < tn; i++) { ta[i] = 0; tb[i] = 1; tc[i] = 2; }
    printf("| R x D | triad GB/s | stats per row | stats rows | backward per row | backward rows | same bytes |\n|---|---|---|---|---|---|---|\n");
    for (int si = 0; si < 4; si++) {
        const Py_ssize_t R = shapes[si][0], D = shapes[si][1], C = shapes[si][2], n = R * D;
        float *x = malloc(n * 4), *dy = malloc(n * 4), *dx0 = malloc(n * 4), *dx1 = malloc(n * 4);
        float *w = malloc(C * 4), *of = malloc(C * 4), *tau = malloc(C * 4), *sc = malloc(R * 4);
        double *o[10], *rstd = malloc(R * 8);
        for (int j = 0; j < 10; j++) o[j] = malloc(R * 8);
        for (Py_ssize_t i = 0; i < n; i++) { x[i] = 3 + rnd(); dy[i] = rnd(); }
        for (Py_ssize_t c = 0; c < C; c++) { w[c] = 1 + rnd(); of[c] = rnd(); tau[c] = rnd(); }
        for (Py_ssize_t r = 0; r < R; r++) { sc[r] = 1 + rnd(); rstd[r] = 1.3 + rnd(); }
        double best[5] = {1e9, 1e9, 1e9, 1e9, 1e9}, t0;
        for (int k = 0; k < reps; k++) {
            t0 = now(); for (int j = 0; j < 5; j++) triad(ta, tb, tc, 3.0f, tn); best[0] = fmin(best[0], (now() - t0) / 5);
            t0 = now(); for (int j = 0; j < 5; j++) for (Py_ssize_t r = 0; r < R; r++) mgp_row_stats_float(o[0] + r, o[1] + r, x + r * D, 1, D);
            best[1] = fmin(best[1], (now() - t0) / 5);
            t0 = now(); for (int j = 0; j < 5; j++) mgp_rows_stats_float(o[2], o[3], x, 1, 0, R, D); best[2] = fmin(best[2], (now() - t0) / 5);
            t0 = now(); for (int j = 0; j < 5; j++) backward_per_row(dx0, o[4], o[5], o[6], dy, x, rstd, w, sc, of, tau, R, D, C);
            best[3] = fmin(best[3], (now() - t0) / 5);
            t0 = now(); for (int j = 0; j < 5; j++) mgp_rows_norm_backward_max_float(dx1, o[7], o[8], o[9], dy, x, rstd, w, sc, of, tau, 0, R, D, C);
            best[4] = fmin(best[4], (now() - t0) / 5);
        }
        const int same = !memcmp(o[0], o[2], R * 8) && !memcmp(o[1], o[3], R * 8) && !memcmp(dx0, dx1, n * 4) &&
                         !memcmp(o[4], o[7], R * 8) && !memcmp(o[5], o[8], R * 8) && !memcmp(o[6], o[9], R * 8);
        printf("| %zd x %zd | %.1f | %.3f | %.3f | %.3f | %.3f | %s |\n", R, D, 3.0 * tn * 4 / best[0] / 1e9, best[1] / n * 1e9,
               best[2] / n * 1e9, best[3] / n * 1e9, best[4] / n * 1e9, same ? "yes" : "NO");
    }
    return 0;
}
