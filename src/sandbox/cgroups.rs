//! Cgroups: the container's `linux.cgroupsPath` on cgroup v1 (every mounted hierarchy), v2, or
//! hybrid hosts; cgroupfs paths and systemd-style `slice:prefix:name`. Freezing, listing and
//! removal operate on the directories recorded here at create; limits are in `limits.rs`.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cgroup {
    /// The cgroup path relative to each hierarchy's root, e.g. `/urunc/abc`.
    pub path: String,
    /// v1 hierarchies: (controllers of the mount, directory of this cgroup in it).
    pub v1: Vec<(String, PathBuf)>,
    /// The unified (v2) directory, on v2 and hybrid hosts.
    pub v2: Option<PathBuf>,
    /// Whether limits live in v2 (pure v2 host).
    pub unified: bool,
}

/// Whether a task whose `/proc/<pid>/stat` state letter is `state` may sit in a frozen cgroup,
/// so that the freezer's file is worth reading (`list` asks this of every container). The v1
/// freezer parks its tasks in the refrigerator, which the kernel reports as `D` (before 6.1
/// `__refrigerator` sleeps `TASK_UNINTERRUPTIBLE`; since, `__task_state_index` reports
/// `TASK_FROZEN` as uninterruptible); the v2 freezer's tasks sleep interruptibly in
/// `do_freezer_trap` (`S`), so on v2 the file is always read.
pub fn may_be_frozen(unified: bool, state: u8) -> bool {
    unified || state == b'D'
}

/// Whether the cgroup directory `dir` is frozen: `frozen 1` in cgroup.events on v2 (`unified`),
/// `FROZEN` in the v1 freezer's freezer.state. Read into a stack buffer (`list` asks this of
/// every container); an unreadable file is not frozen.
pub fn frozen_at(unified: bool, dir: &Path) -> bool {
    let mut buf = [0u8; 256];
    let file = if unified {
        "cgroup.events"
    } else {
        "freezer.state"
    };
    let Ok(n) = crate::sys::read_small(&dir.join(file), &mut buf) else {
        return false;
    };
    let text = &buf[..n];
    if unified {
        text.split(|&b| b == b'\n').any(|l| l == b"frozen 1")
    } else {
        text.trim_ascii() == b"FROZEN"
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup {path}: {op}: {source}")]
    Io {
        path: String,
        op: String,
        source: std::io::Error,
    },
    #[error(
        "invalid cgroupsPath {0:?}: expected a path, or slice:prefix:name with --systemd-cgroup"
    )]
    BadPath(String),
    #[error("timed out freezing cgroup {0}")]
    FreezeTimeout(String),
    #[error("resources not supported by urunc: {0}")]
    Unsupported(String),
}

pub(super) fn ioerr(
    path: &Path,
    op: impl Into<String>,
) -> impl FnOnce(std::io::Error) -> CgroupError {
    let path = path.display().to_string();
    let op = op.into();
    move |source| CgroupError::Io { path, op, source }
}

/// A cgroup mount of this host (from /proc/self/mountinfo): fstype (`cgroup` or `cgroup2`),
/// super options (the v1 controllers), mount point.
pub type CgroupMount = (String, String, PathBuf);

/// Whether a filesystem type is a cgroup hierarchy's.
pub fn is_cgroup_fs(fstype: &str) -> bool {
    fstype == "cgroup" || fstype == "cgroup2"
}

