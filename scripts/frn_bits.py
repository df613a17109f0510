"""FRN + TLU's results bit for bit against another tree or build (docs/perf/norm-family.md, "2026-12-06 night").

    PYTHONPATH=$PWD python scripts/frn_bits.py kernels DIR      # DIR: another build's phases extension
    (cd OTHER && PYTHONPATH=OTHER python $PWD/scripts/frn_bits.py dump /tmp/other.npz)
    PYTHONPATH=$PWD python scripts/frn_bits.py dump /tmp/this.npz
    python scripts/frn_bits.py compare /tmp/other.npz /tmp/this.npz

``kernels``: the raw Cython ``row_norm_backward_max``, ``row_backward_sums_max`` and ``row_norm_apply_max`` (eps
1e-6 or 0) of this build and DIR's on the same rows (both dtypes, short and long rows, tests/test_phases.py's
adversarial rows, NaN and inf in dy, ties of the max, subnormal dy), every output compared byte for byte (this
build's one-call kernels on x as (1, R, D)). ``dump``: y and every gradient of FRN and TLU, fused and
unfused, on every backend, float32 and float64, several shapes, every subset of weight and bias, a learned eps or a
number (0 included), fused also with x not requiring a gradient and with strided parameters, saved to an .npz;
``compare``: two dumps, which arrays differ and by how much.
"""
import collections
import itertools
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def kernels(ext_dir):
    sys.path.insert(0, HERE)
    from norm_family_steps import _load_ext
    sys.modules.pop("conftest", None)  # NOTE: norm_family_steps put benchmarks/ (its conftest) first
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
    from test_phases import adversarial_max_rows
    from minigrad._ext import phases as new
    old = _load_ext(ext_dir)
    rng, n = np.random.default_rng(1), 0
    for dt, (R, D), case in itertools.product(
            (np.float32, np.float64), [(1, 1), (3, 7), (5, 8), (4, 9), (7, 15), (6, 16), (9, 17), (600, 64),
                                       (600, 67), (600, 256), (33, 1000), (2048, 256)], range(4)):
        if case == 0 and R == 600:
            x, dy, sc, of, tau = (a.astype(dt) for a in adversarial_max_rows(np.random.default_rng(D), R, D))
        else:
            x = (rng.standard_normal((R, D)) * 2 + 0.3).astype(dt)
            dy = rng.standard_normal((R, D)).astype(dt)
            if case == 1:
                dy[rng.random((R, D)) < 0.1] = np.nan if R % 2 else np.inf
            if case == 2:
                x = np.round(x)  # NOTE: with a rounded tau, ties of the max
            if case == 3:
                dy *= dt(1e-40) if dt == np.float32 else 1e-310  # NOTE: subnormal dy (dy/2 rounds on a tie)
            sc, of = rng.standard_normal(R).astype(dt), rng.standard_normal(R).astype(dt)
            tau = (np.round(rng.standard_normal(R)) if case == 2 else rng.standard_normal(R)).astype(dt)
        rstd = 1 / np.sqrt((x.astype(np.float64) ** 2).mean(1) + 1e-6)
        w = rng.standard_normal(R).astype(dt)
        outs = []
        for mod in (old, new):
            # NOTE: the one-call kernels take x: (N, C, S) and per-channel values (both builds since 2026-12-07's
            # "FRN + TLU's small forward"): x as (1, R, D), C = R
            nc = lambda a: a[None]  # noqa: E731
            a = (np.empty_like(x), np.empty(R), np.empty(R), np.empty(R))
            mod.row_norm_backward_max(*map(nc, a), nc(dy), nc(x), nc(rstd), w, nc(sc), of, tau, 1)
            b = (np.empty(R), np.empty(R), np.empty(R))
            mod.row_backward_sums_max(*b, dy, x, np.full(R, 0.1), np.full(R, 0.25, dt), sc, of, tau, 1)
            f = (np.empty_like(x), np.empty(R), np.empty(R, dt))
            mod.row_norm_apply_max(*map(nc, f), nc(x), w, of, tau, 1e-6 * (case != 1), 1)
            outs.append(a + b + f)
        assert all(u.tobytes() == v.tobytes() for u, v in zip(*outs)), (dt, R, D, case)
        n += 1
    print(f"kernels: {n} cases, every output the same bits")


