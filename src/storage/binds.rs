//! The container's bind mounts (`spec.mounts` of type `bind`, or with a `bind`/`rbind`
//! option), as the guest receives them: files (and directories) appended to the initrd copy,
//! bind mounts inside a shared rootfs, or block devices (see `select`).

use crate::spec::Mount;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BindMount {
    /// Host path (absolute).
    pub source: PathBuf,
    /// Absolute path in the container.
    pub destination: String,
    pub read_only: bool,
    pub recursive: bool,
    pub nosuid: bool,
    pub nodev: bool,
    pub noexec: bool,
}

/// A host file or directory to copy into the guest's initrd at `destination`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InitrdFile {
    pub source: PathBuf,
    pub destination: String,
}

/// The bind mounts of the spec, in order, with their index in `spec.mounts` (block volumes are
/// named `vol<index>`, as urunc names them). Relative sources are relative to the bundle.
pub fn from_spec(mounts: &[Mount], bundle: &Path) -> Vec<(usize, BindMount)> {
    mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| {
            m.typ.as_deref() == Some("bind")
                || m.options.iter().any(|o| o == "bind" || o == "rbind")
        })
        .filter_map(|(i, m)| {
            let src = PathBuf::from(m.source.as_deref()?);
            let source = if src.is_absolute() {
                src
            } else {
                bundle.join(src)
            };
            let has = |o: &str| m.options.iter().any(|x| x == o);
            Some((
                i,
                BindMount {
                    source,
                    destination: m.destination.clone(),
                    read_only: has("ro"),
                    recursive: has("rbind"),
                    nosuid: has("nosuid"),
                    nodev: has("nodev"),
                    noexec: has("noexec"),
                },
            ))
        })
        .collect()
}

/// Bind-mounts each of `binds` into `root` (the container rootfs as the guest will see it over
/// a shared filesystem), in the current mount namespace. Mount points that do not exist are
/// created; a symlink on the way is refused (it could lead out of the rootfs).
pub fn mount_into(root: &Path, binds: &[BindMount]) -> Result<(), String> {
    use nix::mount::{mount, MsFlags};
    for b in binds {
        let target = target_in(root, &b.destination, b.source.is_dir())?;
        let mut flags = MsFlags::MS_BIND;
        if b.recursive {
            flags |= MsFlags::MS_REC;
        }
        mount(Some(&b.source), &target, None::<&str>, flags, None::<&str>).map_err(|e| {
            format!(
                "bind mount {} on {}: {e}",
                b.source.display(),
                b.destination
            )
        })?;
        let mut extra = MsFlags::empty();
        for (on, f) in [
            (b.read_only, MsFlags::MS_RDONLY),
            (b.nosuid, MsFlags::MS_NOSUID),
            (b.nodev, MsFlags::MS_NODEV),
            (b.noexec, MsFlags::MS_NOEXEC),
        ] {
            if on {
                extra |= f;
            }
        }
        if !extra.is_empty() {
            let f = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | extra;
            mount(None::<&str>, &target, None::<&str>, f, None::<&str>)
                .map_err(|e| format!("remount {} with its options: {e}", b.destination))?;
        }
    }
    Ok(())
}

/// `destination` inside `root`, created (a directory, or an empty file when `dir` is false)
/// when missing; every existing component must be a real directory, not a symlink.
pub fn target_in(root: &Path, destination: &str, dir: bool) -> Result<PathBuf, String> {
    let rel = Path::new(destination);
    let comps: Vec<_> = rel
        .components()
        .filter(|c| matches!(c, std::path::Component::Normal(_)))
        .collect();
    if comps.is_empty()
        || rel
            .components()
            .any(|c| c == std::path::Component::ParentDir)
    {
        return Err(format!(
            "mount destination {destination:?} is not a path inside the container"
        ));
    }
    let mut cur = root.to_path_buf();
    for (i, c) in comps.iter().enumerate() {
        cur.push(c);
        let last = i + 1 == comps.len();
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(format!(
                "mount destination {destination:?} goes through a symlink in the container rootfs"
            ))
            }
            Ok(m) if !last && !m.is_dir() => {
                return Err(format!(
                    "mount destination {destination:?}: {} is not a directory",
                    cur.display()
                ))
            }
            Ok(_) => {}
            Err(_) if last && !dir => {
                std::fs::File::create(&cur)
                    .map_err(|e| format!("create {}: {e}", cur.display()))?;
            }
            Err(_) => {
                std::fs::create_dir(&cur).map_err(|e| format!("create {}: {e}", cur.display()))?
            }
        }
    }
    Ok(cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_bind_mounts_only() {
        let m: Vec<Mount> = serde_json::from_str(
            r#"[{"destination":"/proc","type":"proc","source":"proc"},
                {"destination":"/etc/hosts","type":"bind","source":"/h/hosts","options":["rbind","ro"]},
                {"destination":"/data","source":"data","options":["bind","nosuid"]}]"#,
        )
        .unwrap();
        let b = from_spec(&m, Path::new("/b"));
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].0, 1);
        assert!(b[0].1.read_only && b[0].1.recursive);
        assert_eq!(b[1].1.source, PathBuf::from("/b/data"));
        assert!(b[1].1.nosuid && !b[1].1.read_only);
        let d = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc", d.path().join("link")).unwrap();
        assert!(target_in(d.path(), "/link/x", false).is_err());
        assert!(target_in(d.path(), "/../x", false).is_err());
        let t = target_in(d.path(), "/a/b/file", false).unwrap();
        assert!(t.is_file() && d.path().join("a/b").is_dir());
    }
}
