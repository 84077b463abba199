//! The guest side of the exec tests (tests/guest_exec*.rs): a Linux guest (the Debian cloud
//! kernel with urunit and busybox, `scripts/prepare-assets.sh`) in QEMU under TCG whose
//! program prints `ready` and sleeps, and the helpers the tests share.
#![allow(dead_code)]

use crate::assets;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[allow(unused_imports)]
pub use assets::guest_assets;

pub const URUNC: &str = env!("CARGO_BIN_EXE_urunc");
pub static SERIAL: Mutex<()> = Mutex::new(());
/// Guards against hangs only: TCG under load is slow.
pub const BOOT: Duration = Duration::from_secs(180);

pub struct Guest {
    pub dir: tempfile::TempDir,
    pub id: String,
    pub run: Option<Child>,
}

impl Guest {
    /// Boots a guest whose program prints `ready` then sleeps; returns once it printed it.
    pub fn boot(assets: &Path, name: &str) -> Guest {
        let (g, rx) = Guest::start(assets, name);
        assert!(wait_line(&rx, "ready", BOOT), "the guest never got ready");
        g
    }

    /// Starts the guest and returns at once (it is still booting), with its output lines.
    pub fn start(assets: &Path, name: &str) -> (Guest, Receiver<String>) {
        Guest::start_on(assets, name, None)
    }

    /// As `start`, for an architecture other than the host's (`aarch64`: the assets'
    /// `arm64/` kernel and initrd, QEMU `-M virt`, the channel on a virtio-serial port).
    pub fn start_on(assets: &Path, name: &str, arch: Option<&str>) -> (Guest, Receiver<String>) {
        let sub = if arch.is_some() { "arm64/" } else { "" };
        let dir = tempfile::Builder::new()
            .prefix("exec-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir(&rootfs).unwrap();
        let kernel = assets.join(format!("{sub}vmlinux"));
        if std::fs::hard_link(&kernel, rootfs.join("vmlinux")).is_err() {
            std::fs::copy(&kernel, rootfs.join("vmlinux")).unwrap();
        }
        std::fs::copy(
            assets.join(format!("{sub}initrd.cpio")),
            rootfs.join("initrd"),
        )
        .unwrap();
        let mut spec = serde_json::json!({
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
        if let Some(a) = arch {
            spec["annotations"]["com.urunc.unikernel.arch"] = a.into();
        }
        std::fs::write(dir.path().join("config.json"), spec.to_string()).unwrap();
        std::fs::write(
            dir.path().join("urunc.toml"),
            assets::config_toml(dir.path(), "accel = \"tcg\"\ndefault_memory_mb = 256\n"),
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
        (g, rx)
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(URUNC);
        c.env("URUNC_CONFIG", self.dir.path().join("urunc.toml"))
            .arg("--root")
            .arg(self.dir.path().join("state"))
            .args(args);
        c
    }

    pub fn exec(&self, args: &[&str]) -> Output {
        let mut a = vec!["exec"];
        a.extend_from_slice(args);
        let o = self.cmd(&a).stdin(Stdio::null()).output().unwrap();
        let shown: String = format!("{args:?}").chars().take(300).collect();
        eprintln!(
            "exec {shown}: {:?}\n--- stdout:\n{}--- stderr:\n{}",
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

pub fn lines(out: impl Read + Send + 'static) -> Receiver<String> {
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

pub fn wait_line(rx: &Receiver<String>, want: &str, timeout: Duration) -> bool {
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

pub fn status_of(st: std::process::ExitStatus) -> i32 {
    st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0))
}

pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<i32> {
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
