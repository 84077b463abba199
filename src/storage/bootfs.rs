//! The boot initrd of a Linux guest whose root filesystem is a disk or a shared directory but
//! whose kernel builds virtio, 9p or virtio-fs as modules (Debian's kernels): urunit as `/init`
//! plus the modules it needs, taken from the image's own `/lib/modules/<release>`. urunit
//! loads them, mounts the real root, switches to it and goes on as usual (`init/src/root.rs`).
//! Images without `/lib/modules` keep urunc's behaviour: the kernel mounts the root itself.

use crate::plan::CpioRecord;
use std::path::Path;

/// Bounds on what is read from the image: modules.dep, and each file (and all modules
/// together; the guest holds its boot initrd in RAM).
const MAX_DEP: u64 = 16 << 20;
const MAX_FILE: u64 = 256 << 20;

/// Modules needed to reach the root filesystem, the console channel and the network.
fn wanted(path: &str) -> bool {
    let base = path.rsplit('/').next().unwrap_or(path);
    let name = base.split(".ko").next().unwrap_or(base);
    name.starts_with("virtio")
        || matches!(
            name,
            "9p" | "9pnet"
                | "9pnet_virtio"
                | "netfs"
                | "fscache"
                | "fuse"
                | "failover"
                | "net_failover"
                | "ext4"
                | "ext2"
                | "jbd2"
                | "mbcache"
                | "crc16"
        )
}

fn dir(name: &str) -> CpioRecord {
    CpioRecord {
        name: name.into(),
        mode: 0o040755,
        ..Default::default()
    }
}

/// `modules.dep`: each module and the modules it depends on.
fn parse_dep(dep: &str) -> Vec<(String, Vec<String>)> {
    dep.lines()
        .filter_map(|l| {
            let (m, d) = l.split_once(':')?;
            Some((
                m.trim().to_string(),
                d.split_whitespace().map(String::from).collect(),
            ))
        })
        .collect()
}

/// The modules the boot initrd takes: the wanted ones and what they depend on.
fn kept(entries: &[(String, Vec<String>)]) -> Vec<&str> {
    let mut keep: Vec<&str> = Vec::new();
    for (m, deps) in entries.iter().filter(|(m, _)| wanted(m)) {
        for x in std::iter::once(m).chain(deps) {
            if !keep.contains(&x.as_str()) {
                keep.push(x);
            }
        }
    }
    keep
}

/// The directories above a module's relative path, outermost first (`a`, `a/b` for `a/b/m.ko`).
fn parents(m: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in Path::new(m)
        .parent()
        .into_iter()
        .flat_map(|p| p.components())
    {
        let c = c.as_os_str().to_string_lossy();
        out.push(match out.last() {
            Some(d) => format!("{d}/{c}"),
            None => c.into_owned(),
        });
    }
    out
}

