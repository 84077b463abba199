//! Identity: the monitor runs as the container's user (`process.user`), with its
//! `additionalGids` plus the KVM group when it needs `/dev/kvm`. The KVM group is
//! `[monitors.X] kvm_group` (a name or a number), else the group owning `/dev/kvm`, else a group
//! named `kvm`; never gid 0 implicitly (that would hand the monitor root's group files).

use crate::plan::ProcessParams;
use nix::unistd::{Gid, Uid};

#[derive(Debug, thiserror::Error)]
pub enum IdError {
    #[error("kvm_group {0:?} is neither a number nor a group in /etc/group")]
    UnknownGroup(String),
    #[error("{step}: {source}")]
    Sys {
        step: &'static str,
        source: nix::Error,
    },
    #[error("cannot set additionalGids {0:?}: setgroups is denied in this user namespace")]
    SetgroupsDenied(Vec<u32>),
}

/// Who a sandboxed process becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups, sorted, without duplicates.
    pub groups: Vec<u32>,
}

impl Identity {
    /// The monitor's identity: the container's user, plus the KVM group when it needs KVM.
    pub fn monitor(p: &ProcessParams, needs_kvm: bool, kvm_group: &str) -> Result<Self, IdError> {
        let mut groups = p.additional_gids.clone();
        if needs_kvm {
            if let Some(g) = kvm_gid(kvm_group)? {
                groups.push(g);
            }
        }
        groups.sort_unstable();
        groups.dedup();
        Ok(Identity {
            uid: p.uid,
            gid: p.gid,
            groups,
        })
    }

    /// The supervisor's: the container's user without the KVM group.
    pub fn supervisor(p: &ProcessParams) -> Self {
        let mut groups = p.additional_gids.clone();
        groups.sort_unstable();
        groups.dedup();
        Identity {
            uid: p.uid,
            gid: p.gid,
            groups,
        }
    }

    /// setgroups, setresgid, setresuid; each only when it changes something, so a rootless
    /// runtime already running as the target user needs no privilege.
    pub fn apply(&self) -> Result<(), IdError> {
        let sys = |step| move |source| IdError::Sys { step, source };
        let mut current: Vec<u32> = nix::unistd::getgroups()
            .map_err(sys("getgroups"))?
            .iter()
            .map(|g| g.as_raw())
            .collect();
        current.sort_unstable();
        current.dedup();
        // Where setgroups is denied (a user namespace an unprivileged user mapped), the
        // inherited groups are unmapped ones and stay; asking for more is an error.
        if current != self.groups && !(self.groups.is_empty() && setgroups_denied()) {
            if setgroups_denied() {
                return Err(IdError::SetgroupsDenied(self.groups.clone()));
            }
            let gs: Vec<Gid> = self.groups.iter().map(|g| Gid::from_raw(*g)).collect();
            nix::unistd::setgroups(&gs).map_err(sys("setgroups"))?;
        }
        let g = Gid::from_raw(self.gid);
        let rg = nix::unistd::getresgid().map_err(sys("getresgid"))?;
        if (rg.real, rg.effective, rg.saved) != (g, g, g) {
            nix::unistd::setresgid(g, g, g).map_err(sys("setresgid"))?;
        }
        let u = Uid::from_raw(self.uid);
        let ru = nix::unistd::getresuid().map_err(sys("getresuid"))?;
        if (ru.real, ru.effective, ru.saved) != (u, u, u) {
            nix::unistd::setresuid(u, u, u).map_err(sys("setresuid"))?;
        }
        Ok(())
    }
}

fn setgroups_denied() -> bool {
    std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny")
}

/// Looks a group name up in `/etc/group`.
fn group_by_name(name: &str) -> Option<u32> {
    let text = std::fs::read_to_string("/etc/group").ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == name).then_some(())?;
        f.nth(1)?.parse().ok()
    })
}

/// The group to add for `/dev/kvm`; `None` when there is none to add.
pub fn kvm_gid(kvm_group: &str) -> Result<Option<u32>, IdError> {
    if !kvm_group.is_empty() {
        return kvm_group
            .parse()
            .ok()
            .or_else(|| group_by_name(kvm_group))
            .map(Some)
            .ok_or_else(|| IdError::UnknownGroup(kvm_group.into()));
    }
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata("/dev/kvm").map(|m| m.gid()) {
        Ok(g) if g != 0 => Ok(Some(g)),
        _ => Ok(group_by_name("kvm")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kvm_group_by_number_name_or_default() {
        assert_eq!(kvm_gid("4321").unwrap(), Some(4321));
        assert_eq!(kvm_gid("root").unwrap(), Some(0));
        assert!(matches!(
            kvm_gid("no-such-group-urunc"),
            Err(IdError::UnknownGroup(_))
        ));
        // the default never silently adds gid 0
        assert_ne!(kvm_gid("").unwrap(), Some(0));
    }

    #[test]
    fn monitor_groups_sorted_with_kvm_only_when_needed() {
        let p = ProcessParams {
            uid: 1000,
            gid: 1000,
            additional_gids: vec![30, 10, 30],
            ..Default::default()
        };
        assert_eq!(Identity::monitor(&p, false, "77").unwrap().groups, [10, 30]);
        assert_eq!(
            Identity::monitor(&p, true, "77").unwrap().groups,
            [10, 30, 77]
        );
        assert_eq!(Identity::supervisor(&p).groups, [10, 30]);
    }
}
