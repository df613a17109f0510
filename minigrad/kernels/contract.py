"""The kernel contract: every backend's signatures, written once, and the checks run before each call.

The checks are written here, in Python, with their error messages. Valid calls are accepted by a compiled copy of
the array checks (minigrad/_ext/_check.pyx: about 0.7 us against 5 us, which mattered for small tensors); any call
it does not accept runs the Python rules, which raise the error naming the argument.

Layouts and dimension letters (used in every kernel file):
  N  batch            C  channels          S  spatial size (product of the dims after the channel axis)
  R  rows             D  row length        G  groups (num_groups; ceil(C/group_size) in decorrelated batch norm)
  g  group size (decorrelated batch norm's group_size)      J  2g + 1, the rows of its backward's operand
  H, W  input height, width          P, Q  output height, width (OH, OW)         O  output channels
  K  rows of im2col, C*kh*kw (ordered c, i, j)                 L  columns of im2col, N*P*Q (ordered n, oh, ow)
  M  size of a flattened parameter (the optimizer updates)
  channels layout  x: (N, C, S)   batch norm reduces over N and S, per channel
  rows layout      x: (R, D)      softmax reduces each row; group norm views x: (N, C, S) as N*G rows of
                                  (C/G)*S values, so layer norm is (R, D, 1) with G=1 and instance norm G=C

Conventions (llm.c style): outputs first, then inputs; the caller preallocates every output. Arrays are
C-contiguous, float32 or float64, all of one dtype ("X" below) except the saved statistics ``mean`` and ``rstd``,
which are always float64, and the pooling indices ``argmax``, always int64. ``n_threads`` is the last argument and
is filled in by the registry. Window geometry: ``kh, kw`` are ints >= 1; ``stride``, ``padding``, ``dilation`` are
(h, w) pairs of ints (stride and dilation >= 1, padding >= 0); padding is implicit zeros (-inf for pooling, where
it is at most half the kernel), no padded copy is made. The padded size, the window span and stride + padding must
fit 64-bit indices (``rules.window_out_size``).

Kernels:
  log_softmax_forward(y, x, n_threads)                      y = x - max - log(sum(exp(x - max)))   per row
      x, y: (R, D)
  log_softmax_backward(dx, dy, y, n_threads)                dx = dy - exp(y) * sum(dy)             per row
      dx, dy, y: (R, D)
  cross_entropy_forward(logp, picked, x, target, n_threads)  logp = log_softmax_forward's, picked[r] =
      x, logp: (R, D); picked: (R,) float64 OUT;            logp[r, target[r]] (NaN for a target outside [0, D))
      target: (R,) int64
  cross_entropy_backward(dx, logp, target, scale, n_threads) log_softmax_backward's for dy = X(scale) at
      dx, logp: (R, D); target: (R,) int64                  (r, target[r]), 0 elsewhere
  batch_norm_forward(y, mean, rstd, x, weight, bias, eps, n_threads)               training-mode forward
      x, y: (N, C, S); mean, rstd: (C,) float64 OUT; weight, bias: (C,)
      mean = E[x], rstd = 1/sqrt(Var[x] + eps) (biased variance) over N and S; y = (x - mean) * rstd * w + b
  batch_renorm_forward(y, mean, rstd, r, d, x, weight, bias, running_mean, running_var, r_max, d_max, eps,
                       n_threads)                                                   Batch Renorm's training forward
      x, y: (N, C, S); mean, rstd, r, d: (C,) float64 OUT; weight, bias, running_mean, running_var: (C,)
      batch_norm_forward's mean and rstd; sigma = sqrt(running_var + eps), r = clip(sigma_B/sigma, 1/r_max, r_max),
      d = clip((mean - running_mean)/sigma, -d_max, d_max); y = ((x - mean)*rstd*r + d)*w + b
      (r_max >= 1, d_max >= 0; r_max = 1, d_max = 0 is batch_norm_forward, bit for bit)
  batch_norm_inference(y, x, running_mean, running_var, weight, bias, eps, n_threads)
      x, y: (N, C, S); running_mean, running_var, weight, bias: (C,)
      y = (x - running_mean) / sqrt(running_var + eps) * weight + bias
  batch_norm_backward(dx, dweight, dbias, dy, x, mean, rstd, weight, n_threads, r=None, d=None)
      dx, dy, x: (N, C, S); dweight, dbias: (C,) OUT; mean, rstd: (C,) float64; weight: (C,)
      r, d: (C,) float64, keywords, both or neither (OPTIONS): Batch Renorm's backward (r and d constants), batch
      norm's with weight X(weight*r), then per channel dweight = X(r*dweight + d*dbias) from the X sums
  ghost_batch_norm_forward(y, mean, rstd, x, weight, bias, chunk, eps, n_threads)   ghost batch norm
      x, y: (N, C, S); mean, rstd: (G, C) float64 OUT, G = ceil(N/chunk); weight, bias: (C,); chunk: int >= 1
      batch_norm_forward on each contiguous chunk of samples [k*chunk, min((k + 1)*chunk, N)), row k of mean, rstd
  ghost_batch_norm_backward(dx, dweight, dbias, dy, x, mean, rstd, weight, chunk, n_threads)
      as batch_norm_backward per chunk; dweight, dbias: (C,) OUT, summed over the chunks (each chunk's sum is
      rounded to X, then they are added in float64)
  group_norm_forward(y, mean, rstd, x, weight, bias, num_groups, eps, n_threads)
      x, y: (N, C, S); mean, rstd: (N, G) float64 OUT; weight, bias: (C,)
  group_norm_backward(dx, dweight, dbias, dy, x, mean, rstd, weight, num_groups, n_threads)
      dx, dy, x: (N, C, S); dweight, dbias: (C,) OUT; mean, rstd: (N, G) float64; weight: (C,)
  im2col(cols, x, kh, kw, stride, padding, dilation)        cols[(c, i, j), (n, oh, ow)] = xpad[n, c, h, w]
      x: (N, C, H, W); cols: (K, L) OUT        with h = oh*sh + i*dh, w = ow*sw + j*dw in padded coordinates
  col2im(dx, cols, kh, kw, stride, padding, dilation)       dx[n, c, h, w] += sum of the cols entries im2col
      dx: (N, C, H, W) IN/OUT (accumulated into); cols: (K, L)      copied from x[n, c, h, w] (its adjoint)
  conv2d_direct(y, x, weight, kh, kw, padding)              the convolution at unit stride and dilation:
      x: (N, C, H, W); weight: (O, K); y: (N, O, P, Q) OUT    y[n, o, p, q] = sum over (c, i, j) of
                                                             weight[o, (c, i, j)] * xpad[n, c, p + i, q + j]
  conv2d_direct_weight_grad(dweight, x, dy, kh, kw, padding)   its weight gradient:
      x: (N, C, H, W); dy: (N, O, P, Q); dweight: (O, K) OUT  dweight[o, (c, i, j)] = sum over (n, p, q) of
                                                             dy[n, o, p, q] * xpad[n, c, p + i, q + j]
  conv2d_direct_backward(dx, dweight, x, dy, weight, kh, kw, padding)   both gradients of conv2d_direct in one call:
      dx: (N, C, H, W) OUT; dweight: (O, K) OUT; x, dy, weight   dweight as conv2d_direct_weight_grad's, dx as
      as conv2d_direct's (padding below kh, kw)              conv2d_direct(dy) with wf[c, (o, i, j)] =
                                                             weight[o, (c, kh-1-i, kw-1-j)], padding k-1-p
  conv2d_strided(y, x, weight, kh, kw, stride, padding)    the convolution at any stride (dilation 1):
      x: (N, C, H, W); weight: (O, K); y: (N, O, P, Q) OUT    y[n, o, p, q] = sum over (c, i, j) of
                                                             weight[o, (c, i, j)] * xpad[n, c, p*sh + i, q*sw + j]
  conv2d_strided_input_grad(dx, dy, weight, kh, kw, stride, padding)   its input gradient:
      dy: (N, O, P, Q); weight: (O, K); dx: (N, C, H, W) OUT  dx[n, c, h, w] = sum of weight[o, (c, i, j)] *
                                                             dy[n, o, p, q] over p*sh + i = h + ph, q*sw + j = w + pw
  conv2d_strided_weight_grad(dweight, x, dy, kh, kw, stride, padding)   its weight gradient:
      x: (N, C, H, W); dy: (N, O, P, Q); dweight: (O, K) OUT  dweight[o, (c, i, j)] = sum over (n, p, q) of
                                                             dy[n, o, p, q] * xpad[n, c, p*sh + i, q*sw + j]
  conv2d_strided_backward(dx, dweight, x, dy, weight, kh, kw, stride, padding)   both gradients in one call:
      dx: (N, C, H, W) OUT; dweight: (O, K) OUT; x, dy, weight   as conv2d_strided_input_grad's and
                                                             conv2d_strided_weight_grad's
  max_pool2d_forward(y, argmax, x, kh, kw, stride, padding) y = max over each window (NaN wins), argmax = h*W + w
      x: (N, C, H, W); y: (N, C, P, Q) OUT; argmax: (N, C, P, Q) int64 OUT   of the first maximum (last NaN)
      (P, Q): the floor or the ceil_mode size (rules.pool_out_size), so a last window may be cut by the input's end
  max_pool2d_backward(dx, dy, argmax)                       dx = 0, then dx[n, c].flat[argmax] += dy
      dx: (N, C, H, W) OUT; dy, argmax: (N, C, P, Q), argmax int64 in [0, H*W)

  running_stats_update(running_mean, running_var, mean, rstd, momentum, eps, count)
      running_mean, running_var: (C,) IN/OUT; mean, rstd: (N, C) float64        the running statistics' update:
      running = (1 - momentum)*running + momentum*stat, stat = the average over the N rows of mean and of the
      unbiased variance count/(count - 1)*(1/rstd^2 - eps) (N = 1 for batch norm, the batch for instance norm)
  sgd_update(param, momentum_buffer, grad, lr, momentum, dampening, weight_decay, nesterov, first)
      param, momentum_buffer: (M,) IN/OUT; grad: (M,)      SGD with momentum, one step (torch.optim.SGD's rule)
  adam_update(param, exp_avg, exp_avg_sq, grad, lr, beta1, beta2, eps, weight_decay, decoupled, step)
      param, exp_avg, exp_avg_sq: (M,) IN/OUT; grad: (M,)  Adam / AdamW, one step (torch.optim.Adam's rule)
      The update rules, with every rounding: reference.sgd_update and reference.adam_update. Parameters are passed
      flattened (M = their size); the hyperparameters are validated by the optimizer.
  sgd_update_many(params, momentum_buffers, grads, lr, momentum, dampening, weight_decay, nesterov, first)
      params, momentum_buffers, grads: tuples of k arrays   sgd_update on each (params[i], momentum_buffers[i],
                                                            grads[i]) in turn, in one call (a list kernel, below)
  add(y, a, b)                                              y = a + b, one rounding per element (NumPy's a + b)
      y, a, b: (M,)                                          (autograd's fan-out sums of large gradients; flattened)
  add_relu_forward(y, a, b)                                 y = max(0, a + b), the sum rounded to X (NaN stays NaN)
      y, a, b: (M,)                                          (a residual block's output; flattened)
  add_relu_backward(dx, dy, y)                              dx = dy * X(y > 0): a product, so an inf dy where y <= 0
      dx, dy, y: (M,)                                        gives NaN (the unfused ReLU's product with its mask)
  add_relu_backward_sum(dx, dy0, dy1, y)                    dx = X(dy0 + dy1) * X(y > 0): add_relu_backward of the
      dx, dy0, dy1, y: (M,)                                  sum of two gradient contributions (the walk's fan-out
                                                            sum, dy0 first), in one pass
  sigmoid_forward(y, x)                                     y = 1/(1 + exp(-x)) in X (0 where exp(-x) overflows;
      y, x: (M,)                                             exp within 1 ulp, so backends agree within 2 ulps)
  sigmoid_backward(dx, dy, y)                               dx = dy*(1 - y)*y in X, left to right (PyTorch's order)
      dx, dy, y: (M,)

Affine-free normalization passes weight = ones and bias = zeros (C values: nothing measurable).

Phase kernels: the normalization family (RMSNorm, and every variant after it) is written as compositions of these
eight, four per layout, three fused-ReLU channel variants and three fused-max row variants; the fused kernels above
are fast paths of the same compositions. The per-set coefficients between the phases are computed once, in
``minigrad.kernels.coefficients``. ``center=False`` takes no mean: the statistics are those of x^2 (mean comes
back exactly 0, m2 = sum(x^2)) and the backward passes take mean = 0.
  channel_stats(mean, m2, x, center)                       per channel c over N and S (count M = N*S):
      x: (N, C, S); mean, m2: (C,) float64 OUT             mean = E[x], m2 = sum((x - mean)^2)
  channel_apply(y, x, shift, scale, offset)                y = (x - shift[c])*scale[c] + offset[c]
      x, y: (N, C, S); shift, scale, offset: (C,)
  channel_backward_sums(sdy, sdyx, dy, x, mean)            sdy = sum(dy), sdyx = sum(dy*(x - mean[c]))
      dy, x: (N, C, S); mean: (C,) float64; sdy, sdyx: (C,) float64 OUT
  channel_backward_apply(dx, dy, x, a, mdy, shift, b, k)   dx = a[c]*(dy - mdy[c]) + b[c]*(x - shift[c]) + k[c]
      dx, dy, x: (N, C, S); a, mdy, shift, b, k: (C,)
  Fused ReLU (batch norm + ReLU): three channel phases with a ReLU after the apply. The backward masks dy by
  z > 0, z = (x - shift[c])*scale[c] + offset[c] recomputed in X exactly as the forward computed it (so nothing
  but x is saved); below, g = dy where z > 0, else 0 (PyTorch's threshold_backward: 0 even for inf dy).
  ``shift`` in the backward apply is the forward's (it is X(mean) in both).
  channel_apply_relu(y, x, shift, scale, offset)           y = max(0, z) (NaN stays NaN)
      x, y: (N, C, S); shift, scale, offset: (C,)
  channel_backward_sums_relu(sdy, sdyx, dy, x, mean, shift, scale, offset)
      dy, x: (N, C, S); mean: (C,) float64;                 sdy = sum(g), sdyx = sum(g*(x - mean[c]))
      shift, scale, offset: (C,); sdy, sdyx: (C,) float64 OUT
  channel_backward_apply_relu(dx, dy, x, a, mdy, shift, b, k, scale, offset)
      dx, dy, x: (N, C, S);                                 dx = a[c]*(g - mdy[c]) + b[c]*(x - shift[c]) + k[c]
      a, mdy, shift, b, k, scale, offset: (C,)
  row_stats(mean, m2, x, center)                           per row r over D (count M = D)
      x: (R, D); mean, m2: (R,) float64 OUT
  row_apply(y, x, shift, scale, offset, weight, bias)      y = ((x - shift[r])*scale[r] + offset[r])*weight[d] + bias[d]
      x, y: (R, D); shift, scale, offset: (R,); weight, bias: (D,)
  row_backward_sums(sg, sgx, dweight, dbias, dy, x, mean, rstd, weight)   with g = dy*weight[d], per row:
      dy, x: (R, D); mean, rstd: (R,) float64; weight: (D,)                sg = sum(g), sgx = sum(g*(x - mean[r]));
      sg, sgx: (R,) float64 OUT; dweight, dbias: (D,) OUT                  per column: dbias = sum(dy),
                                                                           dweight = sum(dy*(x - mean[r])*rstd[r])
  row_backward_apply(dx, dy, x, weight, a, mg, shift, b, k)  dx = a[r]*(weight[d]*dy - mg[r]) + b[r]*(x - shift[r]) + k[r]
      dx, dy, x: (R, D); weight: (D,); a, mg, shift, b, k: (R,)
  Fused max (FRN + TLU): three row phases with a per-row threshold tau after a per-row apply (no column affine).
  z = (x - shift[r])*scale[r] + offset[r] is recomputed in X exactly as the forward computed it; below, with
  Maximum's tie rule, g = dy where z > tau[r], dy/2 where z == tau[r], else 0, and t = dy - g the threshold's
  share (dy where z < tau[r] or either is NaN); a masked-out inf dy gives 0 (PyTorch's maximum backward).
  row_apply_max(y, x, shift, scale, offset, tau)           y = max(z, tau[r]) (NaN in z or tau gives NaN)
      x, y: (R, D); shift, scale, offset, tau: (R,)
  row_norm_apply_max(y, rstd, scale, x, weight, offset, tau, eps)   FRN + TLU forward, statistics and apply in one
      x, y: (N, C, S), the N*C rows (n, c) of S values;     call, per row: rstd = 1/sqrt(m2/S + eps) with
      rstd: (N, C) float64 OUT; scale: (N, C) OUT;          m2 = sum(x^2) (row_stats without center, the
      weight, offset, tau: (C,), per channel                operations of coefficients.rstd), scale =
                                                            X(weight[c]*rstd), y = row_apply_max with shift 0
                                                            and the row's offset[c], tau[c]
  row_backward_sums_max(sg, sgx, st, dy, x, mean, shift, scale, offset, tau)
      dy, x: (R, D); mean: (R,) float64;                    sg = sum(g), sgx = sum(g*(x - mean[r])), st = sum(t)
      shift, scale, offset, tau: (R,); sg, sgx, st: (R,) float64 OUT
  row_backward_apply_max(dx, dy, x, a, mg, shift, b, k, scale, offset, tau)
      dx, dy, x: (R, D);                                    dx = a[r]*(g - mg[r]) + b[r]*(x - shift[r]) + k[r]
      a, mg, shift, b, k, scale, offset, tau: (R,)
  row_norm_backward_max(dx, sg, sgx, st, dy, x, rstd, weight, scale, offset, tau)   FRN + TLU backward in one
      dx, dy, x: (N, C, S), rows (n, c) as the forward's;   call, row by row: row_backward_sums_max (mean 0,
      sg, sgx, st: (N, C) float64 OUT; rstd: (N, C) float64; shift 0), coefficients.backward(center=False) with
      scale: (N, C); weight, offset, tau: (C,)              weight[c], then row_backward_apply_max (the same bits)
  Fused gate (EvoNorm): three row phases with a per-row elementwise gate f of x before a per-row affine, chosen by
  the int flag ``gate``: 0 (S0) f = x*sigmoid(v[r]*x); 1 (B0) f = x/max(lo[r], u), u = v[r]*x + hi[r] (u and the
  max in X as the forward computes them; Maximum's tie rule: a tie gives half to each side, NaN all to lo). The
  backward recomputes f and its partial derivatives from x; gate 0 ignores lo and hi (their sums are 0).
  row_apply_gate(y, x, v, lo, hi, scale, offset, gate)      y = f*scale[r] + offset[r]
      x, y: (R, D); v, lo, hi, scale, offset: (R,)
  row_backward_sums_gate(sdy, sdyf, sdv, shi, slo, dy, x, v, lo, hi, gate)   per row: sdy = sum(dy),
      dy, x: (R, D); v, lo, hi: (R,);                       sdyf = sum(dy*f), sdv = sum(dy*df/dv),
      sdy, sdyf, sdv, shi, slo: (R,) float64 OUT            shi = sum(dy*df/dhi), slo = sum(dy*df/dlo)
  row_backward_apply_gate(dx, dy, x, a, shift, b, k, v, lo, hi, gate)
      dx, dy, x: (R, D);                                    dx = a[r]*dy*df/dx + b[r]*(x - shift[r]) + k[r]
      a, shift, b, k, v, lo, hi: (R,)
  evonorm_s0_backward(dx, sdy, sdyf, sdv, dy, x, v, weight, gmean, grstd, num_groups)   EvoNorm-S0's backward in
      dx, dy, x: (N, C, S); v, weight: (C,);                one call, group by group (P = C/G channels, M = P*S):
      gmean, grstd: (N, G) float64 (the group's mean, 1/std); row_backward_sums_gate (gate 0) on rows r = (n, c)
      sdy, sdyf, sdv: (N, C) float64 OUT                    with v[c], then dx = row_backward_apply_gate's with
                                                            a = X(weight[c]*grstd), shift = X(gmean), b = X(bg),
                                                            k = X(bg*(shift - gmean)), bg = -sum_c(weight[c]*sdyf)
                                                            * grstd^3/M over the group's channels
  evonorm_b0_forward(y, lo, hi, imean, irstd, mean, rstd, x, v, weight, bias, eps)   EvoNorm-B0's training forward
      x, y: (N, C, S), rows (n, c); lo, hi: (N, C) OUT;     in one call: per row (n, c) imean and m2 as row_stats's,
      imean, irstd: (N, C) float64 OUT;                     irstd = coefficients.rstd(m2, S, eps); per channel the
      mean, rstd: (C,) float64 OUT; v, weight, bias: (C,)   batch's from the rows' (Chan et al.): mean = the rows'
                                                            mean over n, m2 = sum(m2) + S*sum((imean - mean)^2),
                                                            rstd = coefficients.rstd(m2, N*S, eps); lo = X(1/rstd[c])
                                                            and hi = X(1/irstd), the gate's; y = row_apply_gate's
                                                            (gate 1) with v[c], lo, hi, weight[c], bias[c]
      keyword constant_lo (bool, default False; OPTIONS): lo (N, C) is given (eval: X(the running std)), no batch
      statistics: mean, rstd are not written (the eval forward's row_stats, NumPy and row_apply_gate in one call)
  evonorm_b0_backward(dx, dv, dweight, dbias, dy, x, v, weight, lo, hi, imean, irstd, mean, rstd)   EvoNorm-B0's
      dx, dy, x: (N, C, S), rows (n, c);                    training backward in one call: row_backward_sums_gate
      dv, dweight, dbias: (C,) OUT; v, weight: (C,);        (gate 1) on rows (n, c) with v[c], lo, hi; per channel
      lo, hi: (N, C) (the forward's); imean, irstd: (N, C)  dbias = X(sum_n sdy), dweight = X(sum_n sdyf), dv =
      float64; mean, rstd: (C,) float64 (the forward's)     X(sum_n weight*sdv), b2 = sum_n(weight*slo)*rstd/(N*S);
                                                            per row b1 = weight*shi*irstd/S, then dx =
                                                            row_backward_apply_gate's with a = weight[c], shift =
                                                            X(imean), b = X(b1 + b2), k = X(b1*(shift - imean) +
                                                            b2*(shift - mean))
      keyword constant_lo (bool, default False; OPTIONS): lo is a constant (eval: the running std), so no b2 (b =
      X(b1), k = X(b1*(shift - imean))) and mean, rstd are not read

Decorrelated batch norm (ZCA whitening of groups of channels; the math: minigrad/nn/decorrelated.py): the C channels
in G = ceil(C/group_size) groups of g = group_size, group k holding channels [k*g, min((k + 1)*g, C)) (the last one
may be short: past C its rows of cov and dshift are zeros, of B zeros); J = 2g + 1.
  zca_forward(y, cov, lam, U, W, s, shift, dshift, mean, x, weight, bias, group_size, eps)   the training forward
      x, y: (N, C, S); mean: (C,) float64 OUT;              in one call: mean = E[x] (channel_stats's); shift =
      shift: (C,) OUT; dshift, lam, s: (G, g) float64 OUT;  X(mean), dshift = mean - shift; with u = x - shift (in
      cov, U, W: (G, g, g) float64 OUT;                     X), per group: cov = sum(u u^T)/(N*S) - dshift
      weight: (G, g) float64 (padded: any value past C);    dshift^T (biased, no eps); lam, U = eigh(cov + eps I)
      bias: (C,) float64                                    (sym_eigh's); s = sqrt(max(lam, eps)); W = U diag(1/s)
                                                            U^T; y = Mx u + X(bias - M dshift), M = diag(weight) W,
                                                            Mx = X(M). Where a backend's eigensolver does not
                                                            converge (non-finite x) the reference's runs (LAPACK)
  zca_rows(B, dy, x, shift, group_size)                     the backward's GEMM operand: B[n, k] = the rows
      B: (N, G, J, S) OUT; dy, x: (N, C, S); shift: (C,)    [dy; x - shift; 1] of group k (x - shift in X)
  zca_backward_p1(P, sdy, dy, x, shift, group_size)         the backward's sums from dy and x (no rows buffer): per
      P: (G, g, g) float64 OUT; sdy: (G, g) float64 OUT;    group k, P[k, i, j] = sum over n, s of dy[n, kg+i, s]
      dy, x: (N, C, S); shift: (C,)                         u[n, kg+j, s] with u = x - shift in X, sdy[k, i] = sum
                                                            of dy[n, kg+i, s]; zeros past C
  zca_backward_dx(dx, dy, x, shift, F, group_size)          the backward's dx from dy and x: dx[n, kg+i, s] = sum_j
      dx, dy, x: (N, C, S); shift: (C,); F: (G, g, J)       F[k, i, j] dy[n, kg+j, s] + sum_j F[k, i, g+j] u[n, kg+j,
                                                            s] + F[k, i, 2g] (j < gk, u as above; F's entries past
                                                            C are not read)
  sym_eigh(lam, U, A)                                       the ascending eigenvalues and orthonormal eigenvectors
      A: (G, g, g) float64; lam: (G, g) float64 OUT;        (U's columns) of each symmetric A[k]; the reference:
      U: (G, g, g) float64 OUT                              LAPACK's; the compiled ones: tred2 + tql2
  running_average_update(running, new, momentum, scale)     running = X((1 - momentum)*running + momentum*(new*scale))
      running: (M,) IN/OUT; new: (M,) float64               in float64 (decorrelated BN's running mean, covariance
                                                            and whitening, flattened); the reference rounds
                                                            (1 - momentum)*running to X first (NumPy's promotion of
                                                            a float times a float32 array): float32 within an ulp
  zca_running_update(running_mean, running_cov, running_whitening, mean, cov, whitening, momentum, scale,
                     group_size)                            the three running averages of one training step:
      running_mean: (C,) IN/OUT; running_cov,               running_average_update's of running_mean from mean,
      running_whitening: (G, g, g) IN/OUT; mean: (C,)       running_cov from cov*scale (scale m/(m - 1): unbiased)
      float64; cov, whitening: (G, g, g) float64            and running_whitening from whitening, where the last
                                                            group's padding (rows or columns past C) averages in
                                                            the identity instead
"""
import math

