/* EvoNorm's gate 0 kernels in C on 32768 float32 values in cache, as rows of 64, 256, 1024 and one row of 32768
   (docs/perf/norm-family.md, "FRN's backward and S0's gate against the triad, session 35"): the sums (without and
   with the kept sigmoids, as evonorm_s0_backward takes them) and the apply, through this header's dispatch (the
   AVX-512 versions on a CPU with it), best of 200 calls, CPU time, ns a value; twice. Whether the time depends on
   the row length (per-row costs) or not (the loop itself). Built as setup.py builds the extensions:

     INC=$(python -c "import sysconfig; print(sysconfig.get_paths()['include'])")
     gcc -O3 -fno-math-errno -ffp-contract=off -I minigrad/_ext -I $INC scripts/gate_sums_rows.c -o /tmp/gsr -lm
     /tmp/gsr
*/
#include <Python.h>
#include <time.h>
#include <stdio.h>
#include "phases.h"
static double now(void) { struct timespec t; clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
static unsigned long long rng = 88172645463325252ULL;
static float rnd(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return (float)((rng >> 11) * (1.0 / 9007199254740992.0) - 0.5); }
int main(void) {
    const Py_ssize_t n = 1 << 15, Ds[] = {64, 256, 1024, 1 << 15};
    float *x = malloc(n * 4), *dy = malloc(n * 4), *keep = malloc(n * 4), *y = malloc(n * 4);
    double *o = malloc(3 * n * 8);
    for (Py_ssize_t i = 0; i < n; i++) { x[i] = 2 * rnd() + 0.5f; dy[i] = rnd(); }
    for (int rep = 0; rep < 2; rep++)
    for (int k = 0; k < 4; k++) {
        const Py_ssize_t D = Ds[k], R = n / D;
        double bs = 1e9, bk = 1e9, ba = 1e9;
        for (int it = 0; it < 200; it++) {
            double t0 = now();
            for (Py_ssize_t r = 0; r < R; r++) mgp_row_sums_sig_float(o + r, o + n + r, o + 2 * n + r, dy + r * D, x + r * D, D, 1.1f, NULL);
            bs = fmin(bs, now() - t0);
            t0 = now();
            for (Py_ssize_t r = 0; r < R; r++) mgp_row_sums_sig_float(o + r, o + n + r, o + 2 * n + r, dy + r * D, x + r * D, D, 1.1f, keep + r * D);
            bk = fmin(bk, now() - t0);
            t0 = now();
            for (Py_ssize_t r = 0; r < R; r++) mgp_row_apply_gate_float(y + r * D, x + r * D, D, 0, 1.1f, 0, 0, 1.0f, 0.0f);
            ba = fmin(ba, now() - t0);
        }
        printf("D %6zd: sums gate 0 %.3f ns/el, with keep %.3f, apply gate 0 %.3f (32768 values in cache)\n", D, bs / n * 1e9, bk / n * 1e9, ba / n * 1e9);
    }
    return 0;
}