def dump(path):
    import minigrad as mg
    import minigrad.nn.functional as F
    out = {}
    for backend, shape, dtype in itertools.product(
            ("cython", "numpy", "numba"), [(2, 3, 4, 5), (1, 1, 7), (5, 1, 3, 3), (1, 4, 1, 1, 2), (7, 3, 2),
                                           (6, 5, 9, 9), (32, 64, 16, 16)], (np.float32, np.float64)):
        rng = np.random.default_rng(len(out))
        c = shape[1]
        x0, dy = (rng.standard_normal(shape) * 2 + 0.3).astype(dtype), rng.standard_normal(shape).astype(dtype)
        x0.reshape(-1)[::17] = 0
        w0, b0, t0 = (rng.standard_normal(c).astype(dtype) for _ in range(3))
        with mg.using_backend(backend):
            for hw, hb, fused, learned, eps0, alt in itertools.product(*[(True, False)] * 5, (0, 1, 2)):
                if alt and not fused:
                    continue
                # NOTE: alt 1: x without a gradient (the fused backward's sums alone); alt 2: the parameters
                # strided views (a copy for the kernel)
                ts = {k: mg.Tensor(np.repeat(a, 2)[::2] if alt == 2 and k in "wbt" else a.copy(),
                                   requires_grad=not (alt == 1 and k == "x")) for k, a in
                      (("x", x0), ("w", w0), ("b", b0), ("t", t0), ("e", np.array([-0.05], dtype)))}
                e = ts["e"] if learned else (0.0 if eps0 else 1e-3)
                w_, b_ = ts["w"] if hw else None, ts["b"] if hb else None
                with np.errstate(all="ignore"):
                    y = (F.filter_response_norm_tlu(ts["x"], w_, b_, ts["t"], e) if fused
                         else F.tlu(F.filter_response_norm(ts["x"], w_, b_, e), ts["t"]))
                    y.backward(dy)
                key = (f"{backend}|{shape}|{dtype.__name__}|"
                       f"w{hw:d} b{hb:d} fused{fused:d} learned{learned:d} eps0{eps0:d}"
                       + (f" alt{alt}" if alt else ""))
                out[key + "|y"] = y.data
                out.update({f"{key}|d{k}": t.grad.data for k, t in ts.items() if t.grad is not None})
    np.savez(path, **out)
    print(f"dump: {len(out)} arrays to {path}")


def compare(pa, pb):
    a, b = np.load(pa), np.load(pb)
    assert set(a.files) == set(b.files), "the dumps hold different cases"
    diff = [k for k in a.files if a[k].tobytes() != b[k].tobytes()]
    print(f"{len(a.files)} arrays, {len(diff)} not bit for bit")
    print(" by dtype and array:", dict(collections.Counter((k.split("|")[2], k.split("|")[-1]) for k in diff)))
    rest = [k for k in diff if not np.array_equal(a[k], b[k], equal_nan=True)]
    with np.errstate(all="ignore"):
        rel = [float(np.nanmax(np.abs(a[k] - b[k].astype(np.float64)) / np.abs(a[k]))) for k in rest]
    print(f" of them equal but for the sign of a zero: {len(diff) - len(rest)}; largest relative difference of "
          f"the rest: {max(rel, default=0):.3g}")


if __name__ == "__main__":
    cmd = sys.argv[1]
    {"kernels": lambda: kernels(sys.argv[2]), "dump": lambda: dump(sys.argv[2]),
     "compare": lambda: compare(sys.argv[2], sys.argv[3])}[cmd]()
