# Cython declarations of the C helpers of norm.pyx (the C: norm_runs.h, norm_channels.h, norm_rows.h, on
# norm_simd.h). Every helper exists as _float and _double; X is the input's dtype, sums are in double.

# one contiguous run of m values (norm_runs.h)
cdef extern from "norm_runs.h":
    # s1 += sum(x - K), s2 += sum((x - K)^2)
    void mg_shifted_sums_float(const float* x, Py_ssize_t m, double K, double* s1, double* s2) noexcept nogil
    void mg_shifted_sums_double(const double* x, Py_ssize_t m, double K, double* s1, double* s2) noexcept nogil
    # sdy += sum(dy), sdyx += sum(dy*(x - mean))
    void mg_dy_sums_float(const float* dy, const float* x, Py_ssize_t m, double mean,
                          double* sdy, double* sdyx) noexcept nogil
    void mg_dy_sums_double(const double* dy, const double* x, Py_ssize_t m, double mean,
                           double* sdy, double* sdyx) noexcept nogil
    # dx = a*(dy - mdy) + b*(x - K) + k
    void mg_affine2_float(float* dx, const float* dy, const float* x, Py_ssize_t m,
                          float a, float mdy, float K, float b, float k) noexcept nogil
    void mg_affine2_double(double* dx, const double* dy, const double* x, Py_ssize_t m,
                           double a, double mdy, double K, double b, double k) noexcept nogil

