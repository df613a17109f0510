"""Build minigrad's Cython kernels.

The kernels are compiled with -O3 and OpenMP. OpenMP is probed first (a tiny program is compiled, linked and
run, as scikit-learn's openmp_helpers does); when the compiler has none the build goes on serially, says so
loudly, and records it so that ``minigrad.show_config()`` can tell the user.

Environment:
  MINIGRAD_DEBUG_BUILD=1   turn Cython bounds checks and wraparound back on (debug build used by CI)
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


def openmp_flags():
    """Return (compile_args, link_args) for OpenMP, or None when the compiler has none."""
    if os.environ.get("MINIGRAD_NO_OPENMP", "") not in ("", "0"):
        return None
    if sys.platform == "win32":
        return (["/openmp"], [])
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    cc = cc.split()
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


debug = os.environ.get("MINIGRAD_DEBUG_BUILD", "") not in ("", "0")
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
    if debug:
        compile_args += ["-O1", "-g"]

# Recorded for minigrad.show_config(); written before cythonize so it lands in the built package.
with open(os.path.join(HERE, "minigrad", "_build_config.py"), "w") as f:
    f.write("# Written by setup.py at build time.\n")
    f.write(f"OPENMP = {omp is not None!r}\n")
    f.write(f"DEBUG_BUILD = {debug!r}\n")
    f.write(f"COMPILE_ARGS = {compile_args!r}\n")
    f.write(f"LINK_ARGS = {link_args!r}\n")

directives = {
    "language_level": 3,
    "boundscheck": debug,
    "wraparound": debug,
    "initializedcheck": debug,
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

setup(ext_modules=cythonize(extensions, compiler_directives=directives, quiet=True))
