/* Batch norm, channels layout x: (N, C, S) C-contiguous, one reduction set per channel: the helpers that take one
   row n's run of nc channels (x[c*S:(c+1)*S] is channel c) and add it into per-channel sums, or apply the
   per-channel coefficients to it. Which one runs for which S: the map at the top of norm.pyx. The forward
   reductions and their backward twins are written once (bwd, MG_TERMS: norm_runs.h). Declared for Cython in
   norm_kernels.pxd. */
#ifndef MG_NORM_CHANNELS_H
#define MG_NORM_CHANNELS_H

#include "norm_runs.h"

/* the float64 sums, the elementwise passes and the float32 channel sums take two channels per call below this
   run length, one channel per call from it on (NOTE: measured so: docs/perf/norm-kernels.md#short-runs) */
#define MG_SHORT_RUN 128
/* float32 sums: runs of MG_SHORT_RUN <= S < MG_LANE_RUN values keep lane partials per channel (see
   mg_channel_lane_sums_float) */
#define MG_LANE_RUN 512

/* ---- S > 1, float64 ----------------------------------------------------------------------------------------
   s1[c] += sum(A), s2[c] += sum(Q) for the nc channels. Short runs two channels at a time, each with exactly
   the operations and order of mg_run_sums_double (same bits): at small S one channel's adds are bound by their
   latency, and the two channels' independent chains overlap (and the call overhead is paid once per row, not
   per channel). NOTE: docs/perf/norm-kernels.md#channel-pairs */
MG_AI void mg_channel_sums_double(const double* restrict dy, const double* restrict x, Py_ssize_t nc, Py_ssize_t S,
                                  const double* restrict K, double* restrict s1, double* restrict s2,
                                  const int bwd) {
    Py_ssize_t c = 0;
    for (; c + 2 <= nc && S < MG_SHORT_RUN; c += 2) {
        const double* xa = x + c * S;
        const double* xb = xa + S;
        const double* ga = dy + c * S;
        const double* gb = ga + S;
        const double Ka = K[c], Kb = K[c + 1];
        const mg_v4d ka = {Ka, Ka, Ka, Ka}, kb = {Kb, Kb, Kb, Kb};
        mg_v4d a0 = {0, 0, 0, 0}, a1 = a0, q0 = a0, q1 = a0, b0 = a0, b1 = a0, r0 = a0, r1 = a0;
        Py_ssize_t i = 0;
        for (; i + 8 <= S; i += 8) {
            mg_v4d A0, A1, Q0, Q1, B0, B1, R0, R1;
            MG_TERMS(bwd, A0, Q0, mg_load4_double(xa + i) - ka, mg_load4_double(ga + i));
            MG_TERMS(bwd, A1, Q1, mg_load4_double(xa + i + 4) - ka, mg_load4_double(ga + i + 4));
            MG_TERMS(bwd, B0, R0, mg_load4_double(xb + i) - kb, mg_load4_double(gb + i));
            MG_TERMS(bwd, B1, R1, mg_load4_double(xb + i + 4) - kb, mg_load4_double(gb + i + 4));
            a0 += A0; a1 += A1; q0 += Q0; q1 += Q1;
            b0 += B0; b1 += B1; r0 += R0; r1 += R1;
        }
        double a = 0, q = 0, b = 0, r = 0;
        for (; i < S; i++) {
            double A, Q, B, R;
            MG_TERMS(bwd, A, Q, xa[i] - Ka, ga[i]);
            MG_TERMS(bwd, B, R, xb[i] - Kb, gb[i]);
            a += A; q += Q; b += B; r += R;
        }
        s1[c] += mg_hsum(a0, a1) + a;
        s2[c] += mg_hsum(q0, q1) + q;
        s1[c + 1] += mg_hsum(b0, b1) + b;
        s2[c + 1] += mg_hsum(r0, r1) + r;
    }
    for (; c < nc; c++) {
        if (bwd) mg_dy_sums_double(dy + c * S, x + c * S, S, K[c], s1 + c, s2 + c);
        else mg_shifted_sums_double(x + c * S, S, K[c], s1 + c, s2 + c);
    }
}
/* s1[c] += sum(x - K[c]), s2[c] += sum((x - K[c])^2) */
MG_CLONES static void mg_channel_shifted_sums_double(const double* restrict x, Py_ssize_t nc, Py_ssize_t S,
                                                     const double* restrict K, double* restrict s1,
                                                     double* restrict s2) {
    mg_channel_sums_double(x, x, nc, S, K, s1, s2, 0);
}
/* sdy[c] += sum(dy), sdyx[c] += sum(dy*(x - mean[c])) */
MG_CLONES static void mg_channel_dy_sums_double(const double* restrict dy, const double* restrict x, Py_ssize_t nc,
                                                Py_ssize_t S, const double* restrict mean,
                                                double* restrict sdy, double* restrict sdyx) {
    mg_channel_sums_double(dy, x, nc, S, mean, sdy, sdyx, 1);
}

