//! OCI hooks: run in order, the state JSON on stdin, `timeout` honoured, the first failure
//! stops the phase with runc's wording.

use crate::spec::Hook;
use std::io::{Read, Seek, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
#[error("error running {phase} hook #{index} ({path}): {failure}")]
pub struct HookError {
    pub phase: &'static str,
    pub index: usize,
    pub path: String,
    pub failure: Failure,
}

/// How one hook failed (runc's wording).
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("cannot start: {0}")]
    Start(#[source] std::io::Error),
    #[error("timed out after {0}s")]
    Timeout(i64),
    #[error("{status}, stdout: {stdout}, stderr: {stderr}")]
    Status {
        status: std::process::ExitStatus,
        stdout: String,
        stderr: String,
    },
}

fn capture_file() -> std::io::Result<std::fs::File> {
    let fd =
        nix::sys::memfd::memfd_create(c"urunc-hook", nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC)
            .map_err(std::io::Error::from)?;
    Ok(std::fs::File::from(fd))
}

fn read_back(f: &mut std::fs::File) -> String {
    let mut s = String::new();
    let _ = f.rewind();
    let _ = f.take(4096).read_to_string(&mut s);
    s.trim().to_string()
}

pub fn run(
    phase: &'static str,
    hooks: &[Hook],
    state: &serde_json::Value,
) -> Result<(), HookError> {
    let input = serde_json::to_vec(state).expect("state serializes");
    for (index, h) in hooks.iter().enumerate() {
        let fail = |failure| HookError {
            phase,
            index,
            path: h.path.clone(),
            failure,
        };
        run_one(h, &input).map_err(fail)?;
    }
    Ok(())
}

fn run_one(h: &Hook, input: &[u8]) -> Result<(), Failure> {
    let mut out = capture_file()?;
    let mut err = capture_file()?;
    let mut cmd = Command::new(&h.path);
    if let Some(a0) = h.args.first() {
        cmd.arg0(a0);
    }
    cmd.args(h.args.iter().skip(1))
        .env_clear()
        .envs(h.env.iter().filter_map(|kv| kv.split_once('=')))
        .stdin(Stdio::piped())
        .stdout(out.try_clone()?)
        .stderr(err.try_clone()?);
    let mut child = cmd.spawn().map_err(Failure::Start)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine (EPIPE).
        let _ = stdin.write_all(input);
    }
    let deadline = h
        .timeout
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => {}
            Err(e) => return Err(e.into()),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Failure::Timeout(h.timeout.unwrap_or_default()));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    if status.success() {
        return Ok(());
    }
    Err(Failure::Status {
        status,
        stdout: read_back(&mut out),
        stderr: read_back(&mut err),
    })
}
