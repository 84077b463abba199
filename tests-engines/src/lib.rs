//! Harness of the engine tests: finds the `urunc` binary and the guest assets, builds images
//! with `scripts/mkimage.sh`, runs commands with a deadline, starts private engine daemons
//! (own root, state and sockets) and checks that a container left nothing behind.
//!
//! Policy, as in the guest tests: when something a test needs is missing (the assets, an
//! engine, root), it prints `SKIPPED: <why>` and passes, unless `CI` is set, where that is a
//! failure.

pub mod containerd;
pub mod cri_net;
pub mod leftovers;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The repository root (this crate lives in `tests-engines/`).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

/// `target/<profile>` of the running test binary (`target/<profile>/deps/<test>`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .to_path_buf()
}

/// The `urunc` binary: `$URUNC_BIN`, else the one cargo built next to this test (built here
/// when `cargo test -p urunc-engines-tests` ran alone).
pub fn urunc_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("URUNC_BIN") {
        return PathBuf::from(p);
    }
    let p = profile_dir().join("urunc");
    if !p.exists() {
        let st = Command::new(env!("CARGO"))
            .args(["build", "-p", "urunc", "--bin", "urunc"])
            .current_dir(repo())
            .status()
            .expect("cargo build urunc");
        assert!(st.success(), "cannot build urunc");
    }
    p
}

/// A fresh directory `/tmp/urunc-<prefix>XXXXXX`, removed on drop. Its path must stay short
/// whatever directory the repository was cloned into: unix sockets live there (108 bytes) and
/// podman refuses a `--runroot` longer than 50 characters.
pub fn workdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("urunc-{prefix}"))
        .tempdir_in("/tmp")
        .expect("tempdir in /tmp")
}

pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"))
}

/// Skip (or fail under CI) with a reason.
pub fn skip(msg: &str) {
    assert!(!ci(), "{msg}");
    eprintln!("SKIPPED: {msg}");
}

