//! The optional Intel MKL backend of candle's matmuls (cargo feature `mkl`, docs/BENCHMARKS.md).
//!
//! MKL threads its GEMMs with its own OpenMP pool, sized to every core by default. The local executor gives
//! each concurrent job a share of the cores, so a job must tell MKL its share, or two jobs would each run
//! a GEMM on every core and spin-wait against each other. Without the feature this is a no-op.

/// Limits the MKL GEMMs issued from the calling thread to `threads` threads.
pub fn limit_threads_of_this_thread(threads: usize) {
    #[cfg(feature = "mkl")]
    {
        unsafe extern "C" {
            // mkl_service.h: sets the thread count for MKL calls made from the calling thread only.
            fn MKL_Set_Num_Threads_Local(nth: i32) -> i32;
        }
        let threads = i32::try_from(threads.max(1)).unwrap_or(i32::MAX);
        // SAFETY: a plain setter on MKL's thread-local state; MKL is linked whenever the feature is on.
        unsafe {
            MKL_Set_Num_Threads_Local(threads);
        }
    }
    #[cfg(not(feature = "mkl"))]
    let _ = threads;
}
