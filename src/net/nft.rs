//! A minimal nf_tables client over netlink (`NETLINK_NETFILTER`), enough for pod mode's NAT:
//! one batch that creates a table with its chains and rules atomically, a dump of the tables
//! of the `ip` family with their user data, and a table delete (which takes its chains and
//! rules with it). No `nft` or `iptables` binary is involved.
//!
//! The wire format is the kernel's uapi (`include/uapi/linux/netfilter/nf_tables.h`,
//! `nfnetlink.h`): every message is an nlmsghdr, a 4-byte `nfgenmsg` (family, version,
//! res_id) and netlink attributes whose integers are big-endian; changes travel inside a
//! `NFNL_MSG_BATCH_BEGIN` .. `NFNL_MSG_BATCH_END` pair and are applied all or nothing.

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};
use std::io;

/// `NFPROTO_IPV4`: the `ip` family of tables.
pub const FAMILY_IP: u8 = 2;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const BATCH_BEGIN: u16 = 0x10;
const BATCH_END: u16 = 0x11;
const MSG_NEWTABLE: u16 = 0;
const MSG_GETTABLE: u16 = 1;
const MSG_DELTABLE: u16 = 2;
const MSG_NEWCHAIN: u16 = 3;
const MSG_NEWRULE: u16 = 6;
const NLA_F_NESTED: u16 = 0x8000;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;

/// Table attributes (`enum nft_table_attributes`).
const TABLE_NAME: u16 = 1;
const TABLE_HANDLE: u16 = 4;
const TABLE_USERDATA: u16 = 6;
/// The kernel's bound on user data (`NFT_USERDATA_MAXLEN`).
pub const USERDATA_MAX: usize = 256;

#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct NftError {
    pub what: String,
    #[source]
    pub source: io::Error,
}

impl NftError {
    pub fn errno(&self) -> Option<i32> {
        self.source.raw_os_error()
    }
}

pub type NftResult<T> = Result<T, NftError>;

fn err(what: &str) -> impl FnOnce(io::Error) -> NftError + '_ {
    move |source| NftError {
        what: what.to_string(),
        source,
    }
}

/// A netlink attribute list under construction.
#[derive(Default, Clone)]
pub struct Attrs(Vec<u8>);

impl Attrs {
    pub fn new() -> Attrs {
        Attrs(Vec::new())
    }

    pub fn bytes(mut self, typ: u16, data: &[u8]) -> Attrs {
        let len = 4 + data.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&typ.to_ne_bytes());
        self.0.extend_from_slice(data);
        self.0.resize(self.0.len().next_multiple_of(4), 0);
        self
    }

    /// A NUL-terminated string (what the kernel's `NLA_STRING` policies accept from libnftnl).
    pub fn str(self, typ: u16, s: &str) -> Attrs {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.bytes(typ, &v)
    }

    pub fn u32(self, typ: u16, v: u32) -> Attrs {
        self.bytes(typ, &v.to_be_bytes())
    }

    pub fn nest(self, typ: u16, inner: Attrs) -> Attrs {
        self.bytes(typ | NLA_F_NESTED, &inner.0)
    }

    #[cfg(test)]
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

/// A table as the kernel lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub name: String,
    pub handle: u64,
    pub userdata: Vec<u8>,
}

pub struct Nft {
    sock: Socket,
    seq: u32,
}

fn header(buf: &mut Vec<u8>, typ: u16, flags: u16, seq: u32, family: u8, res_id: u16) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&0u32.to_ne_bytes()); // length, patched by `finish`
    buf.extend_from_slice(&typ.to_ne_bytes());
    buf.extend_from_slice(&(libc::NLM_F_REQUEST as u16 | flags).to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    buf.extend_from_slice(&[family, 0]);
    buf.extend_from_slice(&res_id.to_be_bytes());
    start
}

fn finish(buf: &mut [u8], start: usize) {
    let len = (buf.len() - start) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
}

