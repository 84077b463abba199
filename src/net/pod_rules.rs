//! The nf_tables objects of pod mode (see `pod`) and of static mode's masquerade, as one
//! batch each: the table (named like the tap, owned through its user data), its base chains
//! and their rules.

use super::discover::Iface;
use super::mode::Ports;
use super::nft::{Batch, Nft, FAMILY_IP};
use super::nft_expr as x;
use super::pod::{remove_stale, userdata, PodError, Slot};
use super::tap::Owner;
use std::net::Ipv4Addr;

/// Hook numbers (`enum nf_inet_hooks`) and priorities (`NF_IP_PRI_NAT_DST`, `_SRC`).
const NAT_HOOK_PRE: u32 = 0;
const NAT_HOOK_OUT: u32 = 3;
const NAT_HOOK_POST: u32 = 4;
const DSTNAT: i32 = -100;
const SRCNAT: i32 = 100;
/// `NF_IP_PRI_RAW`: before connection tracking and NAT.
const RAW: i32 = -300;

/// Static mode's NAT: a table holding one postrouting rule that masquerades `subnet` leaving
/// through `out_index` (`ip saddr SUBNET oif OUT masquerade`), owned like pod mode's tables
/// (no ports: it claims none) and removed by `teardown`.
pub fn masquerade_only(
    table: &str,
    subnet: (Ipv4Addr, u8),
    out_index: u32,
    owner: (Owner, &str),
) -> Result<(), PodError> {
    let mut nft = Nft::open()?;
    remove_stale(&mut nft)?;
    let none = Ports::Listed(Vec::new());
    let mut b = Batch::new(FAMILY_IP);
    b.add_table(table, &userdata(owner.0, &none, owner.1));
    b.add_chain(table, "post", "nat", NAT_HOOK_POST, SRCNAT);
    let mut r = x::addr_in(true, subnet.0, subnet.1);
    r.extend(x::ifindex(x::META_OIF, x::Cmp::Eq, out_index));
    r.push(x::masquerade());
    b.add_rule(table, "post", r);
    nft.commit(&b, "add the static-mode masquerade table")?;
    Ok(())
}

/// The table, its three chains and their rules, in one batch.
pub(super) fn batch(
    tap: (u32, &str),
    iface: &Iface,
    lo: u32,
    slot: Slot,
    ports: &Ports,
    userdata: Vec<u8>,
) -> Batch {
    let t = tap.1;
    let guest = slot.guest_ip();
    let mut b = Batch::new(FAMILY_IP);
    b.add_table(t, &userdata);
    b.add_chain(t, "pre", "nat", NAT_HOOK_PRE, DSTNAT);
    b.add_chain(t, "out", "nat", NAT_HOOK_OUT, DSTNAT);
    b.add_chain(t, "post", "nat", NAT_HOOK_POST, SRCNAT);
    // `route_localnet` on the tap lets 127.0.0.0/8 cross it: only the replies to connections
    // made from the pod may (their address is the tap's until NAT restores it, after this
    // chain); like kube-proxy's guard, nothing the guest sends to 127.0.0.0/8 gets in, nor
    // anything with a source other than its own address
    b.add_chain(t, "guard", "filter", NAT_HOOK_PRE, RAW);
    let mut lo_in = x::ifindex(x::META_IIF, x::Cmp::Eq, tap.0);
    lo_in.extend(x::addr_in(false, Ipv4Addr::new(127, 0, 0, 0), 8));
    lo_in.push(x::drop());
    b.add_rule(t, "guard", lo_in);
    let mut spoof = x::ifindex(x::META_IIF, x::Cmp::Eq, tap.0);
    spoof.extend([x::ip_saddr(), x::cmp(x::Cmp::Neq, &guest.octets())]);
    spoof.push(x::drop());
    b.add_rule(t, "guard", spoof);
    let from_outside = || {
        let mut r = x::ifindex(x::META_IIF, x::Cmp::Neq, tap.0);
        r.extend(x::addr_in(false, iface.ip, 32));
        r
    };
    let port_match = |proto: u8, port: Option<u16>| {
        let mut r = x::l4proto(proto);
        if let Some(p) = port {
            r.extend([x::th_dport(), x::cmp(x::Cmp::Eq, &p.to_be_bytes())]);
        }
        r
    };
    match ports {
        Ports::Listed(list) => {
            for p in list {
                let mut pre = from_outside();
                pre.extend(port_match(p.proto.number(), Some(p.port)));
                pre.extend(x::dnat(guest, None));
                b.add_rule(t, "pre", pre);
                let mut out = x::ifindex(x::META_OIF, x::Cmp::Eq, lo);
                out.extend(port_match(p.proto.number(), Some(p.port)));
                out.extend(x::dnat(guest, None));
                b.add_rule(t, "out", out);
            }
        }
        Ports::Unbound => {
            // a sidecar's socket takes its packets; the rest go to the guest
            let mut sidecar = from_outside();
            sidecar.extend(x::socket_exists());
            sidecar.push(x::accept());
            b.add_rule(t, "pre", sidecar);
            for proto in [6u8, 17] {
                let mut pre = from_outside();
                pre.extend(port_match(proto, None));
                pre.extend(x::dnat(guest, None));
                b.add_rule(t, "pre", pre);
            }
        }
    }
    let mut local = x::ifindex(x::META_OIF, x::Cmp::Eq, tap.0);
    local.extend(x::addr_in(true, Ipv4Addr::new(127, 0, 0, 0), 8));
    local.push(x::masquerade());
    b.add_rule(t, "post", local);
    let mut egress = x::addr_in(true, guest, 32);
    egress.extend(x::ifindex(x::META_OIF, x::Cmp::Neq, tap.0));
    egress.push(x::masquerade());
    b.add_rule(t, "post", egress);
    b
}
