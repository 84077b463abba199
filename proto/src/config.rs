//! urunit's configuration and its v1 encoding.
//!
//! ```text
//! file    = [legacy text] blob                 (legacy: see crate::legacy)
//! blob    = MAGIC version:u8 length:u32 records (length = bytes of records)
//! MAGIC   = "\0URUNIT-CONFIG\0"
//! records = { tag:u8 length:u32 body }         (little endian; unknown tags are skipped)
//! ```
//! Singular fields (UID, GID, CWD, ...) may appear once; repeatable ones are bounded by the
//! `MAX_*` constants. Strings are UTF-8 and may hold any character, NUL included.

use crate::wire::{Reader, Writer};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const MAGIC: &[u8] = b"\0URUNIT-CONFIG\0";
pub const VERSION: u8 = 1;
/// The largest blob a decoder accepts (and an encoder writes).
pub const MAX_FILE: usize = 8 << 20;
pub const MAX_ENV: usize = 65_536;
pub const MAX_ARGS: usize = 65_536;
/// The kernel's NGROUPS_MAX.
pub const MAX_GROUPS: usize = 65_536;
pub const MAX_BLOCKS: usize = 256;
pub const MAX_NET_ITEMS: usize = 256;

/// How urunit reaches the host's supervisor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Channel {
    /// A serial port of the guest, by tty name (`ttyS1`), driven in raw mode.
    Serial(String),
    /// A virtio-serial port, by its port name (`urunc.urunit`).
    VirtioPort(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub env: Vec<String>,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub cwd: String,
    pub blocks: Vec<Block>,
    pub net: Option<Net>,
    pub hostname: Option<String>,
    pub debug: bool,
    pub grace_secs: u32,
    /// The program's argv when the kernel command line cannot carry it; wins over it.
    pub args: Option<Vec<String>>,
    pub channel: Option<Channel>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            env: Vec::new(),
            uid: 0,
            gid: 0,
            groups: Vec::new(),
            cwd: "/".into(),
            blocks: Vec::new(),
            net: None,
            hostname: None,
            debug: false,
            grace_secs: 10,
            args: None,
            channel: None,
        }
    }
}

/// A block volume: `id` is the virtio-blk serial, `mount_point` where urunit mounts it.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub id: String,
    pub mount_point: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Net {
    /// Pick the interface with this MAC (else `iface`, else eth0).
    pub mac: Option<String>,
    pub ip: Option<(Ipv4Addr, u8)>,
    /// Added on-link, so it may lie outside the subnet.
    pub gw: Option<Ipv4Addr>,
    pub mtu: Option<u32>,
    pub dns: Vec<IpAddr>,
    pub search: Vec<String>,
    pub options: Vec<String>,
    pub ip6: Vec<(Ipv6Addr, u8)>,
    pub gw6: Option<Ipv6Addr>,
    pub iface: Option<String>,
}

/// Why a configuration could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// No v1 blob (an old host wrote only the legacy text).
    NoBlob,
    Version(u8),
    TooLarge(usize),
    Truncated,
    /// A record's body does not fit its tag (wrong length, bad UTF-8, prefix too long).
    BadRecord(u8),
    Duplicate(u8),
    TooMany(&'static str),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::NoBlob => write!(
                f,
                "the configuration holds no v1 encoding (written by an older urunc: update the host)"
            ),
            DecodeError::Version(v) => write!(
                f,
                "configuration version {v} is not supported (this urunit reads {VERSION}): use a urunit as new as the host"
            ),
            DecodeError::TooLarge(n) => {
                write!(f, "configuration of {n} bytes is above the {MAX_FILE} byte limit")
            }
            DecodeError::Truncated => write!(f, "configuration is truncated"),
            DecodeError::BadRecord(t) => write!(f, "configuration record {t} is malformed"),
            DecodeError::Duplicate(t) => write!(f, "configuration record {t} appears twice"),
            DecodeError::TooMany(what) => write!(f, "configuration holds too many {what}"),
        }
    }
}

impl std::error::Error for DecodeError {}

pub(crate) mod tag {
    pub const ENV: u8 = 1;
    pub const UID: u8 = 2;
    pub const GID: u8 = 3;
    pub const GROUP: u8 = 4;
    pub const CWD: u8 = 5;
    pub const BLOCK: u8 = 6;
    pub const HOSTNAME: u8 = 7;
    pub const DEBUG: u8 = 8;
    pub const GRACE: u8 = 9;
    pub const ARGS: u8 = 10;
    pub const ARG: u8 = 11;
    pub const SERIAL: u8 = 12;
    pub const VIRTIO_PORT: u8 = 13;
    pub const NET: u8 = 32;
    pub const MAC: u8 = 33;
    pub const IP4: u8 = 34;
    pub const GW4: u8 = 35;
    pub const MTU: u8 = 36;
    pub const DNS: u8 = 37;
    pub const SEARCH: u8 = 38;
    pub const DNSOPT: u8 = 39;
    pub const IP6: u8 = 40;
    pub const GW6: u8 = 41;
    pub const IFACE: u8 = 42;
}

