//! Why this exists: musl's `pthread_setname_np`, which std calls to name the
//! threads tokio starts for blocking work (the `nft` runs, `b4 check`),
//! writes the name to /proc/self/task/<tid>/comm and formats that path with
//! `snprintf`, which links all of musl's printf: about 10 KiB of a mips
//! binary that ships on 8-16 MB of flash, for that one call. std only ever
//! names the calling thread, and the kernel's `prctl(PR_SET_NAME)` does
//! that without formatting anything. Defined in the binary, this takes the
//! place of musl's in the static link (glibc builds keep their own).

/// `pthread_setname_np(3)` for the calling thread; another thread gets
/// ENOTSUP (std never asks for one).
#[cfg(target_env = "musl")]
#[unsafe(no_mangle)]
pub extern "C" fn pthread_setname_np(
    thread: libc::pthread_t,
    name: *const libc::c_char,
) -> libc::c_int {
    // SAFETY: pthread_self has no preconditions.
    if thread != unsafe { libc::pthread_self() } {
        return libc::ENOTSUP;
    }
    // SAFETY: `name` is a NUL-terminated string (the function's contract);
    // the kernel reads at most 16 bytes of it.
    if unsafe { libc::prctl(libc::PR_SET_NAME, name) } == 0 {
        0
    } else {
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EINVAL)
    }
}
