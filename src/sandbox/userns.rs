//! User namespaces with `linux.uidMappings`/`gidMappings`.
//!
//! Run by root, `create` lets the container process join the namespaces given by path, unshare
//! the user namespace, and then writes its maps from outside (runc's order: joins first, with
//! the host's privileges; then the user namespace; then the other new namespaces, owned by it).
//! Run by an unprivileged user, `create` enters the new user namespace itself before anything
//! else (it could not make a PID namespace otherwise), with its own uid as the only mapping or
//! through `newuidmap`/`newgidmap` for wider ones.

use crate::spec::IdMapping;
use nix::unistd::Pid;

#[derive(Debug, thiserror::Error)]
pub enum UsernsError {
    #[error("cannot write {file}: {source}")]
    Write {
        file: String,
        source: std::io::Error,
    },
    #[error("{0} failed: {1}")]
    Helper(&'static str, String),
    #[error("{step}: {source}")]
    Sys {
        step: &'static str,
        source: nix::Error,
    },
}

/// The spec's mappings for a new user namespace.
#[derive(Debug, Clone, Default)]
pub struct Mappings {
    pub uid: Vec<IdMapping>,
    pub gid: Vec<IdMapping>,
}

fn map_text(m: &[IdMapping]) -> String {
    m.iter()
        .map(|e| format!("{} {} {}\n", e.container_id, e.host_id, e.size))
        .collect()
}

impl Mappings {
    /// The host id that `id` inside the namespace maps to.
    fn host(m: &[IdMapping], id: u32) -> Option<u32> {
        m.iter()
            .find(|e| id >= e.container_id && id - e.container_id < e.size)
            .map(|e| e.host_id + (id - e.container_id))
    }

    /// The host uid and gid of the namespace's root, when it is mapped.
    pub fn host_root(&self) -> Option<(u32, u32)> {
        Some((Self::host(&self.uid, 0)?, Self::host(&self.gid, 0)?))
    }

    /// A single mapping of the caller's own ids: an unprivileged process may write it itself
    /// (after denying setgroups).
    fn is_self_only(&self) -> bool {
        let (u, g) = (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
        matches!(self.uid.as_slice(), [m] if m.host_id == u && m.size == 1)
            && matches!(self.gid.as_slice(), [m] if m.host_id == g && m.size == 1)
    }

    /// Writes the maps of `pid` directly (root, or a self-only mapping).
    pub fn write(&self, pid: Pid) -> Result<(), UsernsError> {
        let w = |file: String, text: &str| {
            std::fs::write(&file, text).map_err(|source| UsernsError::Write { file, source })
        };
        if !nix::unistd::geteuid().is_root() {
            w(format!("/proc/{pid}/setgroups"), "deny")?;
        }
        w(format!("/proc/{pid}/uid_map"), &map_text(&self.uid))?;
        w(format!("/proc/{pid}/gid_map"), &map_text(&self.gid))
    }

    fn write_with_helpers(&self, pid: Pid) -> Result<(), UsernsError> {
        for (tool, m) in [("newuidmap", &self.uid), ("newgidmap", &self.gid)] {
            let mut args = vec![pid.to_string()];
            for e in m {
                args.extend([e.container_id, e.host_id, e.size].map(|v| v.to_string()));
            }
            let out = std::process::Command::new(tool)
                .args(&args)
                .output()
                .map_err(|e| UsernsError::Helper(tool, e.to_string()))?;
            if !out.status.success() {
                let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
                return Err(UsernsError::Helper(tool, msg));
            }
        }
        Ok(())
    }

    /// Unprivileged `create`: enters a new user namespace mapped as asked, and becomes its root.
    pub fn enter_here(&self) -> Result<(), UsernsError> {
        let sys = |step| move |source| UsernsError::Sys { step, source };
        let me = nix::unistd::getpid();
        if self.is_self_only() {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER)
                .map_err(sys("unshare user namespace"))?;
            self.write(me)?;
        } else {
            // newuidmap must run from the parent namespace: fork it before unsharing.
            let (rd, wr) = nix::unistd::pipe().map_err(sys("pipe"))?;
            match crate::sys::fork().map_err(sys("fork"))? {
                nix::unistd::ForkResult::Child => {
                    drop(wr);
                    let mut b = [0u8; 1];
                    let ok = nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&rd), &mut b)
                        == Ok(1)
                        && self.write_with_helpers(me).is_ok();
                    // SAFETY: _exit in the forked helper.
                    unsafe { libc::_exit(if ok { 0 } else { 1 }) }
                }
                nix::unistd::ForkResult::Parent { child } => {
                    drop(rd);
                    let r = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER);
                    let _ = nix::unistd::write(&wr, if r.is_ok() { b"g" } else { b"" });
                    drop(wr);
                    r.map_err(sys("unshare user namespace"))?;
                    let st = nix::sys::wait::waitpid(child, None).map_err(sys("wait"))?;
                    if st != nix::sys::wait::WaitStatus::Exited(child, 0) {
                        // rerun in the foreground for its message
                        return Err(UsernsError::Helper(
                            "newuidmap/newgidmap",
                            format!(
                                "could not map {:?} (is uidmap installed, and /etc/subuid set up?)",
                                self
                            ),
                        ));
                    }
                }
            }
        }
        if self.host_root().is_some() {
            become_root()?;
        }
        Ok(())
    }
}

