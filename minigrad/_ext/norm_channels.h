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

/* The pipelined blocks' row in one call, float64 runs of S >= MG_SHORT_RUN: as mg_channel_pass_float (below), the
   sums those of mg_channel_sums_double (mg_run_sums_double per channel), the pass those of mg_channel_affine_double,
   mg_channel_affine2_double (mg_affine_double, mg_affine2_double per channel): the same bits.
   NOTE: docs/perf/norm-kernels.md#2026-12-07-session-32-float64-in-the-pipelined-row */
MG_AI void mg_channel_pass_double(const double* restrict dy, const double* restrict x, Py_ssize_t nc, Py_ssize_t S,
                                  const double* restrict K, double* restrict s1, double* restrict s2, double* out,
                                  const double* ge, const double* xe, Py_ssize_t na, const double* a,
                                  const double* m, const double* Ke, const double* b, const double* k,
                                  const int bwd) {
    for (Py_ssize_t c = 0; c < nc || c < na; c++) {  /* either block may be the wider one */
        mg_pass_double e = {0};
        if (c < na)
            e = (mg_pass_double){out + c * S, ge + c * S, xe + c * S, bwd ? a[c] : 0, bwd ? m[c] : 0, Ke[c], b[c],
                                 k[c]};
        if (c >= nc) mg_pass_double_rest(&e, 0, S, bwd);
        else mg_run_sums_double(dy + c * S, x + c * S, S, K[c], s1 + c, s2 + c, c < na ? &e : NULL, bwd);
    }
}
/* y = (xe - Ke)*scale + shift over the block before's na channels beside the nc channels' sums */
MG_CLONES static void mg_channel_shifted_sums_affine_double(const double* restrict x, Py_ssize_t nc, Py_ssize_t S,
                                                            const double* restrict K, double* restrict s1,
                                                            double* restrict s2, double* y, const double* xe,
                                                            Py_ssize_t na, const double* Ke, const double* scale,
                                                            const double* shift) {
    mg_channel_pass_double(x, x, nc, S, K, s1, s2, y, xe, xe, na, NULL, NULL, Ke, scale, shift, 0);
}
/* dx = a*(dye - mdy) + b*(xe - Ke) + k over the block before's na channels beside the nc channels' backward sums */
MG_CLONES static void mg_channel_dy_sums_affine2_double(const double* restrict dy, const double* restrict x,
                                                        Py_ssize_t nc, Py_ssize_t S, const double* restrict mean,
                                                        double* restrict sdy, double* restrict sdyx, double* dx,
                                                        const double* dye, const double* xe, Py_ssize_t na,
                                                        const double* a, const double* mdy, const double* Ke,
                                                        const double* b, const double* k) {
    mg_channel_pass_double(dy, x, nc, S, mean, sdy, sdyx, dx, dye, xe, na, a, mdy, Ke, b, k, 1);
}

/* ---- S > 1, float32 (overflow: checked on the totals by _bn_stats_block, _bn_dy_sums_block) -----------------
   A short run (8 <= S < MG_SHORT_RUN) is one group in one accumulator: its vectors (the last one overlapping,
   its old lanes masked off), then the two halves, then widened; other runs as mg_f32_sums.
   NOTE: one accumulator, not mg_f32_run_sums's four, on short runs: docs/perf/norm-kernels.md#short-runs */
