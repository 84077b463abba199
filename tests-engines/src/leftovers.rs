//! What a removed container must not leave behind: a process, a tap, a mount, a cgroup or a
//! state directory.

use std::path::{Path, PathBuf};

/// Every kind of leftover found for the container `id`; empty when clean.
/// `state_dirs` are the runtime state directories that must be gone (`<root>/<id>`).
pub fn find(id: &str, state_dirs: &[PathBuf]) -> Vec<String> {
    let mut found = Vec::new();
    let me = std::process::id().to_string();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let pid = e.file_name().to_string_lossy().into_owned();
        if pid.parse::<u32>().is_err() || pid == me {
            continue;
        }
        let cmdline = std::fs::read(e.path().join("cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .unwrap_or_default();
        if cmdline.contains(id) {
            found.push(format!("process {pid}: {cmdline}"));
        }
    }
    for m in std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(id))
    {
        found.push(format!("mount: {m}"));
    }
    for d in state_dirs {
        if d.exists() {
            found.push(format!("state directory {}", d.display()));
        }
    }
    cgroups(Path::new("/sys/fs/cgroup"), id, 0, &mut found);
    found
}

/// Cgroup directories whose name contains `id` (the tree is small: engines' own parents).
fn cgroups(dir: &Path, id: &str, depth: u32, found: &mut Vec<String>) {
    if depth > 6 {
        return;
    }
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(t) = e.file_type() else { continue };
        if !t.is_dir() || t.is_symlink() {
            continue;
        }
        if e.file_name().to_string_lossy().contains(id) {
            found.push(format!("cgroup {}", e.path().display()));
        } else {
            cgroups(&e.path(), id, depth + 1, found);
        }
    }
}

/// urunc taps (`tap<hash>_urunc`) in the test's network namespace (compare before/after:
/// other tests of the machine may own some).
pub fn taps() -> Vec<String> {
    std::fs::read_dir("/sys/class/net")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("tap") && n.ends_with("_urunc"))
        .collect()
}

/// Removes an engine's cgroup parent (all controllers), deepest first; best effort.
pub fn remove_cgroup_parent(name: &str) {
    let name = name.trim_start_matches('/');
    for e in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let top = e.path().join(name);
        if top.is_dir() {
            rmdir_tree(&top);
        }
    }
}

fn rmdir_tree(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            rmdir_tree(&e.path());
        }
    }
    let _ = std::fs::remove_dir(dir);
}
