//! Capabilities: every set emptied. The bounding set is dropped while we still hold
//! `CAP_SETPCAP` (before the identity change, as crun does), the other sets after it, so that a
//! monitor running as uid 0 keeps nothing either.

use caps::CapSet;

#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    #[error("cannot clear the {set} capability set: {msg}")]
    Clear { set: &'static str, msg: String },
    #[error("capability {cap} is still in the {set} set")]
    Left { set: &'static str, cap: u32 },
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

/// Empties the ambient set, and the bounding set when we hold `CAP_SETPCAP` (covering
/// capabilities newer than the `caps` crate knows). Returns whether the bounding set was
/// emptied: a rootless runtime cannot, and needs not (it has no capability to keep, and
/// no_new_privs stops execve from granting any).
pub fn drop_bounding_and_ambient() -> Result<bool, CapsError> {
    let err = |set| {
        move |e: caps::errors::CapsError| CapsError::Clear {
            set,
            msg: e.to_string(),
        }
    };
    caps::clear(None, CapSet::Ambient).map_err(err("ambient"))?;
    let setpcap = caps::has_cap(None, CapSet::Effective, caps::Capability::CAP_SETPCAP)
        .map_err(err("effective"))?;
    if !setpcap {
        return Ok((0..=last_cap()).all(|c| !in_bounding(c)));
    }
    for cap in 0..=last_cap() {
        if !in_bounding(cap) {
            continue;
        }
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } != 0 {
            return Err(CapsError::Clear {
                set: "bounding",
                msg: std::io::Error::last_os_error().to_string(),
            });
        }
    }
    Ok(true)
}

/// Empties effective, permitted and inheritable (after the identity change), then checks that
/// every set, bounding and ambient included (bounding only when it could be dropped), is empty.
pub fn clear_all(bounding_dropped: bool) -> Result<(), CapsError> {
    for (set, name) in [
        (CapSet::Effective, "effective"),
        (CapSet::Inheritable, "inheritable"),
        (CapSet::Permitted, "permitted"),
    ] {
        caps::clear(None, set).map_err(|e| CapsError::Clear {
            set: name,
            msg: e.to_string(),
        })?;
    }
    verify_empty(bounding_dropped)
}

fn verify_empty(bounding: bool) -> Result<(), CapsError> {
    for cap in 0..=last_cap() {
        if bounding && in_bounding(cap) {
            return Err(CapsError::Left {
                set: "bounding",
                cap,
            });
        }
    }
    for (set, name) in [
        (CapSet::Effective, "effective"),
        (CapSet::Permitted, "permitted"),
        (CapSet::Inheritable, "inheritable"),
        (CapSet::Ambient, "ambient"),
    ] {
        let left = caps::read(None, set).map_err(|e| CapsError::Clear {
            set: name,
            msg: e.to_string(),
        })?;
        if let Some(c) = left.iter().next() {
            return Err(CapsError::Left {
                set: name,
                cap: u32::from(c.index()),
            });
        }
    }
    Ok(())
}
