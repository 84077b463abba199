//! Real Linux guests end to end: the `urunc` binary boots the Debian cloud kernel with an
//! initrd holding urunit and busybox (built by `scripts/prepare-assets.sh`) in QEMU under TCG.
//!
//! Without the assets (or QEMU) the tests print why and skip, unless `CI` is set, where that
//! is a failure. `URUNC_TEST_ASSETS` overrides the assets directory (default `assets/`).

mod assets;
use assets::guest_assets;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const URUNC: &str = env!("CARGO_BIN_EXE_urunc");
/// TCG guests are CPU-heavy on two cores: one at a time keeps the timings meaningful.
static SERIAL: Mutex<()> = Mutex::new(());

/// A bundle (kernel + initrd + config.json) and a private `--root`; deletes its container
/// whatever happens to the test.
struct Guest {
    dir: tempfile::TempDir,
    id: String,
}

impl Guest {
    fn new(
        assets: &Path,
        name: &str,
        args: &[&str],
        env: &[&str],
        user: (u32, u32, &[u32]),
        cwd: &str,
    ) -> Guest {
        let dir = tempfile::Builder::new()
            .prefix("guest-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir(&rootfs).unwrap();
        if std::fs::hard_link(assets.join("vmlinux"), rootfs.join("vmlinux")).is_err() {
            std::fs::copy(assets.join("vmlinux"), rootfs.join("vmlinux")).unwrap();
        }
        // copied: the runtime appends urunit.conf to it
        std::fs::copy(assets.join("initrd.cpio"), rootfs.join("initrd")).unwrap();
        let mut envs = vec!["PATH=/bin".to_string()];
        envs.extend(env.iter().map(|s| s.to_string()));
        let spec = serde_json::json!({
            "ociVersion": "1.2.0",
            "process": {
                "terminal": false,
                "user": {"uid": user.0, "gid": user.1, "additionalGids": user.2},
                "args": args,
                "env": envs,
                "cwd": cwd,
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
            assets::config_toml(dir.path(), "accel = \"tcg\"\ndefault_memory_mb = 256\n"),
        )
        .unwrap();
        let id = format!(
            "{name}-{}-{}",
            std::process::id(),
            dir.path().file_name().unwrap().to_string_lossy()
        );
        Guest { dir, id }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(URUNC);
        c.env("URUNC_CONFIG", self.dir.path().join("urunc.toml"))
            .arg("--root")
            .arg(self.dir.path().join("state"))
            .args(args);
        c
    }

    fn urunc(&self, args: &[&str]) -> Output {
        self.cmd(args).stdin(Stdio::null()).output().unwrap()
    }

    /// `urunc run` in the background, its stdout lines arriving on the receiver.
    fn spawn_run(&self) -> (Child, Receiver<String>) {
        let mut child = self
            .cmd(&[
                "run",
                "--bundle",
                &self.dir.path().display().to_string(),
                &self.id,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
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
        (child, rx)
    }

    fn status(&self) -> String {
        let o = self.urunc(&["state", &self.id]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        v["status"].as_str().unwrap_or("").to_string()
    }

    /// Processes whose command line names this bundle (QEMU reads the kernel from it).
    fn monitors_alive(&self) -> usize {
        let needle = self.dir.path().to_string_lossy().into_owned();
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
            .filter(|e| {
                std::fs::read(e.path().join("cmdline"))
                    .map(|c| {
                        String::from_utf8_lossy(&c).contains(&needle)
                            && String::from_utf8_lossy(&c).contains("qemu")
                    })
                    .unwrap_or(false)
            })
            .count()
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = self.urunc(&["delete", "--force", &self.id]);
    }
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

fn wait_exit(child: &mut Child, timeout: Duration) -> Option<i32> {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if let Some(st) = child.try_wait().unwrap() {
            use std::os::unix::process::ExitStatusExt;
            return Some(st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0)));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    None
}

#[test]
fn output_args_env_identity_and_exit_code() {
    let Some(assets) = guest_assets(&["vmlinux", "initrd.cpio"]) else {
        return;
    };
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let script = "echo \"FOO=[$FOO]\"; echo \"ARG1=[$1]\"; echo \"ARG2=[$2]\"; \
                  echo \"ID=$(id -u):$(id -g):$(id -G)\"; echo \"CWD=$(pwd)\"; exit 3";
    let g = Guest::new(
        &assets,
        "out",
        &[
            "/urunit",
            "/bin/sh",
            "-c",
            script,
            "sh",
            "hello  world",
            "it's",
        ],
        &["FOO=bar  baz=qux"],
        (1000, 1001, &[20, 30]),
        "/tmp",
    );
    let t = Instant::now();
    let o = g
        .cmd(&[
            "run",
            "--bundle",
            &g.dir.path().display().to_string(),
            &g.id,
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let elapsed = t.elapsed();
    let out = String::from_utf8_lossy(&o.stdout);
    eprintln!(
        "--- guest output ({elapsed:?}):\n{out}\n--- stderr:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("FOO=[bar  baz=qux]"), "{out}");
    assert!(out.contains("ARG1=[hello  world]"), "{out}");
    assert!(out.contains("ARG2=[it's]"), "{out}");
    assert!(
        out.contains("ID=1000:1001:1001 20 30") || out.contains("ID=1000:1001:20 30"),
        "{out}"
    );
    assert!(out.contains("CWD=/tmp"), "{out}");
    assert_eq!(
        o.status.code(),
        Some(3),
        "urunc run must return the program's status"
    );
    assert_eq!(g.monitors_alive(), 0);
}

#[test]
fn sigterm_reaches_the_program_and_the_vm_powers_off() {
    let Some(assets) = guest_assets(&["vmlinux", "initrd.cpio"]) else {
        return;
    };
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let script = "trap 'echo got-sigterm; exit 7' TERM; echo ready; sleep 1000 & wait";
    let g = Guest::new(
        &assets,
        "term",
        &["/urunit", "/bin/sh", "-c", script],
        &[],
        (0, 0, &[]),
        "/",
    );
    let (mut child, rx) = g.spawn_run();
    assert!(
        wait_line(&rx, "ready", Duration::from_secs(60)),
        "the guest never got ready"
    );
    assert_eq!(g.status(), "running");
    let t = Instant::now();
    let k = g.urunc(&["kill", &g.id, "TERM"]);
    assert!(k.status.success(), "{}", String::from_utf8_lossy(&k.stderr));
    assert!(
        wait_line(&rx, "got-sigterm", Duration::from_secs(20)),
        "the program never saw SIGTERM"
    );
    let code = wait_exit(&mut child, Duration::from_secs(20));
    eprintln!("shut down in {:?}", t.elapsed());
    assert_eq!(code, Some(7), "the container's status is the program's");
    assert_eq!(g.monitors_alive(), 0, "QEMU must be gone");
}

#[test]
fn sigkill_stops_everything() {
    let Some(assets) = guest_assets(&["vmlinux", "initrd.cpio"]) else {
        return;
    };
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let g = Guest::new(
        &assets,
        "kill",
        &[
            "/urunit",
            "/bin/sh",
            "-c",
            "trap '' TERM; echo ready; sleep 1000 & wait",
        ],
        &[],
        (0, 0, &[]),
        "/",
    );
    let (mut child, rx) = g.spawn_run();
    assert!(
        wait_line(&rx, "ready", Duration::from_secs(60)),
        "the guest never got ready"
    );
    let k = g.urunc(&["kill", &g.id, "KILL"]);
    assert!(k.status.success(), "{}", String::from_utf8_lossy(&k.stderr));
    let code = wait_exit(&mut child, Duration::from_secs(10));
    assert_eq!(code, Some(137));
    let end = Instant::now() + Duration::from_secs(5);
    while g.monitors_alive() > 0 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(g.monitors_alive(), 0, "QEMU must die with the supervisor");
}

#[test]
fn pause_and_resume_a_running_guest() {
    let Some(assets) = guest_assets(&["vmlinux", "initrd.cpio"]) else {
        return;
    };
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let g = Guest::new(
        &assets,
        "pause",
        &[
            "/urunit",
            "/bin/sh",
            "-c",
            "i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.2; done",
        ],
        &[],
        (0, 0, &[]),
        "/",
    );
    let (mut child, rx) = g.spawn_run();
    assert!(
        wait_line(&rx, "tick 1", Duration::from_secs(60)),
        "the guest never ticked"
    );
    assert_eq!(g.status(), "running");
    let p = g.urunc(&["pause", &g.id]);
    assert!(p.status.success(), "{}", String::from_utf8_lossy(&p.stderr));
    assert_eq!(g.status(), "paused");
    while rx.try_recv().is_ok() {}
    std::thread::sleep(Duration::from_millis(1500));
    let during: Vec<String> = rx.try_iter().collect();
    assert!(during.is_empty(), "a paused guest printed {during:?}");
    let r = g.urunc(&["resume", &g.id]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(g.status(), "running");
    assert!(
        wait_line(&rx, "tick", Duration::from_secs(10)),
        "the guest did not run again"
    );
    let _ = g.urunc(&["kill", &g.id, "KILL"]);
    let _ = wait_exit(&mut child, Duration::from_secs(10));
}

#[test]
fn microvm_machine_boots_and_reports_the_exit_status() {
    let Some(assets) = guest_assets(&["vmlinux", "initrd.cpio"]) else {
        return;
    };
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let g = Guest::new(
        &assets,
        "microvm",
        &["/urunit", "/bin/sh", "-c", "echo on-microvm; exit 5"],
        &[],
        (0, 0, &[]),
        "/",
    );
    let cfg = g.dir.path().join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    spec["annotations"]["com.urunc.unikernel.machine"] = "microvm".into();
    std::fs::write(&cfg, spec.to_string()).unwrap();
    let o = g
        .cmd(&[
            "run",
            "--bundle",
            &g.dir.path().display().to_string(),
            &g.id,
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("on-microvm"),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(5), "{out}");
}
