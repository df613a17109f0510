/* mg_expf.h's double exp (mgp_exp_fma and its 4- and 8-lane forms) against expl (long double) over a dense sweep and
   the edges (docs/perf/norm-family.md, "EvoNorm, session 31"): largest ulps on [-708.3, 709.7] (normal results)
   and on [-745.2, -708.3] (subnormal results, ulp 2^-1074), the count over 1 ulp, libm's exp beside it for scale;
   +-inf, NaN, huge +-x, +-0 and the overflow and underflow thresholds; the sigmoid on it against 1/(1 + expl(-x))
   (and the one on libm's exp) where exp(-x) is finite; and the scalar against both lane forms, bit for bit. About
   a minute of CPU.

       gcc -O2 -fno-math-errno -ffp-contract=off -o /tmp/gate_exp_check scripts/gate_exp_check.c -lm
       /tmp/gate_exp_check [points, default 2^27]
*/
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
typedef long Py_ssize_t;
#include "../minigrad/_ext/mg_expf.h"
/* ulps of a double result against the long double value e */
static double ulps(double got, long double e) {
    if (isnan(got) || isnan(e)) return (isnan(got) && isnan(e)) ? 0 : 1e30;
    double d = (double)e;
    if (isinf(d) || isinf(got)) return got == d ? 0 : 1e30;
    double u = nextafter(fabs(d), INFINITY) - fabs(d);
    if (u == 0 || fabs(d) < 2.2250738585072014e-308) u = 4.9406564584124654e-324;
    return (double)(fabsl((long double)got - e) / u);
}
static uint64_t rng = 88172645463325252ull;
static double uni(double a, double b) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return a + (b - a) * ((rng >> 11) * 0x1.0p-53);
}
static long lanes_bad = 0;
/* the gate's sigmoid, 1/(1 + exp(-x)) on mgp_exp_fma (the gate kernels take exp((-v)*x) directly) */
static double sig_fma(double x) { return 1.0 / (1.0 + mgp_exp_fma(-x)); }
/* exp of 8 values three ways; the scalar must equal both lane forms */
__attribute__((target("arch=x86-64-v4"))) static void exp8(const double* x, double* e) {
    mgp_v8d xv; memcpy(&xv, x, sizeof xv);
    mgp_v8d e8 = mgp_exp8_fma(xv);
    mgp_v4d a, b; memcpy(&a, x, sizeof a); memcpy(&b, x + 4, sizeof b);
    mgp_v4d e4a = mgp_exp4_fma(a), e4b = mgp_exp4_fma(b);
    for (int i = 0; i < 8; i++) {
        e[i] = mgp_exp_fma(x[i]);
        double l4 = i < 4 ? e4a[i] : e4b[i - 4];
        if (memcmp(&e[i], &e8[i], 8) || memcmp(&e[i], &l4, 8)) lanes_bad++;
    }
}
static void sweep(const char* name, double a, double b, long n) {
    double me = 0, ml = 0, wx = 0; long over = 0;
    double x[8], e[8];
    for (long j = 0; j < n; j += 8) {
        for (int i = 0; i < 8; i++) x[i] = uni(a, b);
        exp8(x, e);
        for (int i = 0; i < 8; i++) {
            long double ex = expl((long double)x[i]);
            double u = ulps(e[i], ex), ul = ulps(exp(x[i]), ex);
            if (u > me) { me = u; wx = x[i]; }
            if (ul > ml) ml = ul;
            if (u > 1) over++;
        }
    }
    printf("%-34s %ld points: mgp_exp_fma max %.3f ulp (at %.17g), %ld over 1 ulp; libm exp max %.3f ulp\n",
           name, n, me, wx, over, ml);
}
int main(int argc, char** argv) {
    long n = argc > 1 ? atol(argv[1]) : (1l << 27);
    sweep("[-708.3, 709.7] (normal results)", -708.3, 709.7, n);
    sweep("[-1, 1]", -1, 1, n / 4);
    sweep("[-745.2, -708.3] (subnormal)", -745.2, -708.3, n / 4);
    sweep("[709.7, 709.79] (near overflow)", 709.7, 709.79, n / 16);
    const double edge[] = {INFINITY, -INFINITY, NAN, -NAN, 1e308, -1e308, 750, -750, 751, -751, 0.0, -0.0,
                           709.782712893384, 709.7827128933841, -745.1332191019411, -745.1332191019412,
                           -745.13321910194122, -744.44007192138126, -708.39641853226408, 5e-324, -5e-324, 1e-300,
                           -1e-17, 1e-17, 0.34657359027997264, -0.34657359027997264, 0.5 * 0.6931471805599453};
    long edge_bad = 0;
    for (size_t j = 0; j < sizeof edge / sizeof edge[0]; j += 8) {
        double x[8] = {0}, e[8];
        for (int i = 0; i < 8 && j + i < sizeof edge / sizeof edge[0]; i++) x[i] = edge[j + i];
        exp8(x, e);
        for (int i = 0; i < 8 && j + i < sizeof edge / sizeof edge[0]; i++) {
            double u = ulps(e[i], expl((long double)x[i]));
            printf("  exp(%.17g) = %.17g, libm %.17g, %.3f ulp\n", x[i], e[i], exp(x[i]), u);
            if (u > 1) edge_bad++;
        }
    }
    /* below -709.78 exp(-x) overflows and both sigmoids give 0 where the exact one is subnormal: not swept */
    double ms = 0, msl = 0, wx = 0; long snan = 0;
    for (long j = 0; j < n / 4; j++) {
        double x = uni(-709.78, 800), s = sig_fma(x);
        long double ex = 1.0L / (1.0L + expl(-(long double)x));
        double u = ulps(s, ex), ul = ulps(mgp_sigmoid_double(x), ex);
        if (u > ms) { ms = u; wx = x; }
        if (ul > msl) msl = ul;
    }
    const double sx[] = {NAN, INFINITY, -INFINITY, 0.0, -0.0};
    const double sw[] = {NAN, 1, 0, 0.5, 0.5};
    for (int i = 0; i < 5; i++) {
        double s = sig_fma(sx[i]);
        if (!(isnan(sw[i]) ? isnan(s) : s == sw[i])) snan++;
    }
    printf("sigmoid on [-709.78, 800]: max %.3f ulp (at %.17g), on libm's exp %.3f; NaN, +-inf, +-0 wrong: %ld\n",
           ms, wx, msl, snan);
    printf("edges over 1 ulp: %ld; scalar != lanes: %ld\n", edge_bad, lanes_bad);
    return edge_bad || lanes_bad || snan;
}
