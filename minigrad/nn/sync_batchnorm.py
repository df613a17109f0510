"""SyncBatchNorm: batch norm whose statistics are those of the global batch, split over MPI ranks.

Built from the channel phase kernels, with one collective between the local and the global step each way:

  forward   channel_stats (local mean, m2 in float64) -> Allgather of every rank's (count, mean, m2) -> Chan's
            merge in float64, in rank order, on every rank (a rank with an empty batch contributes nothing) ->
            coefficients -> channel_apply with the global mean and rstd
  backward  channel_backward_sums (local sum dy, sum dy*(x - mean)) -> Allreduce of both -> coefficients ->
            channel_backward_apply with the global count; weight and bias gradients stay local (DDP averages them)

NOTE: the merge gathers (count, mean, m2) rather than summing (count, count*mean, count*mean^2) in an Allreduce:
the sums would give M2 = sum(m2_i) + sum(n_i*mean_i^2) - N*mean^2, which cancels when |mean| >> std; Chan's
pairwise update (delta = mean_b - mean_a) does not. Still one collective per layer, of W*(2C + 1) values.
"""
import numpy as np

from minigrad import kernels
from minigrad.kernels import coefficients
from minigrad.nn.functional.norm import _affine, _as_ncs_array, _check_channel_args, _check_input, _grads_for, \
    _params, _momentum_value, _running_stats_update
from minigrad.nn.norm import _BatchNorm
from minigrad.tensor import Function, _host


def _merge(counts, means, m2s):
    """Chan et al.'s pairwise merge of per-rank (count, mean (C,), m2 (C,)) in float64, in rank order."""
    n, mean, m2 = 0.0, np.zeros_like(means[0]), np.zeros_like(m2s[0])
    for nb, mb, m2b in zip(counts, means, m2s):
        if nb == 0:  # an empty batch: nothing to merge (and its mean is not a number)
            continue
        total = n + nb
        delta = mb - mean
        mean = mean + delta * (nb / total)
        m2 = m2 + m2b + delta * delta * (n * nb / total)
        n = total
    return n, mean, m2


class _SyncBatchNorm(Function):
    """Training-mode batch norm over (N, C, S) with the statistics of every rank's batch (module docstring)."""

    def forward(self, x, *params, comm, has_weight, has_bias, eps):
        from mpi4py import MPI
        self.has_weight, self.has_bias, self.comm = has_weight, has_bias, comm
        x3 = _as_ncs_array(x)
        n, c, s = x3.shape
        w, b = _affine(params[0] if has_weight else None, params[-1] if has_bias else None, c, x.dtype)
        k = kernels.kernels()
        local = np.zeros(2 * c + 1)  # (count, mean, m2)
        local[0] = n * s
        if x3.size:
            k.channel_stats(local[1:c + 1], local[c + 1:], x3, True)
        gathered = np.empty((comm.Get_size(), 2 * c + 1))
        comm.Allgather(local, gathered)
        count, mean, m2 = _merge(gathered[:, 0], gathered[:, 1:c + 1], gathered[:, c + 1:])
        if count <= 1:  # the same on every rank: all raise, the job aborts
            raise ValueError(f"SyncBatchNorm: expected more than 1 value per channel over all ranks when training, "
                             f"got {int(count)} (local input of shape {x.shape})")
        self.rstd = coefficients.rstd(m2, count, eps)
        self.mean, self.count, self.w64 = mean, count, w.astype(np.float64)
        y = np.empty_like(x3)
        if x3.size:
            k.channel_apply(y, x3, *coefficients.forward(mean, self.rstd, x.dtype, self.w64, b.astype(np.float64)))
        self.x3, self.shape, self.mpi = x3, x.shape, MPI
        return y.reshape(x.shape)

    def backward(self, g):
        x3, dtype = self.x3, self.x3.dtype
        c = x3.shape[1]
        dy = np.ascontiguousarray(g, dtype=dtype).reshape(x3.shape)
        sums = np.zeros(2 * c)  # (sum dy, sum dy*(x - mean)) over this rank's batch
        if x3.size:
            kernels.kernels().channel_backward_sums(sums[:c], sums[c:], dy, x3, self.mean)
        dweight, dbias = (sums[c:] * self.rstd).astype(dtype), sums[:c].astype(dtype)  # local: DDP averages them
        # NOTE: every rank joins the Allreduce, whether or not it needs dx (the collective must match)
        self.comm.Allreduce(self.mpi.IN_PLACE, sums, op=self.mpi.SUM)
        dx = None
        if self.needs_input_grad[0]:
            dx = np.empty_like(x3)
            if x3.size:
                kernels.kernels().channel_backward_apply(dx, dy, x3, *coefficients.backward(
                    sums[:c], sums[c:], self.count, self.mean, self.rstd, True, dtype, self.w64))
            dx = dx.reshape(self.shape)
        return _grads_for(self, dx, dweight, dbias)


