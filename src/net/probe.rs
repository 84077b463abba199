//! `urunc check`: whether this host can do what the network setup needs (a tap, an ingress
//! qdisc, u32 + mirred redirects), tried for real in a throw-away network namespace.

use super::{nl::Nl, tap, tc};

/// Runs in the calling process, which must be a disposable child: it moves to a new network
/// namespace. Returns what failed, first.
pub fn tap_and_redirect() -> Result<(), String> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("cannot create a network namespace: {e}"))?;
    let opts = tap::TapOptions {
        vnet_hdr: true,
        persistent: false,
        uid: 0,
        gid: 0,
    };
    let mut fds = Vec::new();
    let mut index = [0u32; 2];
    for (i, name) in ["tapprobe0", "tapprobe1"].iter().enumerate() {
        fds.push(tap::create(name, &opts).map_err(|e| format!("tun: cannot create a tap: {e}"))?);
        let c = std::ffi::CString::new(*name).map_err(|e| e.to_string())?;
        // SAFETY: if_nametoindex reads a NUL-terminated string we own.
        index[i] = unsafe { libc::if_nametoindex(c.as_ptr()) };
    }
    let mut nl = Nl::open().map_err(|e| format!("netlink: {e}"))?;
    for i in index {
        tc::add_ingress(&mut nl, i).map_err(|e| format!("tc: {e}"))?;
    }
    tc::add_redirect(&mut nl, index[0], index[1], 1, b"probe")
        .map_err(|e| format!("tc u32 + mirred: {e}"))?;
    Ok(())
}
