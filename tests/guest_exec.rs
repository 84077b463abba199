//! `urunc exec` into a real Linux guest (issue #17): the Debian cloud kernel with urunit and
//! busybox (`scripts/prepare-assets.sh`) in QEMU under TCG. The main program sleeps; each
//! test execs into it and checks what the caller sees. Without the assets the tests skip
//! (CI: fail), as tests/guest_linux.rs.

mod assets;
use assets::guest_assets;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const URUNC: &str = env!("CARGO_BIN_EXE_urunc");
static SERIAL: Mutex<()> = Mutex::new(());
/// Guards against hangs only: TCG under load is slow.
const BOOT: Duration = Duration::from_secs(180);

struct Guest {
    dir: tempfile::TempDir,
    id: String,
    run: Option<Child>,
}

impl Guest {
    /// Boots a guest whose program prints `ready` then sleeps; returns once it printed it.
    fn boot(assets: &Path, name: &str) -> Guest {
        let dir = tempfile::Builder::new()
            .prefix("exec-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir(&rootfs).unwrap();
        if std::fs::hard_link(assets.join("vmlinux"), rootfs.join("vmlinux")).is_err() {
            std::fs::copy(assets.join("vmlinux"), rootfs.join("vmlinux")).unwrap();
        }
        std::fs::copy(assets.join("initrd.cpio"), rootfs.join("initrd")).unwrap();
        let spec = serde_json::json!({
            "ociVersion": "1.2.0",
            "process": {
                "terminal": false,
                "user": {"uid": 0, "gid": 0},
                "args": ["/urunit", "/bin/sh", "-c", "echo ready; exec sleep 100000"],
                "env": ["PATH=/bin"],
                "cwd": "/",
            },
            "root": {"path": "rootfs"},
            "hostname": "guest",
            "annotations": {
                "com.urunc.unikernel.unikernelType": "linux",
                "com.urunc.unikernel.hypervisor": "qemu",
                "com.urunc.unikernel.binary": "/vmlinux",
                "com.urunc.unikernel.initrd": "/initrd",
            },
            "linux": {"namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]},
        });
        std::fs::write(dir.path().join("config.json"), spec.to_string()).unwrap();
        std::fs::write(
            dir.path().join("urunc.toml"),
            "[monitors.qemu]\naccel = \"tcg\"\ndefault_memory_mb = 256\n",
        )
        .unwrap();
        let id = format!("{name}-{}", std::process::id());
        let mut g = Guest { dir, id, run: None };
        let bundle = g.dir.path().display().to_string();
        let mut child = g
            .cmd(&["run", "--bundle", &bundle, &g.id])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let rx = lines(child.stdout.take().unwrap());
        g.run = Some(child);
        assert!(wait_line(&rx, "ready", BOOT), "the guest never got ready");
        g
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(URUNC);
        c.env("URUNC_CONFIG", self.dir.path().join("urunc.toml"))
            .arg("--root")
            .arg(self.dir.path().join("state"))
            .args(args);
        c
    }

    fn exec(&self, args: &[&str]) -> Output {
        let mut a = vec!["exec"];
        a.extend_from_slice(args);
        let o = self.cmd(&a).stdin(Stdio::null()).output().unwrap();
        eprintln!(
            "exec {args:?}: {:?}\n--- stdout:\n{}--- stderr:\n{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        o
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = self.cmd(&["delete", "--force", &self.id]).output();
        if let Some(mut c) = self.run.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn lines(out: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            eprintln!("guest: {line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_line(rx: &Receiver<String>, want: &str, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(l) if l.contains(want) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

fn status_of(st: std::process::ExitStatus) -> i32 {
    st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0))
}

fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<i32> {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(status_of(st));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    None
}

#[test]
fn attached_exec_output_identity_status_and_signal() {
    let Some(assets) = guest_assets(&["vmlinux", "initrd.cpio"]) else {
        return;
    };
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let g = Guest::boot(&assets, "attached");
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
        &g.id,
        "/bin/sh",
        "-c",
        "echo \"ID=$(id -u):$(id -g):$(id -G) CWD=$(pwd) FOO=[$FOO]\"; echo to-stderr >&2; exit 7",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("ID=1000:1001:") && out.contains(" 20") && out.contains("CWD=/tmp"),
        "{out}"
    );
    assert!(out.contains("FOO=[bar baz]"), "{out}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("to-stderr"));
    assert_eq!(
        o.status.code(),
        Some(7),
        "exec returns the process's status"
    );

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
