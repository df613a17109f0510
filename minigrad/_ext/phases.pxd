# Declarations of phases.h (the phase kernels' C); the def wrappers are in phases.pyx.
cdef extern from "phases.h":
    void mgp_channel_stats_float(double* mean, double* m2, const float* x, int center, Py_ssize_t N, Py_ssize_t C,
                                 Py_ssize_t S, Py_ssize_t c0, Py_ssize_t c1, double* K) noexcept nogil
    void mgp_channel_stats_double(double* mean, double* m2, const double* x, int center, Py_ssize_t N,
                                  Py_ssize_t C, Py_ssize_t S, Py_ssize_t c0, Py_ssize_t c1, double* K) noexcept nogil
    void mgp_channel_dy_sums_float(double* sdy, double* sdyx, const float* dy, const float* x, const double* mean,
                                   Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, Py_ssize_t c0,
                                   Py_ssize_t c1) noexcept nogil
    void mgp_channel_dy_sums_double(double* sdy, double* sdyx, const double* dy, const double* x,
                                    const double* mean, Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, Py_ssize_t c0,
                                    Py_ssize_t c1) noexcept nogil
    void mgp_channel_apply_float(float* y, const float* x, Py_ssize_t C, Py_ssize_t S, const float* K,
                                 const float* scale, const float* offset) noexcept nogil
    void mgp_channel_apply_double(double* y, const double* x, Py_ssize_t C, Py_ssize_t S, const double* K,
                                  const double* scale, const double* offset) noexcept nogil
    void mgp_channel_backward_apply_float(float* dx, const float* dy, const float* x, Py_ssize_t C, Py_ssize_t S,
                                          const float* a, const float* mdy, const float* K, const float* b,
                                          const float* k) noexcept nogil
    void mgp_channel_backward_apply_double(double* dx, const double* dy, const double* x, Py_ssize_t C,
                                           Py_ssize_t S, const double* a, const double* mdy, const double* K,
                                           const double* b, const double* k) noexcept nogil
    void mgp_rows_stats_float(double* mean, double* m2, const float* x, int center, Py_ssize_t r0, Py_ssize_t r1,
                              Py_ssize_t D) noexcept nogil
    void mgp_rows_stats_double(double* mean, double* m2, const double* x, int center, Py_ssize_t r0, Py_ssize_t r1,
                               Py_ssize_t D) noexcept nogil
    void mgp_row_apply_float(float* y, const float* x, Py_ssize_t D, float K, float scale, float offset,
                             const float* w, const float* bias) noexcept nogil
    void mgp_row_apply_double(double* y, const double* x, Py_ssize_t D, double K, double scale, double offset,
                              const double* w, const double* bias) noexcept nogil
    void mgp_row_backward_sums_float(double* sg, double* sgx, double* pw, double* pb, const float* dy,
                                     const float* x, const float* w, Py_ssize_t D, double mean,
                                     double rstd) noexcept nogil
    void mgp_row_backward_sums_double(double* sg, double* sgx, double* pw, double* pb, const double* dy,
                                      const double* x, const double* w, Py_ssize_t D, double mean,
                                      double rstd) noexcept nogil
    void mgp_row_backward_apply_float(float* dx, const float* dy, const float* x, const float* w, Py_ssize_t D,
                                      float a, float mg, float K, float b, float k) noexcept nogil
    void mgp_row_backward_apply_double(double* dx, const double* dy, const double* x, const double* w,
                                       Py_ssize_t D, double a, double mg, double K, double b,
                                       double k) noexcept nogil
    void mgp_channel_apply_relu_float(float* y, const float* x, Py_ssize_t C, Py_ssize_t S, const float* K,
                                 const float* scale, const float* offset) noexcept nogil
    void mgp_channel_dy_sums_relu_float(double* sdy, double* sdyx, const float* dy, const float* x, const double* mean,
                                 const float* K, const float* scale, const float* offset, Py_ssize_t N, Py_ssize_t C,
                                 Py_ssize_t S, Py_ssize_t c0, Py_ssize_t c1) noexcept nogil
    void mgp_channel_backward_apply_relu_float(float* dx, const float* dy, const float* x, Py_ssize_t C, Py_ssize_t S,
                                 const float* a, const float* mdy, const float* K, const float* b, const float* k,
                                 const float* scale, const float* offset) noexcept nogil
    void mgp_channel_apply_relu_double(double* y, const double* x, Py_ssize_t C, Py_ssize_t S, const double* K,
                                 const double* scale, const double* offset) noexcept nogil
    void mgp_channel_dy_sums_relu_double(double* sdy, double* sdyx, const double* dy, const double* x, const double* mean,
                                 const double* K, const double* scale, const double* offset, Py_ssize_t N, Py_ssize_t C,
                                 Py_ssize_t S, Py_ssize_t c0, Py_ssize_t c1) noexcept nogil
    void mgp_channel_backward_apply_relu_double(double* dx, const double* dy, const double* x, Py_ssize_t C, Py_ssize_t S,
                                 const double* a, const double* mdy, const double* K, const double* b, const double* k,
                                 const double* scale, const double* offset) noexcept nogil
    void mgp_row_apply_max_float(float* y, const float* x, Py_ssize_t D, float K, float sc, float of,
                                float tau) noexcept nogil
    void mgp_row_sums_max_float(double* sg, double* sgx, double* st, const float* dy, const float* x, Py_ssize_t D,
                               double M, float K, float sc, float of, float tau) noexcept nogil
    void mgp_row_backward_apply_max_float(float* dx, const float* dy, const float* x, Py_ssize_t D, float a, float mg,
                                         float K, float b, float k, float sc, float of, float tau) noexcept nogil
    void mgp_row_apply_max_double(double* y, const double* x, Py_ssize_t D, double K, double sc, double of,
                                double tau) noexcept nogil
    void mgp_rows_norm_backward_max_float(float* dx, double* sg, double* sgx, double* st, const float* dy,
                                          const float* x, const double* rstd, const float* w, const float* scale,
                                          const float* of, const float* tau, Py_ssize_t r0, Py_ssize_t r1,
                                          Py_ssize_t D, Py_ssize_t C) noexcept nogil
    void mgp_rows_norm_backward_max_double(double* dx, double* sg, double* sgx, double* st, const double* dy,
                                           const double* x, const double* rstd, const double* w,
                                           const double* scale, const double* of, const double* tau, Py_ssize_t r0,
                                           Py_ssize_t r1, Py_ssize_t D, Py_ssize_t C) noexcept nogil
    void mgp_rows_norm_apply_max_float(float* y, double* rstd, float* scale, const float* x, Py_ssize_t r0,
                                       Py_ssize_t r1, Py_ssize_t D, const float* w, const float* of,
                                       const float* tau, Py_ssize_t C, double eps) noexcept nogil
    void mgp_rows_norm_apply_max_double(double* y, double* rstd, double* scale, const double* x, Py_ssize_t r0,
                                        Py_ssize_t r1, Py_ssize_t D, const double* w, const double* of,
                                        const double* tau, Py_ssize_t C, double eps) noexcept nogil
    void mgp_row_sums_max_double(double* sg, double* sgx, double* st, const double* dy, const double* x, Py_ssize_t D,
                               double M, double K, double sc, double of, double tau) noexcept nogil
    void mgp_row_backward_apply_max_double(double* dx, const double* dy, const double* x, Py_ssize_t D, double a, double mg,
                                         double K, double b, double k, double sc, double of, double tau) noexcept nogil
    int mgp_gate_v4(int on) noexcept nogil
    int mgp_rows_v3(int on) noexcept nogil
    int mgp_gate_v3(int on) noexcept nogil
    void mgp_row_apply_gate_float(float* y, const float* x, Py_ssize_t D, int gate, float v, float lo, float hi,
                                  float sc, float of) noexcept nogil
    void mgp_row_sums_gate_float(double* sdy, double* sdyf, double* sdv, double* shi, double* slo, const float* dy,
                                 const float* x, Py_ssize_t D, int gate, float v, float lo, float hi,
                                 float* keep) noexcept nogil
    void mgp_row_backward_apply_gate_float(float* dx, const float* dy, const float* x, Py_ssize_t D, int gate,
                                           float a, float K, float b, float k, float v, float lo,
                                           float hi, const float* kept) noexcept nogil
    void mgp_row_apply_gate_double(double* y, const double* x, Py_ssize_t D, int gate, double v, double lo,
                                   double hi, double sc, double of) noexcept nogil
    void mgp_row_sums_gate_double(double* sdy, double* sdyf, double* sdv, double* shi, double* slo,
                                  const double* dy, const double* x, Py_ssize_t D, int gate, double v, double lo,
                                  double hi, double* keep) noexcept nogil
    void mgp_row_backward_apply_gate_double(double* dx, const double* dy, const double* x, Py_ssize_t D, int gate,
                                            double a, double K, double b, double k, double v, double lo,
                                            double hi, const double* kept) noexcept nogil


