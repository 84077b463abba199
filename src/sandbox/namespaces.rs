//! Namespaces: the PID namespace is set up by `create` before it forks (it only affects
//! children, so the supervisor becomes PID 1 without an intermediate process); the others are
//! joined by path in runc's order, then created, by the forked container process itself. A new
//! user namespace comes after the joins and before the other new namespaces (see `userns`).

use super::userns::Mappings;
use crate::spec::{IdMapping, Namespace};
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
    #[error("a new user namespace needs linux.uidMappings and linux.gidMappings")]
    NoMappings,
    #[error("linux.uidMappings/gidMappings are set but the spec asks for no new user namespace")]
    MappingsWithoutUserNs,
    #[error(transparent)]
    Userns(#[from] super::userns::UsernsError),
    #[error("a rootless container needs a user namespace with uidMappings and gidMappings (runc spec --rootless makes one)")]
    RootlessNeedsUserNs,
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
    /// Mappings of the new user namespace, while it remains to be made.
    maps: Option<Mappings>,
}

impl Plan {
    pub fn new(
        list: &[Namespace],
        uid_maps: &[IdMapping],
        gid_maps: &[IdMapping],
    ) -> Result<Plan, NsError> {
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
                None => new.push(typ.to_string()),
            }
        }
        let maps = if new.iter().any(|t| t == "user") {
            if uid_maps.is_empty() || gid_maps.is_empty() {
                return Err(NsError::NoMappings);
            }
            Some(Mappings {
                uid: uid_maps.to_vec(),
                gid: gid_maps.to_vec(),
            })
        } else if !uid_maps.is_empty() || !gid_maps.is_empty() {
            if list.iter().any(|n| n.typ == "user") {
                None // joined by path: its mappings are the owner's
            } else {
                return Err(NsError::MappingsWithoutUserNs);
            }
        } else {
            None
        };
        Ok(Plan { joins, new, maps })
    }

    /// The new user namespace's mappings, when the container process still has to make it.
    pub fn user_maps(&self) -> Option<&Mappings> {
        self.maps.as_ref()
    }

    /// Unprivileged `create`: enters the new user namespace itself, before the PID namespace.
    pub fn enter_user_here(&mut self) -> Result<(), NsError> {
        if let Some(m) = self.maps.take() {
            m.enter_here()?;
        }
        Ok(())
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

    /// In the forked container process: join by path, then create the user namespace (and
    /// wait in `mapped` until `create` wrote its maps), then create the rest (not pid: done).
    pub fn enter_others<E: From<NsError>>(
        &self,
        mapped: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), E> {
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
        if let Some(m) = &self.maps {
            unshare(CloneFlags::CLONE_NEWUSER).map_err(|source| NsError::Unshare {
                what: "user".into(),
                source,
            })?;
            mapped()?;
            if m.host_root().is_some() {
                super::userns::become_root().map_err(NsError::from)?;
            }
        }
        let mut flags = CloneFlags::empty();
        for typ in self.new.iter().filter(|t| *t != "pid" && *t != "user") {
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
            Plan::new(&[ns("bogus", None)], &[], &[]),
            Err(NsError::Unknown(_))
        ));
        assert!(matches!(
            Plan::new(&[ns("pid", None), ns("pid", None)], &[], &[]),
            Err(NsError::Duplicate { .. })
        ));
        let e = Plan::new(&[ns("network", Some("/nonexistent/ns"))], &[], &[])
            .err()
            .unwrap();
        assert!(e.to_string().contains("/nonexistent/ns"), "{e}");
        let p = Plan::new(
            &[
                ns("mount", None),
                ns("network", Some("/proc/self/ns/net")),
                ns("pid", None),
            ],
            &[],
            &[],
        )
        .unwrap();
        assert!(p.new_pid() && p.has("mount") && !p.has("uts"));
        assert_eq!(p.path_of("network"), Some("/proc/self/ns/net"));
        assert!(p.user_maps().is_none());
    }

    #[test]
    fn user_namespace_needs_mappings_and_mappings_need_it() {
        let m = [IdMapping {
            container_id: 0,
            host_id: 100000,
            size: 65536,
        }];
        assert!(matches!(
            Plan::new(&[ns("user", None)], &[], &[]),
            Err(NsError::NoMappings)
        ));
        assert!(matches!(
            Plan::new(&[ns("pid", None)], &m, &m),
            Err(NsError::MappingsWithoutUserNs)
        ));
        let p = Plan::new(&[ns("user", None), ns("pid", None)], &m, &m).unwrap();
        assert_eq!(p.user_maps().unwrap().host_root(), Some((100000, 100000)));
        let joined = Plan::new(&[ns("user", Some("/proc/self/ns/user"))], &m, &m).unwrap();
        assert!(joined.user_maps().is_none());
    }
}