/// Changes applied atomically by `Nft::commit`.
pub struct Batch {
    family: u8,
    msgs: Vec<(u16, u16, Attrs)>,
}

impl Batch {
    pub fn new(family: u8) -> Batch {
        Batch {
            family,
            msgs: Vec::new(),
        }
    }

    /// A new table; fails the batch if one of that name exists.
    pub fn add_table(&mut self, name: &str, userdata: &[u8]) {
        let a = Attrs::new()
            .str(TABLE_NAME, name)
            .bytes(TABLE_USERDATA, userdata);
        let flags = (libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16;
        self.msgs.push((MSG_NEWTABLE, flags, a));
    }

    /// A base chain of `kind` (`nat`, `filter`) on `hook` at `priority`.
    pub fn add_chain(&mut self, table: &str, name: &str, kind: &str, hook: u32, priority: i32) {
        let hook = Attrs::new().u32(1, hook).u32(2, priority as u32);
        let a = Attrs::new()
            .str(1, table)
            .str(3, name)
            .nest(4, hook)
            .str(7, kind);
        let flags = (libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16;
        self.msgs.push((MSG_NEWCHAIN, flags, a));
    }

    /// A rule appended to `chain`: its expressions in order (see `expr`).
    pub fn add_rule(&mut self, table: &str, chain: &str, exprs: Vec<Attrs>) {
        let mut list = Attrs::new();
        for e in exprs {
            list = list.nest(1, e);
        }
        let a = Attrs::new().str(1, table).str(2, chain).nest(4, list);
        let flags = (libc::NLM_F_CREATE | libc::NLM_F_APPEND) as u16;
        self.msgs.push((MSG_NEWRULE, flags, a));
    }

    /// Deletes a table with its chains and rules.
    pub fn del_table(&mut self, name: &str) {
        self.msgs
            .push((MSG_DELTABLE, 0, Attrs::new().str(TABLE_NAME, name)));
    }
}

impl Nft {
    pub fn open() -> NftResult<Nft> {
        let mut sock = Socket::new(NETLINK_NETFILTER).map_err(err("open a netfilter socket"))?;
        sock.bind_auto().map_err(err("bind the netfilter socket"))?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(err("connect the netfilter socket"))?;
        Ok(Nft { sock, seq: 1 })
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Sends the batch and waits for the kernel's answer to each of its messages: all of it
    /// is applied, or none of it (the first error is returned).
    pub fn commit(&mut self, b: &Batch, what: &str) -> NftResult<()> {
        let mut buf = Vec::new();
        let first = self.next_seq();
        let h = header(&mut buf, BATCH_BEGIN, 0, first, 0, NFNL_SUBSYS_NFTABLES);
        finish(&mut buf, h);
        let mut seqs = Vec::new();
        for (typ, flags, attrs) in &b.msgs {
            let s = self.next_seq();
            seqs.push(s);
            let t = (NFNL_SUBSYS_NFTABLES << 8) | typ;
            let h = header(&mut buf, t, flags | libc::NLM_F_ACK as u16, s, b.family, 0);
            buf.extend_from_slice(&attrs.0);
            finish(&mut buf, h);
        }
        let s = self.next_seq();
        let h = header(&mut buf, BATCH_END, 0, s, 0, NFNL_SUBSYS_NFTABLES);
        finish(&mut buf, h);
        self.sock.send(&buf, 0).map_err(err(what))?;
        // every message of the batch asked for an acknowledgement; the first error (of any
        // message, the batch markers included) means the kernel applied nothing
        let mut answered = 0;
        while answered < seqs.len() {
            for (typ, seq, payload) in self.recv(what)? {
                if typ != NLMSG_ERROR || seq < first || seq > s {
                    continue;
                }
                answered += 1;
                let code = error_code(&payload);
                if code != 0 {
                    return Err(err(what)(io::Error::from_raw_os_error(-code)));
                }
            }
        }
        Ok(())
    }

    /// Receives one datagram: its messages as (type, sequence number, payload).
    fn recv(&mut self, what: &str) -> NftResult<Vec<(u16, u32, Vec<u8>)>> {
        let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
        let n = self.sock.recv(&mut buf, 0).map_err(err(what))?;
        let mut out = Vec::new();
        let mut off = 0;
        while off + 16 <= n {
            let len = u32::from_ne_bytes(buf[off..off + 4].try_into().unwrap_or([0; 4])) as usize;
            if len < 16 || off + len > n {
                break;
            }
            let typ = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
            let seq = u32::from_ne_bytes(buf[off + 8..off + 12].try_into().unwrap_or([0; 4]));
            out.push((typ, seq, buf[off + 16..off + len].to_vec()));
            off += len.next_multiple_of(4);
        }
        Ok(out)
    }

    /// The tables of `family`.
    pub fn tables(&mut self, family: u8) -> NftResult<Vec<Table>> {
        const WHAT: &str = "list nf_tables tables";
        let mut buf = Vec::new();
        let seq = self.next_seq();
        let t = (NFNL_SUBSYS_NFTABLES << 8) | MSG_GETTABLE;
        let h = header(&mut buf, t, libc::NLM_F_DUMP as u16, seq, family, 0);
        finish(&mut buf, h);
        self.sock.send(&buf, 0).map_err(err(WHAT))?;
        let mut out = Vec::new();
        loop {
            for (typ, s, payload) in self.recv(WHAT)? {
                if s != seq {
                    continue;
                }
                match typ {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let code = error_code(&payload);
                        if code == 0 {
                            return Ok(out);
                        }
                        return Err(err(WHAT)(io::Error::from_raw_os_error(-code)));
                    }
                    _ => {
                        if let Some(t) = parse_table(payload.get(4..).unwrap_or(&[])) {
                            out.push(t);
                        }
                    }
                }
            }
        }
    }
}

/// The (negative) errno of an `NLMSG_ERROR` payload; 0 is an acknowledgement.
fn error_code(payload: &[u8]) -> i32 {
    payload
        .get(..4)
        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(0)
}

/// Attributes of one message as (type without flags, payload).
pub fn parse_attrs(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let typ = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            break;
        }
        out.push((typ, &b[4..len]));
        b = &b[len.next_multiple_of(4).min(b.len())..];
    }
    out
}