/// Why a configuration could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLarge(pub usize);

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "urunit's configuration would be {} bytes, above the {MAX_FILE} byte limit: shorten the environment or arguments",
            self.0
        )
    }
}

impl Config {
    /// The v1 blob (MAGIC, version, length, records).
    pub fn encode(&self) -> Result<Vec<u8>, TooLarge> {
        let mut w = Writer::default();
        for e in &self.env {
            w.record(tag::ENV, e.as_bytes());
        }
        w.u32(tag::UID, self.uid);
        w.u32(tag::GID, self.gid);
        for g in &self.groups {
            w.u32(tag::GROUP, *g);
        }
        w.record(tag::CWD, self.cwd.as_bytes());
        for b in &self.blocks {
            let mut body = (b.id.len() as u32).to_le_bytes().to_vec();
            body.extend_from_slice(b.id.as_bytes());
            body.extend_from_slice(b.mount_point.as_bytes());
            w.record(tag::BLOCK, &body);
        }
        if let Some(h) = &self.hostname {
            w.record(tag::HOSTNAME, h.as_bytes());
        }
        w.record(tag::DEBUG, &[self.debug as u8]);
        w.u32(tag::GRACE, self.grace_secs);
        if let Some(args) = &self.args {
            w.record(tag::ARGS, &[]);
            for a in args {
                w.record(tag::ARG, a.as_bytes());
            }
        }
        match &self.channel {
            Some(Channel::Serial(t)) => w.record(tag::SERIAL, t.as_bytes()),
            Some(Channel::VirtioPort(p)) => w.record(tag::VIRTIO_PORT, p.as_bytes()),
            None => {}
        }
        if let Some(n) = &self.net {
            encode_net(&mut w, n);
        }
        let len = w.out.len();
        if len > MAX_FILE || len > u32::MAX as usize {
            return Err(TooLarge(len));
        }
        let mut out = Vec::with_capacity(MAGIC.len() + 5 + len);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&(len as u32).to_le_bytes());
        out.extend_from_slice(&w.out);
        Ok(out)
    }

    /// Decodes the blob found at the first NUL of `file` (after any legacy text).
    pub fn decode_file(file: &[u8]) -> Result<Config, DecodeError> {
        let start = file
            .iter()
            .position(|b| *b == 0)
            .ok_or(DecodeError::NoBlob)?;
        Config::decode(&file[start..])
    }

    /// Decodes a blob; bytes after its declared length (padding) are ignored.
    pub fn decode(blob: &[u8]) -> Result<Config, DecodeError> {
        let mut r = Reader::new(blob);
        if r.bytes(MAGIC.len()) != Some(MAGIC) {
            return Err(DecodeError::NoBlob);
        }
        let version = r.u8().ok_or(DecodeError::Truncated)?;
        if version != VERSION {
            return Err(DecodeError::Version(version));
        }
        let len = r.u32().ok_or(DecodeError::Truncated)? as usize;
        if len > MAX_FILE {
            return Err(DecodeError::TooLarge(len));
        }
        let body = r.bytes(len).ok_or(DecodeError::Truncated)?;
        crate::decode::records(body)
    }
}

fn encode_net(w: &mut Writer, n: &Net) {
    w.record(tag::NET, &[]);
    if let Some(m) = &n.mac {
        w.record(tag::MAC, m.as_bytes());
    }
    if let Some((a, p)) = n.ip {
        let mut b = a.octets().to_vec();
        b.push(p);
        w.record(tag::IP4, &b);
    }
    if let Some(g) = n.gw {
        w.record(tag::GW4, &g.octets());
    }
    if let Some(m) = n.mtu {
        w.u32(tag::MTU, m);
    }
    for d in &n.dns {
        match d {
            IpAddr::V4(a) => w.record(tag::DNS, &a.octets()),
            IpAddr::V6(a) => w.record(tag::DNS, &a.octets()),
        }
    }
    for s in &n.search {
        w.record(tag::SEARCH, s.as_bytes());
    }
    for o in &n.options {
        w.record(tag::DNSOPT, o.as_bytes());
    }
    for (a, p) in &n.ip6 {
        let mut b = a.octets().to_vec();
        b.push(*p);
        w.record(tag::IP6, &b);
    }
    if let Some(g) = n.gw6 {
        w.record(tag::GW6, &g.octets());
    }
    if let Some(i) = &n.iface {
        w.record(tag::IFACE, i.as_bytes());
    }
}
