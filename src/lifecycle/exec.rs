//! `exec` as an engine API (issue #17): runs a process inside a Linux guest whose init is
//! urunit, through the supervisor's exec socket (`supervisor::exec_server`) and urunit's
//! channel. Two forms, as runc's:
//!
//! - attached: this process is the relay (`relay.rs`): stdio streamed, signals forwarded,
//!   the guest process's status returned (128+N for signal N);
//! - detached (`--detach`, the shim's and conmon's form): once the guest process started, a
//!   forked relay carries on with the caller's stdio, confined like the supervisor, and its
//!   pid goes to `--pid-file`; it lives exactly as long as the guest process.
//!
//! With a terminal and a console socket, the relay makes a pty, sends its master over the
//! socket and keeps the slave as its controlling terminal, so resizes of the master reach it
//! (SIGWINCH) and then the guest.

use super::relay::{self, Io};
use crate::container::{State, Status};
use crate::supervisor::exec_server;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;
use urunit_proto::exec::{ExecMsg, Spec};
use urunit_proto::frame::{MAX_ENCODED, MAX_PAYLOAD};

/// How long an exec waits for the guest to start its process (a guest still booting under
/// TCG takes tens of seconds before urunit reads its channel).
const START_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("exec is not supported for unikernel container {0}: its workload runs inside a virtual machine and has no process to exec into")]
    Unikernel(String),
    #[error("exec is not supported for container {0}: its guest has no channel to urunit (exec needs a Linux guest whose init is urunit, run by QEMU)")]
    NoChannel(String),
    #[error("cannot exec in container {id}: it is {status}, not running")]
    NotRunning { id: String, status: String },
    #[error("exec: no command given")]
    NoArgs,
    #[error("exec: cannot read --process {path}: {source}")]
    ProcessFile {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("exec: --process {path} is not a process spec: {source}")]
    NotAProcess {
        path: std::path::PathBuf,
        source: serde_json::Error,
    },
    #[error("exec: {0}")]
    Spec(#[from] urunit_proto::exec::SpecError),
    #[error("exec: cannot {what}: {source}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("exec: the guest did not start the process within {0:?} (is urunit running?)")]
    Timeout(Duration),
    #[error("exec: the container ended before the process started")]
    Gone,
    #[error("exec: the guest could not start the process: {0}")]
    Failed(String),
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> ExecError {
    move |source| ExecError::Io { what, source }
}

/// What to run and how.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub process: crate::spec::Process,
    /// Where the pty master goes (`process.terminal` only).
    pub console_socket: Option<PathBuf>,
    /// The process's `consoleSize` (rows, cols): the terminal's size before any resize.
    pub console_size: Option<(u16, u16)>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
}

/// Refuses at once what cannot be exec'ed into: unikernels, containers not running.
pub fn check(st: &State) -> Result<(), ExecError> {
    let id = st.id.clone();
    if crate::plan::GuestKind::from_name(&st.urunc.guest) != Some(crate::plan::GuestKind::Linux) {
        return Err(ExecError::Unikernel(id));
    }
    if !st.dir.join(exec_server::DIR).is_dir() {
        return Err(ExecError::NoChannel(id));
    }
    let status = st.status();
    if status != Status::Running {
        return Err(ExecError::NotRunning {
            id,
            status: status.as_str().to_string(),
        });
    }
    Ok(())
}

