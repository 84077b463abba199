//! Starting an exec's process (`exec.rs`): stdio on pipes or on a new pty, then in the child
//! exactly the spec's identity (setgroups, setgid, setuid), working directory and environment
//! (plus PATH and HOME when missing, as runc adds them), and execve.

use crate::exec::Session;
use crate::fds;
use crate::process::resolve;
use crate::sys;
use std::os::fd::{AsRawFd, OwnedFd};
use urunit_proto::exec::{Credit, Spec};

/// Forks the process of `spec` on pipes or a pty.
pub(crate) fn spawn(spec: &Spec) -> Result<Session, String> {
    let mut env = spec.env.clone();
    // as runc does: PATH and HOME when the process has none
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push(format!("PATH={}", crate::process::DEFAULT_PATH));
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", crate::process::home_of(spec.uid)));
    }
    let path = resolve(&spec.args[0], &env);
    let c = |s: &str| sys::cstr(s).map_err(|e| format!("{s:?}: {e}"));
    let cpath = c(&path)?;
    let argv = spec
        .args
        .iter()
        .map(|a| c(a))
        .collect::<Result<Vec<_>, _>>()?;
    let cenv = env.iter().map(|a| c(a)).collect::<Result<Vec<_>, _>>()?;
    let io = |e: std::io::Error| format!("cannot set up the exec's stdio: {e}");
    // child ends first, parent ends second
    let (child, parent_in, outputs, pty) = match spec.terminal {
        Some((rows, cols)) => {
            let (master, slave) = fds::openpty(rows, cols).map_err(io)?;
            let m2 = master.try_clone().map_err(io)?;
            let raw = master.as_raw_fd();
            (vec![slave], master, vec![(m2, false)], Some(raw))
        }
        None => {
            let (in_r, in_w) = fds::pipe().map_err(io)?;
            let (out_r, out_w) = fds::pipe().map_err(io)?;
            let (err_r, err_w) = fds::pipe().map_err(io)?;
            (
                vec![in_r, out_w, err_w],
                in_w,
                vec![(out_r, false), (err_r, true)],
                None,
            )
        }
    };
    let pid = sys::fork().map_err(|e| format!("fork: {e}"))?;
    if pid == 0 {
        child_exec(spec, &child, &cpath, &argv, &cenv, &path);
    }
    drop(child);
    fds::set_nonblocking(&parent_in).map_err(io)?;
    for (fd, _) in &outputs {
        fds::set_nonblocking(fd).map_err(io)?;
    }
    Ok(Session {
        stream: 0,
        pid,
        stdin: Some(parent_in),
        outputs,
        pty,
        pending_stdin: Vec::new(),
        stdin_eof: false,
        credit: Credit::default(),
        exited: None,
        closed: false,
    })
}

/// In the forked child: stdio, identity, execve. Never returns.
fn child_exec(
    spec: &Spec,
    child: &[OwnedFd],
    cpath: &std::ffi::CStr,
    argv: &[std::ffi::CString],
    cenv: &[std::ffi::CString],
    path: &str,
) -> ! {
    sys::reset_signals();
    // identity first (become_user starts a new session, which a pty needs before TIOCSCTTY)
    let who = sys::become_user(spec.uid, spec.gid, &spec.groups, &spec.cwd);
    let stdio = if let [tty] = child {
        fds::take_tty(tty.as_raw_fd())
    } else {
        (0..3).try_for_each(|i| fds::dup_to(child[i as usize].as_raw_fd(), i))
    };
    if let Err(e) = stdio {
        eprintln!("urunit: exec stdio: {e}");
        sys::exit_now(126);
    }
    if let Err((step, e)) = who {
        let what = if step == "chdir" {
            format!("chdir {}", spec.cwd)
        } else {
            step.into()
        };
        eprintln!("urunit: exec: {what}: {e}");
        sys::exit_now(126);
    }
    let e = sys::execve(&cpath.to_owned(), argv, cenv);
    eprintln!("urunit: exec {path}: {e}");
    sys::exit_now(if e.raw_os_error() == Some(libc::ENOENT) {
        127
    } else {
        126
    })
}
