//! Namespaces: the PID namespace is set up by `create` before it forks (it only affects
//! children, so the supervisor becomes PID 1 without an intermediate process); the others are
//! joined by path in runc's order, then created, by the forked container process itself.

use crate::spec::Namespace;
use nix::sched::{setns, unshare, CloneFlags};
use std::os::fd::{AsFd, OwnedFd};

#[derive(Debug, thiserror::Error)]
pub enum NsError {
    #[error("unknown namespace type {0:?}")]
    Unknown(String),
    #[error("namespace {typ} listed twice")]
    Duplicate { typ: String },
    #[error("cannot open namespace {typ} at {path}: {source}")]
    Open {
        typ: String,
        path: String,
        source: std::io::Error,
    },
    #[error("cannot join namespace {typ} at {path}: {source}")]
    Join {
        typ: String,
        path: String,
        source: nix::Error,
    },
    #[error("cannot create namespaces {what}: {source}")]
    Unshare { what: String, source: nix::Error },
    #[error("user namespaces with id mappings are not supported yet; remove the user namespace from the spec or join an existing one by path")]
    UserNs,
}

/// Join order (runc's, after the user namespace): ipc, uts, net, pid, mnt, cgroup, time.
const ORDER: [&str; 8] = [
    "user", "ipc", "uts", "network", "pid", "mount", "cgroup", "time",
];

fn flag(typ: &str) -> Result<CloneFlags, NsError> {
    Ok(match typ {
        "user" => CloneFlags::CLONE_NEWUSER,
        "ipc" => CloneFlags::CLONE_NEWIPC,
        "uts" => CloneFlags::CLONE_NEWUTS,
        "network" => CloneFlags::CLONE_NEWNET,
        "pid" => CloneFlags::CLONE_NEWPID,
        "mount" => CloneFlags::CLONE_NEWNS,
        "cgroup" => CloneFlags::CLONE_NEWCGROUP,
        // CLONE_NEWTIME
        "time" => CloneFlags::from_bits_retain(0x80),
        other => return Err(NsError::Unknown(other.into())),
    })
}

/// The spec's namespaces, validated and opened: opened by path now so a vanished path is an
/// error at create, not later.
pub struct Plan {
    joins: Vec<(String, String, OwnedFd)>,
    new: Vec<String>,
}

impl Plan {
    pub fn new(list: &[Namespace]) -> Result<Plan, NsError> {
        let mut seen = Vec::new();
        for ns in list {
            flag(&ns.typ)?;
            if seen.contains(&ns.typ) {
                return Err(NsError::Duplicate {
                    typ: ns.typ.clone(),
                });
            }
            seen.push(ns.typ.clone());
        }
        let mut joins = Vec::new();
        let mut new = Vec::new();
        for typ in ORDER {
            let Some(ns) = list.iter().find(|n| n.typ == typ) else {
                continue;
            };
            match ns.path.as_deref().filter(|p| !p.is_empty()) {
                Some(path) => {
                    let f = std::fs::File::open(path).map_err(|source| NsError::Open {
                        typ: typ.into(),
                        path: path.into(),
                        source,
                    })?;
                    joins.push((typ.to_string(), path.to_string(), f.into()));
                }
                None if typ == "user" => return Err(NsError::UserNs),
                None => new.push(typ.to_string()),
            }
        }
        Ok(Plan { joins, new })
    }

    pub fn has(&self, typ: &str) -> bool {
        self.new.iter().any(|t| t == typ) || self.joins.iter().any(|(t, _, _)| t == typ)
    }

    pub fn new_pid(&self) -> bool {
        self.new.iter().any(|t| t == "pid")
    }

    pub fn path_of(&self, typ: &str) -> Option<&str> {
        self.joins
            .iter()
            .find(|(t, _, _)| t == typ)
            .map(|(_, p, _)| p.as_str())
    }

    /// In `create`, before forking: point the PID namespace for children at the container's.
    /// Returns the handle to restore `create`'s own with [`restore_pid`].
    pub fn enter_pid_for_children(&self) -> Result<Option<OwnedFd>, NsError> {
        if !self.has("pid") {
            return Ok(None);
        }
        let own: OwnedFd = std::fs::File::open("/proc/self/ns/pid")
            .map_err(|source| NsError::Open {
                typ: "pid".into(),
                path: "/proc/self/ns/pid".into(),
                source,
            })?
            .into();
        if let Some((_, path, fd)) = self.joins.iter().find(|(t, _, _)| t == "pid") {
            setns(fd.as_fd(), CloneFlags::CLONE_NEWPID).map_err(|source| NsError::Join {
                typ: "pid".into(),
                path: path.clone(),
                source,
            })?;
        } else {
            unshare(CloneFlags::CLONE_NEWPID).map_err(|source| NsError::Unshare {
                what: "pid".into(),
                source,
            })?;
        }
        Ok(Some(own))
    }

    /// In the forked container process: join by path, then create the rest (not pid: done).
    pub fn enter_others(&self) -> Result<(), NsError> {
        for (typ, path, fd) in &self.joins {
            if typ == "pid" {
                continue;
            }
            setns(fd.as_fd(), flag(typ)?).map_err(|source| NsError::Join {
                typ: typ.clone(),
                path: path.clone(),
                source,
            })?;
        }
        let mut flags = CloneFlags::empty();
        for typ in self.new.iter().filter(|t| *t != "pid") {
            flags |= flag(typ)?;
        }
        if !flags.is_empty() {
            unshare(flags).map_err(|source| NsError::Unshare {
                what: self.new.join(","),
                source,
            })?;
        }
        Ok(())
    }
}

/// Puts `create`'s PID namespace for children back, so its hooks run in the host's.
pub fn restore_pid(own: OwnedFd) -> Result<(), NsError> {
    setns(own.as_fd(), CloneFlags::CLONE_NEWPID).map_err(|source| NsError::Join {
        typ: "pid".into(),
        path: "/proc/self/ns/pid".into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(t: &str, p: Option<&str>) -> Namespace {
        Namespace {
            typ: t.into(),
            path: p.map(String::from),
        }
    }

    #[test]
    fn validates_types_and_paths() {
        assert!(matches!(
            Plan::new(&[ns("bogus", None)]),
            Err(NsError::Unknown(_))
        ));
        assert!(matches!(
            Plan::new(&[ns("pid", None), ns("pid", None)]),
            Err(NsError::Duplicate { .. })
        ));
        let e = Plan::new(&[ns("network", Some("/nonexistent/ns"))])
            .err()
            .unwrap();
        assert!(e.to_string().contains("/nonexistent/ns"), "{e}");
        let p = Plan::new(&[
            ns("mount", None),
            ns("network", Some("/proc/self/ns/net")),
            ns("pid", None),
        ])
        .unwrap();
        assert!(p.new_pid() && p.has("mount") && !p.has("uts"));
        assert_eq!(p.path_of("network"), Some("/proc/self/ns/net"));
    }
}