/// Turns `cgroupsPath` into a path relative to the hierarchy root.
pub fn resolve_path(
    cgroups_path: Option<&str>,
    systemd: bool,
    id: &str,
) -> Result<String, CgroupError> {
    let p = cgroups_path.unwrap_or("");
    let looks_systemd = p.split(':').count() == 3 && !p.starts_with('/');
    if systemd || looks_systemd {
        if p.is_empty() {
            return Ok(format!("/system.slice/urunc-{id}.scope"));
        }
        let parts: Vec<&str> = p.split(':').collect();
        if parts.len() != 3 {
            return Err(CgroupError::BadPath(p.into()));
        }
        let slice = if parts[0].is_empty() {
            "system.slice"
        } else {
            parts[0]
        };
        let mut dir = String::new();
        // a-b-c.slice lives in /a.slice/a-b.slice/a-b-c.slice
        let stem = slice.trim_end_matches(".slice");
        if stem != "-" {
            let mut acc = String::new();
            for (i, part) in stem.split('-').enumerate() {
                if i > 0 {
                    acc.push('-');
                }
                acc.push_str(part);
                dir.push_str(&format!("/{acc}.slice"));
            }
        }
        let unit = if parts[1].is_empty() {
            format!("{}.scope", parts[2])
        } else {
            format!("{}-{}.scope", parts[1], parts[2])
        };
        let unit = if parts[2].ends_with(".slice") {
            parts[2].to_string()
        } else {
            unit
        };
        return Ok(format!("{dir}/{unit}"));
    }
    if p.is_empty() {
        return Ok(format!("/urunc/{id}"));
    }
    if p.split('/').any(|c| c == "..") {
        return Err(CgroupError::BadPath(p.into()));
    }
    Ok(if p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    })
}

impl Cgroup {
    /// `mounts`: this host's cgroup mounts, where the hierarchies are.
    pub fn new(path: String, mounts: Vec<CgroupMount>) -> Cgroup {
        let mut v1 = Vec::new();
        let mut v2 = None;
        for (fstype, opts, mp) in mounts {
            let dir = mp.join(path.trim_start_matches('/'));
            if fstype == "cgroup2" {
                v2 = Some(dir);
            } else {
                let ctrls: Vec<&str> = opts
                    .split(',')
                    .filter(|o| {
                        !matches!(
                            *o,
                            "rw" | "ro"
                                | "nosuid"
                                | "nodev"
                                | "noexec"
                                | "relatime"
                                | "clone_children"
                                | "xattr"
                        ) && !o.starts_with("release_agent")
                    })
                    .collect();
                v1.push((ctrls.join(","), dir));
            }
        }
        let unified = v1.is_empty() && v2.is_some();
        Cgroup {
            path,
            v1,
            v2,
            unified,
        }
    }

    fn dirs(&self) -> impl Iterator<Item = &PathBuf> {
        self.v1.iter().map(|(_, d)| d).chain(self.v2.iter())
    }

    pub(super) fn v1_dir(&self, ctrl: &str) -> Option<&PathBuf> {
        if ctrl == "freezer" {
            return self
                .v1
                .iter()
                .find(|(c, _)| Cgroup::is_freezer(c))
                .map(|(_, d)| d);
        }
        self.v1
            .iter()
            .find(|(c, _)| c.split(',').any(|x| x == ctrl))
            .map(|(_, d)| d)
    }

    /// Creates the directories; on a rootless run, hierarchies we may not write are skipped.
    pub fn create(&self, rootless: bool) -> Result<(), CgroupError> {
        for d in self.dirs() {
            match std::fs::create_dir_all(d) {
                Ok(()) => {}
                Err(e) if rootless && e.kind() == std::io::ErrorKind::PermissionDenied => {}
                Err(e) => return Err(ioerr(d, "create")(e)),
            }
        }
        if let Some(cpuset) = self.v1_dir("cpuset") {
            init_cpuset(cpuset)?;
        }
        if self.unified {
            if let Some(d) = &self.v2 {
                enable_v2_controllers(d);
            }
        }
        Ok(())
    }

    /// Moves the calling process into every hierarchy.
    pub fn enter_self(&self, rootless: bool) -> Result<(), CgroupError> {
        for d in self.dirs() {
            let f = d.join("cgroup.procs");
            match std::fs::write(&f, "0") {
                Ok(()) => {}
                Err(_) if rootless => {}
                Err(e) => return Err(ioerr(&f, "join")(e)),
            }
        }
        Ok(())
    }

