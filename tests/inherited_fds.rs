//! The container process keeps none of the fds its caller let `create` inherit, except the
//! ones passed on purpose with `--preserve-fds` (issue 12, item 6; runc closes them too).

mod common;

use common::{unique, Env};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::Stdio;

/// The `pipe:[inode]` names the container process holds open.
fn open_pipes(pid: i64) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read the container process's fds")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|l| l.to_string_lossy().into_owned())
        .filter(|l| l.starts_with("pipe:"))
        .collect()
}

fn pipe_name(fd: &impl AsRawFd) -> String {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn inherited_fds_are_closed_and_preserved_ones_kept() {
    let env = Env::new();
    let b = env.bundle("fds", "sleep 60");
    let (_r1, leaked) = nix::unistd::pipe().unwrap();
    let (_r2, kept) = nix::unistd::pipe().unwrap();
    let (leaked_name, kept_name) = (pipe_name(&leaked), pipe_name(&kept));
    let (leaked_raw, kept_raw) = (leaked.as_raw_fd(), kept.as_raw_fd());
    let id = unique("fds");
    env.track(&id);
    let out = std::fs::File::create(env.console(&id)).unwrap();
    let mut c = env.cmd();
    c.args(["create", "--preserve-fds", "1", "--bundle"])
        .arg(&b)
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    // SAFETY: only dup2 between fork and exec (async-signal-safe); dup2 clears CLOEXEC, so
    // fd 3 (preserved) and fd 9 (not) reach urunc as a caller's inherited fds do.
    unsafe {
        c.pre_exec(move || {
            if libc::dup2(kept_raw, 3) < 0 || libc::dup2(leaked_raw, 9) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "create: {}", env.console_text(&id));
    let pid = env.state(&id).unwrap()["pid"].as_i64().unwrap();
    let pipes = open_pipes(pid);
    assert!(
        !pipes.contains(&leaked_name),
        "the caller's fd 9 ({leaked_name}) is still open in the container process: {pipes:?}"
    );
    assert!(
        pipes.contains(&kept_name),
        "--preserve-fds 1 must keep fd 3 ({kept_name}): {pipes:?}"
    );
    assert!(env.urunc(&["delete", "--force", &id]).status.success());
}
