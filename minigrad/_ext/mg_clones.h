/* MG_CLONES: compile a hot C helper twice on x86-64 GCC, for AVX2 and for the baseline, and let the loader pick one
   (an ifunc). The build has no -march flag, so this is how the kernels use wide vectors on machines that have them
   and still run on any x86-64. No clone may contract a*b + c into an FMA ("avx2" does not enable FMA, and setup.py
   compiles with -ffp-contract=off for the AVX-512 clones of MG_CLONES_V4), so a helper gives the same bits whichever
   clone runs. MG_CLONES_V4 adds an x86-64-v4 (AVX-512) clone, only to the helpers measured faster with it
   (docs/perf/norm-kernels.md#avx-512-clones). Included by the headers that use it (norm_simd.h, optim_kernels.h). */
#ifndef MG_CLONES_H
#define MG_CLONES_H
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define MG_CLONES __attribute__((target_clones("avx2", "default")))
#define MG_CLONES_V4 __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define MG_CLONES
#define MG_CLONES_V4
#endif
#endif
