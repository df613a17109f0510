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
MG_CLONES static void mge_sigmoid_forward_float(float* y, const float* x, Py_ssize_t n) {
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        mgp_v8f v;
        memcpy(&v, x + i, sizeof v);
        v = mgp_sigmoidv_float(v);
        memcpy(y + i, &v, sizeof v);
    }
    for (; i < n; i++) y[i] = mgp_sigmoid_float(x[i]);
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