/* ---- S > 1, float32 (overflow: checked on the totals by _bn_stats_block, _bn_dy_sums_block) -----------------
   A short run (8 <= S < MG_SHORT_RUN) is one group in one accumulator: its vectors (the last one overlapping,
   its old lanes masked off), then the two halves, then widened; other runs as mg_f32_sums.
   NOTE: one accumulator, not mg_f32_run_sums's four, on short runs: docs/perf/norm-kernels.md#short-runs */
MG_AI void mg_channel_sums_float(const float* restrict dy, const float* restrict x, Py_ssize_t nc, Py_ssize_t S,
                                 const double* restrict K, double* restrict s1, double* restrict s2,
                                 const int bwd) {
    if (S < 8 || S >= MG_SHORT_RUN) {
        for (Py_ssize_t c = 0; c < nc; c++) mg_f32_sums(dy + c * S, x + c * S, S, K[c], s1 + c, s2 + c, 0, bwd);
        return;
    }
    const mg_v8i mask = mg_tail_mask(S);
    for (Py_ssize_t c = 0; c < nc; c++) {
        const float* xc = x + c * S;
        const float* gc = dy + c * S;
        const float k = (float)K[c];
        mg_vx_float va = {0}, vq = {0}, A, Q;
        Py_ssize_t i = 0;
        for (; i + 8 <= S; i += 8) {
            MG_TERMS(bwd, A, Q, mg_loadx_float(xc + i) - k, mg_loadx_float(gc + i));
            va += A; vq += Q;
        }
        if (i < S) {
            MG_TAIL_TERMS(bwd, A, Q, mg_loadx_float(xc + S - 8) - k, mg_loadx_float(gc + S - 8), mask);
            va += A; vq += Q;
        }
        if (bwd) {  /* about Kx = float(mean), moved to the mean in double */
            double ta = 0, tq = 0;
            mg_hsum2(mg_fold_widen(va), mg_fold_widen(vq), &ta, &tq);
            s1[c] += ta;
            s2[c] += tq - (K[c] - (double)k) * ta;
        } else {
            mg_hsum2(mg_fold_widen(va), mg_fold_widen(vq), s1 + c, s2 + c);
        }
    }
}
MG_CLONES static void mg_channel_shifted_sums_float(const float* restrict x, Py_ssize_t nc, Py_ssize_t S,
                                                    const double* restrict K, double* restrict s1,
                                                    double* restrict s2) {
    mg_channel_sums_float(x, x, nc, S, K, s1, s2, 0);
}
MG_CLONES static void mg_channel_dy_sums_float(const float* restrict dy, const float* restrict x,
                                               Py_ssize_t nc, Py_ssize_t S, const double* restrict mean,
                                               double* restrict sdy, double* restrict sdyx) {
    mg_channel_sums_float(dy, x, nc, S, mean, sdy, sdyx, 1);
}

