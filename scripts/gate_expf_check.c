/* mg_expf.h's float exps and sigmoids on every float32 input (docs/perf/norm-family.md, "2026-12-07 (session 30):
   EvoNorm's gates"): mgp_expf and mgp_expf_fma against exp in double on [-87.3, 88.3] (largest ulps, count over 1
   ulp), both sigmoids against 1/(1 + exp(-x)) in double, NaN in -> NaN out, and the fused exp's and sigmoid's scalar
   against their 16 lanes, bit for bit. About 10-25 minutes on one core. With the argument v4 (about a minute): the
   AVX-512 exps of the gate kernels (mgp_expf16_fma_v4, mgp_expf8_fma_v4: the clamps as vminps / vmaxps) against
   mgp_expf16_fma and mgp_expf8_fma (the clamps as blends) on every float32 input, bit for bit (NaN: both NaN).

       gcc -O2 -fno-math-errno -ffp-contract=off -o /tmp/gate_expf_check scripts/gate_expf_check.c -lm
       /tmp/gate_expf_check [v4]
*/
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
typedef long Py_ssize_t;
#include "../minigrad/_ext/mg_expf.h"
/* ulps of a float result against the double value d */
static double ulps(float got, double d) {
    if (isnan(got) || isnan(d)) return (isnan(got) && isnan(d)) ? 0 : 1e30;
    if (isinf(d) || isinf(got)) return (got == (float)d) ? 0 : 1e30;
    float fd = (float)d; double u = nextafterf(fabsf(fd), INFINITY) - fabsf(fd);
    if (fd == 0) u = 1.4e-45;
    return fabs((double)got - d) / u;
}
/* the gate's sigmoid, 1/(1 + exp(-x)) on the fused exp (the gate kernels take exp((-v)*x) directly) */
static float sig_fma(float x) { return 1.0f / (1.0f + mgp_expf_fma(-x)); }
__attribute__((target("arch=x86-64-v4"))) static mgp_v16f sig16_fma(mgp_v16f x) {
    return 1.0f / (1.0f + mgp_expf16_fma(-x));
}
__attribute__((target("arch=x86-64-v4"))) static int same(const float* a, const float* b, int n) {
    for (int i = 0; i < n; i++)
        if (isnan(a[i]) ? !isnan(b[i]) : memcmp(a + i, b + i, 4) != 0) return 0;
    return 1;
}
__attribute__((target("arch=x86-64-v4"))) static int check_v4(void) {
    for (uint64_t b = 0; b < (1ull << 32); b += 16) {
        mgp_v16f xv; for (int i = 0; i < 16; i++) { uint32_t u = (uint32_t)(b + i); memcpy(&xv[i], &u, 4); }
        const mgp_v16f e = mgp_expf16_fma(xv), e4 = mgp_expf16_fma_v4(xv);
        mgp_v8f lo, hi;
        memcpy(&lo, &xv, sizeof lo);
        memcpy(&hi, (float*)&xv + 8, sizeof hi);
        const mgp_v8f e8[2] = {mgp_expf8_fma(lo), mgp_expf8_fma(hi)};
        const mgp_v8f e84[2] = {mgp_expf8_fma_v4(lo), mgp_expf8_fma_v4(hi)};
        if (!same((const float*)&e, (const float*)&e4, 16) || !same((const float*)e8, (const float*)e84, 16)) {
            printf("v4 != blends near %a\n", xv[0]);
            return 1;
        }
    }
    printf("v4: mgp_expf16_fma_v4 and mgp_expf8_fma_v4 give mgp_expf16_fma's and mgp_expf8_fma's bits on all 2^32 "
           "inputs (NaN: NaN)\n");
    return 0;
}
__attribute__((target("arch=x86-64-v4"))) int main(int argc, char** argv) {
    if (argc > 1 && strcmp(argv[1], "v4") == 0) return check_v4();
    double me[2] = {0, 0}, ms[2] = {0, 0}; long bad[2] = {0, 0}, nanbad[2] = {0, 0};
    for (uint64_t b = 0; b < (1ull << 32); b += 16) {
        mgp_v16f xv; for (int i = 0; i < 16; i++) { uint32_t u = (uint32_t)(b + i); memcpy(&xv[i], &u, 4); }
        mgp_v16f e0 = mgp_expf16(xv), e1 = mgp_expf16_fma(xv);
        mgp_v16f s0 = mgp_sigmoidv16_float(xv), s1 = sig16_fma(xv);
        for (int i = 0; i < 16; i++) {
            float x = xv[i];
            if (isnan(x)) {
                nanbad[0] += !isnan(e0[i]) || !isnan(s0[i]);
                nanbad[1] += !isnan(e1[i]) || !isnan(s1[i]);
                continue;
            }
            double sd = 1.0 / (1.0 + exp(-(double)x));
            double es[2] = {ulps(s0[i], sd), ulps(s1[i], sd)};
            for (int k = 0; k < 2; k++) if (es[k] > ms[k]) ms[k] = es[k];
            if (x >= -87.3f && x <= 88.3f) {
                double ed = exp((double)x), ee[2] = {ulps(e0[i], ed), ulps(e1[i], ed)};
                for (int k = 0; k < 2; k++) { if (ee[k] > me[k]) me[k] = ee[k]; bad[k] += ee[k] > 1.0; }
            }
            /* scalar (the tail) must equal the lanes */
            if (mgp_expf_fma(x) != e1[i] && !(isnan(e1[i]))) { printf("scalar != lane at %a\n", x); return 1; }
            if (sig_fma(x) != s1[i] && !(isnan(s1[i]))) {
                printf("sigmoid scalar != lane at %a\n", x);
                return 1;
            }
        }
    }
    printf("exp on [-87.3, 88.3], max ulps against exp in double: mgp_expf %.4f, mgp_expf_fma %.4f "
           "(over 1 ulp: %ld, %ld)\n", me[0], me[1], bad[0], bad[1]);
    printf("sigmoid 1/(1+exp(-x)) over every non-NaN float32, max ulps against double: before %.4f, fma %.4f\n",
           ms[0], ms[1]);
    printf("NaN in, not NaN out: %ld, %ld\n", nanbad[0], nanbad[1]);
    printf("signed zeros and infs: sig(+0)=%g sig(-0)=%g sig(inf)=%g sig(-inf)=%g expfma(-inf)=%g expfma(inf)=%g\n",
           sig_fma(0.0f), sig_fma(-0.0f), sig_fma(INFINITY),
           sig_fma(-INFINITY), mgp_expf_fma(-INFINITY), mgp_expf_fma(INFINITY));
    return 0;
}