fn parse_table(b: &[u8]) -> Option<Table> {
    let mut t = Table {
        name: String::new(),
        handle: 0,
        userdata: Vec::new(),
    };
    for (typ, v) in parse_attrs(b) {
        match typ {
            TABLE_NAME => {
                let v = v.strip_suffix(&[0]).unwrap_or(v);
                t.name = String::from_utf8_lossy(v).into_owned();
            }
            TABLE_HANDLE => t.handle = u64::from_be_bytes(v.try_into().ok()?),
            TABLE_USERDATA => t.userdata = v.to_vec(),
            _ => {}
        }
    }
    (!t.name.is_empty()).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_parse_back() {
        let a = Attrs::new()
            .str(1, "ab")
            .u32(2, 0x0102_0304)
            .nest(3, Attrs::new().bytes(1, &[9]));
        // "ab\0" is 3 bytes: 4 + 3 = 7, padded to 8
        assert_eq!(&a.0[..8], &[7, 0, 1, 0, b'a', b'b', 0, 0]);
        let p = parse_attrs(&a.0);
        assert_eq!(p.len(), 3);
        assert_eq!(p[1], (2, &[1u8, 2, 3, 4][..]));
        assert_eq!(p[2].0, 3, "the nested flag is masked off");
        assert_eq!(parse_attrs(p[2].1), vec![(1u16, &[9u8][..])]);
    }

    #[test]
    fn a_truncated_attribute_stops_the_parse() {
        assert!(parse_attrs(&[200, 0, 1, 0, 1, 2]).is_empty());
        let t = parse_table(&Attrs::new().str(TABLE_NAME, "x").0);
        assert_eq!(t.map(|t| t.name), Some("x".into()));
    }
}
