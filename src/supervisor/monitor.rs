//! The monitor process: forked and confined ahead of `start` when it can be (so that `start`
//! only lets it execve), started, and the supervisor's own confinement once it runs.

use super::{Setup, SupervisorError};
use crate::plan::LaunchPlan;
use crate::sandbox::Filters;
use crate::sys;
use crate::timestamps as ts;
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid};
use std::io::{Read, Write};
use std::os::fd::{OwnedFd, RawFd};

/// A monitor process forked and confined, waiting for the word to execve (`release`).
pub(super) struct Waiting {
    pid: Pid,
    /// Write end: one byte lets it execve; closed without one, it exits.
    go: OwnedFd,
    /// Read end: EOF once execve succeeded (close-on-exec), else the error text.
    result: OwnedFd,
}

/// Compiles the seccomp filter and, when no startContainer hook must run first, forks and
/// confines the monitor up to its execve: all before the barrier, off `start`'s critical
/// path. With such hooks the monitor is forked after them, as the hooks may change what its
/// view binds (the order of the OCI spec: hooks, then the program).
/// `host_uid`: the monitor's leased host uid (`sandbox::monitor_host_uid`), if any.
pub(super) fn prepare_launch(
    s: &Setup,
    plan: &LaunchPlan,
    host_uid: Option<u32>,
) -> crate::error::Result<(Filters, Option<Waiting>)> {
    let deny = crate::sandbox::supervisor_filters().map_err(SupervisorError::SeccompCompile)?;
    let early = if s.state.urunc.hooks.start_container.is_empty() {
        Some(fork_monitor(s, plan, host_uid, &deny)?)
    } else {
        None
    };
    Ok((deny, early))
}

/// Forks the monitor process, which confines itself (`exec_monitor`) then waits for `go`.
fn fork_monitor(
    s: &Setup,
    plan: &LaunchPlan,
    host_uid: Option<u32>,
    deny: &Filters,
) -> crate::error::Result<Waiting> {
    use crate::error::sys as sys_err;
    let cloexec = nix::fcntl::OFlag::O_CLOEXEC;
    let (rd, wr) = nix::unistd::pipe2(cloexec).map_err(sys_err("pipe"))?;
    let (go_rd, go_wr) = nix::unistd::pipe2(cloexec).map_err(sys_err("pipe"))?;
    let me = nix::unistd::getpid();
    match sys::fork().map_err(sys_err("fork monitor"))? {
        ForkResult::Child => {
            drop((rd, go_wr));
            let err = exec_monitor(s, plan, me, host_uid, deny, go_rd);
            let mut w = std::fs::File::from(wr);
            let _ = w.write_all(err.as_bytes());
            // SAFETY: _exit in the forked child skips the parent's atexit state.
            unsafe { libc::_exit(127) }
        }
        ForkResult::Parent { child } => Ok(Waiting {
            pid: child,
            go: go_wr,
            result: rd,
        }),
    }
}

/// Lets the waiting monitor execve; returns its pid once execve succeeded.
fn release(w: Waiting) -> crate::error::Result<Pid> {
    // a monitor that failed to confine itself has exited: the write fails (SIGPIPE is
    // ignored) and its error is in `result`
    let _ = std::fs::File::from(w.go).write_all(b"g");
    let mut msg = String::new();
    let _ = std::fs::File::from(w.result).read_to_string(&mut msg);
    if msg.is_empty() {
        Ok(w.pid)
    } else {
        let _ = waitpid(w.pid, None);
        Err(SupervisorError::MonitorExec(msg).into())
    }
}

/// Runs startContainer hooks and lets the monitor execve (forking it first unless it waits
/// already); then the supervisor confines itself.
pub(super) fn launch(
    s: &Setup,
    plan: &LaunchPlan,
    (deny, host_uid): (&Filters, Option<u32>),
    early: Option<Waiting>,
) -> crate::error::Result<Pid> {
    use crate::error::sys as sys_err;
    let hooks = &s.state.urunc.hooks;
    let hooked = crate::hooks::run(
        "startContainer",
        &hooks.start_container,
        &s.state.oci("created"),
    );
    if let Err(e) = hooked {
        if let Some(w) = early {
            // closing `go` unread makes it exit
            drop(w.go);
            let _ = waitpid(w.pid, None);
        }
        return Err(e.into());
    }
    // Block the forwarded signals before the monitor runs so none is lost: the event loop
    // takes them from here (the monitor's own mask is reset before its execve).
    let mut mask = SigSet::empty();
    for sig in sys::FORWARDED.iter().chain([Signal::SIGCHLD].iter()) {
        mask.add(*sig);
    }
    mask.thread_block().map_err(sys_err("block signals"))?;
    let waiting = match early {
        Some(w) => w,
        None => fork_monitor(s, plan, host_uid, deny)?,
    };
    ts::capture(18);
    let monitor = release(waiting)?;
    confine_self(s, monitor, deny)
}

/// Once the monitor runs, the supervisor drops to its user and confines itself
/// (`sandbox::confine_supervisor`); on failure the monitor is killed and `start` fails.
fn confine_self(s: &Setup, monitor: Pid, deny: &Filters) -> crate::error::Result<Pid> {
    if let Err(e) = crate::sandbox::confine_supervisor(&s.plan_input.process, deny) {
        let _ = kill(monitor, Signal::SIGKILL);
        let _ = waitpid(monitor, None);
        return Err(SupervisorError::ConfineSupervisor(e).into());
    }
    Ok(monitor)
}

/// In the forked monitor process: confine, then execve. Returns only the error text.
fn exec_monitor(
    s: &Setup,
    plan: &LaunchPlan,
    supervisor: Pid,
    host_uid: Option<u32>,
    deny: &Filters,
    go: OwnedFd,
) -> String {
    sys::reset_signals();
    if let Err(e) = sys::cloexec_from(3) {
        return format!("cannot mark fds close-on-exec: {e}");
    }
    let preserved = 3..3 + s.preserve_fds as i32;
    for fd in plan.keep_fds.iter().copied().chain(preserved) {
        let _ = nix::fcntl::fcntl(
            fd as RawFd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
        );
    }
    let confined = crate::sandbox::confine_monitor(
        plan,
        &s.plan_input,
        &s.state.dir,
        &s.sandbox,
        host_uid,
        deny,
    );
    let seccomp = match confined {
        Ok(pending) => pending,
        Err(e) => return format!("cannot confine the monitor: {e}"),
    };
    match sys::set_pdeathsig(Signal::SIGKILL, supervisor) {
        Ok(false) => {}
        Ok(true) => return "the supervisor exited before the monitor started".into(),
        Err(e) => return format!("cannot set the parent-death signal: {e}"),
    }
    let c = |v: &str| std::ffi::CString::new(v).unwrap_or_default();
    let argv: Vec<std::ffi::CString> = plan.argv.iter().map(|a| c(a)).collect();
    let env: Vec<std::ffi::CString> = plan.env.iter().map(|a| c(a)).collect();
    let prog = c(&plan.program.to_string_lossy());
    // confined; now wait for `start` (the supervisor's `release`): a closed pipe means the
    // container will not start (the filter is not installed yet, so the read is allowed)
    let mut byte = [0u8; 1];
    match std::fs::File::from(go).read(&mut byte) {
        Ok(1) => {}
        _ => return "the monitor was not started".into(),
    }
    if let Err(e) = seccomp.finish() {
        return format!("cannot confine the monitor: {e}");
    }
    match nix::unistd::execve(&prog, &argv, &env) {
        Err(e) => format!("cannot execute the monitor {}: {e}", plan.program.display()),
        Ok(never) => match never {},
    }
}
