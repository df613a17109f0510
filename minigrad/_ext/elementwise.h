/* The sigmoid kernels' C (elementwise.pyx drives them over chunks): forward y = 1/(1 + exp(-x)) in X, float's exp
   the vector polynomial of mg_expf.h (within 1 ulp of the correctly rounded expf; 8 lanes, then a scalar tail that
   gives the same bits), double's libm's exp; backward dx = dy*(1 - y)*y in X, left to right (PyTorch's
   sigmoid_backward order). No FMA: setup.py's -ffp-contract=off, and the AVX2 clone has none. Included after
   Python.h (Py_ssize_t). */
#ifndef MG_ELEMENTWISE_H
#define MG_ELEMENTWISE_H
#include "mg_expf.h"
#include "mg_clones.h"

/* y may be x (in place): each block of 8 is loaded before it is stored */
MG_CLONES static void mge_sigmoid_forward_float8(float* y, const float* x, Py_ssize_t n) {
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        mgp_v8f v;
        memcpy(&v, x + i, sizeof v);
        v = mgp_sigmoidv_float(v);
        memcpy(y + i, &v, sizeof v);
    }
    for (; i < n; i++) y[i] = mgp_sigmoid_float(x[i]);
}
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
/* On AVX-512 machines the blocks of 16 go through one zmm vector: the same ops as mgp_expf8, lane by lane, and
   the same bits for every float32 input, NaN payloads and signs included (scripts/small_kernels_bits.py sweeps all
   2^32 against the 8-lane build). Only whole blocks of 16: the rest goes to mge_sigmoid_forward_float8, whose
   scalar tail in an AVX-512 clone would vectorize differently and give a NaN another sign. The count done. */
__attribute__((target("arch=x86-64-v4"))) static Py_ssize_t mge_sigmoid_forward_float16(float* y, const float* x,
                                                                                         Py_ssize_t n) {
    Py_ssize_t i = 0;
    for (; i + 16 <= n; i += 16) {
        mgp_v16f v;
        memcpy(&v, x + i, sizeof v);
        v = mgp_sigmoidv16_float(v);
        memcpy(y + i, &v, sizeof v);
    }
    return i;
}
static int mge_have_avx512(void) {
    static int have = -1;  /* NOTE: a race here writes the same value */
    if (have < 0) {
        __builtin_cpu_init();
        have = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
    }
    return have;
}
#else
static Py_ssize_t mge_sigmoid_forward_float16(float* y, const float* x, Py_ssize_t n) { return 0; }
static int mge_have_avx512(void) { return 0; }
#endif
static void mge_sigmoid_forward_float(float* y, const float* x, Py_ssize_t n) {
    Py_ssize_t i = mge_have_avx512() ? mge_sigmoid_forward_float16(y, x, n) : 0;
    mge_sigmoid_forward_float8(y + i, x + i, n - i);
}
static void mge_sigmoid_forward_double(double* y, const double* x, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) y[i] = mgp_sigmoid_double(x[i]);
}
#define MGE_SIGMOID_BACKWARD(T)                                                                               \
MG_CLONES static void mge_sigmoid_backward_##T(T* dx, const T* dy, const T* y, Py_ssize_t n) {              \
    for (Py_ssize_t i = 0; i < n; i++) dx[i] = dy[i] * ((T)1 - y[i]) * y[i];                                \
}
MGE_SIGMOID_BACKWARD(float)
MGE_SIGMOID_BACKWARD(double)
#endif
