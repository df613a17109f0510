/* EvoNorm's float32 gate 0 on every float32 x (docs/perf/norm-family.md, "EvoNorm's gate, session 34"): the gate
   exp e = mgp_expf_fma(-x) (mg_expf.h), the sigmoid s = 1/(1 + e) and the apply's f = x/(1 + e) against the same
   in long double (x87's 64-bit significand), in ulps of the float result (below float's normals the ulp is 2^-149:
   there the figure is the error in subnormal steps, reported apart), the exp where it is finite and normal, the
   sigmoid and f where they are normal, NaN in -> NaN out, and the 16 lanes (clones' blends and AVX-512's vrangeps
   and vscalefps), the 8 lanes of both and the scalar (the kernels' tail) the same bits (NaN: all NaN). Built against
   another tree's header (-I OTHER/minigrad/_ext) it measures that tree's gate exp, skipping the lanes check
   (-DNO_LANES) where it lacks one of them. Every float32 takes about 10 minutes of one core; with STRIDE, every
   STRIDE-th block of 16 consecutive bit patterns (16: 2^28 floats spread over the whole range):

       gcc -O2 -fno-math-errno -ffp-contract=off -I minigrad/_ext -o /tmp/gsc scripts/gate_sigmoid_check.c -lm
       /tmp/gsc [STRIDE]
*/
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
typedef long Py_ssize_t;
#include "mg_expf.h"
/* ulps of a float result against the long double value d, and whether d is below float's normals */
static double ulps(float got, long double d, int* sub) {
    const long double a = fabsl(d);
    *sub = a < 0x1p-126L;
    if (isinf(d) || isinf(got)) return got == (float)d ? 0 : 1e30;
    const long double u = *sub ? 0x1p-149L : ldexpl(1.0L, ilogbl(a) - 23);
    return (double)(fabsl((long double)got - d) / u);
}
typedef struct { double worst, worst_sub; float at, at_sub; long over1, nan_bad; } stat;
static void add(stat* s, float x, float got, long double d) {
    if (isnan(d) || isnan(got)) { s->nan_bad += isnan(d) != isnan(got); return; }
    int sub;
    const double e = ulps(got, d, &sub);
    if (sub) { if (e > s->worst_sub) { s->worst_sub = e; s->at_sub = x; } }
    else { if (e > s->worst) { s->worst = e; s->at = x; } s->over1 += e > 1.0; }
}
static void show(const char* what, const stat* s) {
    printf("%-22s max %.4f ulp (x = %a), over 1 ulp: %ld; below normals: max %.4g steps of 2^-149 (x = %a); "
           "NaN differing: %ld\n", what, s->worst, s->at, s->over1, s->worst_sub, s->at_sub, s->nan_bad);
}
#ifndef NO_LANES
__attribute__((target("arch=x86-64-v4"))) static int lanes_differ(const mgp_v16f* w, const float* e) {
    mgp_v8f lo, hi;
    memcpy(&lo, w, sizeof lo);
    memcpy(&hi, (const float*)w + 8, sizeof hi);
    const mgp_v16f a = mgp_expf16_fma_v4(*w);
    const mgp_v8f b[4] = {mgp_expf8_fma(lo), mgp_expf8_fma(hi), mgp_expf8_fma_v4(lo), mgp_expf8_fma_v4(hi)};
    for (int i = 0; i < 16; i++) {
        const float o[4] = {a[i], b[i / 8][i % 8], b[2 + i / 8][i % 8], mgp_expf_fma((*w)[i])};
        for (int k = 0; k < 4; k++)
            if (isnan(e[i]) ? !isnan(o[k]) : memcmp(o + k, e + i, 4) != 0) return 1;
    }
    return 0;
}
#endif
int main(int argc, char** argv) {
    const uint64_t stride = 16 * (argc > 1 ? strtoull(argv[1], NULL, 10) : 1);
    stat se = {0}, ss = {0}, sf = {0};
    for (uint64_t b = 0; b < (1ull << 32); b += stride) {
        mgp_v16f xv, w;
        for (int i = 0; i < 16; i++) { const uint32_t u = (uint32_t)(b + i); memcpy(&xv[i], &u, 4); }
        w = -xv;
        const mgp_v16f e = mgp_expf16_fma(w), s = 1.0f / (1.0f + e), f = xv / (1.0f + e);
#ifndef NO_LANES
        if (lanes_differ(&w, (const float*)&e)) { printf("lanes or scalar differ near x = %a\n", xv[0]); return 1; }
#endif
        for (int i = 0; i < 16; i++) {
            const float x = xv[i];
            const long double E = expl(-(long double)x);
            if (!(E > 0x1p128L)) add(&se, x, e[i], E);
            add(&ss, x, s[i], 1.0L / (1.0L + E));
            add(&sf, x, f[i], isinf(x) ? (x > 0 ? x : NAN) : (long double)x / (1.0L + E));
        }
    }
    show("exp(-x) (finite)", &se);
    show("sigmoid 1/(1 + e)", &ss);
    show("f = x/(1 + e)", &sf);
    printf("exp(89) %g exp(88.7) %g exp(-89) %g exp(-inf) %g exp(inf) %g; f(-inf) %g f(inf) %g\n",
           mgp_expf_fma(89.0f), mgp_expf_fma(88.7f), mgp_expf_fma(-89.0f), mgp_expf_fma(-INFINITY),
           mgp_expf_fma(INFINITY), -INFINITY / (1 + mgp_expf_fma(INFINITY)), INFINITY / (1 + mgp_expf_fma(-INFINITY)));
    return 0;
}
