#!/usr/bin/env bash
# One idempotent command that installs every Debian package evoc needs on a fresh Debian 12 machine (run as root).
# No other downloads: datasets come from Debian packages, everything else is built from this repository.
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build pkg-config git python3 python3-numpy
  libyaml-dev libcriterion-dev libcjson-dev
  liblapacke-dev libopenblas-openmp-dev
  libmujoco-dev
  libopenmpi-dev openmpi-bin
  dataset-fashion-mnist
  gnuplot-nox
  zlib1g-dev
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PKGS[@]} packages already installed"
  exit 0
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