import numpy as np

from minigrad.kernels.rules import (FLOATS, check_eps, check_num_groups, pool_out_size, strided_phases_fit,
                                    window_out_size)
from minigrad.kernels.threads import get_num_threads

F64 = np.dtype(np.float64)
I64 = np.dtype(np.int64)

# kernel name -> (argument names in order, {array argument: (shape symbols, dtype rule)}, scalar arguments)
# dtype rule: "X" the dtype of the first array argument with that rule, "f64" float64, "i64" int64.
SPECS = {
    "log_softmax_forward": (("y", "x"), {"y": ("RD", "X"), "x": ("RD", "X")}),
    "log_softmax_backward": (("dx", "dy", "y"), {"dx": ("RD", "X"), "dy": ("RD", "X"), "y": ("RD", "X")}),
    "cross_entropy_forward": (("logp", "picked", "x", "target"),
                              {"logp": ("RD", "X"), "picked": ("R", "f64"), "x": ("RD", "X"), "target": ("R", "i64")}),
    "cross_entropy_backward": (("dx", "logp", "target", "scale"),
                               {"dx": ("RD", "X"), "logp": ("RD", "X"), "target": ("R", "i64")}),
    "batch_norm_forward": (
        ("y", "mean", "rstd", "x", "weight", "bias", "eps"),
        {"y": ("NCS", "X"), "mean": ("C", "f64"), "rstd": ("C", "f64"), "x": ("NCS", "X"),
         "weight": ("C", "X"), "bias": ("C", "X")},
    ),
    "batch_renorm_forward": (
        ("y", "mean", "rstd", "r", "d", "x", "weight", "bias", "running_mean", "running_var", "r_max", "d_max", "eps"),
        {"y": ("NCS", "X"), "mean": ("C", "f64"), "rstd": ("C", "f64"), "r": ("C", "f64"), "d": ("C", "f64"),
         "x": ("NCS", "X"), "weight": ("C", "X"), "bias": ("C", "X"), "running_mean": ("C", "X"),
         "running_var": ("C", "X")},
    ),
    "batch_norm_inference": (
        ("y", "x", "running_mean", "running_var", "weight", "bias", "eps"),
        {"y": ("NCS", "X"), "x": ("NCS", "X"), "running_mean": ("C", "X"), "running_var": ("C", "X"),
         "weight": ("C", "X"), "bias": ("C", "X")},
    ),
    "batch_norm_backward": (
        ("dx", "dweight", "dbias", "dy", "x", "mean", "rstd", "weight"),
        {"dx": ("NCS", "X"), "dweight": ("C", "X"), "dbias": ("C", "X"), "dy": ("NCS", "X"),
         "x": ("NCS", "X"), "mean": ("C", "f64"), "rstd": ("C", "f64"), "weight": ("C", "X")},
    ),
    "ghost_batch_norm_forward": (
        ("y", "mean", "rstd", "x", "weight", "bias", "chunk", "eps"),
        {"y": ("NCS", "X"), "mean": ("GC", "f64"), "rstd": ("GC", "f64"), "x": ("NCS", "X"),
         "weight": ("C", "X"), "bias": ("C", "X")},
    ),
    "ghost_batch_norm_backward": (
        ("dx", "dweight", "dbias", "dy", "x", "mean", "rstd", "weight", "chunk"),
        {"dx": ("NCS", "X"), "dweight": ("C", "X"), "dbias": ("C", "X"), "dy": ("NCS", "X"),
         "x": ("NCS", "X"), "mean": ("GC", "f64"), "rstd": ("GC", "f64"), "weight": ("C", "X")},
    ),
    "group_norm_forward": (
        ("y", "mean", "rstd", "x", "weight", "bias", "num_groups", "eps"),
        {"y": ("NCS", "X"), "mean": ("NG", "f64"), "rstd": ("NG", "f64"), "x": ("NCS", "X"),
         "weight": ("C", "X"), "bias": ("C", "X")},
    ),
    "group_norm_backward": (
        ("dx", "dweight", "dbias", "dy", "x", "mean", "rstd", "weight", "num_groups"),
        {"dx": ("NCS", "X"), "dweight": ("C", "X"), "dbias": ("C", "X"), "dy": ("NCS", "X"),
         "x": ("NCS", "X"), "mean": ("NG", "f64"), "rstd": ("NG", "f64"), "weight": ("C", "X")},
    ),
    "im2col": (("cols", "x", "kh", "kw", "stride", "padding", "dilation"),
               {"cols": ("KL", "X"), "x": ("NCHW", "X")}),
    "col2im": (("dx", "cols", "kh", "kw", "stride", "padding", "dilation"),
               {"dx": ("NCHW", "X"), "cols": ("KL", "X")}),
    "conv2d_direct": (("y", "x", "weight", "kh", "kw", "padding"),
                      {"y": ("NOPQ", "X"), "x": ("NCHW", "X"), "weight": ("OK", "X")}),
    "conv2d_direct_weight_grad": (("dweight", "x", "dy", "kh", "kw", "padding"),
                                  {"dweight": ("OK", "X"), "x": ("NCHW", "X"), "dy": ("NOPQ", "X")}),
    "conv2d_direct_backward": (("dx", "dweight", "x", "dy", "weight", "kh", "kw", "padding"),
                               {"dx": ("NCHW", "X"), "dweight": ("OK", "X"), "x": ("NCHW", "X"), "dy": ("NOPQ", "X"),
                                "weight": ("OK", "X")}),
    "conv2d_strided": (("y", "x", "weight", "kh", "kw", "stride", "padding"),
                       {"y": ("NOPQ", "X"), "x": ("NCHW", "X"), "weight": ("OK", "X")}),
    "conv2d_strided_input_grad": (("dx", "dy", "weight", "kh", "kw", "stride", "padding"),
                                  {"dx": ("NCHW", "X"), "dy": ("NOPQ", "X"), "weight": ("OK", "X")}),
    "conv2d_strided_weight_grad": (("dweight", "x", "dy", "kh", "kw", "stride", "padding"),
                                   {"dweight": ("OK", "X"), "x": ("NCHW", "X"), "dy": ("NOPQ", "X")}),
    "conv2d_strided_backward": (("dx", "dweight", "x", "dy", "weight", "kh", "kw", "stride", "padding"),
                                {"dx": ("NCHW", "X"), "dweight": ("OK", "X"), "x": ("NCHW", "X"),
                                 "dy": ("NOPQ", "X"), "weight": ("OK", "X")}),
    "max_pool2d_forward": (("y", "argmax", "x", "kh", "kw", "stride", "padding"),
                           {"y": ("NCPQ", "X"), "argmax": ("NCPQ", "i64"), "x": ("NCHW", "X")}),
    "max_pool2d_backward": (("dx", "dy", "argmax"),
                            {"dx": ("NCHW", "X"), "dy": ("NCPQ", "X"), "argmax": ("NCPQ", "i64")}),
    "running_stats_update": (("running_mean", "running_var", "mean", "rstd", "momentum", "eps", "count"),
                             {"running_mean": ("C", "X"), "running_var": ("C", "X"), "mean": ("NC", "f64"),
                              "rstd": ("NC", "f64")}),
    "sgd_update": (("param", "momentum_buffer", "grad", "lr", "momentum", "dampening", "weight_decay", "nesterov",
                    "first"),
                   {"param": ("M", "X"), "momentum_buffer": ("M", "X"), "grad": ("M", "X")}),
    "adam_update": (("param", "exp_avg", "exp_avg_sq", "grad", "lr", "beta1", "beta2", "eps", "weight_decay",
                     "decoupled", "step"),
                    {"param": ("M", "X"), "exp_avg": ("M", "X"), "exp_avg_sq": ("M", "X"), "grad": ("M", "X")}),
    "add": (("y", "a", "b"), {"y": ("M", "X"), "a": ("M", "X"), "b": ("M", "X")}),
    "add_relu_forward": (("y", "a", "b"), {"y": ("M", "X"), "a": ("M", "X"), "b": ("M", "X")}),
    "add_relu_backward": (("dx", "dy", "y"), {"dx": ("M", "X"), "dy": ("M", "X"), "y": ("M", "X")}),
    "add_relu_backward_sum": (("dx", "dy0", "dy1", "y"),
                              {"dx": ("M", "X"), "dy0": ("M", "X"), "dy1": ("M", "X"), "y": ("M", "X")}),
    "sigmoid_forward": (("y", "x"), {"y": ("M", "X"), "x": ("M", "X")}),
    "sigmoid_backward": (("dx", "dy", "y"), {"dx": ("M", "X"), "dy": ("M", "X"), "y": ("M", "X")}),
    # phase kernels (see the module docstring)
    "channel_stats": (("mean", "m2", "x", "center"),
                      {"mean": ("C", "f64"), "m2": ("C", "f64"), "x": ("NCS", "X")}),
    "channel_apply": (("y", "x", "shift", "scale", "offset"),
                      {"y": ("NCS", "X"), "x": ("NCS", "X"), "shift": ("C", "X"), "scale": ("C", "X"),
                       "offset": ("C", "X")}),
    "channel_backward_sums": (("sdy", "sdyx", "dy", "x", "mean"),
                              {"sdy": ("C", "f64"), "sdyx": ("C", "f64"), "dy": ("NCS", "X"), "x": ("NCS", "X"),
                               "mean": ("C", "f64")}),
    "channel_backward_apply": (("dx", "dy", "x", "a", "mdy", "shift", "b", "k"),
                               {"dx": ("NCS", "X"), "dy": ("NCS", "X"), "x": ("NCS", "X"), "a": ("C", "X"),
                                "mdy": ("C", "X"), "shift": ("C", "X"), "b": ("C", "X"), "k": ("C", "X")}),
    "channel_apply_relu": (("y", "x", "shift", "scale", "offset"),
                           {"y": ("NCS", "X"), "x": ("NCS", "X"), "shift": ("C", "X"), "scale": ("C", "X"),
                            "offset": ("C", "X")}),
    "channel_backward_sums_relu": (("sdy", "sdyx", "dy", "x", "mean", "shift", "scale", "offset"),
                                   {"sdy": ("C", "f64"), "sdyx": ("C", "f64"), "dy": ("NCS", "X"),
                                    "x": ("NCS", "X"), "mean": ("C", "f64"), "shift": ("C", "X"),
                                    "scale": ("C", "X"), "offset": ("C", "X")}),
    "channel_backward_apply_relu": (("dx", "dy", "x", "a", "mdy", "shift", "b", "k", "scale", "offset"),
                                    {"dx": ("NCS", "X"), "dy": ("NCS", "X"), "x": ("NCS", "X"), "a": ("C", "X"),
                                     "mdy": ("C", "X"), "shift": ("C", "X"), "b": ("C", "X"), "k": ("C", "X"),
                                     "scale": ("C", "X"), "offset": ("C", "X")}),
    "row_stats": (("mean", "m2", "x", "center"),
                  {"mean": ("R", "f64"), "m2": ("R", "f64"), "x": ("RD", "X")}),
    "row_apply": (("y", "x", "shift", "scale", "offset", "weight", "bias"),
                  {"y": ("RD", "X"), "x": ("RD", "X"), "shift": ("R", "X"), "scale": ("R", "X"),
                   "offset": ("R", "X"), "weight": ("D", "X"), "bias": ("D", "X")}),
    "row_backward_sums": (("sg", "sgx", "dweight", "dbias", "dy", "x", "mean", "rstd", "weight"),
                          {"sg": ("R", "f64"), "sgx": ("R", "f64"), "dweight": ("D", "X"), "dbias": ("D", "X"),
                           "dy": ("RD", "X"), "x": ("RD", "X"), "mean": ("R", "f64"), "rstd": ("R", "f64"),
                           "weight": ("D", "X")}),
    "row_backward_apply": (("dx", "dy", "x", "weight", "a", "mg", "shift", "b", "k"),
                           {"dx": ("RD", "X"), "dy": ("RD", "X"), "x": ("RD", "X"), "weight": ("D", "X"),
                            "a": ("R", "X"), "mg": ("R", "X"), "shift": ("R", "X"), "b": ("R", "X"),
                            "k": ("R", "X")}),
    "row_apply_max": (("y", "x", "shift", "scale", "offset", "tau"),
                      {"y": ("RD", "X"), "x": ("RD", "X"), "shift": ("R", "X"), "scale": ("R", "X"),
                       "offset": ("R", "X"), "tau": ("R", "X")}),
    "row_norm_apply_max": (("y", "rstd", "scale", "x", "weight", "offset", "tau", "eps"),
                           {"y": ("NCS", "X"), "rstd": ("NC", "f64"), "scale": ("NC", "X"), "x": ("NCS", "X"),
                            "weight": ("C", "X"), "offset": ("C", "X"), "tau": ("C", "X")}),
    "row_backward_sums_max": (("sg", "sgx", "st", "dy", "x", "mean", "shift", "scale", "offset", "tau"),
                              {"sg": ("R", "f64"), "sgx": ("R", "f64"), "st": ("R", "f64"), "dy": ("RD", "X"),
                               "x": ("RD", "X"), "mean": ("R", "f64"), "shift": ("R", "X"), "scale": ("R", "X"),
                               "offset": ("R", "X"), "tau": ("R", "X")}),
    "row_backward_apply_max": (("dx", "dy", "x", "a", "mg", "shift", "b", "k", "scale", "offset", "tau"),
                               {"dx": ("RD", "X"), "dy": ("RD", "X"), "x": ("RD", "X"), "a": ("R", "X"),
                                "mg": ("R", "X"), "shift": ("R", "X"), "b": ("R", "X"), "k": ("R", "X"),
                                "scale": ("R", "X"), "offset": ("R", "X"), "tau": ("R", "X")}),
    "row_norm_backward_max": (("dx", "sg", "sgx", "st", "dy", "x", "rstd", "weight", "scale", "offset", "tau"),
                              {"dx": ("NCS", "X"), "sg": ("NC", "f64"), "sgx": ("NC", "f64"), "st": ("NC", "f64"),
                               "dy": ("NCS", "X"), "x": ("NCS", "X"), "rstd": ("NC", "f64"), "weight": ("C", "X"),
                               "scale": ("NC", "X"), "offset": ("C", "X"), "tau": ("C", "X")}),
    "row_apply_gate": (("y", "x", "v", "lo", "hi", "scale", "offset", "gate"),
                       {"y": ("RD", "X"), "x": ("RD", "X"), "v": ("R", "X"), "lo": ("R", "X"), "hi": ("R", "X"),
                        "scale": ("R", "X"), "offset": ("R", "X")}),
    "row_backward_sums_gate": (("sdy", "sdyf", "sdv", "shi", "slo", "dy", "x", "v", "lo", "hi", "gate"),
                               {"sdy": ("R", "f64"), "sdyf": ("R", "f64"), "sdv": ("R", "f64"),
                                "shi": ("R", "f64"), "slo": ("R", "f64"), "dy": ("RD", "X"), "x": ("RD", "X"),
                                "v": ("R", "X"), "lo": ("R", "X"), "hi": ("R", "X")}),
    "evonorm_s0_backward": (("dx", "sdy", "sdyf", "sdv", "dy", "x", "v", "weight", "gmean", "grstd", "num_groups"),
                            {"dx": ("NCS", "X"), "sdy": ("NC", "f64"), "sdyf": ("NC", "f64"), "sdv": ("NC", "f64"),
                             "dy": ("NCS", "X"), "x": ("NCS", "X"), "v": ("C", "X"), "weight": ("C", "X"),
                             "gmean": ("NG", "f64"), "grstd": ("NG", "f64")}),
    "evonorm_b0_forward": (("y", "lo", "hi", "imean", "irstd", "mean", "rstd", "x", "v", "weight", "bias", "eps"),
                           {"y": ("NCS", "X"), "lo": ("NC", "X"), "hi": ("NC", "X"), "imean": ("NC", "f64"),
                            "irstd": ("NC", "f64"), "mean": ("C", "f64"), "rstd": ("C", "f64"), "x": ("NCS", "X"),
                            "v": ("C", "X"), "weight": ("C", "X"), "bias": ("C", "X")}),
    "evonorm_b0_backward": (("dx", "dv", "dweight", "dbias", "dy", "x", "v", "weight", "lo", "hi", "imean", "irstd",
                             "mean", "rstd"),
                            {"dx": ("NCS", "X"), "dv": ("C", "X"), "dweight": ("C", "X"), "dbias": ("C", "X"),
                             "dy": ("NCS", "X"), "x": ("NCS", "X"), "v": ("C", "X"), "weight": ("C", "X"),
                             "lo": ("NC", "X"), "hi": ("NC", "X"), "imean": ("NC", "f64"), "irstd": ("NC", "f64"),
                             "mean": ("C", "f64"), "rstd": ("C", "f64")}),
    "row_backward_apply_gate": (("dx", "dy", "x", "a", "shift", "b", "k", "v", "lo", "hi", "gate"),
                                {"dx": ("RD", "X"), "dy": ("RD", "X"), "x": ("RD", "X"), "a": ("R", "X"),
                                 "shift": ("R", "X"), "b": ("R", "X"), "k": ("R", "X"), "v": ("R", "X"),
                                 "lo": ("R", "X"), "hi": ("R", "X")}),
    # decorrelated batch norm (see the module docstring)
    "zca_forward": (("y", "cov", "lam", "U", "W", "s", "shift", "dshift", "mean", "x", "weight", "bias", "group_size",
                     "eps"),
                    {"y": ("NCS", "X"), "cov": ("Ggg", "f64"), "lam": ("Gg", "f64"), "U": ("Ggg", "f64"),
                     "W": ("Ggg", "f64"), "s": ("Gg", "f64"), "shift": ("C", "X"), "dshift": ("Gg", "f64"),
                     "x": ("NCS", "X"), "mean": ("C", "f64"), "weight": ("Gg", "f64"), "bias": ("C", "f64")}),
    "zca_rows": (("B", "dy", "x", "shift", "group_size"),
                 {"B": ("NGJS", "X"), "dy": ("NCS", "X"), "x": ("NCS", "X"), "shift": ("C", "X")}),
    "zca_backward_p1": (("P", "sdy", "dy", "x", "shift", "group_size"),
                        {"P": ("Ggg", "f64"), "sdy": ("Gg", "f64"), "dy": ("NCS", "X"), "x": ("NCS", "X"),
                         "shift": ("C", "X")}),
    "zca_backward_dx": (("dx", "dy", "x", "shift", "F", "group_size"),
                        {"dx": ("NCS", "X"), "dy": ("NCS", "X"), "x": ("NCS", "X"), "shift": ("C", "X"),
                         "F": ("GgJ", "X")}),
    "sym_eigh": (("lam", "U", "A"), {"lam": ("Gg", "f64"), "U": ("Ggg", "f64"), "A": ("Ggg", "f64")}),
    "running_average_update": (("running", "new", "momentum", "scale"), {"running": ("M", "X"), "new": ("M", "f64")}),
    "zca_running_update": (("running_mean", "running_cov", "running_whitening", "mean", "cov", "whitening", "momentum",
                            "scale", "group_size"),
                           {"running_mean": ("C", "X"), "running_cov": ("Ggg", "X"), "running_whitening": ("Ggg", "X"),
                            "mean": ("C", "f64"), "cov": ("Ggg", "f64"), "whitening": ("Ggg", "f64")}),
}