/// The records of the boot initrd, or None when the image ships no modules. `init` is urunit
/// inside the rootfs (the image's init program).
pub fn records(rootfs: &Path, init: &str) -> Result<Option<Vec<CpioRecord>>, super::StorageError> {
    let Some(names) = crate::bundle::list_dir(rootfs, "/lib/modules") else {
        return Ok(None);
    };
    let mut rels: Vec<String> = names.into_iter().filter(|r| !r.contains('/')).collect();
    rels.sort();
    let mut out = vec![
        dir("dev"),
        dir("proc"),
        dir("sys"),
        dir("lib"),
        dir("lib/modules"),
        CpioRecord {
            name: "dev/console".into(),
            mode: 0o020600,
            rdev: (5, 1),
            ..Default::default()
        },
    ];
    let mut found = false;
    let mut total = 0u64;
    for rel in rels {
        let prefix = format!("/lib/modules/{rel}");
        let dep = match crate::bundle::read_file(
            rootfs,
            &format!("{prefix}/modules.dep"),
            "modules.dep",
            MAX_DEP,
        ) {
            Ok(d) => String::from_utf8_lossy(&d).into_owned(),
            Err(crate::bundle::BundleError::Resolve { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        let entries = parse_dep(&dep);
        let keep = kept(&entries);
        if keep.is_empty() {
            continue;
        }
        found = true;
        version_records(rootfs, &rel, (&entries, &keep), &mut out, &mut total)?;
    }
    if !found {
        return Ok(None);
    }
    let contents = crate::bundle::read_file(rootfs, init, "init", MAX_FILE)?;
    out.push(CpioRecord {
        name: "init".into(),
        mode: 0o100755,
        contents,
        ..Default::default()
    });
    Ok(Some(out))
}

/// The records of one kernel version's kept modules (`total`: the bytes read so far, bounded
/// by `MAX_FILE`), its directories and a `modules.dep` naming only them.
fn version_records(
    rootfs: &Path,
    rel: &str,
    (entries, keep): (&[(String, Vec<String>)], &[&str]),
    out: &mut Vec<CpioRecord>,
    total: &mut u64,
) -> Result<(), super::StorageError> {
    out.push(dir(&format!("lib/modules/{rel}")));
    let mut dirs: Vec<String> = Vec::new();
    let mut new_dep = String::new();
    for (m, deps) in entries.iter().filter(|(m, _)| keep.contains(&m.as_str())) {
        new_dep.push_str(&format!("{m}: {}\n", deps.join(" ")));
        for d in parents(m) {
            if !dirs.contains(&d) {
                out.push(dir(&format!("lib/modules/{rel}/{d}")));
                dirs.push(d);
            }
        }
        let contents = crate::bundle::read_file(
            rootfs,
            &format!("/lib/modules/{rel}/{m}"),
            "kernel module",
            MAX_FILE,
        )?;
        *total = total.saturating_add(contents.len() as u64);
        if *total > MAX_FILE {
            return Err(super::StorageError::Unsupported(format!(
                "the modules for the boot initrd exceed {} MiB",
                MAX_FILE >> 20
            )));
        }
        out.push(CpioRecord {
            name: format!("lib/modules/{rel}/{m}"),
            mode: 0o100644,
            contents,
            ..Default::default()
        });
    }
    out.push(CpioRecord {
        name: format!("lib/modules/{rel}/modules.dep"),
        mode: 0o100644,
        contents: new_dep.into_bytes(),
        ..Default::default()
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_needed_modules_with_their_dependencies() {
        let d = tempfile::tempdir().unwrap();
        let m = d.path().join("lib/modules/6.1.0-x/kernel/drivers");
        std::fs::create_dir_all(&m).unwrap();
        for f in ["virtio_blk.ko", "virtio.ko", "snd.ko"] {
            std::fs::write(m.join(f), f).unwrap();
        }
        std::fs::write(
            d.path().join("lib/modules/6.1.0-x/modules.dep"),
            "kernel/drivers/virtio_blk.ko: kernel/drivers/virtio.ko\nkernel/drivers/virtio.ko:\nkernel/drivers/snd.ko:\n",
        )
        .unwrap();
        std::fs::write(d.path().join("urunit"), "init").unwrap();
        let r = records(d.path(), "/urunit").unwrap().unwrap();
        let names: Vec<&str> = r.iter().map(|r| r.name.as_str()).collect();
        assert!(names.contains(&"lib/modules/6.1.0-x/kernel/drivers/virtio_blk.ko"));
        assert!(!names.iter().any(|n| n.ends_with("snd.ko")));
        assert!(names.contains(&"init") && names.contains(&"dev/console"));
        let dep = r.iter().find(|r| r.name.ends_with("modules.dep")).unwrap();
        assert!(!String::from_utf8_lossy(&dep.contents).contains("snd"));
        let none = tempfile::tempdir().unwrap();
        assert!(records(none.path(), "/urunit").unwrap().is_none());
    }
}
