"""The zoo's models as JAX functions, for the end-to-end benchmark's reference column.

``jax_train_step(net)`` walks a minigrad model (``minigrad.models.build_model``) and returns ``(step, carry)``:
``step(carry, x, y) -> (loss, carry)`` is one jitted training step (forward in training mode with batch
statistics, cross entropy, gradients, SGD with momentum as ``torch.optim.SGD``: ``buf = m * buf + g``,
``p -= lr * buf``), ``carry`` the parameters, batch-norm running statistics and momentum buffers, starting from the
minigrad model's values. The running statistics are updated as PyTorch's (unbiased variance, momentum 0.1), so
that JAX does the work the other two libraries do. Only the module kinds of the zoo are known; another raises.
"""
import numpy as np


def jax_train_step(net, lr, momentum):
    import jax
    import jax.numpy as jnp
    from jax import lax

    from minigrad import nn
    from minigrad.app.models import BasicBlock

    params = {k: jnp.asarray(p.data) for k, p in net.named_parameters()}
    state = {k: jnp.asarray(np.asarray(v)) for k, v in net.state_dict().items()
             if k.endswith(("running_mean", "running_var"))}

    def batch_norm(x, prefix, p, s, new_state, axes):
        mean = x.mean(axes, keepdims=True)
        var = ((x - mean) ** 2).mean(axes, keepdims=True)
        n = x.size // mean.size
        y = (x - mean) * lax.rsqrt(var + 1e-5)
        shape = mean.shape
        y = y * p[prefix + "weight"].reshape(shape) + p[prefix + "bias"].reshape(shape)
        m = 0.1
        new_state[prefix + "running_mean"] = (1 - m) * s[prefix + "running_mean"] + m * mean.reshape(-1)
        new_state[prefix + "running_var"] = (1 - m) * s[prefix + "running_var"] + m * var.reshape(-1) * n / (n - 1)
        return y

    def module_fn(mod, prefix):
        if isinstance(mod, nn.Sequential):
            fns = [module_fn(child, f"{prefix}{name}.") for name, child in mod.named_children()]

            def seq(x, p, s, ns):
                for f in fns:
                    x = f(x, p, s, ns)
                return x
            return seq
        if isinstance(mod, BasicBlock):
            c1, b1 = module_fn(mod.conv1, prefix + "conv1."), module_fn(mod.bn1, prefix + "bn1.")
            c2, b2 = module_fn(mod.conv2, prefix + "conv2."), module_fn(mod.bn2, prefix + "bn2.")
            sc = module_fn(mod.shortcut, prefix + "shortcut.")

            def block(x, p, s, ns):
                y = jax.nn.relu(b1(c1(x, p, s, ns), p, s, ns))
                y = b2(c2(y, p, s, ns), p, s, ns)
                return jax.nn.relu(y + sc(x, p, s, ns))
            return block
        if isinstance(mod, nn.Conv2d):
            stride, pad, dil = mod.stride, mod.padding, mod.dilation
            has_bias = mod.bias is not None

            def conv(x, p, s, ns):
                y = lax.conv_general_dilated(x, p[prefix + "weight"], stride, [(pad[0], pad[0]), (pad[1], pad[1])],
                                             rhs_dilation=dil, dimension_numbers=("NCHW", "OIHW", "NCHW"),
                                             feature_group_count=mod.groups)
                return y + p[prefix + "bias"].reshape(1, -1, 1, 1) if has_bias else y
            return conv
        if isinstance(mod, nn.Linear):
            has_bias = mod.bias is not None

            def linear(x, p, s, ns):
                y = x @ p[prefix + "weight"].T
                return y + p[prefix + "bias"] if has_bias else y
            return linear
        if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            return lambda x, p, s, ns: batch_norm(x, prefix, p, s, ns, (0,) if x.ndim == 2 else (0, 2, 3))
        if isinstance(mod, nn.MaxPool2d):
            def pair(v):
                return tuple(v) if isinstance(v, (tuple, list)) else (v, v)
            k = pair(mod.kernel_size)
            st = pair(mod.stride if mod.stride is not None else mod.kernel_size)
            return lambda x, p, s, ns: lax.reduce_window(x, -jnp.inf, lax.max, (1, 1) + k, (1, 1) + st, "VALID")
        if isinstance(mod, nn.AdaptiveAvgPool2d):
            return lambda x, p, s, ns: x.mean((2, 3), keepdims=True)
        simple = {nn.ReLU: jax.nn.relu, nn.Sigmoid: jax.nn.sigmoid, nn.Identity: lambda x: x,
                  nn.Flatten: lambda x: x.reshape(x.shape[0], -1)}
        for kind, f in simple.items():
            if isinstance(mod, kind):
                return lambda x, p, s, ns, f=f: f(x)
        raise TypeError(f"jax_train_step: no JAX twin for {type(mod).__name__}")

    forward = module_fn(net, "")

    def loss_fn(p, s, x, y):
        new_state = {}
        logits = forward(x, p, s, new_state)
        logp = jax.nn.log_softmax(logits)
        return -jnp.take_along_axis(logp, y[:, None], 1).mean(), new_state

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    @jax.jit
    def step(carry, x, y):
        p, s, bufs = carry
        (loss, new_state), g = grad_fn(p, s, x, y)
        bufs = {k: momentum * bufs[k] + g[k] for k in p}
        p = {k: p[k] - lr * bufs[k] for k in p}
        return loss, (p, {**s, **new_state}, bufs)

    carry = (params, state, {k: jnp.zeros_like(v) for k, v in params.items()})
    return step, carry
