//! Capabilities: every set emptied. The bounding set is dropped while we still hold
//! `CAP_SETPCAP` (before the identity change, as crun does), the other sets after it, so that a
//! monitor running as uid 0 keeps nothing either.

#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    #[error("cannot clear the {set} capability set: {msg}")]
    Clear { set: &'static str, msg: String },
    #[error("capability {cap} is still in the {set} set")]
    Left { set: &'static str, cap: u32 },
}

/// `_LINUX_CAPABILITY_VERSION_3` (linux/capability.h): two 32-bit words per set.
const CAP_V3: u32 = 0x2008_0522;
/// `CAP_SETPCAP` (linux/capability.h).
const CAP_SETPCAP: u32 = 8;

#[repr(C)]
struct Header {
    version: u32,
    pid: i32,
}

/// One word of `struct __user_cap_data_struct` (linux/capability.h).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

fn os_err(set: &'static str) -> CapsError {
    CapsError::Clear {
        set,
        msg: std::io::Error::last_os_error().to_string(),
    }
}

/// This thread's effective, permitted and inheritable sets (one capget).
fn get() -> Result<[Data; 2], CapsError> {
    let mut h = Header {
        version: CAP_V3,
        pid: 0,
    };
    let mut d = [Data::default(); 2];
    // SAFETY: capget writes two Data words (version 3) into `d`, which holds two.
    if unsafe { libc::syscall(libc::SYS_capget, &mut h, d.as_mut_ptr()) } != 0 {
        return Err(os_err("effective"));
    }
    Ok(d)
}

/// Highest capability number this kernel knows.
fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(63)
}

fn in_bounding(cap: u32) -> bool {
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap as libc::c_ulong, 0, 0, 0) == 1 }
}

/// Empties the ambient set, and the bounding set when we hold `CAP_SETPCAP` (every number up
/// to the kernel's last, one prctl each). Returns whether the bounding set was emptied: a
/// rootless runtime cannot, and needs not (it has no capability to keep, and no_new_privs
/// stops execve from granting any).
pub fn drop_bounding_and_ambient() -> Result<bool, CapsError> {
    // SAFETY: prctl with integer arguments only.
    let r = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if r != 0 {
        return Err(os_err("ambient"));
    }
    let setpcap = get()?[0].effective & (1 << CAP_SETPCAP) != 0;
    if !setpcap {
        return Ok((0..=last_cap()).all(|c| !in_bounding(c)));
    }
    for cap in 0..=last_cap() {
        // dropping a capability the set no longer holds succeeds: no read first
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } != 0 {
            // EINVAL: past the kernel's last capability (cap_last_cap unreadable, as in the
            // monitor's view without /proc, reads as 63): the set is empty
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) && cap > 0 {
                break;
            }
            return Err(os_err("bounding"));
        }
    }
    Ok(true)
}

/// Empties effective, permitted and inheritable (after the identity change) with one capset,
/// then checks them with one capget. The ambient set cannot outlive an empty permitted set
/// (capabilities(7)), and the bounding set was emptied capability by capability, each drop
/// checked, by [`drop_bounding_and_ambient`] (`bounding_dropped`).
pub fn clear_all(bounding_dropped: bool) -> Result<(), CapsError> {
    let mut h = Header {
        version: CAP_V3,
        pid: 0,
    };
    let d = [Data::default(); 2];
    // SAFETY: capset reads two Data words (version 3) from `d`, which holds two.
    if unsafe { libc::syscall(libc::SYS_capset, &mut h, d.as_ptr()) } != 0 {
        return Err(os_err("permitted"));
    }
    verify_empty(bounding_dropped)
}

fn verify_empty(bounding: bool) -> Result<(), CapsError> {
    let d = get()?;
    for (name, bits) in [
        ("effective", [d[0].effective, d[1].effective]),
        ("permitted", [d[0].permitted, d[1].permitted]),
        ("inheritable", [d[0].inheritable, d[1].inheritable]),
    ] {
        let word = u64::from(bits[0]) | u64::from(bits[1]) << 32;
        if word != 0 {
            return Err(CapsError::Left {
                set: name,
                cap: word.trailing_zeros(),
            });
        }
    }
    // SAFETY: prctl with integer arguments only.
    let ambient = |c: u32| unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_IS_SET as libc::c_ulong,
            c as libc::c_ulong,
            0,
            0,
        ) == 1
    };
    // only a debug build pays for re-reading every capability of the two per-number sets
    if cfg!(debug_assertions) {
        for cap in 0..=last_cap() {
            if bounding && in_bounding(cap) {
                return Err(CapsError::Left {
                    set: "bounding",
                    cap,
                });
            }
            if ambient(cap) {
                return Err(CapsError::Left {
                    set: "ambient",
                    cap,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sets as the kernel reports them (proc(5): Cap* lines of /proc/self/status).
    fn status_sets_empty(bounding: bool) -> bool {
        let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let want = ["CapInh:", "CapPrm:", "CapEff:", "CapAmb:", "CapBnd:"];
        let n = if bounding { 5 } else { 4 };
        want[..n].iter().all(|k| {
            s.lines()
                .find_map(|l| l.strip_prefix(k))
                .is_some_and(|v| v.trim().chars().all(|c| c == '0'))
        })
    }

    #[test]
    fn every_set_ends_empty() {
        // in a child: the test process keeps its capabilities
        // SAFETY: the child only makes syscalls, reads a file and exits.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let ok = drop_bounding_and_ambient()
                    .and_then(|b| clear_all(b).map(|()| b))
                    .is_ok_and(status_sets_empty);
                // SAFETY: _exit ends the forked child without running the parent's atexit.
                unsafe { libc::_exit(i32::from(!ok)) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let st = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(st, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
    }
}
