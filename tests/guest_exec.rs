//! `urunc exec` into a real Linux guest (issue #17), attached (runc's plain form): output,
//! identity, status, signals, stdin and its end, two execs at once, and a caller that is not
//! root. Without the assets the tests skip (CI: fail), as tests/guest_linux.rs.

mod assets;
mod exec_guest;
use exec_guest::*;
use std::io::{Read, Write};
use std::process::Stdio;
use std::time::Duration;

#[test]
fn attached_exec_output_identity_status_and_signal() {
    let Some(assets) = guest_assets(&["vmlinux", "initrd.cpio"]) else {
        return;
    };
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let g = Guest::boot(&assets, "attached");
    // a spec longer than one frame
    let big = format!("BIG={}", "b".repeat(3000));
    // output on stdout and stderr, identity, cwd and environment as asked, status 7
    let o = g.exec(&[
        "-u",
        "1000:1001",
        "--additional-gids",
        "20",
        "--cwd",
        "/tmp",
        "-e",
        "FOO=bar baz",
        "-e",
        &big,
        &g.id,
        "/bin/sh",
        "-c",
        "echo \"ID=$(id -u):$(id -g):$(id -G) CWD=$(pwd) FOO=[$FOO] HOME=[$HOME]\"; echo to-stderr >&2; exit 7",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("ID=1000:1001:") && out.contains(" 20") && out.contains("CWD=/tmp"),
        "{out}"
    );
    assert!(out.contains("FOO=[bar baz]"), "{out}");
    // HOME added when the process has none, as runc does (uid 1000 has no passwd entry: /)
    assert!(out.contains("HOME=[/]"), "{out}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("to-stderr"));
    assert_eq!(
        o.status.code(),
        Some(7),
        "exec returns the process's status"
    );

    // runc's plain form starts from the container's process: its environment (PATH=/bin in
    // config.json, not urunit's default), which -e overrides
    let o = g.exec(&[&g.id, "/bin/sh", "-c", "echo P=$PATH"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("P=/bin\n"));
    let o = g.exec(&["-e", "PATH=/x:/bin", &g.id, "/bin/sh", "-c", "echo P=$PATH"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("P=/x:/bin\n"));

    // a signal sent to urunc exec reaches the guest process: 128+15
    let mut c = g
        .cmd(&[
            "exec",
            &g.id,
            "/bin/sh",
            "-c",
            "echo started; exec sleep 1000",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = lines(c.stdout.take().unwrap());
    assert!(wait_line(&rx, "started", BOOT), "the exec never started");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(c.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(wait_timeout(&mut c, Duration::from_secs(60)), Some(143));

    // stdin reaches the guest, and its end of file too
    let mut c = g
        .cmd(&["exec", &g.id, "/bin/sh", "-c", "wc -c; echo done"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = c.stdin.take().unwrap();
    stdin.write_all(&vec![b'x'; 200_000]).unwrap();
    drop(stdin);
    let mut out = String::new();
    c.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert_eq!(wait_timeout(&mut c, Duration::from_secs(120)), Some(0));
    assert!(out.contains("200000") && out.contains("done"), "{out}");

    // the main program is untouched
    assert!(g.run.as_ref().map(|c| c.id()).is_some());
    let st = g.cmd(&["state", &g.id]).output().unwrap();
    assert!(String::from_utf8_lossy(&st.stdout).contains("running"));
}

#[test]
fn two_execs_at_once_are_independent() {
    let Some(assets) = guest_assets(&["vmlinux", "initrd.cpio"]) else {
        return;
    };
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let g = Guest::boot(&assets, "two");
    let start = |name: &str| {
        let script = format!("echo {name}-waiting; read x; echo {name}-got-$x; exit 4");
        let mut c = g
            .cmd(&["exec", &g.id, "/bin/sh", "-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let rx = lines(c.stdout.take().unwrap());
        assert!(
            wait_line(&rx, &format!("{name}-waiting"), BOOT),
            "{name} never started"
        );
        (c, rx)
    };
    let (mut a, rx_a) = start("a");
    let (mut b, rx_b) = start("b");
    // b finishes while a still waits for its input
    writeln!(b.stdin.take().unwrap(), "bee").unwrap();
    assert!(wait_line(&rx_b, "b-got-bee", Duration::from_secs(60)));
    assert_eq!(wait_timeout(&mut b, Duration::from_secs(60)), Some(4));
    assert_eq!(a.try_wait().unwrap(), None, "a ended with b");
    writeln!(a.stdin.take().unwrap(), "ay").unwrap();
    assert!(wait_line(&rx_a, "a-got-ay", Duration::from_secs(60)));
    assert_eq!(wait_timeout(&mut a, Duration::from_secs(60)), Some(4));
}

/// Exec is root's, as runc's: `urunc exec` from another user fails, and even with the
/// socket's file and directory opened up, the supervisor refuses a peer that is not root
/// (SO_PEERCRED) before the guest hears of it.
#[test]
fn a_caller_that_is_not_root_is_refused() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::os::unix::process::CommandExt;
    let Some(assets) = guest_assets(&["vmlinux", "initrd.cpio"]) else {
        return;
    };
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let g = Guest::boot(&assets, "nonroot");
    let dir = g.dir.path().join("state").join(&g.id).join("exec");
    let m = std::fs::metadata(&dir).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o777), (0, 0, 0o700));
    let nobody = 65534;
    let o = g
        .cmd(&["exec", &g.id, "/bin/touch", "/tmp/by-nobody"])
        .uid(nobody)
        .gid(nobody)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!o.status.success(), "a non-root exec succeeded");

    // the layer behind the permissions: open the way to the socket, connect as nobody
    let sock = dir.join("sock");
    for p in [
        g.dir.path().to_path_buf(),
        g.dir.path().join("state"),
        g.dir.path().join("state").join(&g.id),
        dir.clone(),
        sock.clone(),
    ] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    // SAFETY: the forked child makes system calls and a socket exchange, then _exits
    let child = unsafe { libc::fork() };
    if child == 0 {
        // SAFETY: plain system calls in the child
        let dropped = unsafe { libc::setgid(nobody) == 0 && libc::setuid(nobody) == 0 };
        let code = if dropped { nobody_exec(&sock) } else { 3 };
        // SAFETY: ends the forked child without running the test harness's exit code
        unsafe { libc::_exit(code) };
    }
    let mut st = 0;
    // SAFETY: waits for our own child into a valid int
    unsafe { libc::waitpid(child, &mut st, 0) };
    assert_eq!(
        libc::WEXITSTATUS(st),
        0,
        "0: refused, 1: the supervisor served a non-root peer, 2: nobody could not connect, 3: setuid failed"
    );
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let o = g.exec(&[
        &g.id,
        "/bin/sh",
        "-c",
        "test -e /tmp/by-nobody && echo FOUND; exit 0",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("FOUND"),
        "nobody ran a process in the guest"
    );
}

/// As nobody: connect, ask for `touch /tmp/by-nobody`, expect the connection closed with no
/// STARTED. Returns 0 when refused, 1 when served, 2 when it could not even connect.
fn nobody_exec(sock: &std::path::Path) -> i32 {
    use urunit_proto::exec::{ExecMsg, Spec};
    use urunit_proto::frame::{Decoder, MAX_ENCODED};
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(sock) else {
        return 2;
    };
    let spec = Spec {
        args: vec!["/bin/touch".into(), "/tmp/by-nobody".into()],
        cwd: "/".into(),
        ..Default::default()
    };
    let mut buf = [0u8; MAX_ENCODED];
    for m in [ExecMsg::Spec(&spec.encode().unwrap()), ExecMsg::Start] {
        let n = m.encode(1, &mut buf).unwrap();
        if s.write_all(&buf[..n]).is_err() {
            return 0; // closed already
        }
    }
    let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    let mut started = false;
    Decoder::default().feed(&got, |f| {
        if let Ok(f) = f {
            started |= matches!(ExecMsg::from_frame(&f), Ok(ExecMsg::Started { .. }));
        }
    });
    i32::from(started)
}

/// An exec issued while the guest still boots (probes fire early) waits for urunit's READY:
/// before it, urunit's tty is not raw yet and would mangle the frames.
#[test]
fn an_exec_during_boot_waits_for_the_guest() {
    let Some(assets) = guest_assets(&["vmlinux", "initrd.cpio"]) else {
        return;
    };
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (g, rx) = Guest::start(&assets, "early");
    let end = std::time::Instant::now() + BOOT;
    loop {
        let st = g.cmd(&["state", &g.id]).output().unwrap();
        if String::from_utf8_lossy(&st.stdout).contains("\"running\"") {
            break;
        }
        assert!(std::time::Instant::now() < end, "never running");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        rx.try_recv().is_err(),
        "the guest was already up: the test proves nothing"
    );
    let o = g.exec(&[&g.id, "/bin/sh", "-c", "echo early-exec; exit 6"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("early-exec"));
    assert_eq!(o.status.code(), Some(6));
}

/// Flow control: while an exec streams output to a reader that does not read, the container
/// still stops on TERM (the control frames get through) and another exec still runs. Prints
/// the exec throughput (stdout of `head -c` to a reader that drains it).
#[test]
fn a_stream_held_back_by_its_reader_blocks_neither_control_nor_other_execs() {
    let Some(assets) = guest_assets(&["vmlinux", "initrd.cpio"]) else {
        return;
    };
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let g = Guest::boot(&assets, "flow");
    let mb = 2;
    let t = std::time::Instant::now();
    let o = g
        .cmd(&[
            "exec",
            &g.id,
            "/bin/sh",
            "-c",
            &format!("head -c {} /dev/zero", mb << 20),
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(
        o.stdout.len(),
        mb << 20,
        "{:?} {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    println!(
        "FIGURE exec stdout throughput (QEMU TCG, ISA serial channel): {:.2} MiB/s ({mb} MiB in {secs:.2} s)",
        mb as f64 / secs
    );
    // a flood nobody reads: its credit runs out and the guest stops sending
    let mut flood = g
        .cmd(&["exec", &g.id, "/bin/sh", "-c", "exec cat /dev/zero"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let o = g.exec(&[&g.id, "/bin/sh", "-c", "echo beside-the-flood"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("beside-the-flood"));
    let k = g.cmd(&["kill", &g.id, "TERM"]).output().unwrap();
    assert!(k.status.success());
    // the program (exec sleep) dies of SIGTERM: 143, reported over the channel; the held
    // exec's relay ends with the container although its reader never read
    let mut g = g;
    let code = wait_timeout(g.run.as_mut().unwrap(), Duration::from_secs(60));
    assert_eq!(
        code,
        Some(143),
        "the guest did not stop while a stream was held"
    );
    assert_eq!(wait_timeout(&mut flood, Duration::from_secs(30)), Some(137));
}
