#!/usr/bin/env bash
# Run here (not on the GPU machine) before a device run: downloads into .deps/ the .deb files that the GPU machine
# lacks, through ../shared/device/fetch-debs.sh (libyaml, Criterion, MuJoCo, cJSON), plus what evoc links besides:
# OpenBLAS (its OpenMP build), LAPACKE with its Fortran runtime, and zlib's headers. Then, on the device:
#   run(command="source .deps/unpack.sh && scripts/gpu_check.sh", carry=[".deps"], timeout_s=480)
set -euo pipefail
cd "$(dirname "$0")/.."
# By absolute path: fetch-debs.sh finds its unpack.sh from $0 after changing into .deps/.
fetch=$(cd ../shared/device && pwd)/fetch-debs.sh
EXTRA_DEBS="libopenblas-dev libopenblas-openmp-dev libopenblas0-openmp liblapacke-dev liblapacke libtmglib3
            libgfortran5 libquadmath0 zlib1g-dev zlib1g ${EXTRA_DEBS:-}" "$fetch"
