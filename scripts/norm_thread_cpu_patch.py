"""Patches a copy of minigrad/_ext/norm.pyx with per-thread timers, for scripts/norm_thread_cpu.py (never the tree's
own file: the timers cost a clock read per block and per group-norm row): each thread of batch norm's walks
(_bn_forward_walk, _bn_backward_walk) records its CPU time (CLOCK_THREAD_CPUTIME_ID) at its start, at its first
coefficients (the end of its first block's statistics or sums) and at its end, its block count and channels; the
BatchNorm1d row pass (where the tree has one) each thread's CPU time around it; group norm's forward each thread's
CPU time over its rows; the call's wall clock before and after the region (omp_get_wtime). Read back with the
module's _timings() (80 doubles), cleared with _reset().

    python scripts/norm_thread_cpu_patch.py COPY/minigrad/_ext/norm.pyx
"""
import sys

p = sys.argv[1]
s = open(p).read()


def rep(a, b, cnt=None):
    global s
    n = s.count(a)
    assert n >= 1 and (cnt is None or n == cnt), (a[:80], n)
    s = s.replace(a, b)
hdr = '''
cdef extern from *:
    """
    #include <omp.h>
    #include <time.h>
    static double mg_tm[80];
    static double mg_cpu(void) {
        struct timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return ts.tv_sec + 1e-9 * ts.tv_nsec;
    }
    """
    double mg_tm[80]
    double omp_get_wtime() noexcept nogil
    double mg_cpu() noexcept nogil

def _timings():
    return [mg_tm[i] for i in range(80)]

def _reset():
    cdef int i
    for i in range(80):
        mg_tm[i] = 0
'''
rep("cnp.import_array()\n", "cnp.import_array()\n" + hdr, 1)
for k in (1, 2):
    rep("""    nb = _bn_n_blocks(m, C, S, sizeof(floating), %d, n_threads)
    blk = t * nb // nt
    b1 = (t + 1) * nb // nt
    while True:""" % k, """    mg_tm[8 + 8 * t] = omp_get_wtime()
    nb = _bn_n_blocks(m, C, S, sizeof(floating), %d, n_threads)
    mg_tm[8 + 8 * t + 5] = nb
    blk = t * nb // nt
    b1 = (t + 1) * nb // nt
    mg_tm[8 + 8 * t + 6] = (b1 * C // nb) - (blk * C // nb)
    while True:""" % k)
rep("""        if m == 0:
            return
        for c in range(c0, c1):""", """        if m == 0:
            mg_tm[8 + 8 * t + 2] = omp_get_wtime()
            return
        if mg_tm[8 + 8 * t + 1] == 0:
            mg_tm[8 + 8 * t + 1] = omp_get_wtime()
        for c in range(c0, c1):""", 2)
for fn in ("_bn_forward", "_bn_backward"):
    i = s.index("cdef int %s(" % fn)
    j = s.index("    if chunk <= 0 or chunk > N:", i)
    s = s[:j] + "    mg_tm[0] = omp_get_wtime()\n" + s[j:]
rep("""    if nt == 1:  # NOTE: no OpenMP region""", """    mg_tm[1] = omp_get_wtime()
    if nt == 1:  # NOTE: no OpenMP region""")
rep("""    if nt == 1:
        _bn_backward_walk(""", """    mg_tm[1] = omp_get_wtime()
    if nt == 1:
        _bn_backward_walk(""")
rep("""    free(buf)
    free(coef)
    return 0""", """    mg_tm[2] = omp_get_wtime()
    free(buf)
    free(coef)
    return 0""", 2)
rep("""    cdef Py_ssize_t Cg = C // G, i, n, g
    for i in prange(N * G, schedule='static', num_threads=n_threads):
        n = i // G
        g = i % G
        _gn_forward_row(y + (n * C + g * Cg) * S, mean + i, rstd + i, x + (n * C + g * Cg) * S,
                        weight + g * Cg, bias + g * Cg, eps, Cg, S)
    return 0""", """    cdef Py_ssize_t Cg = C // G, i, n, g, h = (N * G + n_threads - 1) // n_threads
    mg_tm[0] = omp_get_wtime()
    mg_tm[1] = mg_tm[0]
    for i in prange(N * G, schedule='static', num_threads=n_threads):
        n = i // G
        g = i % G
        if i % h == 0:
            mg_tm[8 + 8 * (i // h)] = omp_get_wtime()
        _gn_forward_row(y + (n * C + g * Cg) * S, mean + i, rstd + i, x + (n * C + g * Cg) * S,
                        weight + g * Cg, bias + g * Cg, eps, Cg, S)
        if i % h == h - 1 or i == N * G - 1:
            mg_tm[8 + 8 * (i // h) + 2] = omp_get_wtime()
    mg_tm[2] = omp_get_wtime()
    return 0""")
if "BN1D_ROWS_BYTES" in s:
    rep("""        for t in prange(nt, schedule='static', num_threads=nt):
            _affine_rows(y, x, coef, coef + C, coef + 2 * C, C, S, 0, C, t * N // nt, (t + 1) * N // nt)""",
        """        for t in prange(nt, schedule='static', num_threads=nt):
            mg_tm[8 + 8 * t + 3] = mg_cpu()
            _affine_rows(y, x, coef, coef + C, coef + 2 * C, C, S, 0, C, t * N // nt, (t + 1) * N // nt)
            mg_tm[8 + 8 * t + 4] = mg_cpu()""")
    rep("""        for t in prange(nt, schedule='static', num_threads=nt):
            for n in range(t * N // nt, (t + 1) * N // nt):""",
        """        for t in prange(nt, schedule='static', num_threads=nt):
            mg_tm[8 + 8 * t + 3] = mg_cpu()
            for n in range(t * N // nt, (t + 1) * N // nt):""")
    rep("""                             coef + 3 * C, C, S)
    else:""", """                             coef + 3 * C, C, S)
            mg_tm[8 + 8 * t + 4] = mg_cpu()
    else:""")
# per-thread CPU time inside the walks and group norm's rows
s = s.replace("mg_tm[8 + 8 * t] = omp_get_wtime()", "mg_tm[8 + 8 * t] = mg_cpu()")
s = s.replace("mg_tm[8 + 8 * t + 2] = omp_get_wtime()", "mg_tm[8 + 8 * t + 2] = mg_cpu()")
s = s.replace("mg_tm[8 + 8 * t + 1] = omp_get_wtime()", "mg_tm[8 + 8 * t + 1] = mg_cpu()")
s = s.replace("mg_tm[8 + 8 * (i // h)] = omp_get_wtime()", "mg_tm[8 + 8 * (i // h)] = mg_cpu()")
s = s.replace("mg_tm[8 + 8 * (i // h) + 2] = omp_get_wtime()", "mg_tm[8 + 8 * (i // h) + 2] = mg_cpu()")
open(p, 'w').write(s)
