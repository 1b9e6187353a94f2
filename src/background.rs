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

/// Lowers for good to `nice` the CPU priority of every thread of this process whose name
/// begins with `prefix`: threads a library starts for background work of its own (tantivy's
/// segment merges), which it gives no hook to start at a lower priority. Returns how many it
/// lowered. Elsewhere than on Linux, nothing.
pub fn lower_priority_of_threads(prefix: &str, nice: i32) -> usize {
    #[cfg(target_os = "linux")]
    {
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return 0;
        };
        let mut lowered = 0;
        for task in tasks.flatten() {
            let named = std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|name| name.starts_with(prefix));
            let tid = task
                .file_name()
                .to_str()
                .and_then(|t| t.parse::<libc::id_t>().ok());
            if let (true, Some(tid)) = (named, tid) {
                // SAFETY: setpriority takes plain integers and touches no memory of ours; with
                // PRIO_PROCESS a thread id names that one thread (of this process: our own).
                if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, nice) } == 0 {
                    lowered += 1;
                }
            }
        }
        if lowered == 0 {
            tracing::debug!(prefix, "found no thread to lower the priority of");
        }
        lowered
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (prefix, nice);
        0
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn tid() -> libc::id_t {
        // SAFETY: gettid takes nothing and touches no memory.
        unsafe { libc::syscall(libc::SYS_gettid) as libc::id_t }
    }

    fn nice(tid: libc::id_t) -> i32 {
        // SAFETY: getpriority takes plain integers and touches no memory of ours.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, tid) }
    }

    #[test]
    fn the_threads_named_are_lowered_and_no_other() {
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (told, tell) = std::sync::mpsc::channel::<libc::id_t>();
        // A thread named for the prefix, alive until the check is done.
        let named = std::thread::Builder::new()
            .name("lowertest_0".into())
            .spawn(move || {
                let _ = told.send(tid());
                let _ = wait.recv();
            })
            .expect("thread");
        let named_tid = tell.recv().expect("its id");
        let before = nice(tid());
        // The lowest priority there is: a lowering whatever the test runs at.
        assert_eq!(lower_priority_of_threads("lowertest_", BACKGROUND), 1);
        assert_eq!(nice(named_tid), BACKGROUND);
        assert_eq!(nice(tid()), before, "the calling thread keeps its priority");
        drop(release);
        named.join().expect("join");
    }
}
