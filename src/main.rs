//! The `wemaster` binary; everything lives in the library.

/// Each Argon2id hash allocates and frees a 19 MiB block. glibc's malloc
/// raises its mmap threshold after the first such free, so later blocks come
/// from the heap arenas and stay resident: a few dozen logins pinned hundreds
/// of MiB. A fixed threshold (which also turns the adaptation off) keeps big
/// blocks mmapped and gives them back to the system when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn return_big_blocks_to_the_system() {
    // SAFETY: mallopt only changes allocator tuning; it is called before any
    // other thread exists and with a documented parameter.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_big_blocks_to_the_system() {}

fn main() -> std::process::ExitCode {
    return_big_blocks_to_the_system();
    wemaster::cli::run()
}
