//! Host probes of `urunc check`: a disposable child with a deadline, Landlock, seccomp,
//! cgroups, program versions.

use serde_json::{json, Value};
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

pub use crate::accel::child::in_child;

/// The first line `PROGRAM --version` prints, within 5 s.
pub fn version(program: &Path) -> Option<String> {
    let mut child = std::process::Command::new(program)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let end = Instant::now() + Duration::from_secs(5);
    while child.try_wait().ok()?.is_none() {
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut out = String::new();
    child.stdout.take()?.read_to_string(&mut out).ok()?;
    out.lines()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string())
}

/// The Landlock ABI version the kernel offers.
pub fn landlock() -> Value {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: landlock_create_ruleset with a NULL attr, size 0 and the VERSION flag only
    // returns a number.
    let r = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if r > 0 {
        return json!({"available": true, "abi": r});
    }
    let detail = match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::EOPNOTSUPP) => {
            "Landlock is built in but disabled (add landlock to the lsm= boot parameter)"
        }
        Some(libc::ENOSYS) => {
            "the kernel has no Landlock: monitors run without a filesystem sandbox"
        }
        _ => "Landlock is not usable",
    };
    json!({"available": false, "abi": null, "detail": detail})
}

/// Seccomp filter mode and the actions the kernel offers.
pub fn seccomp() -> Value {
    // SAFETY: prctl with integer arguments only.
    let mode = unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) };
    if mode < 0 {
        return json!({"available": false, "detail": "the kernel has no seccomp"});
    }
    let actions: Vec<String> = std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_avail")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    json!({
        "available": !actions.is_empty() || mode >= 0,
        "actions": actions,
        "already_filtered": mode == 2,
    })
}

/// Cgroup version, controllers, and whether this user may create cgroups where it is.
pub fn cgroups() -> Value {
    const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
    // f_type is i64 on x86_64 musl/glibc but u64 on aarch64 musl: compare as i64
    #[allow(clippy::unnecessary_cast)]
    let fs_type = |p: &str| nix::sys::statfs::statfs(p).map(|s| s.filesystem_type().0 as i64);
    let root = fs_type("/sys/fs/cgroup");
    let unified = fs_type("/sys/fs/cgroup/unified");
    let (version, controllers): (&str, Vec<String>) = if root == Ok(CGROUP2_SUPER_MAGIC) {
        let c = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers").unwrap_or_default();
        ("v2", c.split_whitespace().map(str::to_string).collect())
    } else if root.is_ok() {
        let mut v1: Vec<String> = std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "unified" && n != "systemd")
            .collect();
        v1.sort();
        (
            if unified == Ok(CGROUP2_SUPER_MAGIC) {
                "hybrid"
            } else {
                "v1"
            },
            v1,
        )
    } else {
        return json!({"version": "none", "detail": "no cgroup filesystem at /sys/fs/cgroup"});
    };
    // our own cgroup (v2 line "0::/path", else the memory controller's)
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrl, path) = (f.next()?, f.next()?, f.next()?);
            match (version, ctrl) {
                ("v2", "") => Some(format!("/sys/fs/cgroup{path}")),
                ("v1" | "hybrid", c) if c.split(',').any(|c| c == "memory") => {
                    Some(format!("/sys/fs/cgroup/memory{path}"))
                }
                _ => None,
            }
        })
        .unwrap_or_default();
    let writable = !own.is_empty()
        && nix::unistd::access(own.as_str(), nix::unistd::AccessFlags::W_OK).is_ok();
    let root_user = nix::unistd::geteuid().is_root();
    json!({
        "version": version,
        "controllers": controllers,
        "own": own,
        "delegated": root_user || writable,
        "detail": if root_user {
            "root: urunc manages container cgroups"
        } else if writable {
            "this user's cgroup is delegated: rootless containers get cgroup limits"
        } else {
            "this user's cgroup is not delegated: rootless containers run without cgroup limits"
        },
    })
}

/// Whether /dev/net/tun exists, and (as root) a tap plus a tc u32/mirred redirect work, tried
/// in a throw-away network namespace.
pub fn tun_tc() -> (Value, Value) {
    let tun = Path::new("/dev/net/tun").exists();
    if !tun {
        return (
            json!({"available": false, "detail": "/dev/net/tun is missing (load the tun module)"}),
            json!({"available": false, "detail": "not probed without tun"}),
        );
    }
    if !nix::unistd::geteuid().is_root() {
        return (
            json!({"available": true, "detail": "not probed: creating a tap needs root"}),
            json!({"available": null, "detail": "not probed: needs root"}),
        );
    }
    match in_child(Duration::from_secs(5), || {
        crate::net::probe::tap_and_redirect().map(|()| String::new())
    }) {
        Ok(_) => (
            json!({"available": true}),
            json!({"available": true, "detail": "ingress qdisc, u32 filter, mirred redirect"}),
        ),
        Err(e) if e.starts_with("tun:") => (
            json!({"available": false, "detail": e}),
            json!({"available": null, "detail": "not probed without a tap"}),
        ),
        Err(e) => (
            json!({"available": true}),
            json!({"available": false, "detail": e}),
        ),
    }
}

/// Whether pod network mode's nf_tables NAT works here (as root, in a throw-away namespace).
pub fn nft() -> Value {
    if !nix::unistd::geteuid().is_root() {
        return json!({"available": null, "detail": "not probed: needs root"});
    }
    match in_child(Duration::from_secs(5), || {
        crate::net::probe::pod_nat().map(|()| String::new())
    }) {
        Ok(_) => {
            json!({"available": true, "detail": "nat and filter chains, dnat, masquerade, socket lookup (pod network mode)"})
        }
        Err(e) => json!({"available": false, "detail": e}),
    }
}
