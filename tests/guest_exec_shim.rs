//! `urunc exec` as containerd's runc-v2 shim and conmon call it (issue #17):
//! `exec --process FILE [--console-socket SOCK] --detach --pid-file FILE ID`. The test plays
//! the shim: it is a subreaper, reaps the pid it was handed (the relay) and takes its status
//! as the exec's; it signals that pid; with a terminal it receives the pty master on its
//! console socket and resizes it. Also runc's attached `exec -t` on the caller's terminal.
//! Without the assets the tests skip (CI: fail).

mod assets;
mod exec_guest;
use exec_guest::*;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

fn become_subreaper() {
    // SAFETY: prctl with integer arguments only.
    assert_eq!(
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) },
        0
    );
}

/// Reaps `pid` (a child of ours once its parent, urunc exec, exited) within `timeout`.
fn reap(pid: i32, timeout: Duration) -> Option<i32> {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        let mut st = 0;
        // SAFETY: waitpid for one pid into a valid int.
        let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
        if r == pid {
            return Some(if libc::WIFSIGNALED(st) {
                128 + libc::WTERMSIG(st)
            } else {
                libc::WEXITSTATUS(st)
            });
        }
        assert!(r == 0, "waitpid {pid}: {}", std::io::Error::last_os_error());
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// `exec --process --detach --pid-file` with `process` as the process file; returns the pid
/// written to the pid file and the exec's stdout lines.
fn detached(
    g: &Guest,
    process: serde_json::Value,
    console: Option<&Path>,
) -> (i32, Receiver<String>) {
    let pf = g.dir.path().join("process.json");
    std::fs::write(&pf, process.to_string()).unwrap();
    let pid_file = g.dir.path().join("exec.pid");
    let _ = std::fs::remove_file(&pid_file);
    let mut args = vec![
        "exec".to_string(),
        "--process".into(),
        pf.display().to_string(),
    ];
    if let Some(c) = console {
        args.extend(["--console-socket".into(), c.display().to_string()]);
    }
    args.extend([
        "--detach".into(),
        "--pid-file".into(),
        pid_file.display().to_string(),
        g.id.clone(),
    ]);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut c = g
        .cmd(&a)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = lines(c.stdout.take().unwrap());
    let st = c.wait().unwrap();
    assert!(st.success(), "urunc exec --detach failed: {st:?}");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (pid, rx)
}

fn process(args: &[&str], terminal: bool) -> serde_json::Value {
    serde_json::json!({
        "terminal": terminal,
        "user": {"uid": 0, "gid": 0},
        "args": args,
        "env": ["PATH=/bin", "TERM=xterm"],
        "cwd": "/",
    })
}

#[test]
fn the_shims_detached_form_reaped_signalled_and_ended_with_the_container() {
    let Some(assets) = guest_assets(&["vmlinux", "initrd.cpio"]) else {
        return;
    };
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    become_subreaper();
    let g = Guest::boot(&assets, "shim");

    // the pid handed back is the relay: it lives as long as the process, with its status
    let (pid, rx) = detached(
        &g,
        process(&["/bin/sh", "-c", "echo from-exec; exit 7"], false),
        None,
    );
    assert!(wait_line(&rx, "from-exec", BOOT));
    assert_eq!(reap(pid, Duration::from_secs(60)), Some(7));

    // a signal sent to that pid reaches the guest process
    let script = "trap 'echo got-usr1; exit 9' USR1; echo armed; while :; do sleep 0.1; done";
    let (pid, rx) = detached(&g, process(&["/bin/sh", "-c", script], false), None);
    assert!(wait_line(&rx, "armed", BOOT));
    // SAFETY: kill with a pid we own.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGUSR1) }, 0);
    assert!(wait_line(&rx, "got-usr1", Duration::from_secs(60)));
    assert_eq!(reap(pid, Duration::from_secs(60)), Some(9));

    // the container ending ends the relay (its process was killed with the guest)
    let (pid, rx) = detached(
        &g,
        process(&["/bin/sh", "-c", "echo long; exec sleep 1000"], false),
        None,
    );
    assert!(wait_line(&rx, "long", BOOT));
    let k = g.cmd(&["kill", &g.id, "KILL"]).output().unwrap();
    assert!(k.status.success());
    assert_eq!(reap(pid, Duration::from_secs(60)), Some(137));
}

/// Receives the pty master a console socket is sent (SCM_RIGHTS).
fn receive_master(l: &std::os::unix::net::UnixListener) -> OwnedFd {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let (s, _) = l.accept().unwrap();
    let mut buf = [0u8; 64];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(s.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::empty()).unwrap();
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the fd just arrived in this process and nothing else owns it.
            return unsafe { OwnedFd::from_raw_fd(fds[0]) };
        }
    }
    panic!("no fd on the console socket");
}