# batch norm, channels layout (norm_channels.h): one row's run of nc channels of S values
cdef extern from "norm_channels.h":
    enum: MG_SHORT_RUN
    enum: MG_LANE_RUN
    enum: MG_COL_GROUP
    void mg_channel_shifted_sums_float(const float* x, Py_ssize_t nc, Py_ssize_t S, const double* K, double* s1,
                                       double* s2) noexcept nogil
    void mg_channel_shifted_sums_double(const double* x, Py_ssize_t nc, Py_ssize_t S, const double* K,
                                        double* s1, double* s2) noexcept nogil
    void mg_channel_dy_sums_float(const float* dy, const float* x, Py_ssize_t nc, Py_ssize_t S,
                                  const double* mean, double* sdy, double* sdyx) noexcept nogil
    void mg_channel_dy_sums_double(const double* dy, const double* x, Py_ssize_t nc, Py_ssize_t S,
                                   const double* mean, double* sdy, double* sdyx) noexcept nogil
    # float32, MG_SHORT_RUN <= S < MG_LANE_RUN: lane partials p1, p2 (4 per channel), then mg_lanes_finish
    void mg_channel_lane_sums_float(const float* x, Py_ssize_t nc, Py_ssize_t S, const double* K, double* p1,
                                    double* p2) noexcept nogil
    void mg_channel_lane_dy_sums_float(const float* dy, const float* x, Py_ssize_t nc, Py_ssize_t S,
                                       const double* mean, double* p1, double* p2) noexcept nogil
    void mg_lanes_finish(const double* p1, const double* p2, Py_ssize_t nc, double* s1, double* s2) noexcept nogil
    # the same, beside the block before's elementwise pass (na channels) in one loop: the pipelined rows
    void mg_channel_lane_sums_affine_float(const float* x, Py_ssize_t nc, Py_ssize_t S, const double* K, double* p1,
                                           double* p2, float* y, const float* xe, Py_ssize_t na, const float* Ke,
                                           const float* scale, const float* shift) noexcept nogil
    void mg_channel_lane_dy_sums_affine2_float(const float* dy, const float* x, Py_ssize_t nc, Py_ssize_t S,
                                               const double* mean, double* p1, double* p2, float* dx,
                                               const float* dye, const float* xe, Py_ssize_t na, const float* a,
                                               const float* mdy, const float* Ke, const float* b,
                                               const float* k) noexcept nogil
    # float32, S >= MG_LANE_RUN: the same, the sums into s1, s2
    void mg_channel_shifted_sums_affine_float(const float* x, Py_ssize_t nc, Py_ssize_t S, const double* K,
                                              double* s1, double* s2, float* y, const float* xe, Py_ssize_t na,
                                              const float* Ke, const float* scale, const float* shift) noexcept nogil
    void mg_channel_dy_sums_affine2_float(const float* dy, const float* x, Py_ssize_t nc, Py_ssize_t S,
                                          const double* mean, double* sdy, double* sdyx, float* dx, const float* dye,
                                          const float* xe, Py_ssize_t na, const float* a, const float* mdy,
                                          const float* Ke, const float* b, const float* k) noexcept nogil
    void mg_channel_shifted_sums_affine_double(const double* x, Py_ssize_t nc, Py_ssize_t S, const double* K,
                                               double* s1, double* s2, double* y, const double* xe, Py_ssize_t na,
                                               const double* Ke, const double* scale,
                                               const double* shift) noexcept nogil
    void mg_channel_dy_sums_affine2_double(const double* dy, const double* x, Py_ssize_t nc, Py_ssize_t S,
                                           const double* mean, double* sdy, double* sdyx, double* dx,
                                           const double* dye, const double* xe, Py_ssize_t na, const double* a,
                                           const double* mdy, const double* Ke, const double* b,
                                           const double* k) noexcept nogil
    void mg_channel_affine_float(float* y, const float* x, Py_ssize_t nc, Py_ssize_t S, const float* K,
                                 const float* scale, const float* shift) noexcept nogil
    void mg_channel_affine_double(double* y, const double* x, Py_ssize_t nc, Py_ssize_t S, const double* K,
                                  const double* scale, const double* shift) noexcept nogil
    void mg_channel_affine2_float(float* dx, const float* dy, const float* x, Py_ssize_t nc, Py_ssize_t S,
                                  const float* a, const float* mdy, const float* K, const float* b,
                                  const float* k) noexcept nogil
    void mg_channel_affine2_double(double* dx, const double* dy, const double* x, Py_ssize_t nc, Py_ssize_t S,
                                   const double* a, const double* mdy, const double* K, const double* b,
                                   const double* k) noexcept nogil
    # S == 1 (BatchNorm1d): nr rows of stride ldx, m channels
    void mg_col_shifted_sums_float(const float* x, Py_ssize_t ldx, Py_ssize_t nr, const double* K, Py_ssize_t m,
                                   double* s1, double* s2) noexcept nogil
    void mg_col_shifted_sums_double(const double* x, Py_ssize_t ldx, Py_ssize_t nr, const double* K,
                                    Py_ssize_t m, double* s1, double* s2) noexcept nogil
    void mg_col_dy_sums_float(const float* dy, const float* x, Py_ssize_t ldx, Py_ssize_t nr, const double* mean,
                              Py_ssize_t m, double* sdy, double* sdyx) noexcept nogil
    void mg_col_dy_sums_double(const double* dy, const double* x, Py_ssize_t ldx, Py_ssize_t nr,
                               const double* mean, Py_ssize_t m, double* sdy, double* sdyx) noexcept nogil
    # the float32 groups stored, not added (the backward's 2-thread split by rows), and added later in order
    void mg_col_dy_partials_float(const float* dy, const float* x, Py_ssize_t ldx, Py_ssize_t nr,
                                  const double* mean, Py_ssize_t m, float* p1, float* p2) noexcept nogil
    void mg_col_add_groups(const float* p, Py_ssize_t ng, Py_ssize_t ldp, Py_ssize_t m, double* s) noexcept nogil
    void mg_col_affine_float(float* y, const float* x, Py_ssize_t m, const float* K, const float* scale,
                             const float* shift) noexcept nogil
    void mg_col_affine_double(double* y, const double* x, Py_ssize_t m, const double* K, const double* scale,
                              const double* shift) noexcept nogil
    void mg_col_affine2_float(float* dx, const float* dy, const float* x, Py_ssize_t m, const float* a,
                              const float* mdy, const float* K, const float* b, const float* k) noexcept nogil
    void mg_col_affine2_double(double* dx, const double* dy, const double* x, Py_ssize_t m, const double* a,
                               const double* mdy, const double* K, const double* b,
                               const double* k) noexcept nogil
    # S == 1, inputs in cache: the whole training forward / backward of channels [c0, c1) of x: (N, C)
    void mg_bn1d_forward_float(float* y, double* mean, double* rstd, const float* x, const float* weight,
                               const float* bias, double eps, Py_ssize_t N, Py_ssize_t C, Py_ssize_t c0,
                               Py_ssize_t c1) noexcept nogil
    void mg_bn1d_forward_double(double* y, double* mean, double* rstd, const double* x, const double* weight,
                                const double* bias, double eps, Py_ssize_t N, Py_ssize_t C, Py_ssize_t c0,
                                Py_ssize_t c1) noexcept nogil
    void mg_bn1d_backward_float(float* dx, float* dweight, float* dbias, const float* dy, const float* x,
                                const double* mean, const double* rstd, const float* weight, Py_ssize_t N,
                                Py_ssize_t C, Py_ssize_t c0, Py_ssize_t c1) noexcept nogil
    void mg_bn1d_backward_double(double* dx, double* dweight, double* dbias, const double* dy, const double* x,
                                 const double* mean, const double* rstd, const double* weight, Py_ssize_t N,
                                 Py_ssize_t C, Py_ssize_t c0, Py_ssize_t c1) noexcept nogil
    # the running statistics from one batch's mean and rstd (1, C) (norm.pyx's _running_stats with N = 1)
    void mg_running_stats_float(float* running_mean, float* running_var, const double* mean, const double* rstd,
                                double momentum, double eps, double count, Py_ssize_t C) noexcept nogil
    void mg_running_stats_double(double* running_mean, double* running_var, const double* mean,
                                 const double* rstd, double momentum, double eps, double count,
                                 Py_ssize_t C) noexcept nogil