# Declarations of evonorm_b0.h (EvoNorm-B0's training forward and backward: the per-channel and per-row phases)
cdef extern from "evonorm_b0.h":
    void mgb0_combine_float(float* lo, double* imean, double* irstd, double* mean, double* rstd,
                            Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, Py_ssize_t c0, Py_ssize_t c1,
                            double eps) noexcept nogil
    void mgb0_combine_double(double* lo, double* imean, double* irstd, double* mean, double* rstd,
                             Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, Py_ssize_t c0, Py_ssize_t c1,
                             double eps) noexcept nogil
    void mgb0_apply_float(float* y, const float* lo, float* hi, double* irstd, const float* x, const float* v,
                          const float* w, const float* b, Py_ssize_t C, Py_ssize_t S, Py_ssize_t r0, Py_ssize_t r1,
                          double eps) noexcept nogil
    void mgb0_apply_double(double* y, const double* lo, double* hi, double* irstd, const double* x, const double* v,
                           const double* w, const double* b, Py_ssize_t C, Py_ssize_t S, Py_ssize_t r0,
                           Py_ssize_t r1, double eps) noexcept nogil
    void mgb0_backward_combine_float(float* dv, float* dweight, float* dbias, double* b2, const double* s,
                                     const float* w, const double* rstd, Py_ssize_t N, Py_ssize_t C, Py_ssize_t S,
                                     Py_ssize_t c0, Py_ssize_t c1) noexcept nogil
    void mgb0_backward_combine_double(double* dv, double* dweight, double* dbias, double* b2, const double* s,
                                      const double* w, const double* rstd, Py_ssize_t N, Py_ssize_t C,
                                      Py_ssize_t S, Py_ssize_t c0, Py_ssize_t c1) noexcept nogil
    void mgb0_backward_apply_float(float* dx, const float* dy, const float* x, const double* shi, const float* v,
                                   const float* w, const float* lo, const float* hi, const double* imean,
                                   const double* irstd, const double* mean, const double* b2, Py_ssize_t C,
                                   Py_ssize_t S, Py_ssize_t r0, Py_ssize_t r1) noexcept nogil
    void mgb0_backward_apply_double(double* dx, const double* dy, const double* x, const double* shi,
                                    const double* v, const double* w, const double* lo, const double* hi,
                                    const double* imean, const double* irstd, const double* mean, const double* b2,
                                    Py_ssize_t C, Py_ssize_t S, Py_ssize_t r0, Py_ssize_t r1) noexcept nogil
    void mgb0_backward_sums_float(double* s, float* dx, const float* dy, const float* x, const float* v,
                                  const float* lo, const float* hi, Py_ssize_t N, Py_ssize_t C, Py_ssize_t S,
                                  Py_ssize_t r0, Py_ssize_t r1) noexcept nogil
    void mgb0_backward_sums_double(double* s, double* dx, const double* dy, const double* x, const double* v,
                                   const double* lo, const double* hi, Py_ssize_t N, Py_ssize_t C, Py_ssize_t S,
                                   Py_ssize_t r0, Py_ssize_t r1) noexcept nogil
