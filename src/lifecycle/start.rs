//! `start`: opens the barrier, which releases the container process; reads its verdict (the
//! monitor is running, or why not), then runs poststart hooks.

use super::LifecycleError;
use crate::container::{State, Status, BARRIER};
use crate::error::Result;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;

/// Starts the created container `st` (`t0`: when the command began, for the timestamps).
pub fn start(st: &State, t0: std::time::SystemTime) -> Result<()> {
    crate::timestamps::init(&st.urunc.timestamps, &st.id);
    crate::timestamps::capture_at(11, t0);
    crate::timestamps::capture(12);
    match st.status() {
        Status::Created => {}
        Status::Stopped => return Err(LifecycleError::StartStopped.into()),
        s => return Err(LifecycleError::StartNotCreated(s.as_str()).into()),
    }
    crate::fault::point("start:checked")?;
    let mut fifo = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(st.dir.join(BARRIER))
        .map_err(LifecycleError::NoBarrier)?;
    crate::timestamps::capture(13);
    crate::fault::point("start:barrier-opened")?;
    let mut verdict = Vec::new();
    loop {
        let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
        let n = poll(&mut fds, PollTimeout::from(100u16))
            .map_err(crate::error::sys("poll the start barrier"))?;
        if n == 0 {
            if !st.is_alive() {
                return Err(LifecycleError::ExitedBeforeStart.into());
            }
            continue;
        }
        let mut buf = [0u8; 4096];
        match fifo.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => verdict.extend_from_slice(&buf[..k]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(crate::error::io("read the start barrier")(e)),
        }
    }
    crate::fault::point("start:verdict")?;
    if verdict != b"ok" {
        let msg = String::from_utf8_lossy(&verdict).into_owned();
        return Err(if msg.is_empty() {
            LifecycleError::ExitedBeforeStart
        } else {
            LifecycleError::StartFailed(msg)
        }
        .into());
    }
    if let Err(e) = crate::hooks::run("poststart", &st.urunc.hooks.poststart, &st.oci("running")) {
        log::warn!("{e}");
    }
    Ok(())
}
