//! The `pimsweep` binary: everything lives in the library; see `pimsweep --help`.

fn main() -> std::process::ExitCode {
    quiet_broken_pipe();
    keep_freed_memory();
    one_thread_pool();
    pimsweep::cli::main()
}

/// candle allocates a fresh buffer for every tensor op, and glibc hands large freed buffers straight back to
/// the kernel, so every op paid for page faults and page zeroing: a third of a training step was kernel time.
/// Keeping freed memory in the heap makes MiniLM training ~45 % faster (docs/BENCHMARKS.md).
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes glibc's allocator; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, 512 << 20);
    }
}

/// candle 0.11 runs its element-wise ops on its own spin-waiting barrier pool and GEMM (and our fused
/// LayerNorm / softmax / GELU) on rayon's: two pools of one thread per core, each spinning while the other
/// works. With the heavy element-wise work in the fused ops, candle's remaining element-wise ops (bias and
/// residual adds, copies) run on the calling thread unless `CANDLE_NUM_THREADS` says otherwise: MiniLM
/// training ~35 % faster on 2 busy cores (docs/BENCHMARKS.md).
fn one_thread_pool() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // SAFETY: called first thing in main, before any other thread exists.
        unsafe { std::env::set_var("CANDLE_NUM_THREADS", "1") };
    }
}

/// `pimsweep status DIR | head` should stop quietly when head exits, as other Unix tools do, instead of
/// panicking on the failed write: restore the default SIGPIPE action that Rust's runtime ignores.
fn quiet_broken_pipe() {
    #[cfg(unix)]
    // SAFETY: sets a signal disposition before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
