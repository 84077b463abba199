//! A disposable child process with a deadline, for probes that may hang in the kernel.

use std::io::Read;
use std::time::{Duration, Instant};

/// Runs `f` in a forked child and returns what it returned, or an error when it failed,
/// crashed or did not finish within `timeout` (then it is killed).
pub fn in_child(
    timeout: Duration,
    f: impl FnOnce() -> Result<String, String>,
) -> Result<String, String> {
    let (rd, wr) = nix::unistd::pipe().map_err(|e| format!("pipe: {e}"))?;
    match crate::sys::fork().map_err(|e| format!("fork: {e}"))? {
        nix::unistd::ForkResult::Child => {
            drop(rd);
            let msg = match f() {
                Ok(m) => format!("ok:{m}"),
                Err(e) => format!("err:{e}"),
            };
            let _ = nix::unistd::write(&wr, msg.as_bytes());
            // SAFETY: _exit ends the child without running the parent's atexit handlers.
            unsafe { libc::_exit(0) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(wr);
            let end = Instant::now() + timeout;
            let mut pfd = [nix::poll::PollFd::new(
                std::os::fd::AsFd::as_fd(&rd),
                nix::poll::PollFlags::POLLIN,
            )];
            let left = end.saturating_duration_since(Instant::now());
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            let ready = nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(ms)).unwrap_or(0);
            if ready == 0 {
                let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                let _ = nix::sys::wait::waitpid(child, None);
                return Err(format!("did not finish within {} s", timeout.as_secs()));
            }
            let mut out = String::new();
            let _ = std::fs::File::from(rd).read_to_string(&mut out);
            let _ = nix::sys::wait::waitpid(child, None);
            if let Some(m) = out.strip_prefix("ok:") {
                Ok(m.to_string())
            } else if let Some(e) = out.strip_prefix("err:") {
                Err(e.to_string())
            } else {
                Err("the probe crashed".into())
            }
        }
    }
}