/// After the maps are written: become uid/gid 0 of the namespace (capabilities stay: none of
/// the ids was 0 before).
pub fn become_root() -> Result<(), UsernsError> {
    let sys = |step| move |source| UsernsError::Sys { step, source };
    let z = nix::unistd::Gid::from_raw(0);
    nix::unistd::setresgid(z, z, z).map_err(sys("setresgid 0 in the user namespace"))?;
    let z = nix::unistd::Uid::from_raw(0);
    nix::unistd::setresuid(z, z, z).map_err(sys("setresuid 0 in the user namespace"))
}

/// Gives the namespace's root the container's state directory (its files included), so the
/// container process can keep updating it from inside; the `--root` directory above it becomes
/// traversable (0711: not listable) for that.
pub fn chown_dir(dir: &std::path::Path, m: &Mappings) -> Result<(), UsernsError> {
    use std::os::unix::fs::PermissionsExt;
    let Some((u, g)) = m.host_root() else {
        return Ok(());
    };
    if let Some(root) = dir.parent() {
        if let Ok(meta) = std::fs::metadata(root) {
            let mode = meta.permissions().mode();
            if mode & 0o001 == 0 {
                let _ = std::fs::set_permissions(
                    root,
                    PermissionsExt::from_mode((mode | 0o111) & 0o7777),
                );
            }
        }
    }
    // Entries first, the directory last, each without following a link: until the directory
    // itself changes hands only root can write in it, so no name can be swapped for a link
    // meanwhile (a link there is chowned itself, never its target).
    let sys = |step: &'static str| move |source| UsernsError::Sys { step, source };
    let d = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(dir)
            .map_err(|e| {
                sys("open the state directory")(nix::Error::from_raw(
                    e.raw_os_error().unwrap_or(libc::EIO),
                ))
            })?
    };
    let fd = std::os::fd::AsRawFd::as_raw_fd(&d);
    // listed through the open directory (the magic link names this very inode)
    let names: Vec<std::ffi::CString> = std::fs::read_dir(format!("/proc/self/fd/{fd}"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(
                e.file_name().as_os_str(),
            ))
            .ok()
        })
        .collect();
    for name in &names {
        nix::unistd::fchownat(
            Some(fd),
            name.as_c_str(),
            Some(u.into()),
            Some(g.into()),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(sys(
            "chown the state directory to the user namespace's root",
        ))?;
    }
    nix::unistd::fchown(fd, Some(u.into()), Some(g.into())).map_err(sys(
        "chown the state directory to the user namespace's root",
    ))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(c: u32, h: u32, s: u32) -> IdMapping {
        IdMapping {
            container_id: c,
            host_id: h,
            size: s,
        }
    }

    #[test]
    fn host_root_and_map_text() {
        let maps = Mappings {
            uid: vec![m(0, 100000, 65536)],
            gid: vec![m(1, 200001, 10), m(0, 5000, 1)],
        };
        assert_eq!(maps.host_root(), Some((100000, 5000)));
        assert_eq!(map_text(&maps.gid), "1 200001 10\n0 5000 1\n");
        let no_root = Mappings {
            uid: vec![m(1, 100000, 5)],
            gid: vec![m(0, 1, 1)],
        };
        assert_eq!(no_root.host_root(), None);
    }

    /// A link in the state directory is chowned itself, never its target (the old code chowned
    /// by path, following it: a file of root's became the namespace root's).
    #[test]
    fn chown_dir_never_follows_a_link() {
        use std::os::unix::fs::MetadataExt;
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("id");
        std::fs::create_dir(&dir).unwrap();
        let target = t.path().join("root-only");
        std::fs::write(&target, "x").unwrap();
        std::os::unix::fs::symlink(&target, dir.join("state.json")).unwrap();
        std::fs::write(dir.join("plain"), "y").unwrap();
        let maps = Mappings {
            uid: vec![m(0, 100000, 65536)],
            gid: vec![m(0, 100000, 65536)],
        };
        chown_dir(&dir, &maps).unwrap();
        assert_eq!(std::fs::metadata(&target).unwrap().uid(), 0);
        let link = std::fs::symlink_metadata(dir.join("state.json")).unwrap();
        assert_eq!((link.uid(), link.gid()), (100000, 100000));
        assert_eq!(std::fs::metadata(dir.join("plain")).unwrap().uid(), 100000);
        assert_eq!(std::fs::metadata(&dir).unwrap().uid(), 100000);
    }
}