class SyncBatchNorm(_BatchNorm):
    """Batch norm over (N, C, *) whose training statistics are those of the batch of every MPI rank together, as
    ``torch.nn.SyncBatchNorm``: the normalization, the input gradients and the running statistics (the running
    variance with the global count's unbiased factor N/(N - 1)) are those of one process holding the
    concatenated batch; the weight and bias gradients are each rank's own (``DistributedDataParallel`` averages
    them). One collective per layer in forward, one in backward (see ``minigrad.nn.sync_batchnorm``); none in
    eval mode, where the running statistics are used, so validation on one rank alone cannot hang. A world of
    one process (``minigrad.distributed.world_size() == 1``, or no MPI) is plain batch norm.

    Every rank must call forward and backward in training the same number of times (they are collectives); a
    rank with an empty batch takes part and contributes nothing.

        y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias,   E and Var over the batches of every rank

    Shape:
        - Input: ``(N, C)`` to ``(N, C, D, H, W)``
        - Output: the input's shape
    """
    _ndims = (2, 3, 4, 5)

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, dtype: np.dtype | type | str | None = None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype)

    def forward(self, x):
        if not self.training:
            return super().forward(x)
        from minigrad import distributed
        if distributed.world_size() == 1:
            return super().forward(x)
        fn = "SyncBatchNorm"
        _check_input(fn, x, 2, 5)
        if x.shape[1] != self.num_features:
            raise ValueError(f"{fn}: expected {self.num_features} channels (input dim 1), got shape {x.shape}")
        rm, rv, eps = _check_channel_args(fn, x, self.weight, self.bias, self.running_mean, self.running_var,
                                          self.eps)
        factor = self._average_factor()
        y, node = _SyncBatchNorm.apply_with_ctx(x, *_params(self.weight, self.bias), comm=distributed._comm,
                                                has_weight=self.weight is not None, has_bias=self.bias is not None,
                                                eps=eps)
        if rm is not None:
            c = self.num_features

            def update(rm, rv):  # NOTE: a host computation reading the node when it runs (minigrad.compile replays it)
                _running_stats_update(rm, rv, node.mean.reshape(1, c), node.rstd.reshape(1, c),
                                      _momentum_value(factor), eps, float(node.count))
            _host(update, rm, rv)
        return y

    @classmethod
    def convert_sync_batchnorm(cls, module):
        """``module`` with every BatchNorm1d/2d/3d in it replaced by a SyncBatchNorm that shares its parameters
        and buffers (and training flag); returns the new top module (``module`` itself unless it is a batch
        norm). Ghost batch norm (``virtual_batch_size``) is refused: its chunks are local by definition."""
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            if module.virtual_batch_size is not None:
                raise ValueError(f"convert_sync_batchnorm: {type(module).__name__} with virtual_batch_size="
                                 f"{module.virtual_batch_size} (ghost batch norm) has no synchronized form")
            out = cls(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats)
            for table in ("_parameters", "_buffers"):
                getattr(out, table).update(getattr(module, table))
            out.training = module.training
            return out
        for name, child in list(module._modules.items()):
            if child is not None:
                new = cls.convert_sync_batchnorm(child)
                if new is not child:
                    module._modules[name] = new
        return module