# group norm rows (norm_rows.h)
cdef extern from "norm_rows.h":
    void mg_row_affine_float(float* y, const float* x, Py_ssize_t m, float K, float scale,
                             float shift) noexcept nogil
    void mg_row_affine_double(double* y, const double* x, Py_ssize_t m, double K, double scale,
                              double shift) noexcept nogil
    void mg_gn_dx_float(float* dx, const float* dy, const float* x, Py_ssize_t m,
                        float r, float w, float mg, float K, float b, float k) noexcept nogil
    void mg_gn_dx_double(double* dx, const double* dy, const double* x, Py_ssize_t m,
                         double r, double w, double mg, double K, double b, double k) noexcept nogil
    # S == 1 (layer-norm shaped)
    void mg_ln_affine_float(float* y, const float* x, const float* w, const float* bias, Py_ssize_t m,
                            float K, float r, float dmr) noexcept nogil
    void mg_ln_affine_double(double* y, const double* x, const double* w, const double* bias, Py_ssize_t m,
                             double K, double r, double dmr) noexcept nogil
    void mg_ln_row_sums_float(const float* dy, const float* x, const float* w, Py_ssize_t m, float K,
                              double* sw, double* swx) noexcept nogil
    void mg_ln_row_sums_double(const double* dy, const double* x, const double* w, Py_ssize_t m, double K,
                               double* sw, double* swx) noexcept nogil
    void mg_ln_dx_float(float* dx, const float* dy, const float* x, const float* w, Py_ssize_t m, float r, float mg,
                        float K, float b, float k, float dmr, float* fw, float* fb) noexcept nogil
    void mg_ln_dx_double(double* dx, const double* dy, const double* x, const double* w, Py_ssize_t m, double r,
                         double mg, double K, double b, double k, double dmr, double* fw, double* fb) noexcept nogil
    void mg_ln_flush_float(double* pw, double* pb, float* fw, float* fb, Py_ssize_t m) noexcept nogil
    void mg_ln_flush_double(double* pw, double* pb, double* fw, double* fb, Py_ssize_t m) noexcept nogil