# kernel name -> its output arguments (written by the kernel; everything else is read only)
OUTPUTS = {
    "log_softmax_forward": ("y",),
    "log_softmax_backward": ("dx",),
    "cross_entropy_forward": ("logp", "picked"),
    "cross_entropy_backward": ("dx",),
    "batch_norm_forward": ("y", "mean", "rstd"),
    "batch_renorm_forward": ("y", "mean", "rstd", "r", "d"),
    "batch_norm_inference": ("y",),
    "batch_norm_backward": ("dx", "dweight", "dbias"),
    "ghost_batch_norm_forward": ("y", "mean", "rstd"),
    "ghost_batch_norm_backward": ("dx", "dweight", "dbias"),
    "group_norm_forward": ("y", "mean", "rstd"),
    "group_norm_backward": ("dx", "dweight", "dbias"),
    "im2col": ("cols",),
    "col2im": ("dx",),
    "conv2d_direct": ("y",),
    "conv2d_direct_weight_grad": ("dweight",),
    "conv2d_direct_backward": ("dx", "dweight"),
    "conv2d_strided": ("y",),
    "conv2d_strided_input_grad": ("dx",),
    "conv2d_strided_weight_grad": ("dweight",),
    "conv2d_strided_backward": ("dx", "dweight"),
    "max_pool2d_forward": ("y", "argmax"),
    "max_pool2d_backward": ("dx",),
    "running_stats_update": ("running_mean", "running_var"),
    "sgd_update": ("param", "momentum_buffer"),
    "adam_update": ("param", "exp_avg", "exp_avg_sq"),
    "add": ("y",),
    "add_relu_forward": ("y",),
    "add_relu_backward": ("dx",),
    "add_relu_backward_sum": ("dx",),
    "sigmoid_forward": ("y",),
    "sigmoid_backward": ("dx",),
    "channel_stats": ("mean", "m2"),
    "channel_apply": ("y",),
    "channel_backward_sums": ("sdy", "sdyx"),
    "channel_backward_apply": ("dx",),
    "channel_apply_relu": ("y",),
    "channel_backward_sums_relu": ("sdy", "sdyx"),
    "channel_backward_apply_relu": ("dx",),
    "row_stats": ("mean", "m2"),
    "row_apply": ("y",),
    "row_backward_sums": ("sg", "sgx", "dweight", "dbias"),
    "row_backward_apply": ("dx",),
    "row_apply_max": ("y",),
    "row_norm_apply_max": ("y", "rstd", "scale"),
    "row_backward_sums_max": ("sg", "sgx", "st"),
    "row_backward_apply_max": ("dx",),
    "row_norm_backward_max": ("dx", "sg", "sgx", "st"),
    "row_apply_gate": ("y",),
    "row_backward_sums_gate": ("sdy", "sdyf", "sdv", "shi", "slo"),
    "row_backward_apply_gate": ("dx",),
    "evonorm_s0_backward": ("dx", "sdy", "sdyf", "sdv"),
    "evonorm_b0_forward": ("y", "lo", "hi", "imean", "irstd", "mean", "rstd"),
    "evonorm_b0_backward": ("dx", "dv", "dweight", "dbias"),
    "zca_forward": ("y", "cov", "lam", "U", "W", "s", "shift", "dshift", "mean"),
    "zca_rows": ("B",),
    "zca_backward_p1": ("P", "sdy"),
    "zca_backward_dx": ("dx",),
    "sym_eigh": ("lam", "U"),
    "running_average_update": ("running",),
    "zca_running_update": ("running_mean", "running_cov", "running_whitening"),
}

