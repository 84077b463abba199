//! A private containerd 1.6 for one test: its own root, state, sockets and runc root under a
//! temp dir, the CRI plugin configured by the caller, stopped and cleaned up when dropped.

use crate::{ok, run_timeout, unmount_under, wait_for, Daemon};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub struct Containerd {
    pub daemon: Daemon,
    pub sock: PathBuf,
    /// `--root` of the runtime (ctr `--runc-root`, CRI `options.Root`): `<dir>/runc`.
    pub runc_root: PathBuf,
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Containerd {
    /// Starts containerd; `extra` is appended to its config.toml (the CRI runtime entry...),
    /// with `@RUNC_ROOT@` replaced by [`Containerd::runc_root`].
    /// The test's shared settings: `restrict_oom_score_adj` (no CAP_SYS_RESOURCE here).
    pub fn start(extra: &str) -> Containerd {
        let tmp = crate::workdir("ctd-");
        let dir = tmp.path().to_path_buf();
        let sock = dir.join("containerd.sock");
        let config = format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
imports = []
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{d}/ttrpc.sock"
[debug]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
  disable_apparmor = true
{extra}
"#,
            d = dir.display(),
            sock = sock.display(),
            extra = extra.replace("@RUNC_ROOT@", &dir.join("runc").display().to_string()),
        );
        std::fs::write(dir.join("config.toml"), config).expect("config.toml");
        let daemon = Daemon::spawn(
            "containerd",
            Command::new("containerd")
                .arg("--config")
                .arg(dir.join("config.toml")),
            dir.join("containerd.log"),
        );
        let c = Containerd {
            daemon,
            runc_root: dir.join("runc"),
            sock,
            dir,
            _tmp: tmp,
        };
        let up = wait_for(Duration::from_secs(20), || {
            Command::new("ctr")
                .arg("-a")
                .arg(&c.sock)
                .arg("version")
                .output()
                .ok()
                .filter(|o| o.status.success())
        });
        assert!(
            up.is_some(),
            "containerd did not start:\n{}",
            c.daemon.tail()
        );
        c
    }

    /// `ctr -a <sock> -n <ns>`.
    pub fn ctr(&self, ns: &str) -> Command {
        let mut c = Command::new("ctr");
        c.arg("-a").arg(&self.sock).args(["-n", ns]);
        c
    }

    pub fn import(&self, ns: &str, tar: &Path) {
        ok(self.ctr(ns).args(["images", "import"]).arg(tar));
    }

    /// Kills the shims this instance started (they outlive a stopped containerd).
    fn kill_shims(&self) {
        let needle = self.sock.display().to_string();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd);
            if cmd.contains("containerd-shim") && cmd.contains(&needle) {
                // SAFETY: kill on a pid we just read; at worst it is gone (ESRCH)
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.daemon.stop();
        self.kill_shims();
        // containers a failed test left running (urunc hands runc's to runc)
        for ns in std::fs::read_dir(&self.runc_root)
            .into_iter()
            .flatten()
            .flatten()
        {
            for c in std::fs::read_dir(ns.path()).into_iter().flatten().flatten() {
                let _ = run_timeout(
                    Command::new(crate::urunc_bin())
                        .arg("--root")
                        .arg(ns.path())
                        .args(["delete", "--force"])
                        .arg(c.file_name()),
                    Duration::from_secs(30),
                );
            }
        }
        unmount_under(&self.dir);
        // snapshots hold read-only trees; the TempDir removes the rest
        let _ = run_timeout(
            Command::new("rm").arg("-rf").arg(self.dir.join("root")),
            Duration::from_secs(60),
        );
    }
}
