//! The monitor's filesystem view, as data: which host file or directory appears where, and how.
//!
//! The view holds exactly what the monitor's Landlock allowances name (its binary, libraries,
//! firmware, the plan's read and write paths, its devices), nothing else. Paths inside the
//! container's rootfs appear at the path the image gives them (the kernel at `/unikernel/app`,
//! not `/run/containerd/.../rootfs/unikernel/app`), so the guest never sees a host path: QEMU's
//! multiboot loader, for one, puts the `-kernel` path in front of the guest's command line. The
//! rootfs itself (a 9p share) appears at [`ROOTFS_TARGET`]; every other path keeps its host
//! path. [`View::rewrite`] applies the same mapping to argv words and generated files, so the
//! monitor's argv names paths valid inside the view. Built by [`super::mount_view`].

use super::landlock::Allow;
use landlock::{AccessFs, BitFlags};
use std::path::{Component, Path, PathBuf};

/// Where the container's rootfs directory itself appears, when the monitor shares it.
pub const ROOTFS_TARGET: &str = "/rootfs";

#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error(
        "the monitor's view cannot hold both {a} and {b} at {target}: rename the image's file"
    )]
    Clash {
        a: String,
        b: String,
        target: String,
    },
    #[error(
        "the monitor's view cannot place {inner} inside {outer}: move the image's file elsewhere"
    )]
    Nested { inner: String, outer: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A read-only bind mount (files the monitor reads or executes).
    ReadOnly,
    /// A writable bind mount (its work dir, writable images, sockets).
    ReadWrite,
    /// A character device: a fresh node in the view, owned by the monitor, never the host's.
    Device,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Host path (not yet opened: [`super::mount_view`] opens it without following links the
    /// container's user could plant).
    pub source: PathBuf,
    /// Path inside the view.
    pub target: PathBuf,
    pub kind: Kind,
    /// A missing required source is an error; a missing optional one is left out.
    pub required: bool,
}

/// The mapping from host paths to view paths, and the view's entries.
#[derive(Debug, Clone)]
pub struct View {
    pub rootfs: PathBuf,
    pub entries: Vec<Entry>,
}

impl View {
    /// Where a host path appears in the view.
    pub fn map(rootfs: &Path, host: &Path) -> PathBuf {
        match host.strip_prefix(rootfs) {
            Ok(rel) if rel.as_os_str().is_empty() => PathBuf::from(ROOTFS_TARGET),
            Ok(rel) => Path::new("/").join(rel),
            Err(_) => host.to_path_buf(),
        }
    }

    /// Rewrites every host path under the rootfs inside one argv word or file (`-kernel P`,
    /// `file=P,format=raw`, a JSON string): a match must start at a word boundary and end at
    /// one (end, `/`, `,`, `"`, `'`, `:`, space).
    pub fn rewrite(rootfs: &Path, text: &str) -> String {
        let root = rootfs.to_string_lossy();
        let root = root.trim_end_matches('/');
        if root.is_empty() || !root.starts_with('/') {
            return text.to_string();
        }
        let starts = |c: Option<char>| c.is_none_or(|c| " =,:\"'".contains(c));
        let ends = |c: Option<char>| c.is_none_or(|c| " /,:\"'".contains(c));
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(i) = rest.find(root) {
            let before = rest[..i].chars().next_back().or(out.chars().next_back());
            let after = rest[i + root.len()..].chars().next();
            out.push_str(&rest[..i]);
            if starts(before) && ends(after) {
                if after != Some('/') {
                    out.push_str(ROOTFS_TARGET);
                }
            } else {
                out.push_str(root);
            }
            rest = &rest[i + root.len()..];
        }
        out.push_str(rest);
        out
    }

    /// The view for a set of allowances (see `landlock::monitor_rules`). `is_device` tells
    /// whether a host path is a character device.
    pub fn layout(
        rootfs: &Path,
        allows: &[Allow],
        is_device: impl Fn(&Path) -> bool,
    ) -> Result<View, ViewError> {
        let mut entries: Vec<Entry> = Vec::new();
        for a in allows {
            let kind = if is_device(&a.path) {
                Kind::Device
            } else if a.access.intersects(writes()) {
                Kind::ReadWrite
            } else {
                Kind::ReadOnly
            };
            let e = Entry {
                source: a.path.clone(),
                target: Self::map(rootfs, &normal(&a.path)),
                kind,
                required: a.required,
            };
            match entries.iter_mut().find(|x| x.target == e.target) {
                Some(x) if x.source == e.source => {
                    x.kind = x.kind.max(e.kind);
                    x.required |= e.required;
                }
                Some(x) => {
                    return Err(ViewError::Clash {
                        a: x.source.display().to_string(),
                        b: e.source.display().to_string(),
                        target: e.target.display().to_string(),
                    })
                }
                None => entries.push(e),
            }
        }
        entries.sort_by(|a, b| a.target.cmp(&b.target));
        let mut kept: Vec<Entry> = Vec::new();
        for e in entries {
            let outer = kept
                .iter()
                .find(|o| o.target != e.target && e.target.starts_with(&o.target));
            match outer {
                None => kept.push(e),
                // a host directory already in the view holds this one at the same place
                Some(o)
                    if o.source == o.target
                        && e.source == e.target
                        && o.kind == Kind::ReadOnly
                        && e.kind == Kind::ReadOnly => {}
                Some(o) if o.kind == Kind::ReadWrite && e.source.starts_with(&o.source) => {
                    if e.source.strip_prefix(&o.source).ok()
                        != e.target.strip_prefix(&o.target).ok()
                    {
                        return Err(nested(&e, o));
                    }
                }
                Some(o) => return Err(nested(&e, o)),
            }
        }
        Ok(View {
            rootfs: rootfs.to_path_buf(),
            entries: kept,
        })
    }
}

fn nested(e: &Entry, o: &Entry) -> ViewError {
    ViewError::Nested {
        inner: format!("{} ({})", e.target.display(), e.source.display()),
        outer: format!("{} ({})", o.target.display(), o.source.display()),
    }
}

fn writes() -> BitFlags<AccessFs> {
    AccessFs::WriteFile | AccessFs::MakeReg | AccessFs::MakeDir | AccessFs::RemoveFile
}

/// The path without `.` components or a trailing slash (`..` never reaches here: plan paths are
/// resolved, and the rootfs's are resolved inside it).
fn normal(p: &Path) -> PathBuf {
    p.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(p: &str, access: BitFlags<AccessFs>) -> Allow {
        Allow {
            path: p.into(),
            access,
            required: true,
        }
    }

    const ROOT: &str = "/run/containerd/io.containerd.runtime.v2.task/k8s.io/abc/rootfs";

    #[test]
    fn image_paths_keep_their_image_path_and_the_rest_its_host_path() {
        let r = Path::new(ROOT);
        let k = format!("{ROOT}/unikernel/app.qemu");
        assert_eq!(
            View::map(r, Path::new(&k)),
            Path::new("/unikernel/app.qemu")
        );
        assert_eq!(View::map(r, r), Path::new(ROOTFS_TARGET));
        assert_eq!(
            View::map(r, Path::new("/usr/bin/qemu-system-x86_64")),
            Path::new("/usr/bin/qemu-system-x86_64")
        );
        // a sibling whose name merely starts like the rootfs is not inside it
        let sib = format!("{ROOT}2/x");
        assert_eq!(View::map(r, Path::new(&sib)), Path::new(&sib));
    }

    #[test]
    fn argv_words_are_rewritten_at_path_boundaries_only() {
        let r = Path::new(ROOT);
        let w = |s: String| View::rewrite(r, &s);
        assert_eq!(w(format!("{ROOT}/unikernel/app")), "/unikernel/app");
        assert_eq!(
            w(format!("if=virtio,file={ROOT}/disk.img,format=raw")),
            "if=virtio,file=/disk.img,format=raw"
        );
        assert_eq!(
            w(format!("local,id=fs,path={ROOT},security_model=none")),
            "local,id=fs,path=/rootfs,security_model=none"
        );
        assert_eq!(
            w(format!("{{\"kernel_image_path\":\"{ROOT}/k\"}}")),
            "{\"kernel_image_path\":\"/k\"}"
        );
        // not a path of the rootfs: left alone
        for s in [
            format!("{ROOT}2/k"),
            format!("/x{ROOT}/k"),
            "console=ttyS0".into(),
        ] {
            assert_eq!(w(s.clone()), s);
        }
    }

    #[test]
    fn layout_takes_kinds_from_the_allowances_and_merges_duplicates() {
        let r = Path::new("/b/rootfs");
        let ro = AccessFs::ReadFile | AccessFs::ReadDir;
        let rw = ro | AccessFs::WriteFile | AccessFs::MakeReg;
        let dev = AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::IoctlDev;
        let v = View::layout(
            r,
            &[
                allow("/usr/bin/qemu", ro | AccessFs::Execute),
                allow("/b/rootfs/unikernel/k", ro),
                allow("/b/rootfs/unikernel/k", ro),
                allow("/state/id/work", rw),
                allow("/state/id/work/fc.json", ro),
                allow("/dev/kvm", dev),
                allow("/usr/lib/x86_64-linux-gnu", ro),
                allow("/usr/lib/x86_64-linux-gnu/qemu", ro),
            ],
            |p| p.starts_with("/dev"),
        )
        .unwrap();
        let got: Vec<(&str, Kind)> = v
            .entries
            .iter()
            .map(|e| (e.target.to_str().unwrap(), e.kind))
            .collect();
        assert_eq!(
            got,
            [
                ("/dev/kvm", Kind::Device),
                ("/state/id/work", Kind::ReadWrite),
                ("/unikernel/k", Kind::ReadOnly),
                ("/usr/bin/qemu", Kind::ReadOnly),
                ("/usr/lib/x86_64-linux-gnu", Kind::ReadOnly),
            ]
        );
    }

    #[test]
    fn an_image_path_inside_a_host_directory_is_refused() {
        let r = Path::new("/b/rootfs");
        let ro = AccessFs::ReadFile | AccessFs::ReadDir;
        let e = View::layout(
            r,
            &[
                allow("/usr/lib/x86_64-linux-gnu", ro),
                allow("/b/rootfs/usr/lib/x86_64-linux-gnu/k", ro),
            ],
            |_| false,
        )
        .unwrap_err();
        assert!(matches!(e, ViewError::Nested { .. }), "{e}");
        let e = View::layout(
            r,
            &[
                allow("/usr/bin/qemu", ro),
                allow("/b/rootfs/usr/bin/qemu", ro),
            ],
            |_| false,
        )
        .unwrap_err();
        assert!(matches!(e, ViewError::Clash { .. }), "{e}");
    }
}
