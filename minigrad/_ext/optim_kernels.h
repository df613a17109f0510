/* The optimizer updates of optim.pyx, one fused pass over a flattened parameter and its state (the rules, rounding
   by rounding: reference.sgd_update, adam_update). Each operation in X, in the reference's order; MG_CLONES
   (AVX2 and baseline) compile no FMA, so every clone gives the reference's bits.
   NOTE: C helpers so that they can be MG_CLONES: docs/perf/norm-kernels.md#optimizer-clones */
#ifndef MG_OPTIM_KERNELS_H
#define MG_OPTIM_KERNELS_H

/* Py_ssize_t. Python.h must come before any system header; in Cython's generated C it already has. */
#include <Python.h>
#include <math.h>

#include "mg_clones.h"

#define MG_SGD(T)                                                                                              \
MG_CLONES static void mg_sgd_##T(T* p, T* buf, const T* grad, Py_ssize_t m, T wd, T mom, T keep, T lr,         \
                                 int has_wd, int has_damp, int nesterov, int first) {                          \
    for (Py_ssize_t i = 0; i < m; i++) {                                                                       \
        T g = has_wd ? grad[i] + wd * p[i] : grad[i];                                                          \
        T b;                                                                                                   \
        if (first) b = g;                                                                                      \
        else { b = buf[i] * mom; b = has_damp ? b + keep * g : b + g; }                                        \
        buf[i] = b;                                                                                            \
        T s = nesterov ? g + mom * b : b;                                                                      \
        p[i] = p[i] - s * lr;                                                                                  \
    }                                                                                                          \
}
#define MG_ADAM(T, SQRT)                                                                                       \
MG_CLONES static void mg_adam_##T(T* p, T* m, T* v, const T* grad, Py_ssize_t n, T decay, T wd,                \
                                  T keep1, T b2, T keep2, T bc2, T eps, T step_size,                           \
                                  int decoupled, int has_wd) {                                                 \
    for (Py_ssize_t i = 0; i < n; i++) {                                                                       \
        T p0 = decoupled ? p[i] * decay : p[i];                                                                \
        T g = has_wd ? grad[i] + wd * p0 : grad[i];                                                            \
        T mi = m[i] + keep1 * (g - m[i]);                                                                      \
        T vi = v[i] * b2;                                                                                      \
        vi = vi + keep2 * g * g;                                                                               \
        m[i] = mi;                                                                                             \
        v[i] = vi;                                                                                             \
        p[i] = p0 - step_size * mi / (SQRT(vi) / bc2 + eps);                                                   \
    }                                                                                                          \
}
MG_SGD(float)
MG_SGD(double)
MG_ADAM(float, sqrtf)
MG_ADAM(double, sqrt)

#endif