/* float32 runs of MG_SHORT_RUN <= S < MG_LANE_RUN values: one row's run of nc channels, added into per-channel
   LANE partials p1, p2 (4 doubles per channel, mg_f32_run_sums's widened lanes, accumulated over the rows in
   order); mg_lanes_finish adds each channel's lanes into s1, s2 once, after the last row. The backward's lanes
   are taken about Kx = float(mean[c]) (the caller moves them to the mean from the totals). The totals are the
   same sums of float32-rounded partials in another order.
   NOTE: closing every run into s1[c] cost a fifth of the statistics pass at S = 196; shorter and longer runs
   keep it (docs/perf/norm-kernels.md#lane-partials) */
MG_AI void mg_channel_lanes_float(const float* restrict dy, const float* restrict x, Py_ssize_t nc, Py_ssize_t S,
                                  const double* restrict K, double* restrict p1, double* restrict p2,
                                  const int bwd) {
    for (Py_ssize_t c = 0; c < nc; c++) {
        mg_v4d a = mg_load4_double(p1 + 4 * c), q = mg_load4_double(p2 + 4 * c);
        mg_f32_run_sums(dy + c * S, x + c * S, S, (float)K[c], &a, &q, bwd);
        mg_store4(p1 + 4 * c, a);
        mg_store4(p2 + 4 * c, q);
    }
}
MG_CLONES static void mg_channel_lane_sums_float(const float* restrict x, Py_ssize_t nc, Py_ssize_t S,
                                                 const double* restrict K, double* restrict p1,
                                                 double* restrict p2) {
    mg_channel_lanes_float(x, x, nc, S, K, p1, p2, 0);
}
MG_CLONES static void mg_channel_lane_dy_sums_float(const float* restrict dy, const float* restrict x,
                                                    Py_ssize_t nc, Py_ssize_t S, const double* restrict mean,
                                                    double* restrict p1, double* restrict p2) {
    mg_channel_lanes_float(dy, x, nc, S, mean, p1, p2, 1);
}
/* s1[c] += (l0 + l1) + (l2 + l3) of p1's lanes of channel c, s2 likewise from p2 */
static void mg_lanes_finish(const double* p1, const double* p2, Py_ssize_t nc, double* s1, double* s2) {
    for (Py_ssize_t c = 0; c < nc; c++)
        mg_hsum2(mg_load4_double(p1 + 4 * c), mg_load4_double(p2 + 4 * c), s1 + c, s2 + c);
}

/* ---- S > 1, the elementwise passes over one row's run of nc channels, per-channel coefficients (X precision) --
   Each channel in full vectors, the last one overlapping the one before where L does not divide S (it rewrites
   the same values: no scalar remainder per channel; x's last vector is loaded first, so y may be x). */