# kernel name -> its optional keywords, {name: (shape symbols, dtype rule)} for an array (the backends' default: None)
# or "bool" for a flag (default False); ``check_options`` holds their rules, and the compiled checked call
# (``CheckedKeywordCall``) accepts what it accepts and hands the rest to it
OPTIONS = {
    "batch_norm_backward": {"r": ("C", "f64"), "d": ("C", "f64")},
    "evonorm_b0_backward": {"constant_lo": "bool"},
    "evonorm_b0_forward": {"constant_lo": "bool"},
}


def check_options(kernel, args, options):
    """Validate the keywords of ``kernel`` (OPTIONS) against the positional ``args``, checked first; returns
    the element count of ``args``."""
    dims, elements = _checked(kernel, args)
    spec = OPTIONS[kernel]
    for name in options:
        if name not in spec:
            raise TypeError(f"{kernel}() got an unexpected keyword argument {name!r} (takes {', '.join(spec)})")
    for name in options:
        if spec[name] == "bool" and not isinstance(options[name], (bool, np.bool_)):
            raise TypeError(f"{kernel}: {name} must be a bool, got {options[name]!r}")
    given = [name for name in spec if spec[name] != "bool" and options.get(name) is not None]
    if given and len(given) != len(spec):
        raise ValueError(f"{kernel}: {' and '.join(spec)} must be given together, got only {', '.join(given)}")
    for name in given:
        value, (symbols, rule) = options[name], spec[name]
        if not isinstance(value, np.ndarray):
            raise TypeError(f"{kernel}: argument {name!r} must be a numpy.ndarray, got {type(value).__name__}")
        if value.dtype != _RULES[rule]:
            raise TypeError(f"{kernel}: argument {name!r} must have dtype {_RULES[rule]}, got {value.dtype}")
        want = tuple(dims[sym] for sym in symbols)
        if value.shape != want:
            raise ValueError(f"{kernel}: argument {name!r} must have shape ({', '.join(symbols)}) = {want}, got "
                             f"{value.shape}")
        if not value.flags.c_contiguous:
            raise ValueError(f"{kernel}: argument {name!r} must be C-contiguous")
    return elements


