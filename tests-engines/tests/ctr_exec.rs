//! `ctr task exec` into a Linux guest (issue #17), through containerd's stock
//! `io.containerd.runc.v2` shim with `--runc-binary urunc`: the shim calls
//! `urunc exec --process FILE --detach --pid-file FILE ID`, reaps the relay it was handed,
//! and ctr prints the process's output and exits with its status; with `-t`, the shim gets
//! the pty master over its console socket and resizes it. Then the container stops and
//! leaves nothing behind.

use std::time::Duration;
use urunc_engines_tests::{self as h, containerd::Containerd, leftovers};

const IMAGE: &str = "localhost/urunc-ctr-exec-guest:test";

#[test]
fn ctr_task_exec_runs_in_the_guest() {
    let Some(assets) = h::require(&["containerd", "ctr", "containerd-shim-runc-v2", "runc"]) else {
        return;
    };
    let urunc = h::urunc_bin();
    let _host = leftovers::HostGuard::new(&[&std::process::id().to_string()]);
    let ctd = Containerd::start("");
    let work = h::workdir("ctrx-img-");
    let image = h::guest_image(
        &assets,
        work.path(),
        &h::ImageSpec {
            name: IMAGE,
            format: "oci",
            urunc_json: true,
            cmd: &["/bin/sh", "-c", "echo ready; exec sleep 600"],
        },
    );
    ctd.import("default", &image);
    let pid = std::process::id();
    let parent = format!("/urunc-ctrx-test-{pid}");
    let id = format!("urunc-ctr-exec-{pid}");
    h::ok(
        ctd.ctr("default")
            .args([
                "run",
                "-d",
                "--cgroup",
                &format!("{parent}/{id}"),
                "--runc-binary",
            ])
            .arg(&urunc)
            .arg("--runc-root")
            .arg(&ctd.runc_root)
            .args([
                IMAGE,
                &id,
                "/urunit",
                "/bin/sh",
                "-c",
                "echo ready; exec sleep 600",
            ]),
    );
    let cleanup = Cleanup(&ctd, id.clone());
    let exec = |eid: &str, script: &str| {
        h::run_timeout(
            ctd.ctr("default").args([
                "task",
                "exec",
                "--exec-id",
                eid,
                &id,
                "/bin/sh",
                "-c",
                script,
            ]),
            Duration::from_secs(300),
        )
    };
    let out = exec(
        "e1",
        "echo in-guest-$((6*7)) $(hostname); echo err-side >&2; exit 5",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("in-guest-42"),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        ctd.daemon.tail()
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("err-side"));
    assert_eq!(
        out.status.code(),
        Some(5),
        "ctr task exec returns the process's status"
    );
    // a second exec after the first: independent, status 0
    let out = exec("e2", "cat /proc/1/cmdline | tr '\\0' ' '");
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("urunit"),
        "exec runs inside the guest"
    );
    // a terminal: `ctr task exec -t` on a pty of ours (33x99); the shim gets the pty master
    // over its console socket, copies it to ctr and resizes it to ctr's terminal size (the
    // guest waits for that size, up to 30 s, as a guard against a hang only)
    let script = "i=0; while [ \"$(stty size)\" != '33 99' ] && [ $i -lt 300 ]; do sleep 0.1; \
                  i=$((i+1)); done; echo size=$(stty size); tty; echo tty-done";
    let mut c = ctd.ctr("default");
    c.args([
        "task",
        "exec",
        "-t",
        "--exec-id",
        "e3",
        &id,
        "/bin/sh",
        "-c",
        script,
    ]);
    let (code, out) = on_a_pty(&mut c, 33, 99, Duration::from_secs(300));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("size=33 99"), "{out}");
    assert!(
        out.contains("/dev/pts/") && out.contains("tty-done"),
        "{out}"
    );
    h::ok(
        ctd.ctr("default")
            .args(["task", "kill", "-s", "SIGKILL", &id]),
    );
    let stopped = h::wait_for(Duration::from_secs(60), || {
        let o = ctd.ctr("default").args(["task", "ls"]).output().ok()?;
        let s = String::from_utf8_lossy(&o.stdout).into_owned();
        s.lines()
            .any(|l| l.starts_with(&id) && l.contains("STOPPED"))
            .then_some(())
    });
    assert!(stopped.is_some(), "the guest did not stop");
    h::ok(ctd.ctr("default").args(["task", "delete", &id]));
    h::ok(ctd.ctr("default").args(["containers", "delete", &id]));
    drop(cleanup);
    let left = leftovers::find(&id, &[ctd.runc_root.join("default").join(&id)]);
    assert!(left.is_empty(), "{id} left: {left:#?}");
    leftovers::remove_cgroup_parent(&parent);
}

/// Runs `cmd` with a pty of `rows`x`cols` as its stdio; returns its status (None when it
/// had to be killed after `timeout`) and all the pty printed.
fn on_a_pty(
    cmd: &mut std::process::Command,
    rows: u16,
    cols: u16,
    timeout: Duration,
) -> (Option<i32>, String) {
    use std::io::Read;
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::process::Stdio;
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let (mut m, mut s) = (0, 0);
    // SAFETY: openpty writes two fds; the name and termios pointers may be null.
    let r = unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), &ws) };
    assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: fresh fds from openpty, owned here.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) };
    let mut reader = std::fs::File::from(master);
    let read = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        // ends with EIO once no process holds the slave any more
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    let stdio = || Stdio::from(slave.try_clone().unwrap());
    let mut child = cmd
        .stdin(stdio())
        .stdout(stdio())
        .stderr(stdio())
        .spawn()
        .unwrap();
    // the command keeps its stdio settings: drop our copies of the slave with them (else the
    // master never reaches its end)
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    drop(slave);
    let code = h::wait_for(timeout, || child.try_wait().unwrap().map(|st| st.code()));
    if code.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    (code.flatten(), read.join().unwrap())
}

/// Removes the container if an assertion failed on the way.
struct Cleanup<'a>(&'a Containerd, String);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let c = |a: &[&str]| {
            let _ = self.0.ctr("default").args(a).arg(&self.1).output();
        };
        c(&["task", "kill", "-s", "SIGKILL"]);
        std::thread::sleep(Duration::from_millis(500));
        c(&["task", "delete", "--force"]);
        c(&["containers", "delete"]);
    }
}
