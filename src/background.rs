//! Work the server does for itself or for one administrator (an online import) runs on
//! threads at the lowest CPU priority, so that on a busy machine it takes only the time
//! requests leave free, and on an idle one all of it.

/// The nice value of background work: it runs only on what requests leave free.
pub const BACKGROUND: i32 = 19;

/// Lowers the calling thread's CPU priority for good to `nice` (an unprivileged process cannot
/// raise it again, so call it on threads made for that work only). Elsewhere than on Linux,
/// nothing.
pub fn lower_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid and setpriority take plain integers and touch no memory of ours; on
        // Linux, PRIO_PROCESS with a thread id names that one thread.
        let result = unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, nice)
        };
        if result != 0 {
            tracing::debug!("could not lower a background thread's priority");
        }
    }
}