# list kernels: name -> (the kernel it applies to each group of arrays, the names of its tuple arguments). The call
# takes a tuple per array argument of that kernel (its i-th group: the i-th array of each tuple, then the shared
# scalars); each group is checked as a call of that kernel, and groups may differ in size and dtype. NOTE: one
# call where an optimizer made one per parameter (the MLP step's 11 SGD updates: a Python call and its arguments
# each), docs/compile.md, Session 31
LIST_SPECS = {
    "sgd_update_many": ("sgd_update", ("params", "momentum_buffers", "grads")),
}


def check_list(kernel, args):
    """Validate the arguments of list kernel ``kernel`` as LIST_SPECS says; returns the element count of all
    groups."""
    element, lists = LIST_SPECS[kernel]
    k = len(lists)
    if len(args) != len(SPECS[element][0]):
        raise TypeError(f"{kernel}() takes {len(SPECS[element][0])} arguments ({', '.join(lists)}, "
                        f"{', '.join(SPECS[element][0][k:])}), got {len(args)}")
    for name, value in zip(lists, args[:k]):
        if type(value) is not tuple:
            raise TypeError(f"{kernel}: argument {name!r} must be a tuple of arrays, got {type(value).__name__}")
    if len({len(v) for v in args[:k]}) > 1:
        raise ValueError(f"{kernel}: {', '.join(lists)} must have one length, got "
                         f"{', '.join(str(len(v)) for v in args[:k])}")
    total = 0
    for i, group in enumerate(zip(*args[:k])):
        try:
            total += _checked(element, (*group, *args[k:]))[1]
        except (TypeError, ValueError) as e:
            raise type(e)(f"{kernel}: group {i}: {e}") from None
    return total


