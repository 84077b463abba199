//! nf_tables rule expressions as netlink attributes (`NFTA_LIST_ELEM` contents: a name and
//! its data). Numbers are the kernel uapi's (`include/uapi/linux/netfilter/nf_tables.h`):
//! attribute numbers of each expression, registers, comparison operators, meta keys, payload
//! bases, nat types and verdicts.

use super::nft::Attrs;
use std::net::Ipv4Addr;

/// `NFT_REG_VERDICT` and `NFT_REG_1` (a 16-byte register).
const REG_VERDICT: u32 = 0;
const REG_1: u32 = 1;
const REG_2: u32 = 2;

/// `enum nft_meta_keys`.
pub const META_IIF: u32 = 4;
pub const META_OIF: u32 = 5;
pub const META_L4PROTO: u32 = 16;

/// `enum nft_cmp_ops`.
#[derive(Clone, Copy)]
pub enum Cmp {
    Eq = 0,
    Neq = 1,
}

/// `NFPROTO_IPV4`, `NF_DROP`, `NF_ACCEPT`.
const NFPROTO_IPV4: u32 = 2;
const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;

/// `enum nft_payload_bases`.
const BASE_NETWORK: u32 = 1;
const BASE_TRANSPORT: u32 = 2;

fn expr(name: &str, data: Attrs) -> Attrs {
    Attrs::new().str(1, name).nest(2, data)
}

fn data_value(v: &[u8]) -> Attrs {
    Attrs::new().bytes(1, v)
}

/// `meta KEY` into register 1 (`NFTA_META_DREG` 1, `NFTA_META_KEY` 2).
pub fn meta(key: u32) -> Attrs {
    expr("meta", Attrs::new().u32(1, REG_1).u32(2, key))
}

/// Register 1 `op` `value` (`NFTA_CMP_SREG` 1, `_OP` 2, `_DATA` 3).
pub fn cmp(op: Cmp, value: &[u8]) -> Attrs {
    expr(
        "cmp",
        Attrs::new()
            .u32(1, REG_1)
            .u32(2, op as u32)
            .nest(3, data_value(value)),
    )
}

/// Loads `len` bytes at `offset` of a header (`NFTA_PAYLOAD_DREG` 1, `_BASE` 2, `_OFFSET` 3,
/// `_LEN` 4).
fn payload(base: u32, offset: u32, len: u32) -> Attrs {
    expr(
        "payload",
        Attrs::new()
            .u32(1, REG_1)
            .u32(2, base)
            .u32(3, offset)
            .u32(4, len),
    )
}

/// The IPv4 source (offset 12) or destination (offset 16) address.
pub fn ip_saddr() -> Attrs {
    payload(BASE_NETWORK, 12, 4)
}

pub fn ip_daddr() -> Attrs {
    payload(BASE_NETWORK, 16, 4)
}

/// The TCP or UDP destination port (offset 2 of either header).
pub fn th_dport() -> Attrs {
    payload(BASE_TRANSPORT, 2, 2)
}

/// Register 1 &= mask (`NFTA_BITWISE_SREG` 1, `_DREG` 2, `_LEN` 3, `_MASK` 4, `_XOR` 5).
pub fn and_mask(mask: &[u8]) -> Attrs {
    let zero = vec![0u8; mask.len()];
    expr(
        "bitwise",
        Attrs::new()
            .u32(1, REG_1)
            .u32(2, REG_1)
            .u32(3, mask.len() as u32)
            .nest(4, data_value(mask))
            .nest(5, data_value(&zero)),
    )
}

/// A local socket matches the packet: `socket transparent` into register 1
/// (`NFTA_SOCKET_KEY` 1 = `NFT_SOCKET_TRANSPARENT` 0, `NFTA_SOCKET_DREG` 2), which stops the
/// rule when the lookup finds none (`nft_socket_eval`: `NFT_BREAK`), and compared with a value
/// it never has (it is 0 or 1), so any socket found matches.
pub fn socket_exists() -> Vec<Attrs> {
    vec![
        expr("socket", Attrs::new().u32(1, 0).u32(2, REG_1)),
        cmp(Cmp::Neq, &[2]),
    ]
}

/// A verdict (`NFTA_DATA_VERDICT` 2 { `NFTA_VERDICT_CODE` 1 }).
fn verdict(code: u32) -> Attrs {
    let verdict = Attrs::new().nest(2, Attrs::new().u32(1, code));
    expr(
        "immediate",
        Attrs::new().u32(1, REG_VERDICT).nest(2, verdict),
    )
}

