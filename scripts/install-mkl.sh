#!/usr/bin/env bash
# Installs Intel MKL from the Python package registry into .mkl/ (or $1) for the optional `mkl` feature, which
# makes candle's matmuls call MKL's sgemm (~1.5x MiniLM throughput here: docs/BENCHMARKS.md). Then build with
#   MKLROOT="$PWD/.mkl" cargo build --release --features mkl
# The OpenMP runtime is linked statically (only libiomp5.a is kept), so the binary needs no LD_LIBRARY_PATH.
set -euo pipefail
prefix="$(realpath -m "${1:-.mkl}")"
version="${MKL_VERSION:-2026.2.0}"
venv="$(mktemp -d)"
trap 'rm -rf "$venv"' EXIT
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --prefix "$prefix" --no-deps \
    "mkl-static==$version" "mkl-include==$version" "intel-openmp==$version"
# intel-mkl-src links `-liomp5`, which the linker resolves to the shared library when both exist.
rm -f "$prefix"/lib/libiomp5*.so "$prefix"/lib/libiomp5.dbg
test -f "$prefix/include/mkl.h" && test -f "$prefix/lib/libmkl_core.a" && test -f "$prefix/lib/libiomp5.a"
echo "MKL $version installed in $prefix; build with: MKLROOT=$prefix cargo build --release --features mkl"
