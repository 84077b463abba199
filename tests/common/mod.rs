//! Shared harness for the integration tests: drives the real `urunc` binary with its own
//! `--root`, config file and bundles in a temp dir, the fake monitor as every monitor, and
//! cleans up (`delete --force` of every container it made) even when a test fails.
#![allow(dead_code)]

pub mod escape;
pub mod leftover;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn urunc_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_urunc"))
}

/// The fake monitor binary of the workspace (built on demand).
pub fn fakevmm_bin() -> PathBuf {
    let p = urunc_bin().parent().expect("target dir").join("fakevmm");
    if !p.exists() {
        let st = Command::new(env!("CARGO"))
            .args(["build", "-p", "fakevmm"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo build fakevmm");
        assert!(st.success(), "cannot build fakevmm");
    }
    p
}

pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

pub struct Env {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub config: PathBuf,
    ids: std::cell::RefCell<Vec<String>>,
}

impl Env {
    /// A fresh root and a config file making the fake monitor every monitor.
    pub fn new() -> Env {
        Self::with_config("")
    }

    pub fn with_config(extra: &str) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        let config = dir.path().join("config.toml");
        let fake = fakevmm_bin();
        let mut text = String::new();
        for m in urunc::plan::MonitorKind::NAMES {
            text.push_str(&format!(
                "[monitors.{m}]\npath = \"{}\"\naccel = \"tcg\"\n",
                fake.display()
            ));
        }
        // the monitor uid leases go to this test's directory, not the host's /run/urunc
        let registry = format!(
            "[sandbox]\nmonitor_uid_registry = \"{}\"\n",
            dir.path().join("monitor-uids").display()
        );
        if extra.contains("[sandbox]\n") {
            text.push_str(&extra.replacen("[sandbox]\n", &registry, 1));
        } else {
            text.push_str(extra);
            text.push_str(&registry);
        }
        std::fs::write(&config, text).expect("write config");
        Env {
            dir,
            root,
            config,
            ids: Default::default(),
        }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(urunc_bin());
        c.env("URUNC_CONFIG", &self.config)
            .arg("--root")
            .arg(&self.root);
        c
    }

    /// Runs `urunc --root R ARGS`, capturing everything.
    pub fn urunc(&self, args: &[&str]) -> Output {
        self.cmd()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run urunc")
    }

    /// Remembers `id` for cleanup.
    pub fn track(&self, id: &str) {
        self.ids.borrow_mut().push(id.to_string());
    }

    /// `create` with stdout and stderr going to `<dir>/<id>.out` (the container's console).
    pub fn create(&self, bundle: &Path, id: &str, extra: &[&str]) -> Output {
        self.create_with(&[], bundle, id, extra)
    }

    /// `create` with `--debug`, which writes the launch plan to `<root>/<id>/plan.json`.
    pub fn create_debug(&self, bundle: &Path, id: &str) -> Output {
        self.create_with(&["--debug"], bundle, id, &[])
    }

    fn create_with(&self, global: &[&str], bundle: &Path, id: &str, extra: &[&str]) -> Output {
        self.track(id);
        let out = std::fs::File::create(self.console(id)).expect("console file");
        self.cmd()
            .args(global)
            .arg("create")
            .arg("--bundle")
            .arg(bundle)
            .args(extra)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup"))
            .stderr(out)
            .output()
            .expect("run urunc create")
    }

    pub fn console(&self, id: &str) -> PathBuf {
        self.dir.path().join(format!("{id}.out"))
    }

    pub fn console_text(&self, id: &str) -> String {
        std::fs::read_to_string(self.console(id)).unwrap_or_default()
    }

    /// Waits until the console of `id` holds a complete line (ended by `\n`) containing
    /// `needle`: the writer may be in the middle of that line when the file is read.
    pub fn wait_console(&self, id: &str, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let t = self.console_text(id);
            if t.find(needle).is_some_and(|i| t[i..].contains('\n')) {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {needle:?} on the console of {id}; got:\n{t}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn state(&self, id: &str) -> Option<serde_json::Value> {
        let o = self.urunc(&["state", id]);
        if !o.status.success() {
            return None;
        }
        Some(serde_json::from_slice(&o.stdout).expect("state prints JSON"))
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)
            .map(|s| s["status"].as_str().unwrap_or("").to_string())
            .unwrap_or_else(|| "gone".into())
    }

    pub fn wait_status(&self, id: &str, want: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.status(id);
            if s == want {
                return;
            }
            assert!(Instant::now() < deadline, "{id}: status {s}, wanted {want}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A unikernel bundle whose kernel is a fake-monitor script.
    pub fn bundle(&self, name: &str, script: &str) -> PathBuf {
        self.bundle_with(name, script, |_| {})
    }

    pub fn bundle_with(
        &self,
        name: &str,
        script: &str,
        tweak: impl FnOnce(&mut serde_json::Value),
    ) -> PathBuf {
        let b = self.dir.path().join(name);
        std::fs::create_dir_all(b.join("rootfs")).expect("mkdir bundle");
        std::fs::write(b.join("rootfs/kernel"), format!("#fakevmm\n{script}\n"))
            .expect("write kernel");
        let mut spec = serde_json::json!({
            "ociVersion": "1.2.0",
            "process": {"terminal": false, "user": {"uid": 0, "gid": 0}, "args": ["/urunit", "/bin/app", "an arg"], "env": ["PATH=/bin"], "cwd": "/"},
            "root": {"path": "rootfs"},
            "hostname": "guest",
            "annotations": {
                "com.urunc.unikernel.unikernelType": "linux",
                "com.urunc.unikernel.hypervisor": "qemu",
                "com.urunc.unikernel.binary": "/kernel"
            },
            "linux": {
                "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}, {"type": "network"}],
                "seccomp": {"defaultAction": "SCMP_ACT_ALLOW"}
            }
        });
        tweak(&mut spec);
        std::fs::write(
            b.join("config.json"),
            serde_json::to_vec_pretty(&spec).expect("json"),
        )
        .expect("write config.json");
        b
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = self.urunc(&["delete", "--force", id]);
        }
    }
}

/// Parses the fake monitor's `FAKEVMM-REPORT {...}` line from console text.
pub fn report(console: &str) -> serde_json::Value {
    let line = console
        .lines()
        .find_map(|l| l.strip_prefix("FAKEVMM-REPORT "))
        .expect("no FAKEVMM-REPORT on the console");
    serde_json::from_str(line).expect("report is JSON")
}

pub fn pid_alive(pid: i64) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .trim_start()
        .chars()
        .next();
    !matches!(state, Some('Z') | Some('X'))
}

pub fn wait_dead(pid: i64, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while pid_alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every cgroup v1/v2 directory that could hold the container `cgroup_path` (relative).
pub fn cgroup_dirs(rel: &str) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in rd.flatten() {
            v.push(e.path().join(rel.trim_start_matches('/')));
        }
    }
    v.push(PathBuf::from("/sys/fs/cgroup").join(rel.trim_start_matches('/')));
    v
}

/// Runs `cmd` to completion, killing it if it is still running after `limit` (a guard against
/// a hang, never a timing assertion); panics with `what` in that case.
pub fn output_within(mut cmd: Command, limit: Duration, what: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("collect output")
}
