//! What an escaped monitor tries (`fakevmm/src/escape.rs` runs each probe): the victims on the
//! host, the probe list, and reading the results back from the console. Used by
//! `sandbox::escape` (the fake monitor runs a script) and `solo5_net::lease` (the fake Solo5
//! tender takes `escape:KIND:ARG` words of its command line).

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

/// A root-only corner of /run: a 0700 directory with a 0600 secret and a 0600 listening socket
/// (the shape of containerd's socket directory). Removed on drop.
pub struct Victim {
    pub dir: PathBuf,
    _listener: UnixListener,
}

impl Victim {
    pub fn new() -> Victim {
        let dir = PathBuf::from("/run").join(super::unique("urunc-escape-victim"));
        std::fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
        let secret = dir.join("secret");
        std::fs::write(&secret, "root only").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::create_dir(dir.join("mnt")).unwrap();
        let listener = UnixListener::bind(dir.join("sock")).unwrap();
        std::fs::set_permissions(dir.join("sock"), std::fs::Permissions::from_mode(0o600)).unwrap();
        Victim {
            dir,
            _listener: listener,
        }
    }
}

impl Drop for Victim {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A host process (root, outside every container), killed on drop.
pub struct HostProcess(pub std::process::Child);

impl HostProcess {
    pub fn sleep() -> HostProcess {
        HostProcess(
            std::process::Command::new("sleep")
                .arg("600")
                .spawn()
                .unwrap(),
        )
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The probes; `scratch` is a writable directory (the monitor's work dir inside the sandbox, a
/// directory of the victim outside), where mknod and mount are tried; `given` the devices the
/// monitor was given (left out: opening its own nodes is allowed).
pub fn probes(
    v: &Victim,
    other_state: &Path,
    pids: &[u32],
    scratch: &Path,
    given: &[&str],
) -> Vec<String> {
    let d = &v.dir;
    let mut p = vec![
        "read /etc/shadow".to_string(),
        format!("read {}", d.join("secret").display()),
        format!("write {}", d.join("secret").display()),
        format!("create {}", d.join("planted").display()),
        format!("connect {}", d.join("sock").display()),
        format!("read {}", other_state.join("state.json").display()),
        format!("write {}", other_state.join("state.json").display()),
    ];
    p.extend(pids.iter().map(|pid| format!("signal {pid}")));
    // devices the monitor was not given (it runs under TCG: not even /dev/kvm)
    for dev in [
        "/dev/kmsg",
        "/dev/mem",
        "/dev/loop-control",
        "/dev/kvm",
        "/dev/net/tun",
    ] {
        if Path::new(dev).exists() && !given.contains(&dev) {
            p.push(format!("open-dev {dev}"));
        }
    }
    // (inside, the work dir is not writable for this plan: EROFS, and without CAP_MKNOD EPERM)
    p.push(format!("mknod {}", scratch.join("node").display()));
    p.push(format!("mount {}", scratch.display()));
    // its own /dev/null in the view is a node of its own: chmod must not reach the host's
    p.push("chmod /dev/null".into());
    p.push("setuid 1000".into()); // last: outside, it drops root for good
    p
}

/// The fake monitor's script running `probes`.
pub fn script(probes: &[String]) -> String {
    let mut s = String::from("#fakevmm\n");
    for p in probes {
        s.push_str(&format!("escape {p}\n"));
    }
    s.push_str("print FAKEVMM-ESCAPE-DONE\n");
    s
}

/// `probe -> result` from the console's `<prefix> <probe> <result>` lines.
pub fn results(console: &str, probes: &[String], prefix: &str) -> Vec<(String, String)> {
    probes
        .iter()
        .map(|p| {
            let head = format!("{prefix} {p} ");
            let line = console
                .lines()
                .find(|l| l.starts_with(&head))
                .unwrap_or_else(|| panic!("no {head:?} line in:\n{console}"));
            (p.clone(), line[head.len()..].to_string())
        })
        .collect()
}