pub fn accept() -> Attrs {
    verdict(NF_ACCEPT)
}

pub fn drop() -> Attrs {
    verdict(NF_DROP)
}

fn load(reg: u32, v: &[u8]) -> Attrs {
    expr("immediate", Attrs::new().u32(1, reg).nest(2, data_value(v)))
}

/// `dnat to ADDR[:PORT]`: the address in register 1, the port in register 2
/// (`NFTA_NAT_TYPE` 1 = `NFT_NAT_DNAT` 1, `_FAMILY` 2, `_REG_ADDR_MIN` 3, `_REG_PROTO_MIN` 5).
pub fn dnat(to: Ipv4Addr, port: Option<u16>) -> Vec<Attrs> {
    let mut out = vec![load(REG_1, &to.octets())];
    let mut nat = Attrs::new().u32(1, 1).u32(2, NFPROTO_IPV4).u32(3, REG_1);
    if let Some(p) = port {
        out.push(load(REG_2, &p.to_be_bytes()));
        nat = nat.u32(5, REG_2);
    }
    out.push(expr("nat", nat));
    out
}

/// `masquerade`: the source becomes the outgoing interface's address.
pub fn masquerade() -> Attrs {
    expr("masq", Attrs::new())
}

/// `meta l4proto PROTO` (an `IPPROTO_*` number).
pub fn l4proto(proto: u8) -> Vec<Attrs> {
    vec![meta(META_L4PROTO), cmp(Cmp::Eq, &[proto])]
}

/// `meta iif`/`oif` `op` interface index (host byte order, as the kernel stores it).
pub fn ifindex(key: u32, op: Cmp, index: u32) -> Vec<Attrs> {
    vec![meta(key), cmp(op, &index.to_ne_bytes())]
}

/// `ip saddr/daddr` in `net`/`prefix`.
pub fn addr_in(saddr: bool, net: Ipv4Addr, prefix: u8) -> Vec<Attrs> {
    let load = if saddr { ip_saddr() } else { ip_daddr() };
    let mask = crate::guest::mask(prefix).octets();
    let masked = u32::from(net) & u32::from_be_bytes(mask);
    if prefix >= 32 {
        return vec![load, cmp(Cmp::Eq, &net.octets())];
    }
    vec![load, and_mask(&mask), cmp(Cmp::Eq, &masked.to_be_bytes())]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::nft::parse_attrs;

    fn name_and_data(a: &Attrs) -> (String, Vec<(u16, Vec<u8>)>) {
        let b = a.clone().into_bytes();
        let top = parse_attrs(&b);
        let name = String::from_utf8_lossy(top[0].1)
            .trim_end_matches('\0')
            .to_string();
        let data = parse_attrs(top[1].1)
            .into_iter()
            .map(|(t, v)| (t, v.to_vec()))
            .collect();
        (name, data)
    }

    #[test]
    fn payload_offsets_are_the_ipv4_and_transport_headers() {
        // RFC 791: source at byte 12, destination at 16; RFC 793/768: destination port at 2
        let (n, d) = name_and_data(&ip_daddr());
        assert_eq!(n, "payload");
        assert_eq!(d[1], (2, BASE_NETWORK.to_be_bytes().to_vec()));
        assert_eq!(d[2], (3, 16u32.to_be_bytes().to_vec()));
        let (_, d) = name_and_data(&th_dport());
        assert_eq!(d[2], (3, 2u32.to_be_bytes().to_vec()));
        assert_eq!(d[3], (4, 2u32.to_be_bytes().to_vec()));
    }

    #[test]
    fn prefixes_are_masked_and_host_addresses_compared_whole() {
        let r = addr_in(true, Ipv4Addr::new(127, 9, 9, 9), 8);
        assert_eq!(r.len(), 3, "load, mask, compare");
        let (n, d) = name_and_data(&r[2]);
        assert_eq!(n, "cmp");
        assert_eq!(parse_attrs(&d[2].1), vec![(1u16, &[127u8, 0, 0, 0][..])]);
        assert_eq!(addr_in(false, Ipv4Addr::new(10, 0, 0, 1), 32).len(), 2);
    }

    #[test]
    fn dnat_with_a_port_uses_two_registers() {
        let r = dnat(Ipv4Addr::new(198, 18, 0, 2), Some(8080));
        assert_eq!(r.len(), 3);
        let (n, d) = name_and_data(&r[2]);
        assert_eq!(n, "nat");
        assert!(d.contains(&(5, REG_2.to_be_bytes().to_vec())));
        assert_eq!(dnat(Ipv4Addr::LOCALHOST, None).len(), 2);
    }
}
