#!/bin/sh
# Rebuild one extension of this tree from its generated .c (after a header edit; the .pyx unchanged), with
# setup.py's flags: scripts/gate_build_one.sh phases [elementwise ...]
set -e
PY=/work/main/.venv/bin/python
INC="-Iminigrad/_ext -I$($PY -c 'import numpy; print(numpy.get_include())') -I$($PY -c 'import sysconfig; print(sysconfig.get_paths()["include"])') -I/work/main/.venv/include"
SUF=$($PY -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
mkdir -p build/one
for m in "$@"; do
  gcc -Wsign-compare -DNDEBUG -g -fwrapv -O3 -Wall -fPIC -DNPY_NO_DEPRECATED_API=NPY_1_7_API_VERSION $INC -c minigrad/_ext/$m.c \
      -o build/one/$m.o -O3 -fno-math-errno -ffp-contract=off -fopenmp -w
  gcc -shared build/one/$m.o -o minigrad/_ext/$m$SUF -fopenmp
done
