//! Fault injection for the tests, compiled into debug builds only: the release binary reads no
//! variable and every point is an inlined `Ok(())`.
//!
//! Every fallible step of `create` and of the container process's setup calls [`point`] with
//! its name. `URUNC_FAULT=NAME:ACTION` acts at the point `NAME`:
//! - `fail`: the step fails with "injected fault at NAME";
//! - `kill`: the process at that point (create or the container process) SIGKILLs itself;
//! - `kill-create`: `create` is SIGKILLed (from the container process when the point is
//!   there), and the process at the point carries on;
//! - `hang`: the process waits at the point until it is killed (a create "still running").
//!
//! `URUNC_FAULT_TRACE=FILE` appends the name of every point reached to FILE, so that a test
//! learns the points from a successful create instead of copying a list.

#[cfg(debug_assertions)]
#[derive(Debug, thiserror::Error)]
#[error("injected fault at {0}")]
pub struct FaultError(pub &'static str);

/// In a release build no fault can happen: the error has no value at all.
#[cfg(not(debug_assertions))]
#[derive(Debug, thiserror::Error)]
pub enum FaultError {}

#[cfg(debug_assertions)]
mod imp {
    use super::FaultError;
    use std::sync::atomic::{AtomicI32, Ordering};

    /// The write end of a pipe on which a thread of `create` waits to SIGKILL `create`; the
    /// container process inherits it. (A pidfd cannot do it: the container process is in a
    /// PID namespace below `create`'s, and pidfd_send_signal only reaches downwards.)
    static KILL_PIPE: AtomicI32 = AtomicI32::new(-1);
    static KILL_PIPE_RD: AtomicI32 = AtomicI32::new(-1);
    static CREATOR: AtomicI32 = AtomicI32::new(0);

    /// In `create`, before anything else: arms `kill-create` when it is asked for.
    pub fn set_creator() {
        CREATOR.store(std::process::id() as i32, Ordering::SeqCst);
        let wanted = std::env::var("URUNC_FAULT").is_ok_and(|s| s.ends_with(":kill-create"));
        if !wanted {
            return;
        }
        let Ok((rd, wr)) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) else {
            return;
        };
        KILL_PIPE.store(std::os::fd::IntoRawFd::into_raw_fd(wr), Ordering::SeqCst);
        KILL_PIPE_RD.store(std::os::fd::AsRawFd::as_raw_fd(&rd), Ordering::SeqCst);
        std::thread::spawn(move || {
            let mut b = [0u8; 1];
            if nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&rd), &mut b) == Ok(1) {
                let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
            }
        });
    }

    fn kill_creator() {
        if CREATOR.load(Ordering::SeqCst) == std::process::id() as i32 {
            die();
        }
        let fd = KILL_PIPE.load(Ordering::SeqCst);
        if fd >= 0 {
            // our copy of the read end goes, so the pipe breaks exactly when create is gone
            let _ = nix::unistd::close(KILL_PIPE_RD.load(Ordering::SeqCst));
            // SAFETY: fd is the pipe's write end this process inherited; it stays open.
            let wr = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            let _ = nix::unistd::write(wr, b"k");
            // go on only once create is gone, so what follows meets a dead create every time
            use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
            let mut p = [PollFd::new(wr, PollFlags::empty())];
            let _ = poll(&mut p, PollTimeout::from(10_000u16));
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

    /// Whether this process is `create` (for the names of points both processes pass).
    pub fn in_creator() -> bool {
        CREATOR.load(Ordering::SeqCst) == std::process::id() as i32
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
        let Some((at, action)) = spec.rsplit_once(':') else {
            return Ok(());
        };
        if at != name {
            return Ok(());
        }
        match action {
            "fail" => Err(FaultError(name)),
            "kill" => die(),
            "hang" => loop {
                std::thread::park();
            },
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

    #[inline(always)]
    pub fn in_creator() -> bool {
        false
    }
}

pub use imp::{in_creator, point, set_creator};

#[cfg(all(test, debug_assertions))]
mod tests {
    use super::*;

    #[test]
    fn only_the_named_point_fails() {
        // the variable is process-wide: this is the only unit test that sets it
        std::env::set_var("URUNC_FAULT", "unit:b:fail");
        let a = point("unit-a");
        let b = point("unit:b");
        std::env::remove_var("URUNC_FAULT");
        assert!(a.is_ok());
        assert_eq!(b.unwrap_err().to_string(), "injected fault at unit:b");
    }
}
