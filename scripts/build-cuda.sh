#!/usr/bin/env bash
# Builds pimsweep with the `cuda` feature on a machine without a GPU or a system CUDA toolkit, and packs the
# binary for a GPU machine:
#   scripts/build-cuda.sh            -> target/cuda/release/pimsweep and .cuda/dist/pimsweep.gz
#   PROFILE=dev scripts/build-cuda.sh -> target/debug/pimsweep (shares the CPU build's dependencies: quick)
# 1. installs NVIDIA's pinned CUDA 13.0 wheels (nvcc, nvrtc, cudart, cublas, curand, cccl) into .cuda/venv:
#    pin 13.0.x, since driver 580 (the GPU machines') cannot load PTX from a newer nvcc;
# 2. adds the unversioned .so links the linker looks for, and a link-time stub libcuda.so (soname
#    libcuda.so.1) with every driver symbol cudarc declares: the real driver comes with the GPU machine;
# 3. builds with CUDA_HOME at that tree and CUDA_COMPUTE_CAP (default 90: H100/H200).
# On the GPU machine, run the binary with LD_LIBRARY_PATH at its CUDA 13.0 libraries
# (/usr/local/cuda-13.0/targets/x86_64-linux/lib there); the driver's libcuda is found as usual.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD/.cuda"
venv="$root/venv"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --no-deps \
    nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-runtime==13.0.96 \
    nvidia-cuda-cccl==13.0.85 nvidia-cuda-nvrtc==13.0.88 nvidia-curand==10.4.0.35 nvidia-cublas==13.0.2.14
cuda_home="$("$venv/bin/python" -c 'import nvidia, os; print(os.path.join(nvidia.__path__[0], "cu13"))')"
lib="$cuda_home/lib"
test -x "$cuda_home/bin/nvcc"

# The wheels ship only versioned libraries (libcublas.so.13); the linker wants the plain names.
for name in cublas cublasLt cudart curand nvrtc; do
    versioned="$(find "$lib" -maxdepth 1 -name "lib$name.so.*" | sort | head -n 1)"
    test -n "$versioned" || { echo "lib$name.so.* missing under $lib" >&2; exit 1; }
    ln -sfn "$(basename "$versioned")" "$lib/lib$name.so"
done

# Stub driver library: one empty function per cu* symbol the cudarc bindings declare. Fetch the crates first
# so that the bindings are on disk.
cargo fetch --quiet
cudarc_src="$(find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -maxdepth 1 -mindepth 1 -type d -exec find {} -maxdepth 1 -name 'cudarc-*' \; | sort -V | tail -n 1)"
test -n "$cudarc_src" || { echo "cudarc sources not found after cargo fetch" >&2; exit 1; }
stub_dir="$root/stub"
mkdir -p "$stub_dir"
grep -rhoE '\bfn cu[A-Za-z0-9_]+' "$cudarc_src/src/driver/sys" | sed 's/^fn //' | sort -u |
    sed 's/.*/void &(void) {}/' > "$stub_dir/libcuda_stub.c"
test -s "$stub_dir/libcuda_stub.c" || { echo "no driver symbols found in $cudarc_src/src/driver/sys" >&2; exit 1; }
gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$stub_dir/libcuda.so" "$stub_dir/libcuda_stub.c"

export CUDA_HOME="$cuda_home" CUDA_PATH="$cuda_home" PATH="$cuda_home/bin:$PATH"
export LIBRARY_PATH="$stub_dir:$lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
# LIBRARY_PATH, not RUSTFLAGS: the linker finds the stub and the libraries, and changing RUSTFLAGS would
# rebuild every dependency.
if [ "${PROFILE:-release}" = dev ]; then
    cargo build --features cuda "$@"
    binary=target/debug/pimsweep
else
    cargo build --release --features cuda --target-dir target/cuda "$@"
    binary=target/cuda/release/pimsweep
fi

mkdir -p "$root/dist"
strip -o "$root/dist/pimsweep" "$binary"
gzip -kf "$root/dist/pimsweep"
echo "built $binary; packed $(du -h "$root/dist/pimsweep.gz" | cut -f1) in .cuda/dist/pimsweep.gz"
