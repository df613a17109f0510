/* Vector building blocks of the normalization kernels (norm_runs.h, norm_channels.h, norm_rows.h): GCC vector
   types of a fixed width (4 doubles, 8 floats), loads and stores, horizontal sums, the tail mask. The widths are
   fixed, not the machine's, so every summation order, and so every result, is the same on any x86-64 and in
   every clone of mg_clones.h. */
#ifndef MG_NORM_SIMD_H
#define MG_NORM_SIMD_H

/* Py_ssize_t. Python.h must come before any system header; in Cython's generated C it already has (first line of
   the includes), so this include only matters to a C file that includes these headers on its own. */
#include <Python.h>
#include <string.h>

#include "mg_clones.h"

/* the 32-byte vector arguments of the static helpers: no ABI to keep */
#pragma GCC diagnostic ignored "-Wpsabi"

/* helpers that must disappear into their caller, so that a constant flag argument folds away */
#define MG_AI static inline __attribute__((always_inline))
/* the rare fallback paths: out of the hot code */
#define MG_COLD static __attribute__((noinline, cold))

typedef double mg_v4d __attribute__((vector_size(32)));
typedef float mg_v4f __attribute__((vector_size(16)));
typedef float mg_vx_float __attribute__((vector_size(32)));
typedef double mg_vx_double __attribute__((vector_size(32)));
typedef int mg_v8i __attribute__((vector_size(32)));
typedef long long mg_v4l __attribute__((vector_size(32)));

/* four values widened to double.
   NOTE: element by element, not __builtin_convertvector: GCC 12 lowers that one to two 2-wide conversions glued
   through the stack (store-forwarding stalls); this form compiles to one vcvtps2pd ymm in the AVX2 clone. */
static inline mg_v4d mg_load4_float(const float* p) { mg_v4d v = {p[0], p[1], p[2], p[3]}; return v; }
static inline mg_v4d mg_load4_double(const double* p) { mg_v4d v; memcpy(&v, p, sizeof v); return v; }
static inline void mg_store4(double* p, mg_v4d v) { memcpy(p, &v, sizeof v); }
/* (a + b) summed across lanes, pairwise */
static inline double mg_hsum(mg_v4d a, mg_v4d b) { a += b; return (a[0] + a[1]) + (a[2] + a[3]); }

/* one vector in X precision: 8 floats or 4 doubles */
static inline mg_vx_float mg_loadx_float(const float* p) { mg_vx_float v; memcpy(&v, p, sizeof v); return v; }
static inline mg_vx_double mg_loadx_double(const double* p) { mg_vx_double v; memcpy(&v, p, sizeof v); return v; }
/* a0, a1 += v, widened to double (a vector of 8 floats or of 4 doubles) */
static inline void mg_widen_add_float(mg_v4d* a0, mg_v4d* a1, mg_vx_float v) {
    mg_v4d lo = {v[0], v[1], v[2], v[3]}, hi = {v[4], v[5], v[6], v[7]};
    *a0 += lo; *a1 += hi;
}
static inline void mg_widen_add_double(mg_v4d* a0, mg_v4d* a1, mg_vx_double v) { *a0 += v; (void)a1; }

/* the two halves of v added in float32, widened to double */
MG_AI mg_v4d mg_fold_widen(mg_vx_float v) {
    mg_v4f lo = {v[0], v[1], v[2], v[3]}, hi = {v[4], v[5], v[6], v[7]};
    lo += hi;
    mg_v4d r = {lo[0], lo[1], lo[2], lo[3]};
    return r;
}
/* *s1 += (a[0] + a[1]) + (a[2] + a[3]), *s2 likewise with q */
MG_AI void mg_hsum2(mg_v4d a, mg_v4d q, double* s1, double* s2) {
    mg_v4d h = __builtin_shuffle(a, q, (mg_v4l){0, 4, 2, 6}) + __builtin_shuffle(a, q, (mg_v4l){1, 5, 3, 7});
    *s1 += h[0] + h[2];
    *s2 += h[1] + h[3];
}
/* lanes 8 - m%8 .. 7 set: the new values of the overlapping last vector x[m-8:m] */
MG_AI mg_v8i mg_tail_mask(Py_ssize_t m) {
    static const int tbl[16] = {0, 0, 0, 0, 0, 0, 0, 0, -1, -1, -1, -1, -1, -1, -1, -1};
    mg_v8i v; memcpy(&v, tbl + (m % 8), sizeof v); return v;
}
/* v with the lanes outside mask set to +0 */
#define MG_MASKED(v, mask) ((mg_vx_float)((mg_v8i)(v) & (mask)))

#endif
