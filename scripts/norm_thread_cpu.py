"""Each thread's CPU time in the phases of the large norm kernels, old and new build in one process, at 1 and 2
threads (docs/perf/threads.md, session 34). CPU time, not wall time: on the shared VM a thread preempted by another
job's thread does not count, so the split of the work between the threads shows even when the wall time of
2 threads is noise. Needs the two builds instrumented by scripts/norm_thread_cpu_patch.py:

    for t in old new; do rm -rf /tmp/instr-$t && mkdir /tmp/instr-$t; done
    cp -r /work/main/{setup.py,pyproject.toml,minigrad} /tmp/instr-old/
    cp -r $PWD/{setup.py,pyproject.toml,minigrad} /tmp/instr-new/
    for t in old new; do python scripts/norm_thread_cpu_patch.py /tmp/instr-$t/minigrad/_ext/norm.pyx
        (cd /tmp/instr-$t && python setup.py -q build_ext --inplace); done
    PYTHONPATH=$PWD hi python scripts/norm_thread_cpu.py /tmp/instr-old /tmp/instr-new bn1d-fwd,bn1d-bwd 15

Per build and thread count: the wall time of the call, the blocks and each thread's channels (batch norm), and
per thread the CPU time of its first block's statistics ("first": for S == 1 all of them), the rest of its walk
("rest") and the BatchNorm1d row pass ("rows"), medians over the rounds.
"""
import statistics
import sys
import time

sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))

import minigrad  # noqa: E402
from compare_builds import load_norm  # noqa: E402
from twothreads_ab import CASES, case_arrays, case_call  # noqa: E402

mods = {"old": load_norm(sys.argv[1], "iold"), "new": load_norm(sys.argv[2], "inew")}
cases, R = sys.argv[3].split(','), int(sys.argv[4])
for name in cases:
    normn, shape, op = CASES[name]
    arrs = case_arrays(normn, shape)
    print(name, normn, shape, op)
    res = {}
    for r in range(R + 2):
        for tag, norm in (list(mods.items()) if r % 2 else list(mods.items())[::-1]):
            call, _ = case_call(norm, arrs, op)
            for t in (1, 2):
                minigrad.set_num_threads(t)
                norm._reset()
                p0 = time.perf_counter(); call(t); p1 = time.perf_counter()
                m = norm._timings()
                row = [p1 - p0]
                for k in range(t):
                    b = 8 + 8 * k
                    first = (m[b + 1] - m[b]) if m[b + 1] else 0
                    rest = m[b + 2] - (m[b + 1] or m[b])
                    rowpass = m[b + 4] - m[b + 3]
                    row += [first, rest, rowpass, first + rest + rowpass]
                if r >= 2:
                    res.setdefault((tag, t), []).append(row)
                res[(tag, t, 'i')] = [int(m[13])] + [int(m[8 + 8 * k + 6]) for k in range(t)]
    for tag in mods:
        for t in (1, 2):
            med = [statistics.median(c) * 1e6 for c in zip(*res[(tag, t)])]
            info = res[(tag, t, 'i')]
            txt = f"  {tag} {t}t blocks {info[0]} ch/thread {info[1:]} wall {med[0]:.0f} us | "
            for k in range(t):
                f, rr, rp, tot = med[1 + 4 * k: 5 + 4 * k]
                txt += f"t{k} cpu: first {f:.0f} rest {rr:.0f} rows {rp:.0f} all {tot:.0f}; "
            print(txt)