    pub fn procs(&self) -> Vec<i32> {
        let d = if self.unified {
            self.v2.as_ref()
        } else {
            self.v1_dir("pids")
                .or(self.v1_dir("freezer"))
                .or(self.v1.first().map(|(_, d)| d))
        };
        let Some(d) = d else { return Vec::new() };
        let mut v: Vec<i32> = std::fs::read_to_string(d.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        v.sort_unstable();
        v
    }

    pub fn is_frozen(&self) -> bool {
        let dir = if self.unified {
            self.v2.as_ref()
        } else {
            self.v1_dir("freezer")
        };
        dir.is_some_and(|d| frozen_at(self.unified, d))
    }

    /// Whether a controller list of a v1 hierarchy (`cpu,cpuacct`) holds the freezer.
    pub fn is_freezer(controllers: &str) -> bool {
        controllers.split(',').any(|x| x == "freezer")
    }

    pub fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        let (file, value) = if self.unified {
            let d = self
                .v2
                .as_ref()
                .ok_or_else(|| CgroupError::Unsupported("no freezer".into()))?;
            (d.join("cgroup.freeze"), if frozen { "1" } else { "0" })
        } else {
            let d = self.v1_dir("freezer").ok_or_else(|| {
                CgroupError::Unsupported("no freezer hierarchy is mounted".into())
            })?;
            (
                d.join("freezer.state"),
                if frozen { "FROZEN" } else { "THAWED" },
            )
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            std::fs::write(&file, value).map_err(ioerr(&file, "write"))?;
            if self.is_frozen() == frozen {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(CgroupError::FreezeTimeout(self.path.clone()));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Removes the directories (waiting briefly for exiting processes to leave).
    pub fn remove(&self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        for d in self.dirs() {
            loop {
                match std::fs::remove_dir(d) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(e)
                        if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline =>
                    {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => {
                        log::warn!("cannot remove cgroup {}: {e}", d.display());
                        break;
                    }
                }
            }
        }
        // Remove our own empty parent (`/urunc`) when we made it.
        if self.path.starts_with("/urunc/") {
            for d in self.dirs() {
                if let Some(p) = d.parent() {
                    let _ = std::fs::remove_dir(p);
                }
            }
        }
    }
}

/// v1 cpuset: a new cgroup has empty cpus/mems and refuses tasks; copy them from the parent.
fn init_cpuset(dir: &Path) -> Result<(), CgroupError> {
    let mut chain = Vec::new();
    let mut d = dir.to_path_buf();
    while d.join("cpuset.cpus").exists() {
        chain.push(d.clone());
        if !d.pop() {
            break;
        }
    }
    for d in chain.iter().rev().skip(1) {
        for f in ["cpuset.cpus", "cpuset.mems"] {
            let cur = std::fs::read_to_string(d.join(f)).unwrap_or_default();
            if cur.trim().is_empty() {
                let parent = d.parent().map(|p| p.join(f)).unwrap_or_default();
                let v = std::fs::read_to_string(&parent).map_err(ioerr(&parent, "read"))?;
                std::fs::write(d.join(f), v.trim()).map_err(ioerr(&d.join(f), "write"))?;
            }
        }
    }
    Ok(())
}

fn enable_v2_controllers(dir: &Path) {
    // Enable the controllers we use in every ancestor's subtree_control (best effort).
    let mut ancestors: Vec<PathBuf> = dir.ancestors().skip(1).map(Path::to_path_buf).collect();
    ancestors.reverse();
    for a in ancestors {
        if a.join("cgroup.subtree_control").exists() {
            for c in ["+memory", "+pids", "+cpu", "+cpuset"] {
                let _ = std::fs::write(a.join("cgroup.subtree_control"), c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroups_path_forms() {
        assert_eq!(resolve_path(None, false, "c1").unwrap(), "/urunc/c1");
        assert_eq!(resolve_path(Some("/a/b"), false, "c1").unwrap(), "/a/b");
        assert_eq!(resolve_path(Some("a/b"), false, "c1").unwrap(), "/a/b");
        assert!(resolve_path(Some("/a/../../b"), false, "c1").is_err());
        assert_eq!(
            resolve_path(Some("system.slice:docker:abc"), true, "abc").unwrap(),
            "/system.slice/docker-abc.scope"
        );
        assert_eq!(
            resolve_path(Some("kubepods-besteffort-pod1.slice:cri-containerd:x"), true, "x").unwrap(),
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-x.scope"
        );
        assert_eq!(
            resolve_path(Some(":urunc:x"), true, "x").unwrap(),
            "/system.slice/urunc-x.scope"
        );
    }
}