_RULES = {"f64": F64, "i64": I64}


def _window(kernel, names, args, dims):
    """Check the window arguments (kh, kw ints >= 1; stride, dilation pairs >= 1; padding pair >= 0; their
    arithmetic within 64-bit indices) and the output size they give; returns (OH, OW)."""
    get = dict(zip(names, args)).get
    for name in ("kh", "kw"):
        v = get(name)
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{kernel}: {name} must be an int >= 1, got {v!r}")
    for name, low in (("stride", 1), ("padding", 0), ("dilation", 1)):
        if name not in names:
            continue
        v = get(name)
        if not (isinstance(v, tuple) and len(v) == 2 and all(
                not isinstance(a, bool) and isinstance(a, (int, np.integer)) and a >= low for a in v)):
            raise ValueError(f"{kernel}: {name} must be a pair (h, w) of ints >= {low}, got {v!r}")
    k, (sh, sw), (ph, pw) = (get("kh"), get("kw")), get("stride") or (1, 1), get("padding")
    dh, dw = get("dilation") or (1, 1)
    if kernel.startswith("conv2d_strided") and not (strided_phases_fit(dims["H"], k[0], sh, ph)
                                                     and strided_phases_fit(dims["W"], k[1], sw, pw)):
        raise ValueError(f"{kernel}: stride {(sh, sw)} must be at most twice the padded input size plus the kernel "
                         f"size, {(2 * (dims['H'] + 2 * ph + k[0]), 2 * (dims['W'] + 2 * pw + k[1]))} "
                         f"(rules.strided_phases_fit)")
    if kernel == "conv2d_direct_backward" and (ph >= k[0] or pw >= k[1]):  # NOTE: dx's padding k-1-p >= 0
        raise ValueError(f"{kernel}: padding {(ph, pw)} must be below the kernel size {k}")
    if kernel.startswith("max_pool") and (ph > k[0] // 2 or pw > k[1] // 2):
        raise ValueError(f"{kernel}: padding {(ph, pw)} must be at most half the kernel size {k}")
    OH = window_out_size(kernel, dims["H"], k[0], sh, ph, dh)
    OW = window_out_size(kernel, dims["W"], k[1], sw, pw, dw)
    if (OH < 1 or OW < 1) and not (kernel.startswith("max_pool") and min(
            pool_out_size(kernel, dims["H"], k[0], sh, ph, 1, True),
            pool_out_size(kernel, dims["W"], k[1], sw, pw, 1, True)) >= 1):  # NOTE: a ceil_mode window may fit
        raise ValueError(f"{kernel}: input {dims['H']}x{dims['W']} is too small for this window: output size "
                         f"would be {OH}x{OW}")
    return OH, OW


# dimension symbols, numbered for the compiled checks (minigrad/_ext/_check.pyx); a kernel's element count is the
# product of its sizes of N, C, S, R, D, H, W, M
SYMBOLS = ("N", "C", "S", "R", "D", "G", "H", "W", "P", "Q", "K", "L", "M", "O", "g", "J")
assert len(SYMBOLS) <= 16  # NOTE: _check.pyx's MAX_SYMBOLS: its unchecked C array of sizes has 16 entries
_ELEMENT_SYMBOLS = tuple(SYMBOLS.index(s) for s in "NCSRDHWM")

try:
    from minigrad._ext._check import CheckedCall as _CheckedCall
    from minigrad._ext._check import CheckedKeywordCall as _CheckedKeywordCall
    from minigrad._ext._check import accept as _accept
except ImportError:  # NOTE: extensions not built: the Python checks below do all the work
    _accept = _CheckedCall = _CheckedKeywordCall = None


def _option_plan(kernel):
    """``kernel``'s keywords (OPTIONS) for the compiled checked call: per keyword (name, symbol ids, dtype
    number) for an array, (name, None, -1) for a flag."""
    return tuple((name, None, -1) if rule == "bool" else
                 (name, tuple(SYMBOLS.index(s) for s in rule[0]), _RULES[rule[1]].num)
                 for name, rule in OPTIONS[kernel].items())


def _plan(kernel):
    """The checks of ``kernel`` precomputed once: the argument names; per array (position, name, dim symbols, fixed
    dtype or None for X, output?); the same for the compiled accept path; the position of eps (or None); whether
    ``_check_scalars`` has work, and which (groups, a window, pooling indices, the center flag, ...)."""
    names, arrays = SPECS[kernel]
    plan = [(i, name, arrays[name][0], _RULES.get(arrays[name][1]), name in OUTPUTS[kernel])
            for i, name in enumerate(names) if name in arrays]
    fast = tuple((i, tuple(SYMBOLS.index(s) for s in symbols), fixed.num if fixed is not None else -1, output)
                 for i, name, symbols, fixed, output in plan)
    # NOTE: the scalar checks that apply, as a set: _check_scalars tests membership there, not in the names
    scalars = frozenset(s for s in ("center", "gate", "r_max", "chunk", "num_groups", "group_size", "kh")
                        if s in names)
    if "argmax" in names and kernel.endswith("backward"):
        scalars |= {"argmax"}
    # NOTE: eps >= 0 is the normalizations' rule; Adam's eps is checked by the optimizer
    eps_at = names.index("eps") if "eps" in names and ("norm" in kernel or kernel == "zca_forward") else None
    return names, plan, fast, eps_at, scalars


_PLANS = {kernel: _plan(kernel) for kernel in SPECS}


def check(kernel, args):
    """Validate the arguments of ``kernel`` (a tuple in the order of SPECS); raise ValueError/TypeError naming
    the argument and what was expected. Returns the dimension sizes by symbol; the kernels receive the arrays
    unchanged."""
    return _checked(kernel, args)[0]


def _checked(kernel, args):
    """(dims, element count) of valid arguments; raises on invalid ones. The array checks run compiled when the
    extensions are built (an accept-only fast path); on any failure the Python rules below run to name the error."""
    names, plan, fast, eps_at, scalars = _PLANS[kernel]
    accepted = _accept(args, len(names), fast, SYMBOLS, _ELEMENT_SYMBOLS) if _accept is not None else None
    if accepted is None:
        dims = _check_arrays(kernel, names, plan, args)
        accepted = dims, _elements(dims)
    dims = accepted[0]
    if eps_at is not None:
        eps = args[eps_at]
        if not (type(eps) is float and 0.0 <= eps < math.inf):  # NOTE: the common case without a call
            check_eps(kernel, eps)
    if scalars:
        _check_scalars(kernel, names, args, dims, scalars)
    return accepted


def _check_arrays(kernel, names, plan, args):
    """The array rules, in Python: type, dtype, rank, C-contiguity, writeable outputs, shared sizes, non-empty."""
    if len(args) != len(names):
        raise TypeError(f"{kernel}() takes {len(names)} arguments ({', '.join(names)}), got {len(args)}")
    dims = {}
    xdtype = None
    for i, name, symbols, fixed, output in plan:
        value = args[i]
        if not isinstance(value, np.ndarray):
            raise TypeError(f"{kernel}: argument {name!r} must be a numpy.ndarray, got {type(value).__name__}")
        if xdtype is None and fixed is None:
            if value.dtype not in FLOATS:
                raise TypeError(f"{kernel}: argument {name!r} must be float32 or float64, got {value.dtype}")
            xdtype = value.dtype
        want = fixed or xdtype
        if value.dtype != want:
            raise TypeError(f"{kernel}: argument {name!r} must have dtype {want}, got {value.dtype}")
        if value.ndim != len(symbols):
            raise ValueError(f"{kernel}: argument {name!r} must have {len(symbols)} dims "
                             f"({', '.join(symbols)}), got shape {value.shape}")
        flags = value.flags
        if not flags.c_contiguous:
            raise ValueError(f"{kernel}: argument {name!r} must be C-contiguous")
        if output and not flags.writeable:
            raise ValueError(f"{kernel}: output {name!r} must be writeable")
        for sym, size in zip(symbols, value.shape):
            if dims.setdefault(sym, size) != size:
                raise ValueError(f"{kernel}: argument {name!r} has shape {value.shape}, but {sym}={dims[sym]} "
                                 f"from the arguments before it")
    if 0 in dims.values():
        raise ValueError(f"{kernel}: the kernels take non-empty arrays, got sizes {dims} (the functionals return "
                         f"empty inputs unchanged without calling a kernel)")
    return dims


def _check_scalars(kernel, names, args, dims, which):
    """num_groups against C and G; group_size against C, G, g and J; the window arguments and the output size they
    give; pooling indices; the center and gate flags; Batch Renorm's clip bounds. ``which``: the checks that apply
    (``_plan``'s set)."""
    if "center" in which:
        center = args[names.index("center")]
        if not isinstance(center, (bool, np.bool_)):
            raise TypeError(f"{kernel}: center must be a bool, got {center!r}")
    if "gate" in which:
        gate = args[names.index("gate")]
        if type(gate) is not int or gate not in (0, 1):  # NOTE: the nogil code switches on it
            raise ValueError(f"{kernel}: gate must be the int 0 (sigmoid, EvoNorm-S0) or 1 (max, EvoNorm-B0), "
                             f"got {gate!r}")
    if "r_max" in which:
        for name, low in (("r_max", 1.0), ("d_max", 0.0)):
            v = args[names.index(name)]
            if type(v) is not float or not low <= v < math.inf:
                raise ValueError(f"{kernel}: {name} must be a finite float >= {low}, got {v!r}")
    if "chunk" in which:
        chunk = args[names.index("chunk")]
        if type(chunk) is not int or chunk < 1:  # NOTE: the nogil loop steps by it
            raise ValueError(f"{kernel}: chunk must be an int >= 1 (samples per chunk), got {chunk!r}")
        g = -(-dims["N"] // chunk)
        if dims["G"] != g:
            raise ValueError(f"{kernel}: mean and rstd must have shape (ceil(N/chunk), C) = ({g}, {dims['C']}), "
                             f"got ({dims['G']}, {dims['C']})")
    if "num_groups" in which:
        g = check_num_groups(kernel, args[names.index("num_groups")], dims["C"])
        if dims["G"] != g:
            raise ValueError(f"{kernel}: mean and rstd must have shape (N, num_groups=({g})), "
                             f"got G={dims['G']}")
    if "group_size" in which:
        g = args[names.index("group_size")]
        if isinstance(g, bool) or not isinstance(g, (int, np.integer)) or g < 1:
            raise ValueError(f"{kernel}: group_size must be an int >= 1, got {g!r}")
        G = -(-dims["C"] // g)
        if dims["G"] != G:
            raise ValueError(f"{kernel}: G must be ceil(C/group_size) = {G} (C={dims['C']}, group_size={g}), "
                             f"got G={dims['G']}")
        if dims.get("g", g) != g:
            raise ValueError(f"{kernel}: the (G, g, g) and (G, g) arguments must have g = group_size = {g}, "
                             f"got g={dims['g']}")
        if dims.get("J", 2 * g + 1) != 2 * g + 1:
            if "B" in names:
                raise ValueError(f"{kernel}: B must have shape (N, G, 2*group_size + 1, S) = ({dims['N']}, {G}, "
                                 f"{2 * g + 1}, {dims['S']}), got J={dims['J']}")
            raise ValueError(f"{kernel}: F must have shape (G, group_size, 2*group_size + 1) = ({G}, {g}, "
                             f"{2 * g + 1}), got J={dims['J']}")
    if "kh" in which:
        # NOTE: a geometry accepted once is accepted again (a model calls the same layers every step)
        key = _window_key(kernel, args, dims)
        if key is None or key not in _WINDOWS_OK:
            _check_window(kernel, names, args, dims)
            if key is not None and len(_WINDOWS_OK) < 4096:
                _WINDOWS_OK.add(key)
    if "argmax" in which:
        # NOTE: the kernel scatters through these indices without bounds checks: check them here
        a = args[names.index("argmax")]
        if a.min() < 0 or a.max() >= dims["H"] * dims["W"]:
            raise ValueError(f"{kernel}: argmax must hold indices in [0, H*W) = [0, {dims['H'] * dims['W']}), "
                             f"got values in [{a.min()}, {a.max()}]")


_WINDOWS_OK = set()  # (kernel, scalar arguments, dims) of window geometries that passed _check_window
# the position of the first scalar argument of each window kernel (its arrays come before it)
_SCALARS_FROM = {kernel: 1 + max(i for i, *_ in _PLANS[kernel][1]) for kernel in SPECS if "kh" in SPECS[kernel][0]}


def _window_key(kernel, args, dims):
    """The cache key of a window geometry, or None unless every scalar argument is an int or a tuple of ints
    (by type: True == 1 and 1.0 == 1 must not hit a key cached for 1). The window kernels take their arrays
    first, then only scalars."""
    tail = args[_SCALARS_FROM[kernel]:]
    for a in tail:
        if type(a) is tuple:
            for v in a:
                if type(v) is not int:
                    return None
        elif type(a) is not int:
            return None
    return kernel, tail, tuple(dims.items())


def _check_window(kernel, names, args, dims):
    """The window arguments and the output size they give (``_window``), against the arrays' sizes."""
    OH, OW = _window(kernel, names, args, dims)
    if "cols" in names:
        K, L = dims["C"] * args[2] * args[3], dims["N"] * OH * OW
        if (dims["K"], dims["L"]) != (K, L):
            raise ValueError(f"{kernel}: cols must have shape (C*kh*kw, N*OH*OW) = ({K}, {L}), "
                             f"got ({dims['K']}, {dims['L']})")
    elif "O" in dims:  # the direct and strided convolutions: weight or dweight (O, K); y or dy (N, O, P, Q)
        w, out = "weight" if "weight" in names else "dweight", "y" if "y" in names else "dy"
        K = dims["C"] * args[names.index("kh")] * args[names.index("kw")]
        if dims["K"] != K:
            raise ValueError(f"{kernel}: {w} must have shape (O, C*kh*kw) = ({dims['O']}, {K}), got "
                             f"({dims['O']}, {dims['K']})")
        if (dims["P"], dims["Q"]) != (OH, OW):
            raise ValueError(f"{kernel}: {out} must have spatial shape (OH, OW) = ({OH}, {OW}), got "
                             f"({dims['P']}, {dims['Q']})")
    elif (dims["P"], dims["Q"]) != (OH, OW):
        # NOTE: or the ceil_mode sizes, whose last window may be cut by the input's end (never empty)
        k, (sh, sw), (ph, pw) = args[3:5], args[5], args[6]
        ceil = (pool_out_size(kernel, dims["H"], k[0], sh, ph, 1, True),
                pool_out_size(kernel, dims["W"], k[1], sw, pw, 1, True))
        if dims["P"] not in (OH, ceil[0]) or dims["Q"] not in (OW, ceil[1]):
            raise ValueError(f"{kernel}: y and argmax must have spatial shape (OH, OW) = ({OH}, {OW}) (or "
                             f"{ceil} with ceil_mode), got ({dims['P']}, {dims['Q']})")


# NOTE: below this many elements a kernel runs on one thread: the parallel region's start-up costs more than the
# work it splits. Results do not change (every kernel is bit-identical for any thread count).
SMALL = 1 << 15

# NOTE: the kernels that make one pass over their arrays (the batch norm's channel phases, max pooling) run on one
# thread below this many elements instead: they take about 0.03-0.15 ms there, and half of that does not pay a
# passive OpenMP wake-up and the barrier after it (the worker sleeps between regions: minigrad's default wait policy,
# docs/perf/threads.md). LeNet-BN (batch 64) at 2 threads with its second batch norm and pooling (102400 elements)
# on one thread measured 8.6 against 9.8 ms a step, ahead in each of 6 interleaved rounds (docs/perf/threads.md,
# "LeNet-BN at 2 threads"); ResNet-20's (batch 32) are all 131072 elements or more, so they keep their threads.
SMALL_PASS = 1 << 17
_SMALL_PASS_KERNELS = ("add", "channel_stats", "channel_apply", "channel_backward_sums", "channel_backward_apply",
                       "channel_apply_relu", "channel_backward_sums_relu", "channel_backward_apply_relu",
                       "max_pool2d_forward", "max_pool2d_backward")


def small(kernel):
    """The element count below which ``kernel`` runs on one thread."""
    return SMALL_PASS if kernel in _SMALL_PASS_KERNELS else SMALL


def _elements(dims):
    n = 1
    for sym in ("N", "C", "S", "R", "D", "H", "W", "M"):
        n *= dims.get(sym, 1)
    return n


class Backend:
    """A backend's kernels behind the contract: ``backend.batch_norm_forward(y, mean, ...)`` checks the
    arguments, then calls the module's kernel with ``n_threads`` from ``minigrad.get_num_threads()`` (one thread
    below ``small(kernel)`` elements)."""

    def __init__(self, name, module):
        self.name = name
        self.module = module
        for kernel in (*SPECS, *LIST_SPECS):
            if not hasattr(module, kernel):
                raise ImportError(f"backend {name!r} ({module.__name__}) lacks kernel {kernel!r}")

    def __getattr__(self, kernel):
        if kernel in LIST_SPECS:
            raw, below = getattr(self.module, kernel), small(LIST_SPECS[kernel][0])

            def call(*args):
                return raw(*args, 1 if check_list(kernel, args) < below else get_num_threads())
            call.__name__ = kernel
            setattr(self, kernel, call)
            return call
        if kernel not in SPECS:
            raise AttributeError(kernel)
        raw, below = getattr(self.module, kernel), small(kernel)
        names, plan, fast, eps_at, scalars = _PLANS[kernel]
        if kernel in OPTIONS:
            def call(*args, **options):  # NOTE: the keywords, when given, through their Python checks
                n = check_options(kernel, args, options) if options else _checked(kernel, args)[1]
                return raw(*args, 1 if n < below else get_num_threads(), **options)
        else:
            def call(*args):
                return raw(*args, 1 if _checked(kernel, args)[1] < below else get_num_threads())
        call.__name__ = kernel
        call.__qualname__ = f"{self.name}.{kernel}"
        call.__doc__ = getattr(raw, "__doc__", None)
        if _CheckedCall is not None and not scalars:
            # NOTE: _checked's path for a kernel without scalar rules (eps aside), compiled: the checks and the call
            # in one object call (an MLP-BN step makes 17), the keywords' checks too for a kernel in OPTIONS (every
            # batch norm's backward: no Python frame above it). Arguments it refuses go through ``call``, which
            # names the problem
            common = (raw, call, get_num_threads, len(names), fast, _ELEMENT_SYMBOLS, eps_at, below, kernel,
                      call.__qualname__)
            call = (_CheckedKeywordCall(*common, _option_plan(kernel)) if kernel in OPTIONS
                    else _CheckedCall(*common))
        setattr(self, kernel, call)  # cache: __getattr__ runs once per kernel
        return call

    def checked_then_raw(self, kernel, args):
        """Check ``args`` and call ``kernel`` on them, as ``backend.kernel(*args)``; return a function that calls
        the kernel again, unchecked and with the same thread count, for the later calls of one op on arrays built
        like these (conv2d's chunks: the same geometry, a batch slice of its own size). NOTE: the checks cost
        about 12 us a call, as much as a third of one sample's im2col in ResNet-20."""
        raw = getattr(self.module, kernel)
        n_threads = 1 if _checked(kernel, args)[1] < small(kernel) else get_num_threads()
        raw(*args, n_threads)
        return lambda *more: raw(*more, n_threads)

    def __repr__(self):
        return f"<minigrad backend {self.name!r}>"