MG_AI void mg_channel_sums_float(const float* restrict dy, const float* restrict x, Py_ssize_t nc, Py_ssize_t S,
                                 const double* restrict K, double* restrict s1, double* restrict s2,
                                 const int bwd) {
    if (S < 8 || S >= MG_SHORT_RUN) {
        for (Py_ssize_t c = 0; c < nc; c++)
            mg_f32_sums(dy + c * S, x + c * S, S, K[c], s1 + c, s2 + c, 0, NULL, bwd);
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
        mg_f32_run_sums(dy + c * S, x + c * S, S, (float)K[c], &a, &q, NULL, bwd);
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

/* The pipelined blocks' row (norm.pyx _bn_forward_walk, _bn_backward_walk) in one call, float32 runs of S >=
   MG_SHORT_RUN: the sums over the nc channels of one block's row (read from L3; lanes: the lane partials p1, p2 of
   mg_channel_lanes_float, MG_SHORT_RUN <= S < MG_LANE_RUN; else s1, s2 as mg_channel_sums_float, mg_f32_sums
   unchecked) and the elementwise pass over the na channels of the block before's row (from L2; the forward's
   y = (xe - Ke)*scale + shift, the backward's dx = a*(dye - mdy) + b*(xe - Ke) + k), channel c of the one beside
   channel c of the other in one loop (mg_f32_run_sums's e), so that the core has the pass's work to do while the
   sums' loads wait on L3. Each part does the operations of its own helper (the sums'; mg_channel_affine_float,
   mg_channel_affine2_float, whose runs S >= MG_SHORT_RUN take mg_affine_float, mg_affine2_float): the same bits.
   NOTE: one loop, not the two helpers one after the other:
   docs/perf/norm-kernels.md#2026-12-07-session-32-the-pipelined-row-in-one-loop */
MG_AI void mg_channel_pass_float(const float* restrict dy, const float* restrict x, Py_ssize_t nc, Py_ssize_t S,
                                 const double* restrict K, double* restrict p1, double* restrict p2, float* out,
                                 const float* ge, const float* xe, Py_ssize_t na, const float* a, const float* m,
                                 const float* Ke, const float* b, const float* k, const int lanes, const int bwd) {
    for (Py_ssize_t c = 0; c < nc || c < na; c++) {  /* either block may be the wider one */
        mg_pass_float e = {0};
        if (c < na)
            e = (mg_pass_float){out + c * S, ge + c * S, xe + c * S, bwd ? a[c] : 0, bwd ? m[c] : 0, Ke[c], b[c],
                                k[c]};
        if (c >= nc) {
            mg_pass_float_rest(&e, 0, S, bwd);
        } else if (lanes) {
            mg_v4d sa = mg_load4_double(p1 + 4 * c), sq = mg_load4_double(p2 + 4 * c);
            mg_f32_run_sums(dy + c * S, x + c * S, S, (float)K[c], &sa, &sq, c < na ? &e : NULL, bwd);
            mg_store4(p1 + 4 * c, sa);
            mg_store4(p2 + 4 * c, sq);
        } else {
            mg_f32_sums(dy + c * S, x + c * S, S, K[c], p1 + c, p2 + c, 0, c < na ? &e : NULL, bwd);
        }
    }
}
/* y = (xe - Ke)*scale + shift over the block before's na channels beside the nc channels' lane sums */
MG_CLONES static void mg_channel_lane_sums_affine_float(const float* restrict x, Py_ssize_t nc, Py_ssize_t S,
                                                        const double* restrict K, double* restrict p1,
                                                        double* restrict p2, float* y, const float* xe,
                                                        Py_ssize_t na, const float* Ke, const float* scale,
                                                        const float* shift) {
    mg_channel_pass_float(x, x, nc, S, K, p1, p2, y, xe, xe, na, NULL, NULL, Ke, scale, shift, 1, 0);
}
/* dx = a*(dye - mdy) + b*(xe - Ke) + k over the block before's na channels beside the nc channels' backward sums */
MG_CLONES static void mg_channel_lane_dy_sums_affine2_float(const float* restrict dy, const float* restrict x,
                                                            Py_ssize_t nc, Py_ssize_t S, const double* restrict mean,
                                                            double* restrict p1, double* restrict p2, float* dx,
                                                            const float* dye, const float* xe, Py_ssize_t na,
                                                            const float* a, const float* mdy, const float* Ke,
                                                            const float* b, const float* k) {
    mg_channel_pass_float(dy, x, nc, S, mean, p1, p2, dx, dye, xe, na, a, mdy, Ke, b, k, 1, 1);
}
/* the same for S >= MG_LANE_RUN, the sums into s1, s2 (each run closed into its channel's sums) */
MG_CLONES static void mg_channel_shifted_sums_affine_float(const float* restrict x, Py_ssize_t nc, Py_ssize_t S,
                                                           const double* restrict K, double* restrict s1,
                                                           double* restrict s2, float* y, const float* xe,
                                                           Py_ssize_t na, const float* Ke, const float* scale,
                                                           const float* shift) {
    mg_channel_pass_float(x, x, nc, S, K, s1, s2, y, xe, xe, na, NULL, NULL, Ke, scale, shift, 0, 0);
}
MG_CLONES static void mg_channel_dy_sums_affine2_float(const float* restrict dy, const float* restrict x,
                                                       Py_ssize_t nc, Py_ssize_t S, const double* restrict mean,
                                                       double* restrict sdy, double* restrict sdyx, float* dx,
                                                       const float* dye, const float* xe, Py_ssize_t na,
                                                       const float* a, const float* mdy, const float* Ke,
                                                       const float* b, const float* k) {
    mg_channel_pass_float(dy, x, nc, S, mean, sdy, sdyx, dx, dye, xe, na, a, mdy, Ke, b, k, 0, 1);
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
   group of at most MG_COL_GROUP rows per call (ROWS_1D_DY), in one float32 lane per channel. store 1 (the
   backward's 2-thread split by rows): the group's float32 values stored at p1[c], p2[c] instead (sdy, sdyx
   unused), for mg_col_add_groups to widen and add later in the same order: the same bits.
   Not written with mg_col_shifted_sums_float's loop: the groups differ (the forward adds a group as one
   expression, two groups per call; this adds row by row, one group per call).
   NOTE: one group per call: docs/perf/norm-kernels.md#batchnorm1d-row-groups */
MG_AI void mg_col_dy_group_float(const float* restrict dy, const float* restrict x, Py_ssize_t ldx, Py_ssize_t nr,
                                 const double* restrict mean, Py_ssize_t m, double* restrict sdy,
                                 double* restrict sdyx, float* restrict p1, float* restrict p2, const int store) {
    Py_ssize_t c = 0;
    for (; c + 8 <= m; c += 8) {
        const mg_vx_float k = {(float)mean[c], (float)mean[c + 1], (float)mean[c + 2], (float)mean[c + 3],
                               (float)mean[c + 4], (float)mean[c + 5], (float)mean[c + 6], (float)mean[c + 7]};
        mg_vx_float va = {0}, vq = {0};
        for (Py_ssize_t j = 0; j < nr; j++) {
            mg_vx_float g = mg_loadx_float(dy + j * ldx + c);
            va += g; vq += g * (mg_loadx_float(x + j * ldx + c) - k);
        }
        if (store) {
            memcpy(p1 + c, &va, sizeof va); memcpy(p2 + c, &vq, sizeof vq);
            continue;
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
        if (store) {
            p1[c] = va; p2[c] = vq;
        } else {
            sdy[c] += va; sdyx[c] += vq;
        }
    }
}
MG_CLONES static void mg_col_dy_sums_float(const float* restrict dy, const float* restrict x, Py_ssize_t ldx,
                                           Py_ssize_t nr, const double* restrict mean, Py_ssize_t m,
                                           double* restrict sdy, double* restrict sdyx) {
    mg_col_dy_group_float(dy, x, ldx, nr, mean, m, sdy, sdyx, NULL, NULL, 0);
}
MG_CLONES static void mg_col_dy_partials_float(const float* restrict dy, const float* restrict x, Py_ssize_t ldx,
                                               Py_ssize_t nr, const double* restrict mean, Py_ssize_t m,
                                               float* restrict p1, float* restrict p2) {
    mg_col_dy_group_float(dy, x, ldx, nr, mean, m, NULL, NULL, p1, p2, 1);
}
/* s[c] += p[g * ldp + c] for the ng stored groups in order, c < m (each channel in double, one add a group, as the
   walks above add them) */
MG_CLONES static void mg_col_add_groups(const float* restrict p, Py_ssize_t ng, Py_ssize_t ldp, Py_ssize_t m,
                                        double* restrict s) {
    for (Py_ssize_t g = 0; g < ng; g++)
        for (Py_ssize_t c = 0; c < m; c++) s[c] += p[g * ldp + c];
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

/* ---- S == 1 (BatchNorm1d), inputs that fit in cache: the whole forward or backward of a block of channels ----
   mg_bn1d_forward_* and mg_bn1d_backward_* do channels [c0, c1) of x: (N, C) in blocks of 16 channels (then 8,
   then the 1-7 left): each block adds all N rows while its per-channel sums sit in registers, finishes its
   statistics and coefficients (vectorized across the block's channels), and runs its elementwise pass at once,
   the block's columns still in L1. No scratch memory, one call per thread.
   Same bits as the general path (_bn_stats_block or _bn_dy_sums_block, the coefficients in norm.pyx, then
   mg_col_affine* row by row): each channel is a lane of its own, with the same operations in the same order; float32
   rows in the same groups of MG_COL_GROUP from row 0. A block narrower than its vectors loads its channels into the
   low lanes of zeroed vectors (constant-size copies, so nothing is read or written past channel c1).
   NOTE: the general path's per-call cost (scratch malloc, an OpenMP region, ~3N helper calls, the K pre-pass) was
   most of a (60, 100, 1) forward: docs/perf/norm-kernels.md#batchnorm1d-in-cache */

/* the first n values of p (n a constant after inlining: 1..8 floats, 1..4 doubles) in the low lanes of a zeroed
   vector, and back. NOTE: built from halves and lanes, not by a memcpy into a zeroed vector: GCC compiles that one
   through the stack, and the full-width reload after the narrow store stalls (store forwarding) */
typedef double mg_v2d __attribute__((vector_size(16)));
MG_AI mg_vx_float mg_ldn_float(const float* p, const int n) {
    if (n == 8) return mg_loadx_float(p);
    mg_v4f lo = {0, 0, 0, 0}, hi = {0, 0, 0, 0};
    if (n >= 4) memcpy(&lo, p, sizeof lo);
    for (int i = 0; i < 4; i++) {
        if (n < 4 && i < n) lo[i] = p[i];
        if (n > 4 && i < n - 4) hi[i] = p[4 + i];
    }
    return __builtin_shufflevector(lo, hi, 0, 1, 2, 3, 4, 5, 6, 7);
}
MG_AI void mg_stn_float(float* p, mg_vx_float v, const int n) {
    if (n == 8) { memcpy(p, &v, sizeof v); return; }
    mg_v4f lo = __builtin_shufflevector(v, v, 0, 1, 2, 3), hi = __builtin_shufflevector(v, v, 4, 5, 6, 7);
    if (n >= 4) memcpy(p, &lo, sizeof lo);
    for (int i = 0; i < 4; i++) {
        if (n < 4 && i < n) p[i] = lo[i];
        if (n > 4 && i < n - 4) p[4 + i] = hi[i];
    }
}
MG_AI mg_vx_double mg_ldn_double(const double* p, const int n) {  /* n <= 0: zeros */
    if (n == 4) return mg_loadx_double(p);
    mg_v2d lo = {0, 0}, hi = {0, 0};
    if (n >= 2) memcpy(&lo, p, sizeof lo);
    if (n == 1) lo[0] = p[0];
    if (n == 3) hi[0] = p[2];
    return __builtin_shufflevector(lo, hi, 0, 1, 2, 3);
}
MG_AI void mg_stn_double(double* p, mg_vx_double v, const int n) {
    if (n == 4) { memcpy(p, &v, sizeof v); return; }
    mg_v2d lo = __builtin_shufflevector(v, v, 0, 1), hi = __builtin_shufflevector(v, v, 2, 3);
    if (n >= 2) memcpy(p, &lo, sizeof lo);
    if (n == 1) p[0] = lo[0];
    if (n == 3) p[2] = hi[0];
}

/* the compiler forgets what p[] holds: a later (double)p[l] converts the float32 value read back, not the double it
   was rounded from.
   NOTE: GCC 12 folds a vector double -> float -> double round trip to the identity (vcvtpd2ps then vcvtps2pd
   become nothing): x - (double)(float)x came out 0 in the AVX2 clone of a scalar loop it vectorized, and in every
   clone where the conversions are written on vectors; scalar code keeps it (docs/perf/norm-kernels.md#batchnorm1d-
   in-cache) */
#define MG_FORGET(p) __asm__ __volatile__("" : : "r"(p) : "memory")

/* float32(mean[0 .. n)) (n <= 8) in the low lanes of a zeroed vector, and the same values widened back to double in
   *lo, *hi; the float32 halves pass through an empty asm, so the round trip stays (MG_FORGET's NOTE) and no store
   and wider reload of them stalls */
MG_AI mg_vx_float mg_ldn_mean_float(const double* mean, const int n, mg_v4d* lo, mg_v4d* hi) {
    mg_v4d a = mg_ldn_double(mean, n < 4 ? n : 4), b = mg_ldn_double(mean + 4, n - 4);
    mg_v4f fa = {(float)a[0], (float)a[1], (float)a[2], (float)a[3]};
    mg_v4f fb = {(float)b[0], (float)b[1], (float)b[2], (float)b[3]};
    __asm__("" : "+x"(fa), "+x"(fb));
    *lo = (mg_v4d){fa[0], fa[1], fa[2], fa[3]};
    *hi = (mg_v4d){fb[0], fb[1], fb[2], fb[3]};
    return __builtin_shufflevector(fa, fb, 0, 1, 2, 3, 4, 5, 6, 7);
}

/* the statistics and the forward's per-channel coefficients of m channels from their shifted sums (norm.pyx's
   _rstd and _bn_forward_block, batch norm: the same expressions): mean, rstd OUT (m,), Kx, scale, shift OUT (m,)
   in X precision */
#define MG_BN1D_COEFFICIENTS(T)                                                                                \
MG_AI void mg_bn1d_fwd_coefficients_##T(double* mean, double* rstd, T* Kx, T* scale, T* shift,                   \
                                       const double* s1, const double* s2, const T* K, const T* weight,         \
                                       const T* bias, double M, double eps, const int m) {                     \
    for (int l = 0; l < m; l++) {                                                                              \
        double d = s1[l] / M, var = s2[l] / M - d * d;                                                         \
        double mu = (double)K[l] + d;                                                                          \
        var = var < 0 ? 0 : var;  /* NaN stays NaN */                                                          \
        mean[l] = mu;                                                                                          \
        rstd[l] = 1.0 / sqrt(var + eps);                                                                       \
        Kx[l] = (T)mu;                                                                                         \
    }                                                                                                          \
    MG_FORGET(Kx);                                                                                             \
    for (int l = 0; l < m; l++) {                                                                              \
        double sc = rstd[l] * (double)weight[l];                                                               \
        scale[l] = (T)sc;                                                                                      \
        shift[l] = (T)((double)bias[l] - (mean[l] - (double)Kx[l]) * sc);                                      \
    }                                                                                                          \
}                                                                                                              \
/* the backward's outputs and dx coefficients of m channels from sdy and sdyx (norm.pyx's _bn_backward_block and \
   _bn_dx_coefficients: the same expressions): dweight, dbias OUT (m,); a, mdy, Kx, b, k OUT (m,) */           \
MG_AI void mg_bn1d_bwd_coefficients_##T(T* dweight, T* dbias, T* a, T* mdy, T* Kx, T* b, T* k,                   \
                                       const double* sdy, const double* sdyx, const double* mean,              \
                                       const double* rstd, const T* weight, double M, const int m) {           \
    for (int l = 0; l < m; l++) Kx[l] = (T)mean[l];                                                            \
    MG_FORGET(Kx);                                                                                             \
    for (int l = 0; l < m; l++) {                                                                              \
        double r = rstd[l];                                                                                    \
        dbias[l] = (T)sdy[l];                                                                                  \
        dweight[l] = (T)(sdyx[l] * r);                                                                         \
        double mdyxhat = sdyx[l] * r / M, ad = r * (double)weight[l];                                          \
        double bd = -ad * mdyxhat * r;                                                                         \
        a[l] = (T)ad;                                                                                          \
        mdy[l] = (T)(sdy[l] / M);                                                                              \
        b[l] = (T)bd;                                                                                          \
        k[l] = (T)(-bd * (mean[l] - (double)Kx[l]));                                                           \
    }                                                                                                          \
}
MG_BN1D_COEFFICIENTS(float)
MG_BN1D_COEFFICIENTS(double)

/* float32 sums that overflowed (or data not finite), channel c: again in double, as _bn_stats_block's and
   _bn_dy_sums_block's fallbacks */
MG_COLD void mg_bn1d_sums_again_float(const float* x, Py_ssize_t N, Py_ssize_t C, Py_ssize_t c, double* s1,
                                      double* s2) {
    double K = x[c], a = 0, q = 0;
    for (Py_ssize_t n = 0; n < N; n++) { double d = (double)x[n * C + c] - K; a += d; q += d * d; }
    *s1 = a; *s2 = q;
}
MG_COLD void mg_bn1d_dy_sums_again_float(const float* dy, const float* x, Py_ssize_t N, Py_ssize_t C,
                                         Py_ssize_t c, double mean, double* sdy, double* sdyx) {
    double a = 0, q = 0;
    for (Py_ssize_t n = 0; n < N; n++) {
        a += dy[n * C + c];
        q += (double)dy[n * C + c] * ((double)x[n * C + c] - mean);
    }
    *sdy = a; *sdyx = q;
}

/* float32 forward, channels [c, c + m), m <= 16: units of 8 lanes (mg_col_shifted_sums_float's operations) */
MG_AI void mg_bn1d_fwd_block_float(float* y, double* mean, double* rstd, const float* x, const float* weight,
                                   const float* bias, double eps, Py_ssize_t N, Py_ssize_t C, Py_ssize_t c,
                                   const int m) {
    enum { U = 2 };  /* units of 8 channels, at most */
    const int nu = (m + 7) / 8;
#define MG_LANES(u) ((u) + 1 < nu ? 8 : m - 8 * (u))
    mg_vx_float k[U];
    mg_v4d a[U][2], q[U][2];
    for (int u = 0; u < nu; u++) {
        k[u] = mg_ldn_float(x + c + 8 * u, MG_LANES(u));  /* the shift: x[0, c] */
        a[u][0] = a[u][1] = q[u][0] = q[u][1] = (mg_v4d){0, 0, 0, 0};
    }
    Py_ssize_t j = 0;
    for (; j + MG_COL_GROUP <= N; j += MG_COL_GROUP)
        for (int u = 0; u < nu; u++) {
            const float* r = x + j * C + c + 8 * u;
            const int L = MG_LANES(u);
            mg_vx_float d0 = mg_ldn_float(r, L) - k[u], d1 = mg_ldn_float(r + C, L) - k[u];
            mg_vx_float d2 = mg_ldn_float(r + 2 * C, L) - k[u], d3 = mg_ldn_float(r + 3 * C, L) - k[u];
            mg_widen_add_float(&a[u][0], &a[u][1], ((d0 + d1) + d2) + d3);
            mg_widen_add_float(&q[u][0], &q[u][1], ((d0 * d0 + d1 * d1) + d2 * d2) + d3 * d3);
        }
    if (j < N)  /* the last rows: a shorter group */
        for (int u = 0; u < nu; u++) {
            mg_vx_float va = {0}, vq = {0};
            for (Py_ssize_t i = j; i < N; i++) {
                mg_vx_float d = mg_ldn_float(x + i * C + c + 8 * u, MG_LANES(u)) - k[u];
                va += d; vq += d * d;
            }
            mg_widen_add_float(&a[u][0], &a[u][1], va); mg_widen_add_float(&q[u][0], &q[u][1], vq);
        }
    double s1[8 * U], s2[8 * U];
    float K[8 * U], Kx[8 * U], scale[8 * U], shift[8 * U];
    for (int u = 0; u < nu; u++) {
        mg_store4(s1 + 8 * u, a[u][0]); mg_store4(s1 + 8 * u + 4, a[u][1]);
        mg_store4(s2 + 8 * u, q[u][0]); mg_store4(s2 + 8 * u + 4, q[u][1]);
        memcpy(K + 8 * u, &k[u], sizeof k[u]);
    }
    for (int l = 0; l < m; l++)
        if (!MG_FINITE2(s1[l], s2[l])) mg_bn1d_sums_again_float(x, N, C, c + l, s1 + l, s2 + l);
    mg_bn1d_fwd_coefficients_float(mean + c, rstd + c, Kx, scale, shift, s1, s2, K, weight + c, bias + c,
                                   (double)N, eps, m);
    mg_vx_float vk[U], vs[U], vb[U];
    for (int u = 0; u < nu; u++) {
        vk[u] = mg_ldn_float(Kx + 8 * u, MG_LANES(u));
        vs[u] = mg_ldn_float(scale + 8 * u, MG_LANES(u));
        vb[u] = mg_ldn_float(shift + 8 * u, MG_LANES(u));
    }
    for (Py_ssize_t i = 0; i < N; i++)
        for (int u = 0; u < nu; u++) {
            const Py_ssize_t o = i * C + c + 8 * u;
            mg_stn_float(y + o, (mg_ldn_float(x + o, MG_LANES(u)) - vk[u]) * vs[u] + vb[u], MG_LANES(u));
        }
#undef MG_LANES
}

/* float32 backward, channels [c, c + m), m <= 16 (mg_col_dy_sums_float's operations, about Kx = float(mean)) */
MG_AI void mg_bn1d_bwd_block_float(float* dx, float* dweight, float* dbias, const float* dy, const float* x,
                                   const double* mean, const double* rstd, const float* weight, Py_ssize_t N,
                                   Py_ssize_t C, Py_ssize_t c, const int m) {
    enum { U = 2 };
    const int nu = (m + 7) / 8;
#define MG_LANES(u) ((u) + 1 < nu ? 8 : m - 8 * (u))
    mg_vx_float k[U];
    mg_v4d a[U][2], q[U][2], kd[U][2];
    for (int u = 0; u < nu; u++) {
        k[u] = mg_ldn_mean_float(mean + c + 8 * u, MG_LANES(u), &kd[u][0], &kd[u][1]);
        a[u][0] = a[u][1] = q[u][0] = q[u][1] = (mg_v4d){0, 0, 0, 0};
    }
    /* groups of MG_COL_GROUP rows, each added row by row from zero (the last group shorter) */
    Py_ssize_t j = 0;
    for (; j + MG_COL_GROUP <= N; j += MG_COL_GROUP)
        for (int u = 0; u < nu; u++) {
            const Py_ssize_t o = j * C + c + 8 * u;
            const int L = MG_LANES(u);
            mg_vx_float va = {0}, vq = {0}, g;
            g = mg_ldn_float(dy + o, L); va += g; vq += g * (mg_ldn_float(x + o, L) - k[u]);
            g = mg_ldn_float(dy + o + C, L); va += g; vq += g * (mg_ldn_float(x + o + C, L) - k[u]);
            g = mg_ldn_float(dy + o + 2 * C, L); va += g; vq += g * (mg_ldn_float(x + o + 2 * C, L) - k[u]);
            g = mg_ldn_float(dy + o + 3 * C, L); va += g; vq += g * (mg_ldn_float(x + o + 3 * C, L) - k[u]);
            mg_widen_add_float(&a[u][0], &a[u][1], va); mg_widen_add_float(&q[u][0], &q[u][1], vq);
        }
    if (j < N)
        for (int u = 0; u < nu; u++) {
            mg_vx_float va = {0}, vq = {0};
            for (Py_ssize_t i = j; i < N; i++) {
                const Py_ssize_t o = i * C + c + 8 * u;
                mg_vx_float g = mg_ldn_float(dy + o, MG_LANES(u));
                va += g; vq += g * (mg_ldn_float(x + o, MG_LANES(u)) - k[u]);
            }
            mg_widen_add_float(&a[u][0], &a[u][1], va); mg_widen_add_float(&q[u][0], &q[u][1], vq);
        }
    double sdy[8 * U], sdyx[8 * U];
    for (int u = 0; u < nu; u++) {  /* sdyx about the mean (norm.pyx's _about_mean) */
        const int L = MG_LANES(u);
        mg_v4d m0 = mg_ldn_double(mean + c + 8 * u, L < 4 ? L : 4), m1 = mg_ldn_double(mean + c + 8 * u + 4, L - 4);
        q[u][0] = q[u][0] - (m0 - kd[u][0]) * a[u][0];
        q[u][1] = q[u][1] - (m1 - kd[u][1]) * a[u][1];
        mg_store4(sdy + 8 * u, a[u][0]); mg_store4(sdy + 8 * u + 4, a[u][1]);
        mg_store4(sdyx + 8 * u, q[u][0]); mg_store4(sdyx + 8 * u + 4, q[u][1]);
    }
    for (int l = 0; l < m; l++)
        if (!MG_FINITE2(sdy[l], sdyx[l]))
            mg_bn1d_dy_sums_again_float(dy, x, N, C, c + l, mean[c + l], sdy + l, sdyx + l);
    float ca[8 * U], cm[8 * U], cK[8 * U], cb[8 * U], ck[8 * U];
    mg_bn1d_bwd_coefficients_float(dweight + c, dbias + c, ca, cm, cK, cb, ck, sdy, sdyx, mean + c, rstd + c,
                                   weight + c, (double)N, m);
    mg_vx_float va[U], vm[U], vK[U], vb[U], vk[U];
    for (int u = 0; u < nu; u++) {
        const int L = MG_LANES(u);
        va[u] = mg_ldn_float(ca + 8 * u, L); vm[u] = mg_ldn_float(cm + 8 * u, L);
        vK[u] = mg_ldn_float(cK + 8 * u, L); vb[u] = mg_ldn_float(cb + 8 * u, L);
        vk[u] = mg_ldn_float(ck + 8 * u, L);
    }
    for (Py_ssize_t i = 0; i < N; i++)
        for (int u = 0; u < nu; u++) {
            const Py_ssize_t o = i * C + c + 8 * u;
            const int L = MG_LANES(u);
            mg_vx_float v = va[u] * (mg_ldn_float(dy + o, L) - vm[u]) + vb[u] * (mg_ldn_float(x + o, L) - vK[u])
                            + vk[u];
            mg_stn_float(dx + o, v, L);
        }
#undef MG_LANES
}

/* float64 forward, channels [c, c + m), m <= 16: units of 4 lanes, every row added in double
   (mg_col_shifted_sums_double's operations) */
MG_AI void mg_bn1d_fwd_block_double(double* y, double* mean, double* rstd, const double* x, const double* weight,
                                    const double* bias, double eps, Py_ssize_t N, Py_ssize_t C, Py_ssize_t c,
                                    const int m) {
    enum { U = 4 };
    const int nu = (m + 3) / 4;
#define MG_LANES(u) ((u) + 1 < nu ? 4 : m - 4 * (u))
    mg_v4d k[U], a[U], q[U];
    for (int u = 0; u < nu; u++) {
        k[u] = mg_ldn_double(x + c + 4 * u, MG_LANES(u));
        a[u] = q[u] = (mg_v4d){0, 0, 0, 0};
    }
    for (Py_ssize_t i = 0; i < N; i++)
        for (int u = 0; u < nu; u++) {
            mg_v4d d = mg_ldn_double(x + i * C + c + 4 * u, MG_LANES(u)) - k[u];
            a[u] += d; q[u] += d * d;
        }
    double s1[4 * U], s2[4 * U], K[4 * U], Kx[4 * U], scale[4 * U], shift[4 * U];
    for (int u = 0; u < nu; u++) {
        mg_store4(s1 + 4 * u, a[u]); mg_store4(s2 + 4 * u, q[u]); mg_store4(K + 4 * u, k[u]);
    }
    mg_bn1d_fwd_coefficients_double(mean + c, rstd + c, Kx, scale, shift, s1, s2, K, weight + c, bias + c,
                                    (double)N, eps, m);
    mg_v4d vk[U], vs[U], vb[U];
    for (int u = 0; u < nu; u++) {
        vk[u] = mg_ldn_double(Kx + 4 * u, MG_LANES(u));
        vs[u] = mg_ldn_double(scale + 4 * u, MG_LANES(u));
        vb[u] = mg_ldn_double(shift + 4 * u, MG_LANES(u));
    }
    for (Py_ssize_t i = 0; i < N; i++)
        for (int u = 0; u < nu; u++) {
            const Py_ssize_t o = i * C + c + 4 * u;
            mg_stn_double(y + o, (mg_ldn_double(x + o, MG_LANES(u)) - vk[u]) * vs[u] + vb[u], MG_LANES(u));
        }
#undef MG_LANES
}

/* float64 backward, channels [c, c + m), m <= 16 (mg_col_dy_sums_double's operations) */
MG_AI void mg_bn1d_bwd_block_double(double* dx, double* dweight, double* dbias, const double* dy, const double* x,
                                    const double* mean, const double* rstd, const double* weight, Py_ssize_t N,
                                    Py_ssize_t C, Py_ssize_t c, const int m) {
    enum { U = 4 };
    const int nu = (m + 3) / 4;
#define MG_LANES(u) ((u) + 1 < nu ? 4 : m - 4 * (u))
    mg_v4d k[U], a[U], q[U];
    for (int u = 0; u < nu; u++) {
        k[u] = mg_ldn_double(mean + c + 4 * u, MG_LANES(u));
        a[u] = q[u] = (mg_v4d){0, 0, 0, 0};
    }
    for (Py_ssize_t i = 0; i < N; i++)
        for (int u = 0; u < nu; u++) {
            const Py_ssize_t o = i * C + c + 4 * u;
            mg_v4d g = mg_ldn_double(dy + o, MG_LANES(u));
            a[u] += g; q[u] += g * (mg_ldn_double(x + o, MG_LANES(u)) - k[u]);
        }
    double sdy[4 * U], sdyx[4 * U], ca[4 * U], cm[4 * U], cK[4 * U], cb[4 * U], ck[4 * U];
    for (int u = 0; u < nu; u++) { mg_store4(sdy + 4 * u, a[u]); mg_store4(sdyx + 4 * u, q[u]); }
    mg_bn1d_bwd_coefficients_double(dweight + c, dbias + c, ca, cm, cK, cb, ck, sdy, sdyx, mean + c, rstd + c,
                                    weight + c, (double)N, m);
    mg_v4d va[U], vm[U], vK[U], vb[U], vk[U];
    for (int u = 0; u < nu; u++) {
        const int L = MG_LANES(u);
        va[u] = mg_ldn_double(ca + 4 * u, L); vm[u] = mg_ldn_double(cm + 4 * u, L);
        vK[u] = mg_ldn_double(cK + 4 * u, L); vb[u] = mg_ldn_double(cb + 4 * u, L);
        vk[u] = mg_ldn_double(ck + 4 * u, L);
    }
    for (Py_ssize_t i = 0; i < N; i++)
        for (int u = 0; u < nu; u++) {
            const Py_ssize_t o = i * C + c + 4 * u;
            const int L = MG_LANES(u);
            mg_v4d v = va[u] * (mg_ldn_double(dy + o, L) - vm[u]) + vb[u] * (mg_ldn_double(x + o, L) - vK[u])
                       + vk[u];
            mg_stn_double(dx + o, v, L);
        }
#undef MG_LANES
}

/* channels [c0, c1) in blocks of 16, then one of 8, then the rest (a constant width per case, so the block's
   loops unroll and its copies are fixed-size) */
#define MG_BN1D_BLOCKS(BLOCK, ...)                                                                             \
    do {                                                                                                       \
        Py_ssize_t c = c0;                                                                                     \
        for (; c + 16 <= c1; c += 16) BLOCK(__VA_ARGS__, c, 16);                                               \
        if (c + 8 <= c1) { BLOCK(__VA_ARGS__, c, 8); c += 8; }                                                 \
        switch (c1 - c) {                                                                                      \
            case 7: BLOCK(__VA_ARGS__, c, 7); break;                                                           \
            case 6: BLOCK(__VA_ARGS__, c, 6); break;                                                           \
            case 5: BLOCK(__VA_ARGS__, c, 5); break;                                                           \
            case 4: BLOCK(__VA_ARGS__, c, 4); break;                                                           \
            case 3: BLOCK(__VA_ARGS__, c, 3); break;                                                           \
            case 2: BLOCK(__VA_ARGS__, c, 2); break;                                                           \
            case 1: BLOCK(__VA_ARGS__, c, 1); break;                                                           \
        }                                                                                                      \
    } while (0)

/* x, y: (N, C); mean, rstd: (C,) float64 OUT; weight, bias: (C,); channels [c0, c1) */
#define MG_BN1D(T)                                                                                             \
MG_CLONES static void mg_bn1d_forward_##T(T* y, double* mean, double* rstd, const T* x, const T* weight,        \
                                          const T* bias, double eps, Py_ssize_t N, Py_ssize_t C,               \
                                          Py_ssize_t c0, Py_ssize_t c1) {                                      \
    MG_BN1D_BLOCKS(mg_bn1d_fwd_block_##T, y, mean, rstd, x, weight, bias, eps, N, C);                          \
}                                                                                                              \
/* dx, dy, x: (N, C); dweight, dbias: (C,) OUT; mean, rstd: (C,) float64; weight: (C,); channels [c0, c1) */    \
MG_CLONES static void mg_bn1d_backward_##T(T* dx, T* dweight, T* dbias, const T* dy, const T* x,               \
                                           const double* mean, const double* rstd, const T* weight,            \
                                           Py_ssize_t N, Py_ssize_t C, Py_ssize_t c0, Py_ssize_t c1) {         \
    MG_BN1D_BLOCKS(mg_bn1d_bwd_block_##T, dx, dweight, dbias, dy, x, mean, rstd, weight, N, C);                \
}
MG_BN1D(float)
MG_BN1D(double)

/* running statistics from one batch (mean, rstd: (1, C)), the rule of norm.pyx's _running_stats with N = 1 (the
   same expressions, so the same bits), vectorized across channels: running = stat*momentum + running*keep for the
   mean and the unbiased variance (1/rstd^2 - eps)*count/(count - 1) */
#define MG_RUNNING_STATS(T)                                                                                    \
MG_CLONES static void mg_running_stats_##T(T* restrict running_mean, T* restrict running_var,                  \
                                           const double* restrict mean, const double* restrict rstd,           \
                                           double momentum, double eps, double count, Py_ssize_t C) {          \
    const T keep = (T)(1.0 - momentum);                                                                        \
    const double unbias = count / (count - 1);                                                                 \
    for (Py_ssize_t c = 0; c < C; c++) {                                                                       \
        double sm = 0, sv = 0, r = rstd[c];                                                                    \
        sm = sm + mean[c];                                                                                     \
        sv = sv + (1.0 / (r * r) - eps) * unbias;                                                              \
        running_mean[c] = (T)((sm / 1.0) * momentum + (double)(running_mean[c] * keep));                       \
        running_var[c] = (T)((sv / 1.0) * momentum + (double)(running_var[c] * keep));                         \
    }                                                                                                          \
}
MG_RUNNING_STATS(float)
MG_RUNNING_STATS(double)

#endif