fn on_path(cmd: &str) -> bool {
    if cmd.contains('/') {
        return Path::new(cmd).is_file();
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
        .unwrap_or(false)
}

/// The guest assets directory when everything a test needs is here: root, the assets
/// (`scripts/prepare-assets.sh`), QEMU and the given commands. Otherwise skips.
pub fn require(commands: &[&str]) -> Option<PathBuf> {
    let dir = std::env::var_os("URUNC_TEST_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("assets"));
    let mut missing: Vec<String> = ["vmlinux", "initrd.cpio"]
        .iter()
        .filter(|f| !dir.join(f).is_file())
        .map(|f| dir.join(f).display().to_string())
        .collect();
    missing.extend(
        commands
            .iter()
            .chain(&["qemu-system-x86_64"])
            .filter(|c| !on_path(c))
            .map(|c| c.to_string()),
    );
    // SAFETY: getuid has no preconditions
    if unsafe { libc::getuid() } != 0 {
        missing.push("root".into());
    }
    if missing.is_empty() {
        return Some(dir);
    }
    skip(&format!(
        "engine tests need {} (scripts/deps.sh and scripts/prepare-assets.sh install them, as root)",
        missing.join(", ")
    ));
    None
}

/// Runs a command to completion within `timeout` (killed after it), echoing what it printed.
pub fn run_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    let desc = format!("{cmd:?}");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {desc}: {e}"));
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(timeout) {
        Ok(o) => o.expect("wait"),
        Err(_) => {
            // SAFETY: kill on the pid of a child we spawned and have not reaped
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let o = rx.recv().expect("wait").expect("wait");
            eprintln!("{desc} timed out after {timeout:?}");
            o
        }
    };
    eprintln!(
        "$ {desc} -> {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `run_timeout` with 120 s, asserting success.
pub fn ok(cmd: &mut Command) -> String {
    let out = run_timeout(cmd, Duration::from_secs(120));
    assert!(out.status.success(), "{cmd:?} failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `f` until it returns Some or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What an image runs.
pub struct ImageSpec<'a> {
    pub name: &'a str,
    /// `docker` for `docker load`, `oci` for ctr and podman.
    pub format: &'a str,
    /// Write `/urunc.json` (false: the engine must pass the annotations).
    pub urunc_json: bool,
    pub cmd: &'a [&'a str],
}

/// A Linux-guest image (kernel, initrd with urunit, TCG pinned) built by `scripts/mkimage.sh`.
pub fn guest_image(assets: &Path, dir: &Path, spec: &ImageSpec) -> PathBuf {
    let out = dir.join(format!("{}.tar", spec.name.replace(['/', ':'], "_")));
    let mut c = Command::new(repo().join("scripts/mkimage.sh"));
    c.arg("-o")
        .arg(&out)
        .args(["-n", spec.name, "-f", spec.format, "--accel", "tcg"])
        .arg("--kernel")
        .arg(format!("{}:/vmlinux", assets.join("vmlinux").display()))
        .arg("--initrd")
        .arg(format!(
            "{}:/initrd.cpio",
            assets.join("initrd.cpio").display()
        ))
        .args(["--entrypoint", "/urunit"]);
    if !spec.urunc_json {
        c.arg("--no-urunc-json");
    }
    c.arg("--").args(spec.cmd);
    ok(&mut c);
    out
}

/// The annotations of the guest images, for engines that pass them (`--annotation`, CRI).
pub fn guest_annotations() -> Vec<(&'static str, &'static str)> {
    vec![
        ("com.urunc.unikernel.unikernelType", "linux"),
        ("com.urunc.unikernel.hypervisor", "qemu"),
        ("com.urunc.unikernel.binary", "/vmlinux"),
        ("com.urunc.unikernel.initrd", "/initrd.cpio"),
        ("com.urunc.unikernel.accel", "tcg"),
    ]
}

/// An ordinary image holding the static busybox (`/bin/busybox`, `/bin/sh`).
pub fn busybox_image(dir: &Path, name: &str, format: &str) -> PathBuf {
    let root = dir.join("busybox-root/bin");
    std::fs::create_dir_all(&root).expect("busybox root");
    std::fs::copy("/bin/busybox", root.join("busybox")).expect("copy /bin/busybox");
    std::os::unix::fs::symlink("busybox", root.join("sh")).expect("symlink");
    let out = dir.join(format!("{}.tar", name.replace(['/', ':'], "_")));
    ok(Command::new(repo().join("scripts/mkimage.sh"))
        .arg("-o")
        .arg(&out)
        .args(["-n", name, "-f", format, "--add"])
        .arg(format!("{}:/bin", root.display()))
        .args(["--", "/bin/busybox", "echo", "hello from busybox"]));
    out
}

/// A pause image for CRI sandboxes: Debian's static catatonit as `/pause -P`.
pub fn pause_image(dir: &Path, name: &str) -> PathBuf {
    let out = dir.join("pause.tar");
    ok(Command::new(repo().join("scripts/mkimage.sh"))
        .arg("-o")
        .arg(&out)
        .args(["-n", name, "--add", "/usr/bin/catatonit:/pause"])
        .args(["--entrypoint", "/pause", "--entrypoint", "-P"]));
    out
}

/// A guest command that serves `pong` over HTTP on port 8080 (busybox httpd).
pub const HTTP_GUEST: &[&str] = &[
    "/bin/sh",
    "-c",
    "mkdir -p /www && echo pong > /www/index.html && echo serving && exec httpd -f -p 8080 -h /www",
];

/// `GET /` on ip:8080; the body when it answered.
pub fn http_get(ip: &str, timeout: Duration) -> Option<String> {
    use std::io::{Read, Write};
    let addr: std::net::SocketAddr = format!("{ip}:8080").parse().ok()?;
    wait_for(timeout, || {
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
        let mut body = String::new();
        s.read_to_string(&mut body).ok()?;
        body.contains("pong").then_some(body)
    })
}

/// A daemon started by a test, stopped (SIGTERM, then SIGKILL after 10 s) when dropped.
pub struct Daemon {
    pub child: std::process::Child,
    pub name: String,
    pub log: PathBuf,
}

impl Daemon {
    pub fn spawn(name: &str, cmd: &mut Command, log: PathBuf) -> Daemon {
        let f = std::fs::File::create(&log).expect("daemon log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(f.try_clone().expect("log"))
            .stderr(f)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Daemon {
            child,
            name: name.into(),
            log,
        }
    }

    /// The daemon's log, for failure messages.
    pub fn tail(&self) -> String {
        let s = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    pub fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // SAFETY: kill on the pid of our own unreaped child
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let gone = wait_for(Duration::from_secs(10), || {
            self.child.try_wait().ok().flatten()
        });
        if gone.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Unmounts everything mounted under `dir` (engines leave overlay and shm mounts behind
/// when killed), deepest first.
pub fn unmount_under(dir: &Path) {
    let prefix = dir.display().to_string();
    let mut mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| m.starts_with(&prefix))
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in mounts {
        let _ = Command::new("umount").arg("-l").arg(&m).status();
    }
}

/// Deletes a network interface if it exists.
pub fn del_link(name: &str) {
    let _ = Command::new("ip")
        .args(["link", "del", name])
        .stderr(Stdio::null())
        .status();
}
