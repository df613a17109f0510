"""FRN + TLU fused (F.filter_response_norm_tlu) against the unfused pair (F.tlu(F.filter_response_norm(...))) and the
torch composition, the cases of benchmarks/bench_norm_family.py (same arrays, same runners), interleaved: each round
times every variant once (a batch of calls each), the rounds alternate, and the ratios are paired within a round
(median over rounds). Results are checked against the torch composition before timing.

    PYTHONPATH=$PWD python scripts/frn_tlu_ab.py [--threads 1] [--rounds 15] [--backends cython]
"""
import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "benchmarks"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--backends", nargs="+", default=["cython"])
    ap.add_argument("--target-ms", type=float, default=20.0, help="time per variant per round")
    args = ap.parse_args()
    import torch

    import bench_norm_family as bench
    import minigrad as mg
    from conftest import pin_threads

    pin_threads(args.threads)
    torch.set_num_threads(args.threads)
    print(f"threads {args.threads}, {args.rounds} interleaved rounds, float32; load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print("| backend | op | shape | fused | unfused | torch ops | fused vs unfused | fused vs torch ops "
          "| unfused vs torch ops |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.backends:
        for shape in bench.SHAPES:
            a = bench._arrays(shape)
            for op in bench.OPS:
                mg.set_backend(name)
                variants = {"fused": bench._minigrad("FRN+TLU", a, op),
                            "unfused": bench._minigrad("FRN+TLU unfused", a, op),
                            "torch": bench._torch(torch, "FRN+TLU", a, op)}
                ref_run, ref = variants["torch"]
                ref_run()
                for v in ("fused", "unfused"):
                    run, result = variants[v]
                    run()
                    for got, want in zip(result(), ref()):
                        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4 * float(np.abs(want).max()),
                                                   err_msg=f"{v} {op} {shape}")
                reps = {}
                for v, (run, _) in variants.items():  # calls per batch: about target_ms each
                    t0 = time.perf_counter()
                    run()
                    reps[v] = max(1, int(args.target_ms / 1e3 / max(time.perf_counter() - t0, 1e-7)))
                times = {v: [] for v in variants}
                for _ in range(args.rounds):
                    for v, (run, _) in variants.items():
                        t0 = time.perf_counter()
                        for _ in range(reps[v]):
                            run()
                        times[v].append((time.perf_counter() - t0) / reps[v])
                t = {v: np.array(x) for v, x in times.items()}
                med = {v: float(np.median(x)) for v, x in t.items()}
                ratio = lambda a, b: float(np.median(t[b] / t[a]))  # noqa: E731  (paired within a round)
                fmt = lambda s: f"{s * 1e6:.1f} us" if s < 1e-3 else f"{s * 1e3:.2f} ms"  # noqa: E731
                print(f"| {name} | {op} | {'x'.join(map(str, shape))} | {fmt(med['fused'])} | {fmt(med['unfused'])} "
                      f"| {fmt(med['torch'])} | {ratio('fused', 'unfused'):.2f}x | {ratio('fused', 'torch'):.2f}x "
                      f"| {ratio('unfused', 'torch'):.2f}x |", flush=True)
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
