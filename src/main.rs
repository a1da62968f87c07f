//! The `wemaster` binary; everything lives in the library.

fn main() -> std::process::ExitCode {
    wemaster::cli::run()
}