#define MG_CHANNEL_AFFINE(T)                                                                                   \
MG_CLONES static void mg_channel_affine_##T(T* y, const T* x, Py_ssize_t nc, Py_ssize_t S,                     \
                                            const T* K, const T* scale, const T* shift) {                      \
    enum { L = sizeof(mg_vx_##T) / sizeof(T) };                                                                \
    if (S < L || S >= MG_SHORT_RUN) {                                                                          \
        for (Py_ssize_t c = 0; c < nc; c++) mg_affine_##T(y + c * S, x + c * S, S, K[c], scale[c], shift[c]);  \
        return;                                                                                                \
    }                                                                                                          \
    for (Py_ssize_t c = 0; c < nc; c++) {                                                                      \
        const T* xc = x + c * S;                                                                               \
        T* yc = y + c * S;                                                                                     \
        const T Kc = K[c], sc = scale[c], bc = shift[c];                                                       \
        const mg_vx_##T xt = mg_loadx_##T(xc + S - L);                                                         \
        Py_ssize_t i = 0;                                                                                      \
        for (; i + L <= S; i += L) {                                                                           \
            mg_vx_##T v = (mg_loadx_##T(xc + i) - Kc) * sc + bc;                                               \
            memcpy(yc + i, &v, sizeof v);                                                                      \
        }                                                                                                      \
        if (i < S) {                                                                                           \
            mg_vx_##T v = (xt - Kc) * sc + bc;                                                                 \
            memcpy(yc + S - L, &v, sizeof v);                                                                  \
        }                                                                                                      \
    }                                                                                                          \
}                                                                                                              \
/* dx = a*(dy - mdy) + b*(x - K) + k per channel */                                                            \
MG_CLONES static void mg_channel_affine2_##T(T* dx, const T* dy, const T* x, Py_ssize_t nc, Py_ssize_t S,      \
                                             const T* a, const T* mdy, const T* K, const T* b, const T* k) {   \
    enum { L = sizeof(mg_vx_##T) / sizeof(T) };                                                                \
    if (S < L || S >= MG_SHORT_RUN) {                                                                          \
        for (Py_ssize_t c = 0; c < nc; c++)                                                                    \
            mg_affine2_##T(dx + c * S, dy + c * S, x + c * S, S, a[c], mdy[c], K[c], b[c], k[c]);              \
        return;                                                                                                \
    }                                                                                                          \
    for (Py_ssize_t c = 0; c < nc; c++) {                                                                      \
        const T* gc = dy + c * S;                                                                              \
        const T* xc = x + c * S;                                                                               \
        T* dc = dx + c * S;                                                                                    \
        const T ac = a[c], mc = mdy[c], Kc = K[c], bc = b[c], kc = k[c];                                       \
        const mg_vx_##T gt = mg_loadx_##T(gc + S - L), xt = mg_loadx_##T(xc + S - L);                          \
        Py_ssize_t i = 0;                                                                                      \
        for (; i + L <= S; i += L) {                                                                           \
            mg_vx_##T v = ac * (mg_loadx_##T(gc + i) - mc) + bc * (mg_loadx_##T(xc + i) - Kc) + kc;            \
            memcpy(dc + i, &v, sizeof v);                                                                      \
        }                                                                                                      \
        if (i < S) {                                                                                           \
            mg_vx_##T v = ac * (gt - mc) + bc * (xt - Kc) + kc;                                                \
            memcpy(dc + S - L, &v, sizeof v);                                                                  \
        }                                                                                                      \
    }                                                                                                          \
}
MG_CHANNEL_AFFINE(float)
MG_CHANNEL_AFFINE(double)

/* ---- S == 1 (BatchNorm1d): nr rows (stride ldx) of m channels, vectorized across channels --------------------
   Independent lanes: no reassociation, each channel still adds its rows one by one, in order. The nr rows are
   added while the accumulators sit in registers: one load/store of s1, s2 per nr rows (the caller's ROWS_1D,
   ROWS_1D_DY). */

/* float64: s1[c] += sum(A), s2[c] += sum(Q) over the nr rows */
MG_AI void mg_col_sums_double(const double* restrict dy, const double* restrict x, Py_ssize_t ldx, Py_ssize_t nr,
                              const double* restrict K, Py_ssize_t m, double* restrict s1, double* restrict s2,
                              const int bwd) {
    Py_ssize_t c = 0;
    for (; c + 8 <= m; c += 8) {
        mg_v4d k0 = mg_load4_double(K + c), k1 = mg_load4_double(K + c + 4);
        mg_v4d a0 = mg_load4_double(s1 + c), a1 = mg_load4_double(s1 + c + 4);
        mg_v4d q0 = mg_load4_double(s2 + c), q1 = mg_load4_double(s2 + c + 4);
        for (Py_ssize_t j = 0; j < nr; j++) {
            mg_v4d A0, A1, Q0, Q1;
            MG_TERMS(bwd, A0, Q0, mg_load4_double(x + j * ldx + c) - k0, mg_load4_double(dy + j * ldx + c));
            MG_TERMS(bwd, A1, Q1, mg_load4_double(x + j * ldx + c + 4) - k1, mg_load4_double(dy + j * ldx + c + 4));
            a0 += A0; a1 += A1; q0 += Q0; q1 += Q1;
        }
        mg_store4(s1 + c, a0); mg_store4(s1 + c + 4, a1);
        mg_store4(s2 + c, q0); mg_store4(s2 + c + 4, q1);
    }
    for (; c < m; c++)
        for (Py_ssize_t j = 0; j < nr; j++) {
            double A, Q;
            MG_TERMS(bwd, A, Q, x[j * ldx + c] - K[c], dy[j * ldx + c]);
            s1[c] += A; s2[c] += Q;
        }
}
MG_CLONES static void mg_col_shifted_sums_double(const double* restrict x, Py_ssize_t ldx, Py_ssize_t nr,
                                                 const double* restrict K, Py_ssize_t m,
                                                 double* restrict s1, double* restrict s2) {
    mg_col_sums_double(x, x, ldx, nr, K, m, s1, s2, 0);
}
MG_CLONES static void mg_col_dy_sums_double(const double* restrict dy, const double* restrict x, Py_ssize_t ldx,
                                            Py_ssize_t nr, const double* restrict mean, Py_ssize_t m,
                                            double* restrict sdy, double* restrict sdyx) {
    mg_col_sums_double(dy, x, ldx, nr, mean, m, sdy, sdyx, 1);
}

/* float32: the rows go in groups of MG_COL_GROUP from the first: each channel's group is added in a float32 lane
   (rows in order), then widened into s1, s2 (per channel, groups in order). The caller passes ROWS_1D = 2 groups
   per call, so that s1, s2 are loaded and stored once per two groups (the bits depend on the groups only).
   NOTE: two groups per call, not one or four: docs/perf/norm-kernels.md#batchnorm1d-row-groups */
#define MG_COL_GROUP 4
MG_CLONES static void mg_col_shifted_sums_float(const float* restrict x, Py_ssize_t ldx, Py_ssize_t nr,
                                                const double* restrict K, Py_ssize_t m,
                                                double* restrict s1, double* restrict s2) {
    Py_ssize_t c = 0;
    for (; c + 8 <= m; c += 8) {
        const mg_vx_float k = {(float)K[c], (float)K[c + 1], (float)K[c + 2], (float)K[c + 3],
                               (float)K[c + 4], (float)K[c + 5], (float)K[c + 6], (float)K[c + 7]};
        mg_v4d a0 = mg_load4_double(s1 + c), a1 = mg_load4_double(s1 + c + 4);
        mg_v4d q0 = mg_load4_double(s2 + c), q1 = mg_load4_double(s2 + c + 4);
        Py_ssize_t j = 0;
        for (; j + MG_COL_GROUP <= nr; j += MG_COL_GROUP) {
            const float* r = x + j * ldx + c;
            mg_vx_float d0 = mg_loadx_float(r) - k, d1 = mg_loadx_float(r + ldx) - k;
            mg_vx_float d2 = mg_loadx_float(r + 2 * ldx) - k, d3 = mg_loadx_float(r + 3 * ldx) - k;
            mg_widen_add_float(&a0, &a1, ((d0 + d1) + d2) + d3);
            mg_widen_add_float(&q0, &q1, ((d0 * d0 + d1 * d1) + d2 * d2) + d3 * d3);
        }
        if (j < nr) {  /* the last rows of the input: a shorter group */
            mg_vx_float va = {0}, vq = {0};
            for (; j < nr; j++) { mg_vx_float d = mg_loadx_float(x + j * ldx + c) - k; va += d; vq += d * d; }
            mg_widen_add_float(&a0, &a1, va); mg_widen_add_float(&q0, &q1, vq);
        }
        mg_store4(s1 + c, a0); mg_store4(s1 + c + 4, a1);
        mg_store4(s2 + c, q0); mg_store4(s2 + c + 4, q1);
    }
    for (; c < m; c++) {  /* as one lane of the vectors (same bits: a block's edge does not matter) */
        const float k = (float)K[c];
        for (Py_ssize_t j0 = 0; j0 < nr; j0 += MG_COL_GROUP) {
            float va = 0, vq = 0;
            for (Py_ssize_t j = j0; j < nr && j < j0 + MG_COL_GROUP; j++) {
                float d = x[j * ldx + c] - k; va += d; vq += d * d;
            }
            s1[c] += va; s2[c] += vq;
        }
    }
}
/* sdy += sum(dy), sdyx += sum(dy*(x - Kx)) with Kx = float(mean): the caller subtracts (mean - Kx)*sdy. One
   group of at most MG_COL_GROUP rows per call (ROWS_1D_DY), in one float32 lane per channel.
   Not written with mg_col_shifted_sums_float's loop: the groups differ (the forward adds a group as one
   expression, two groups per call; this adds row by row, one group per call).
   NOTE: one group per call: docs/perf/norm-kernels.md#batchnorm1d-row-groups */
MG_CLONES static void mg_col_dy_sums_float(const float* restrict dy, const float* restrict x, Py_ssize_t ldx,
                                           Py_ssize_t nr, const double* restrict mean, Py_ssize_t m,
                                           double* restrict sdy, double* restrict sdyx) {
    Py_ssize_t c = 0;
    for (; c + 8 <= m; c += 8) {
        const mg_vx_float k = {(float)mean[c], (float)mean[c + 1], (float)mean[c + 2], (float)mean[c + 3],
                               (float)mean[c + 4], (float)mean[c + 5], (float)mean[c + 6], (float)mean[c + 7]};
        mg_vx_float va = {0}, vq = {0};
        for (Py_ssize_t j = 0; j < nr; j++) {
            mg_vx_float g = mg_loadx_float(dy + j * ldx + c);
            va += g; vq += g * (mg_loadx_float(x + j * ldx + c) - k);
        }
        mg_v4d a0 = mg_load4_double(sdy + c), a1 = mg_load4_double(sdy + c + 4);
        mg_v4d q0 = mg_load4_double(sdyx + c), q1 = mg_load4_double(sdyx + c + 4);
        mg_widen_add_float(&a0, &a1, va); mg_widen_add_float(&q0, &q1, vq);
        mg_store4(sdy + c, a0); mg_store4(sdy + c + 4, a1);
        mg_store4(sdyx + c, q0); mg_store4(sdyx + c + 4, q1);
    }
    for (; c < m; c++) {  /* as one lane of the vectors */
        const float k = (float)mean[c];
        float va = 0, vq = 0;
        for (Py_ssize_t j = 0; j < nr; j++) { float g = dy[j * ldx + c]; va += g; vq += g * (x[j * ldx + c] - k); }
        sdy[c] += va; sdyx[c] += vq;
    }
}

/* S == 1, the elementwise passes of one row, per-channel coefficients (X precision) */
#define MG_COL_AFFINE(T)                                                                                       \
MG_CLONES static void mg_col_affine_##T(T* restrict y, const T* restrict x, Py_ssize_t m,                      \
                                        const T* restrict K, const T* restrict scale, const T* restrict shift) { \
    for (Py_ssize_t c = 0; c < m; c++) y[c] = (x[c] - K[c]) * scale[c] + shift[c];                             \
}                                                                                                              \
MG_CLONES static void mg_col_affine2_##T(T* restrict dx, const T* restrict dy, const T* restrict x,            \
                                         Py_ssize_t m, const T* restrict a, const T* restrict mdy,             \
                                         const T* restrict K, const T* restrict b, const T* restrict k) {      \
    for (Py_ssize_t c = 0; c < m; c++) dx[c] = a[c] * (dy[c] - mdy[c]) + b[c] * (x[c] - K[c]) + k[c];          \
}
MG_COL_AFFINE(float)
MG_COL_AFFINE(double)

#endif
