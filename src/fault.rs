//! Fault injection for the tests, compiled into debug builds only: the release binary reads no
//! variable and every point is an inlined `Ok(())`.
//!
//! Every fallible step of `create` and of the container process's setup calls [`point`] with
//! its name. `URUNC_FAULT=NAME:ACTION` acts at the point `NAME`:
//! - `fail`: the step fails with "injected fault at NAME";
//! - `kill`: the process at that point (create or the container process) SIGKILLs itself;
//! - `kill-create`: `create` is SIGKILLed (from the container process when the point is
//!   there), and the process at the point carries on.
//!
//! `URUNC_FAULT_TRACE=FILE` appends the name of every point reached to FILE, so that a test
//! learns the points from a successful create instead of copying a list.

#[derive(Debug, thiserror::Error)]
#[error("injected fault at {0}")]
pub struct FaultError(pub &'static str);

impl From<FaultError> for crate::error::Error {
    fn from(e: FaultError) -> Self {
        crate::error::Error::Msg(e.to_string())
    }
}

#[cfg(debug_assertions)]
mod imp {
    use super::FaultError;
    use std::sync::atomic::{AtomicI32, Ordering};

    /// A pidfd of `create` (inherited by the container process, close-on-exec): it reaches
    /// `create` from the container's PID namespace too, where its pid means nothing.
    static CREATOR: AtomicI32 = AtomicI32::new(-1);

    /// `create` names itself before forking, so the container process can kill it.
    pub fn set_creator() {
        if std::env::var_os("URUNC_FAULT").is_none() {
            return;
        }
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd (close-on-exec) or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) };
        if fd >= 0 {
            CREATOR.store(fd as i32, Ordering::SeqCst);
        }
    }

    fn kill_creator() {
        let fd = CREATOR.load(Ordering::SeqCst);
        if fd >= 0 {
            // SAFETY: fd is the pidfd opened above; a null siginfo is allowed.
            unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd,
                    libc::SIGKILL,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            };
        }
    }

    /// Dies at once, as SIGKILL would. The init of a PID namespace (the container process)
    /// ignores SIGKILL sent from inside, so it leaves by `_exit`: no cleanup runs either way.
    fn die() -> ! {
        if std::process::id() == 1 {
            // SAFETY: _exit ends the process without running any user-space cleanup.
            unsafe { libc::_exit(137) }
        }
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        // SAFETY: as above; SIGKILL is delivered before raise returns, this is not reached.
        unsafe { libc::_exit(137) }
    }

    fn trace(name: &str) {
        use std::io::Write;
        let Some(path) = std::env::var_os("URUNC_FAULT_TRACE") else {
            return;
        };
        let f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path);
        if let Ok(mut f) = f {
            // one write of one short line: appends from both processes do not interleave
            let _ = f.write_all(format!("{name}\n").as_bytes());
        }
    }

    pub fn point(name: &'static str) -> Result<(), FaultError> {
        trace(name);
        let Ok(spec) = std::env::var("URUNC_FAULT") else {
            return Ok(());
        };
        let Some((at, action)) = spec.split_once(':') else {
            return Ok(());
        };
        if at != name {
            return Ok(());
        }
        match action {
            "fail" => Err(FaultError(name)),
            "kill" => die(),
            "kill-create" => {
                kill_creator();
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

#[cfg(not(debug_assertions))]
mod imp {
    use super::FaultError;

    #[inline(always)]
    pub fn set_creator() {}

    #[inline(always)]
    pub fn point(_: &'static str) -> Result<(), FaultError> {
        Ok(())
    }
}

pub use imp::{point, set_creator};

#[cfg(all(test, debug_assertions))]
mod tests {
    use super::*;

    #[test]
    fn only_the_named_point_fails() {
        // the variable is process-wide: this is the only unit test that sets it
        std::env::set_var("URUNC_FAULT", "unit-b:fail");
        let a = point("unit-a");
        let b = point("unit-b");
        std::env::remove_var("URUNC_FAULT");
        assert!(a.is_ok());
        assert_eq!(b.unwrap_err().to_string(), "injected fault at unit-b");
    }
}
