//! The `pimsweep` binary: everything lives in the library; see `pimsweep --help`.

fn main() -> std::process::ExitCode {
    pimsweep::cli::main()
}