#[test]
fn a_terminal_exec_through_a_console_socket_sees_a_resize() {
    let Some(assets) = guest_assets(&["vmlinux", "initrd.cpio"]) else {
        return;
    };
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    become_subreaper();
    let g = Guest::boot(&assets, "tty");
    let sock = g.dir.path().join("console.sock");
    let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let script = "stty size; read x; stty size; echo bye-$x; exit 3";
    let recv = std::thread::spawn(move || receive_master(&l));
    let (pid, urunc_out) = detached(&g, process(&["/bin/sh", "-c", script], true), Some(&sock));
    let master = recv.join().unwrap();
    // the relay keeps no copy of urunc's own stdout (the shim reads it to its end before it
    // goes on), though the process still runs
    assert!(matches!(
        urunc_out.recv_timeout(Duration::from_secs(60)),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
    ));
    let mut reader = std::fs::File::from(master.try_clone().unwrap());
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0
                || tx
                    .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                    .is_err()
            {
                break;
            }
        }
    });
    let mut seen = String::new();
    let mut wait_for = |want: &str| {
        let end = Instant::now() + BOOT;
        while !seen.contains(want) {
            let left = end
                .checked_duration_since(Instant::now())
                .unwrap_or_default();
            match rx.recv_timeout(left) {
                Ok(s) => seen.push_str(&s),
                Err(_) => panic!("never saw {want:?} on the console: {seen:?}"),
            }
        }
    };
    // the relay's pty starts without a size: the guest's gets the terminal default
    wait_for("24 80");
    let ws = libc::winsize {
        ws_row: 30,
        ws_col: 100,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize; the master is ours.
    assert_eq!(
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) },
        0
    );
    std::fs::File::from(master.try_clone().unwrap())
        .write_all(b"go\r")
        .unwrap();
    wait_for("30 100");
    wait_for("bye-go");
    assert_eq!(reap(pid, Duration::from_secs(60)), Some(3));
}

/// runc's `exec -t` attached: the caller's terminal (here a pty of the test) is the exec's;
/// the guest's pty gets its size, and output comes back through it.
#[test]
fn an_attached_terminal_exec_takes_the_callers_terminal() {
    let Some(assets) = guest_assets(&["vmlinux", "initrd.cpio"]) else {
        return;
    };
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let g = Guest::boot(&assets, "attty");
    let ws = nix::pty::Winsize {
        ws_row: 20,
        ws_col: 70,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&ws), None).unwrap();
    let stdio = |fd: &OwnedFd| Stdio::from(fd.try_clone().unwrap());
    let mut c = g
        .cmd(&[
            "exec",
            "-t",
            &g.id,
            "/bin/sh",
            "-c",
            "stty size; tty; echo bye",
        ])
        .stdin(stdio(&pty.slave))
        .stdout(stdio(&pty.slave))
        .stderr(stdio(&pty.slave))
        .spawn()
        .unwrap();
    drop(pty.slave);
    let mut master = std::fs::File::from(pty.master);
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 1024];
        // EIO once every slave holder (urunc exec) is gone
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    assert_eq!(wait_timeout(&mut c, BOOT), Some(0));
    let out = reader.join().unwrap();
    assert!(out.contains("20 70"), "{out:?}");
    assert!(out.contains("/dev/pts/") && out.contains("bye"), "{out:?}");
}