/// Runs the exec; returns the status the command exits with (0 when detached).
pub fn exec(st: &State, opts: &ExecOptions) -> Result<i32, ExecError> {
    check(st)?;
    let id = st.id.clone();
    let p = &opts.process;
    if p.args.is_empty() {
        return Err(ExecError::NoArgs);
    }
    let sock = connect(&st.dir).map_err(|_| ExecError::NoChannel(id))?;
    let tty = match (p.terminal, &opts.console_socket) {
        (true, Some(cs)) => {
            Some(relay::console_pty(cs, opts.console_size).map_err(io("set up the console"))?)
        }
        _ => None,
    };
    let size = match &tty {
        Some(t) => relay::window_size(t.as_raw_fd()),
        None if p.terminal => relay::window_size(0),
        None => None,
    };
    let spec = Spec {
        args: p.args.clone(),
        env: p.env.clone(),
        cwd: if p.cwd.is_empty() {
            "/".into()
        } else {
            p.cwd.clone()
        },
        uid: p.user.uid,
        gid: p.user.gid,
        groups: p.user.additional_gids.clone(),
        terminal: p.terminal.then(|| size.unwrap_or((24, 80))),
    };
    send_spec(&sock, &spec)?;
    let reader = wait_started(&sock)?;
    let stdio = Io::new(tty, p.terminal);
    if !opts.detach {
        return relay::run(sock, reader, stdio).map_err(io_err);
    }
    let pid = relay::spawn_detached(sock, reader, stdio).map_err(io("start the exec relay"))?;
    if let Some(f) = &opts.pid_file {
        write_pid_file(f, pid).map_err(io("write the pid file"))?;
    }
    Ok(0)
}

fn io_err(e: std::io::Error) -> ExecError {
    ExecError::Io {
        what: "relay the exec's streams",
        source: e,
    }
}

/// Connects to the supervisor's exec socket, through its directory's fd (no link followed,
/// and a short path whatever the state root).
fn connect(state_dir: &Path) -> std::io::Result<UnixStream> {
    use nix::fcntl::OFlag;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW).bits())
        .open(state_dir.join(exec_server::DIR))?;
    let dir = OwnedFd::from(dir);
    UnixStream::connect(format!(
        "/proc/self/fd/{}/{}",
        dir.as_raw_fd(),
        exec_server::SOCKET
    ))
}

fn send_spec(sock: &UnixStream, spec: &Spec) -> Result<(), ExecError> {
    let data = spec.encode()?;
    let mut w = relay::Writer::new(sock);
    for chunk in data.chunks(MAX_PAYLOAD) {
        w.send(ExecMsg::Spec(chunk))
            .map_err(io("send the exec spec"))?;
    }
    w.send(ExecMsg::Start).map_err(io("send the exec spec"))
}

/// Waits for STARTED (or the reason it failed).
fn wait_started(sock: &UnixStream) -> Result<relay::Reader, ExecError> {
    sock.set_read_timeout(Some(START_TIMEOUT))
        .map_err(io("set a timeout"))?;
    let mut r = relay::Reader::new(sock).map_err(io("read from the supervisor"))?;
    let mut out = Ok(None);
    while matches!(out, Ok(None)) {
        let more = r
            .next(&mut |m| {
                out = match m {
                    ExecMsg::Started { .. } => Ok(Some(())),
                    ExecMsg::Failed { reason, .. } => Err(ExecError::Failed(reason.to_string())),
                    _ => Ok(None),
                }
            })
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                    ExecError::Timeout(START_TIMEOUT)
                }
                _ => ExecError::Io {
                    what: "read from the supervisor",
                    source: e,
                },
            })?;
        if !more && matches!(out, Ok(None)) {
            return Err(ExecError::Gone);
        }
    }
    sock.set_read_timeout(None)
        .map_err(io("clear the timeout"))?;
    out.map(|_| r)
}

fn write_pid_file(path: &Path, pid: i32) -> std::io::Result<()> {
    let tmp = path.with_extension("urunc-tmp");
    std::fs::write(&tmp, pid.to_string())?;
    std::fs::rename(&tmp, path)
}

/// The wire form of one message (for the relay's writer).
pub(super) fn encode(m: ExecMsg<'_>, out: &mut [u8; MAX_ENCODED]) -> usize {
    // stream 1: the supervisor rewrites it to the client's own
    m.encode(1, out).unwrap_or(0)
}
