"""DistributedDataParallel: one model replica per MPI rank, gradients averaged over ranks in flat buckets.

minigrad's autograd engine has no gradient hooks, so DDP makes its own: during a training forward each parameter
reaches the module through ``_GradReady``, an identity node. The engine calls that node's backward once, with
the parameter's whole gradient of this backward (every use summed), as soon as no later node can add to it. The
node copies it into its bucket's flat float buffer and returns no gradient, so the engine leaves ``.grad`` alone;
when a bucket is full its Allreduce starts, non-blocking (``MPI_Iallreduce``), while backward goes on; the node of
the last parameter waits for every bucket and writes ``.grad`` (sum / world size, added to a ``.grad`` already
there, as gradient accumulation expects).

Buckets are filled in reverse registration order (about the order backward reaches the parameters) up to
``bucket_cap_mb`` MiB each, one bucket per dtype.
"""
import numpy as np

from minigrad import distributed
from minigrad.nn.module import Module
from minigrad.tensor import Function, Tensor, _grad_enabled


class _GradReady(Function):
    """Identity on a parameter; its backward hands the parameter's gradient to the DDP reducer."""

    def forward(self, p, *, reducer, index):
        self.reducer, self.index = reducer, index
        return p

    def backward(self, g):
        self.reducer.ready(self.index, g)
        return (None,)


class _Bucket:
    def __init__(self, indices, params):
        self.indices = indices
        self.offsets = np.cumsum([0] + [params[i].data.size for i in indices])
        self.flat = np.zeros(int(self.offsets[-1]), params[indices[0]].dtype)
        self.pending, self.request = len(indices), None


class _Reducer:
    def __init__(self, params, bucket_cap_mb):
        self.params = params
        cap = bucket_cap_mb * 2**20
        self.buckets, self.where = [], {}
        by_dtype = {}
        for i in reversed(range(len(params))):
            by_dtype.setdefault(params[i].dtype, []).append(i)
        for group in by_dtype.values():
            current, size = [], 0
            for i in group:
                nbytes = params[i].data.nbytes
                if current and size + nbytes > cap:
                    self.buckets.append(current)
                    current, size = [], 0
                current.append(i)
                size += nbytes
            self.buckets.append(current)
        self.buckets = [_Bucket(b, params) for b in self.buckets]
        for bi, bucket in enumerate(self.buckets):
            for j, i in enumerate(bucket.indices):
                self.where[i] = (bi, j)
        self.reset()

    def reset(self):
        for bucket in self.buckets:
            bucket.pending, bucket.request = len(bucket.indices), None
        self.waiting, self.seen = len(self.params), set()

    def ready(self, i, g):
        if i in self.seen:
            raise RuntimeError("DistributedDataParallel: a parameter's gradient arrived twice in one backward "
                               "(backward through the same forward twice?): run forward again before backward")
        self.seen.add(i)
        bucket_i, j = self.where[i]
        bucket = self.buckets[bucket_i]
        bucket.flat[bucket.offsets[j]:bucket.offsets[j + 1]] = g.reshape(-1)
        bucket.pending -= 1
        if bucket.pending == 0:
            bucket.request = distributed._iall_reduce_sum(bucket.flat)
        self.waiting -= 1
        if self.waiting == 0:
            self.finish()

    def finish(self):
        scale = 1.0 / distributed.world_size()
        for bucket in self.buckets:
            if bucket.request is not None:
                bucket.request.Wait()
            for j, i in enumerate(bucket.indices):
                p = self.params[i]
                g = (bucket.flat[bucket.offsets[j]:bucket.offsets[j + 1]] * scale).reshape(p.shape)
                p.grad = Tensor(g) if p.grad is None else Tensor(p.grad.data + g)
        self.reset()

    def missing(self, names):
        return [names[i] for i in range(len(self.params)) if i not in self.seen]


class DistributedDataParallel(Module):
    """Data-parallel training of ``module`` over MPI ranks, as ``torch.nn.parallel.DistributedDataParallel``.

    At wrap time rank 0's parameters and buffers are broadcast to every rank, so all replicas start equal. After
    each ``loss.backward()`` every parameter's ``.grad`` is the average over ranks of the rank-local gradients,
    reduced with Allreduce over a few flat buckets of at most ``bucket_cap_mb`` MiB (see
    ``minigrad.nn.parallel.distributed``), started while backward is still running. With a loss that is each
    rank's mean over its own batch, that is the gradient of the mean over the global batch when the ranks hold
    equal batches; for unequal batches, scale each rank's loss by ``world_size * local_n / global_n``.

    Every parameter that requires grad must take part in the loss of every backward (PyTorch's default,
    ``find_unused_parameters=False``): a parameter that gets no gradient leaves the reduction unfinished, and
    the next forward raises naming it. Buffers (running statistics) are not synchronized after wrap time; use
    ``SyncBatchNorm`` for batch statistics over the global batch. Eval, and forward under ``no_grad``, involve
    no communication. ``state_dict`` keys carry the ``module.`` prefix, as in PyTorch.
    """

    def __init__(self, module, bucket_cap_mb=25):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: module must be a minigrad.nn.Module, got "
                            f"{type(module).__name__}")
        if isinstance(bucket_cap_mb, bool) or not isinstance(bucket_cap_mb, (int, float)) or not bucket_cap_mb > 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be a positive number, got "
                             f"{bucket_cap_mb!r}")
        self.module = module
        object.__setattr__(self, "bucket_cap_mb", float(bucket_cap_mb))
        distributed.init()
        for _, t in list(module.named_parameters()) + [(n, b) for n, b in module.named_buffers() if b is not None]:
            if not t.data.flags.c_contiguous:
                t.data = np.ascontiguousarray(t.data)
            distributed.broadcast(t.data, root=0)
        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        object.__setattr__(self, "_names", [n for n, _ in named])
        object.__setattr__(self, "_reducer", _Reducer([p for _, p in named], self.bucket_cap_mb) if named else None)

    def forward(self, *args, **kwargs):
        reducer = self._reducer
        if reducer is None or not _grad_enabled():
            return self.module(*args, **kwargs)
        if reducer.seen:
            missing = reducer.missing(self._names)
            reducer.reset()
            raise RuntimeError(f"DistributedDataParallel: the last backward gave no gradient to "
                               f"{', '.join(missing)}; every parameter that requires grad must take part in the "
                               f"loss (or set requires_grad=False on it before wrapping)")
        hooked = {id(p): _GradReady.apply(p, reducer=reducer, index=i) for i, p in enumerate(reducer.params)}
        swapped = []
        for m in self.module.modules():
            for name, p in m._parameters.items():
                if p is not None and id(p) in hooked:
                    swapped.append((m, name, p))
                    m._parameters[name] = hooked[id(p)]
        try:
            return self.module(*args, **kwargs)
        finally:
            for m, name, p in swapped:
                m._parameters[name] = p
