//! An unprivileged host identity for the monitor of a uid-0 container: the monitor runs in a
//! user namespace of its own whose uid 0 and gid 0 map to one host uid/gid `H`, unique among
//! live containers, taken from `[sandbox] monitor_uid_start` / `monitor_uid_count`. An escaped
//! monitor is then uid `H` on the host: it passes no owner check on any root file, cannot
//! signal root's processes, and holds no capability outside its namespace.
//!
//! What it must reach stays reachable without changing the host: its device nodes in the view
//! are its own (owned by `H`), and the view's bind mounts of the rootfs and the state directory
//! are idmapped through its namespace (on-disk uid 0 appears as `H` there only). The supervisor
//! (uid 0 in the parent namespace, which owns the monitor's) keeps the right to signal it.
//!
//! `H` is leased in a registry directory (`[sandbox] monitor_uid_registry`, by default
//! `/run/urunc/monitor-uids`: one file per uid, naming the supervisor's pid and start time,
//! under an exclusive lock); a lease whose supervisor is gone is stale and reused.

use nix::fcntl::{Flock, FlockArg};
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The container's record of its lease, in its state directory (read by `delete`): the uid,
/// then the registry it was leased in (records without it name the default registry).
pub const RECORD: &str = "monitor-uid";
/// Ranges larger than this are refused (each allocation may scan the range).
const MAX_COUNT: u32 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum MonitorNsError {
    #[error("monitor uid registry {path}: {source}")]
    Registry {
        path: String,
        source: std::io::Error,
    },
    #[error("no free monitor uid in [sandbox] monitor_uid_start={start}, monitor_uid_count={count}: raise monitor_uid_count")]
    Exhausted { start: u32, count: u32 },
    #[error("[sandbox] monitor_uid_start={start} with monitor_uid_count={count} is not a valid range of non-root uids (at most {MAX_COUNT} ids, below 4294967295)")]
    BadRange { start: u32, count: u32 },
    #[error("the container has {0} supplementary groups to map into the monitor's user namespace, more than the kernel's {MAX_GROUPS}: use fewer additionalGids")]
    TooManyGroups(usize),
    #[error("monitor user namespace: {step}: {source}")]
    Sys {
        step: &'static str,
        source: nix::Error,
    },
}

fn reg_err(path: &Path) -> impl FnOnce(std::io::Error) -> MonitorNsError {
    let path = path.display().to_string();
    move |source| MonitorNsError::Registry { path, source }
}

/// Whether the calling process (the supervisor) is in the initial user namespace.
pub fn in_initial_userns() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .is_ok_and(|m| m.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"])
}

/// The start time (clock ticks since boot) of a host process, when it exists.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

/// The caller's pid as the host's /proc numbers it (the supervisor may be PID 1 of its own
/// namespace; `/proc` here is still the host's).
fn host_pid() -> Option<u32> {
    std::fs::read_link("/proc/self")
        .ok()?
        .to_str()?
        .parse()
        .ok()
}

fn lease_live(text: &str) -> bool {
    let mut f = text.split_whitespace();
    let (Some(pid), Some(start)) = (
        f.next().and_then(|p| p.parse::<u32>().ok()),
        f.next().and_then(|s| s.parse::<u64>().ok()),
    ) else {
        return false;
    };
    start_time(pid) == Some(start)
}

/// FNV-1a: where the search for a free uid starts, so one container tends to get one uid.
fn spread(key: &str) -> u32 {
    key.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ b as u32).wrapping_mul(0x0100_0193)
    })
}

