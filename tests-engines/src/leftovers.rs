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

/// Host paths engines write outside the roots a test gives them: containerd 1.6's shims make
/// `/run/containerd/s` (and its parent, mode 0600) for their sockets whatever the config;
/// libcni caches results under `/var/lib/cni/results`; containers/image keeps a blob-info
/// cache under `/var/lib/containers/cache` for root; dockerd makes `/run/docker/plugins`.
pub const HOST_PATHS: &[&str] = &[
    "run/containerd",
    "run/containerd/s",
    "var/lib/cni",
    "var/lib/cni/results",
    "var/lib/containers",
    "var/lib/containers/cache",
    "run/docker",
    "run/docker/plugins",
];

/// What a test must leave as it found: each path's mode (None: absent) and entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostState {
    root: PathBuf,
    paths: Vec<(String, Option<u32>, std::collections::BTreeSet<String>)>,
    foreign_archs: String,
    /// Top-level cgroups of every hierarchy (`memory/docker`, ...): engines make their default
    /// parents (`docker`, `default` for containerd's namespace, `libpod_parent`) and keep them.
    cgroups: std::collections::BTreeSet<PathBuf>,
}

/// The directories one level under each hierarchy of `<root>/sys/fs/cgroup`.
fn top_cgroups(root: &Path) -> std::collections::BTreeSet<PathBuf> {
    let mut out = std::collections::BTreeSet::new();
    for h in std::fs::read_dir(root.join("sys/fs/cgroup"))
        .into_iter()
        .flatten()
        .flatten()
    {
        for e in std::fs::read_dir(h.path()).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir() && !t.is_symlink()) {
                out.insert(e.path());
            }
        }
    }
    out
}

/// Whether a cgroup tree holds a process (then it is alive: someone else's, not a leftover).
fn cgroup_busy(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("cgroup.procs")).is_ok_and(|p| !p.trim().is_empty())
        || std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.file_type().is_ok_and(|t| t.is_dir()) && cgroup_busy(&e.path()))
}

impl HostState {
    /// The state of [`HOST_PATHS`] under `root` (`/` for the host).
    pub fn capture(root: &Path) -> HostState {
        use std::os::unix::fs::PermissionsExt;
        let paths = HOST_PATHS
            .iter()
            .map(|p| {
                let full = root.join(p);
                let mode = std::fs::symlink_metadata(&full)
                    .ok()
                    .map(|m| m.permissions().mode() & 0o7777);
                let entries = std::fs::read_dir(&full)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                (p.to_string(), mode, entries)
            })
            .collect();
        let foreign_archs = if root == Path::new("/") {
            std::process::Command::new("dpkg")
                .arg("--print-foreign-architectures")
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        } else {
            String::new()
        };
        HostState {
            root: root.to_path_buf(),
            paths,
            foreign_archs,
            cgroups: top_cgroups(root),
        }
    }

    /// How `now` differs from this state (empty: as found). New entries count when their
    /// name holds one of `tokens` (the test's ids and network names: engine tests of other
    /// runs may share the machine), or any when `tokens` is empty.
    pub fn changes(&self, now: &HostState, tokens: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        for ((p, mode, entries), (_, mode2, entries2)) in self.paths.iter().zip(&now.paths) {
            let shown = self.root.join(p).display().to_string();
            match (mode, mode2) {
                (None, Some(m)) => out.push(format!("{shown} created (mode {m:o})")),
                (Some(_), None) => out.push(format!("{shown} removed")),
                (Some(a), Some(b)) if a != b => {
                    out.push(format!("{shown} mode changed from {a:o} to {b:o}"))
                }
                _ => {}
            }
            for e in entries2.difference(entries) {
                if tokens.is_empty() || tokens.iter().any(|t| e.contains(t.as_str())) {
                    out.push(format!("{shown}/{e} created"));
                }
            }
        }
        for c in now.cgroups.difference(&self.cgroups) {
            if !cgroup_busy(c) {
                out.push(format!("cgroup {} created", c.display()));
            }
        }
        if self.foreign_archs != now.foreign_archs {
            out.push(format!(
                "dpkg foreign architectures changed: {:?} -> {:?}",
                self.foreign_archs, now.foreign_archs
            ));
        }
        out
    }

    /// Puts the paths back as they were, deepest first: modes restored; paths made since are
    /// removed with what they hold; in paths that were there, only the new entries that hold
    /// one of `tokens` are removed (others may belong to a real engine or another test run: a
    /// shim's socket in /run/containerd/s must not vanish under it).
    pub fn restore(&self, tokens: &[String]) {
        use std::os::unix::fs::PermissionsExt;
        let now = HostState::capture(&self.root);
        // cgroups made since (engines' default parents), unless something still runs in them
        for c in now.cgroups.difference(&self.cgroups) {
            if !cgroup_busy(c) {
                rmdir_tree(c);
            }
        }
        for ((p, mode, entries), (_, mode2, entries2)) in self.paths.iter().zip(&now.paths).rev() {
            let full = self.root.join(p);
            let nested: Vec<&str> = HOST_PATHS
                .iter()
                .filter_map(|q| q.strip_prefix(p.as_str())?.strip_prefix('/'))
                .collect();
            for e in entries2.difference(entries) {
                if nested.contains(&e.as_str()) {
                    continue; // a watched path of its own: handled on its own
                }
                let ours = mode.is_none() || tokens.iter().any(|t| e.contains(t.as_str()));
                if !ours {
                    continue;
                }
                let path = full.join(e);
                let _ = std::fs::remove_file(&path).or_else(|_| std::fs::remove_dir_all(&path));
            }
            match (mode, mode2) {
                (None, Some(_)) => {
                    let _ = std::fs::remove_dir(&full);
                }
                (Some(a), Some(b)) if a != b => {
                    let _ = std::fs::set_permissions(&full, std::fs::Permissions::from_mode(*a));
                }
                _ => {}
            }
        }
    }
}

/// Keeps the host as a test found it: restores [`HOST_PATHS`] when dropped (declare it before
/// the engine, so it drops after it), then fails the test if anything is still changed.
pub struct HostGuard {
    before: HostState,
    /// Names the test's entries hold (ids, network names); see [`HostState::changes`].
    pub tokens: Vec<String>,
}

impl HostGuard {
    pub fn new(tokens: &[&str]) -> HostGuard {
        HostGuard {
            before: HostState::capture(Path::new("/")),
            tokens: tokens.iter().map(|t| t.to_string()).collect(),
        }
    }
}

impl Drop for HostGuard {
    fn drop(&mut self) {
        self.before.restore(&self.tokens);
        let now = HostState::capture(Path::new("/"));
        let left = self.before.changes(&now, &self.tokens);
        if !std::thread::panicking() {
            assert!(left.is_empty(), "the host was not left as found: {left:#?}");
        }
    }
}
