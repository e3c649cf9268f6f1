//! With the `cuda` feature: compiles the PIM kernels (src/pim/gpu/kernels.cu), the model's fused ops
//! (src/model/fused/kernels.cu) and the optimizer's (src/train/kernels.cu) to PTX for the GPU generation
//! `CUDA_COMPUTE_CAP` (default 90: H100/H200) with the nvcc on PATH or under CUDA_HOME. Without it: nothing.

use std::path::PathBuf;
use std::process::Command;

/// (source, PTX name in OUT_DIR)
const KERNELS: [(&str, &str); 3] = [
    ("src/pim/gpu/kernels.cu", "pim_kernels.ptx"),
    ("src/model/fused/kernels.cu", "model_kernels.ptx"),
    ("src/train/kernels.cu", "train_kernels.ptx"),
];

fn main() {
    for (source, _) in KERNELS {
        println!("cargo:rerun-if-changed={source}");
    }
    for header in ["philox.cuh", "pcm_aihwkit.cuh", "pcm_retry.cuh", "pcm_training.cuh", "pcm_ncb.cuh"] {
        println!("cargo:rerun-if-changed=src/pim/gpu/{header}");
    }
    println!("cargo:rerun-if-env-changed=CUDA_COMPUTE_CAP");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let cap = std::env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "90".to_string());
    let nvcc =
        std::env::var_os("CUDA_HOME").map(|h| PathBuf::from(h).join("bin/nvcc")).filter(|p| p.exists()).unwrap_or_else(|| "nvcc".into());
    for (source, ptx) in KERNELS {
        // -fmad=false: no fused multiply-adds, so the quantizers round exactly as the CPU code does.
        let status = Command::new(&nvcc)
            .args(["--ptx", "-O3", "-fmad=false", &format!("-arch=sm_{cap}"), source, "-o"])
            .arg(out_dir.join(ptx))
            .status()
            .unwrap_or_else(|e| panic!("cannot run {} (build with scripts/build-cuda.sh): {e}", nvcc.display()));
        assert!(status.success(), "nvcc failed on {source}");
    }
}
