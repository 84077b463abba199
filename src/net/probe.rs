//! `urunc check`: whether this host can do what the network setup needs (a tap, an ingress
//! qdisc, u32 + mirred redirects; for pod mode, nf_tables NAT), tried for real in a throw-away
//! network namespace.

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

/// Pod mode's nf_tables objects (nat and filter base chains; meta, payload, bitwise, cmp,
/// socket, immediate, nat and masq expressions), committed for real. Runs in the calling
/// process, which must be a disposable child: it moves to a new network namespace.
pub fn pod_nat() -> Result<(), String> {
    use super::mode::Ports;
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("cannot create a network namespace: {e}"))?;
    let iface = super::discover::Iface {
        link: super::discover::Link {
            index: 1,
            name: "lo".into(),
            mac: Vec::new(),
            mtu: 65536,
            alias: None,
            up: false,
            loopback: true,
        },
        ip: std::net::Ipv4Addr::new(10, 0, 0, 1),
        prefix: 24,
        gateway: None,
        ipv6: Vec::new(),
        ipv6_gateway: None,
    };
    let mut nft = super::nft::Nft::open().map_err(|e| format!("nf_tables: {e}"))?;
    let slot = super::pod::Slot(0);
    for (name, ports) in [
        ("probe0", Ports::Unbound),
        ("probe1", Ports::decode("t80,u53").unwrap_or(Ports::Unbound)),
    ] {
        let b = super::pod_rules::batch((1, name), &iface, 1, slot, &ports, b"probe".to_vec());
        nft.commit(&b, "nf_tables NAT").map_err(|e| e.to_string())?;
    }
    Ok(())
}
