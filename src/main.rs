//! The `pimsweep` binary: everything lives in the library; see `pimsweep --help`.

fn main() -> std::process::ExitCode {
    keep_freed_memory();
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
