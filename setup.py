"""Build minigrad's Cython kernels.

The kernels are compiled with -O3 and OpenMP. OpenMP is probed first (a tiny program is compiled, linked and
run, as scikit-learn's openmp_helpers does); when the compiler has none the build goes on serially, says so
loudly, and records it so that ``minigrad.show_config()`` can tell the user.

Environment:
  MINIGRAD_SANITIZE=1      build every extension under AddressSanitizer and UndefinedBehaviorSanitizer
                           (-fsanitize=address,undefined, -O1 -g; any UB aborts). The kernels index raw pointers,
                           so Cython's boundscheck sees nothing there: this is the debug build that checks. Import
                           it only with the runtime preloaded:
                             LD_PRELOAD=$(gcc -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0 python ...
                           (``minigrad._build_config.SANITIZER_RUNTIME`` records that path). .ci/run step 3 uses it.
  MINIGRAD_DEBUG_BUILD=1   old name of MINIGRAD_SANITIZE=1, same build
  MINIGRAD_NO_OPENMP=1     build serially even when OpenMP is available
"""
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import textwrap

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))

OPENMP_TEST = textwrap.dedent(
    """
    #include <omp.h>
    #include <stdio.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        printf("%d", n > 0);
        return 0;
    }
    """
)


def c_compiler():
    return (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()


def openmp_flags():
    """Return (compile_args, link_args) for OpenMP, or None when the compiler has none."""
    if os.environ.get("MINIGRAD_NO_OPENMP", "") not in ("", "0"):
        return None
    if sys.platform == "win32":
        return (["/openmp"], [])
    cc = c_compiler()
    tmp = tempfile.mkdtemp(prefix="minigrad-omp-")
    try:
        src = os.path.join(tmp, "omp.c")
        exe = os.path.join(tmp, "omp")
        with open(src, "w") as f:
            f.write(OPENMP_TEST)
        r = subprocess.run(cc + ["-fopenmp", src, "-o", exe], capture_output=True)
        if r.returncode != 0:
            return None
        r = subprocess.run([exe], capture_output=True, text=True)
        if r.returncode != 0 or r.stdout.strip() != "1":
            return None
        return (["-fopenmp"], ["-fopenmp"])
    except OSError:
        return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def env_flag(name):
    return os.environ.get(name, "") not in ("", "0")


def sanitizer_runtime(cc):
    """Path of the ASan runtime that ``cc`` links against (what a test run must LD_PRELOAD)."""
    r = subprocess.run(cc + ["-print-file-name=libasan.so"], capture_output=True, text=True)
    path = r.stdout.strip()
    if r.returncode != 0 or not os.path.isabs(path):
        sys.exit(f"minigrad: MINIGRAD_SANITIZE=1 but {' '.join(cc)} has no libasan.so")
    return path


sanitize = env_flag("MINIGRAD_SANITIZE") or env_flag("MINIGRAD_DEBUG_BUILD")
omp = openmp_flags()
if omp is None:
    print("*" * 78 + "\nminigrad: WARNING: the compiler has no usable OpenMP; building the Cython kernels "
          "SERIALLY.\n" + "*" * 78, file=sys.stderr)
    compile_args, link_args = [], []
else:
    compile_args, link_args = omp

if sys.platform != "win32":
    # NOTE: -fno-math-errno lets GCC inline and vectorize sqrt (the Adam update's loop); results are unchanged
    # (sqrt is correctly rounded either way), only errno is never set, and no kernel reads errno
    # -ffp-contract=off: the AVX-512 clones (MG_CLONES_V4 in mg_clones.h) may use FMA instructions, and a contracted
    # a*b + c rounds once where the AVX2 and baseline clones round twice: every clone gives the same bits
    compile_args = ["-O3", "-fno-math-errno", "-ffp-contract=off"] + compile_args
runtime = None
if sanitize:
    if sys.platform == "win32":
        sys.exit("minigrad: MINIGRAD_SANITIZE=1 is supported with gcc or clang only")
    runtime = sanitizer_runtime(c_compiler())
    # NOTE: the later -O1 wins over -O3; -fno-sanitize-recover makes UBSan abort instead of printing and going on
    sanitizers = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"]
    compile_args += sanitizers + ["-fno-omit-frame-pointer", "-g", "-O1"]
    link_args = link_args + sanitizers

# Recorded for minigrad.show_config(); written before cythonize so it lands in the built package.
with open(os.path.join(HERE, "minigrad", "_build_config.py"), "w") as f:
    f.write("# Written by setup.py at build time.\n")
    f.write(f"OPENMP = {omp is not None!r}\n")
    f.write(f"SANITIZE = {sanitize!r}\n")
    f.write(f"SANITIZER_RUNTIME = {runtime!r}\n")
    f.write(f"COMPILE_ARGS = {compile_args!r}\n")
    f.write(f"LINK_ARGS = {link_args!r}\n")

directives = {
    "language_level": 3,
    # NOTE: off in the sanitized build too, so that it instruments the same C that ships
    "boundscheck": False,
    "wraparound": False,
    "initializedcheck": False,
    "cdivision": True,
    "embedsignature": True,
}

ext_dir = os.path.join("minigrad", "_ext")
extensions = [
    Extension(
        f"minigrad._ext.{name[:-4]}",
        [os.path.join(ext_dir, name)],
        include_dirs=[np.get_include()],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
    for name in sorted(os.listdir(ext_dir))
    if name.endswith(".pyx")
]

# NOTE: every core for both stages: Cython's translation (nthreads) and the C compiler (build_ext's parallel, which
# `pip install` uses too; `build_ext -j N` on the command line still wins): CI builds three times (docs/ci.md).
jobs = os.cpu_count() or 1
setup(ext_modules=cythonize(extensions, compiler_directives=directives, quiet=True, nthreads=jobs if jobs > 1 else 0),
      options={"build_ext": {"parallel": jobs}})