/// Leases a host uid for the monitor of the container `key` (its state directory) in the
/// registry directory `dir` (independent of `--root`: engines use several state roots), held
/// for as long as the calling supervisor lives.
pub fn lease(start: u32, count: u32, key: &str, dir: &Path) -> Result<u32, MonitorNsError> {
    if start == 0 || count == 0 || count > MAX_COUNT || start.checked_add(count).is_none() {
        return Err(MonitorNsError::BadRange { start, count });
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .create(dir)
        .map_err(reg_err(dir))?;
    let meta = std::fs::symlink_metadata(dir).map_err(reg_err(dir))?;
    if !meta.is_dir() || meta.uid() != 0 {
        return Err(reg_err(dir)(std::io::Error::other(
            "not a directory owned by root; remove it",
        )));
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(reg_err(dir))?;
    let lock_path = dir.join(".lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&lock_path)
        .map_err(reg_err(&lock_path))?;
    let _held = Flock::lock(lock, FlockArg::LockExclusive)
        .map_err(|(_, e)| reg_err(&lock_path)(e.into()))?;
    let me = host_pid().ok_or_else(|| reg_err(dir)(std::io::Error::other("no /proc/self")))?;
    let mine = format!("{me} {}\n{key}\n", start_time(me).unwrap_or(0));
    let first = spread(key) % count;
    for i in 0..count {
        let uid = start + (first + i) % count;
        let path: PathBuf = dir.join(uid.to_string());
        if let Ok(text) = std::fs::read_to_string(&path) {
            if lease_live(&text) {
                continue;
            }
            std::fs::remove_file(&path).map_err(reg_err(&path))?;
        }
        // the container's record first: killed in between, no lease is left that `delete`
        // cannot find (a record without its lease is harmless: `release` checks the key)
        record(Path::new(key), uid, dir)?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(0o600)
            .open(&path)
            .map_err(reg_err(&path))?;
        f.write_all(mine.as_bytes()).map_err(reg_err(&path))?;
        return Ok(uid);
    }
    Err(MonitorNsError::Exhausted { start, count })
}

/// Records the lease in the container's state directory `dir` (root's: no link to follow).
fn record(dir: &Path, uid: u32, registry: &Path) -> Result<(), MonitorNsError> {
    let path = dir.join(RECORD);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o600)
        .open(&path)
        .map_err(reg_err(&path))?;
    let text = format!("{uid}\n{}\n", registry.display());
    f.write_all(text.as_bytes()).map_err(reg_err(&path))
}

/// Ends the lease of the container whose state directory is `dir`, if it still holds one
/// (`delete`); best effort: a lease left behind is stale once its supervisor is gone.
pub fn release(dir: &Path) {
    let Ok(text) = std::fs::read_to_string(dir.join(RECORD)) else {
        return;
    };
    let mut lines = text.lines();
    let Some(uid) = lines.next().and_then(|t| t.trim().parse::<u32>().ok()) else {
        return;
    };
    let reg = Path::new(
        lines
            .next()
            .filter(|r| r.starts_with('/'))
            .unwrap_or(crate::config::DEFAULT_UID_REGISTRY),
    );
    let Ok(lock) = std::fs::File::open(reg.join(".lock")) else {
        return;
    };
    let Ok(_held) = Flock::lock(lock, FlockArg::LockExclusive) else {
        return;
    };
    let path = reg.join(uid.to_string());
    let key = dir.to_string_lossy();
    let ours = std::fs::read_to_string(&path).is_ok_and(|t| t.lines().nth(1) == Some(&*key));
    if ours {
        let _ = std::fs::remove_file(&path);
    }
}

/// Most lines a gid_map takes (`user_namespaces(7)`: 340 since Linux 4.15); one is gid 0's.
const MAX_GROUPS: usize = 339;

/// The container's supplementary gids the monitor keeps in its namespace (as the same numbers,
/// mapped to the same host gids): not 0 (the host's root group, which the lease keeps it out
/// of) and none of the leased range `start..start+count` (another monitor's group owns its
/// device nodes and tap). At most [`MAX_GROUPS`], sorted and unique.
pub fn kept_groups(gids: &[u32], start: u32, count: u32) -> Result<Vec<u32>, MonitorNsError> {
    let leased = |g: u32| g >= start && g - start < count;
    let mut kept: Vec<u32> = gids
        .iter()
        .copied()
        .filter(|g| *g != 0 && !leased(*g))
        .collect();
    kept.sort_unstable();
    kept.dedup();
    if kept.len() > MAX_GROUPS {
        return Err(MonitorNsError::TooManyGroups(kept.len()));
    }
    Ok(kept)
}

/// A new user namespace mapping 0 to `host` (uids and gids) and each of `groups` (from
/// [`kept_groups`]) to itself, owned by the caller (root), as an fd: a short-lived child makes
/// it, the caller writes its maps and keeps a handle.
pub fn create(host: u32, groups: &[u32]) -> Result<OwnedFd, MonitorNsError> {
    let sys = |step| move |source| MonitorNsError::Sys { step, source };
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(sys("pipe"))?;
    let (done_rd, done_wr) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(sys("pipe"))?;
    // SAFETY: the child only unshares, reads a link of /proc, writes and reads a pipe, and _exits.
    match unsafe { nix::unistd::fork() }.map_err(sys("fork"))? {
        nix::unistd::ForkResult::Child => {
            drop(rd);
            drop(done_wr);
            // its pid as /proc (the host's, in a new PID namespace) numbers it; 0 on failure
            let pid = match nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER) {
                Ok(()) => host_pid().unwrap_or(0),
                Err(_) => 0,
            };
            let _ = nix::unistd::write(&wr, &pid.to_le_bytes());
            let mut b = [0u8; 1];
            let _ = nix::unistd::read(done_rd.as_raw_fd(), &mut b);
            // SAFETY: _exit in a forked child.
            unsafe { libc::_exit(0) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(wr);
            drop(done_rd);
            let mut b = [0u8; 4];
            let r = nix::unistd::read(rd.as_raw_fd(), &mut b);
            let result = match (r, u32::from_le_bytes(b)) {
                (Ok(4), pid) if pid != 0 => write_maps(pid, host, groups),
                _ => Err(MonitorNsError::Sys {
                    step: "unshare the user namespace",
                    source: nix::Error::EPERM,
                }),
            };
            drop(done_wr);
            let _ = nix::sys::wait::waitpid(child, None);
            result
        }
    }
}

fn write_maps(pid: u32, host: u32, groups: &[u32]) -> Result<OwnedFd, MonitorNsError> {
    let mut gid_map = format!("0 {host} 1\n");
    for g in groups.iter().filter(|g| **g != 0 && **g != host) {
        gid_map.push_str(&format!("{g} {g} 1\n"));
    }
    for (f, map) in [("uid_map", format!("0 {host} 1\n")), ("gid_map", gid_map)] {
        let path = PathBuf::from(format!("/proc/{pid}/{f}"));
        std::fs::write(&path, map).map_err(reg_err(&path))?;
    }
    let path = PathBuf::from(format!("/proc/{pid}/ns/user"));
    let f = std::fs::File::open(&path).map_err(reg_err(&path))?;
    Ok(OwnedFd::from(f))
}

/// Enters the namespace made by [`create`] (the caller then has every capability inside it).
pub fn enter(ns: &OwnedFd) -> Result<(), MonitorNsError> {
    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWUSER).map_err(|source| {
        MonitorNsError::Sys {
            step: "setns",
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_need_a_live_supervisor() {
        let me = std::process::id();
        let live = format!("{me} {}\nkey\n", start_time(me).unwrap());
        assert!(lease_live(&live));
        // the same pid with another start time is a recycled pid: stale
        assert!(!lease_live(&format!("{me} 1\nkey\n")));
        assert!(!lease_live("garbage"));
        assert!(!lease_live(""));
    }

    #[test]
    fn kept_groups_leave_out_root_and_the_leased_range() {
        let kept = kept_groups(&[10, 0, 5000, 4999, 5063, 5064, 10], 5000, 64).unwrap();
        assert_eq!(kept, [10, 4999, 5064]);
        let many: Vec<u32> = (1..=MAX_GROUPS as u32 + 1).collect();
        assert!(matches!(
            kept_groups(&many, 100_000, 1),
            Err(MonitorNsError::TooManyGroups(340))
        ));
        assert_eq!(
            kept_groups(&many[..MAX_GROUPS], 100_000, 1).unwrap().len(),
            MAX_GROUPS
        );
    }

    #[test]
    fn ranges_are_checked() {
        for (s, c) in [(0, 10), (100, 0), (u32::MAX - 1, 10), (100, MAX_COUNT + 1)] {
            assert!(matches!(
                lease(s, c, "k", Path::new("/nonexistent")),
                Err(MonitorNsError::BadRange { .. })
            ));
        }
    }

    /// The registry is where the config says (tests keep theirs out of /run/urunc), and the
    /// container's record names it for `delete`.
    #[test]
    fn leases_live_in_the_configured_registry_and_release_finds_it() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPED: the registry must be root's");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let reg = t.path().join("reg/monitor-uids");
        let state = t.path().join("c1");
        std::fs::create_dir(&state).unwrap();
        let key = state.to_str().unwrap();
        let uid = lease(70_000, 16, key, &reg).unwrap();
        assert!((70_000..70_016).contains(&uid));
        let lease_file = reg.join(uid.to_string());
        let text = std::fs::read_to_string(&lease_file).unwrap();
        assert_eq!(text.lines().nth(1), Some(key), "{text}");
        let rec = std::fs::read_to_string(state.join(RECORD)).unwrap();
        assert_eq!(rec, format!("{uid}\n{}\n", reg.display()));
        // held while this process lives: a second container gets another uid
        let other = t.path().join("c2");
        std::fs::create_dir(&other).unwrap();
        let uid2 = lease(70_000, 16, other.to_str().unwrap(), &reg).unwrap();
        assert_ne!(uid, uid2);
        release(&state);
        assert!(!lease_file.exists(), "delete ends the lease");
        assert!(reg.join(uid2.to_string()).exists(), "and only its own");
    }
}
