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

mod tag {
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
        decode_records(body)
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

fn push<T>(v: &mut Vec<T>, x: T, max: usize, what: &'static str) -> Result<(), DecodeError> {
    if v.len() >= max {
        return Err(DecodeError::TooMany(what));
    }
    v.push(x);
    Ok(())
}

/// Sets a singular field once.
fn once<T>(slot: &mut Option<T>, x: T, t: u8) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(DecodeError::Duplicate(t));
    }
    *slot = Some(x);
    Ok(())
}

fn text(t: u8, b: &[u8]) -> Result<String, DecodeError> {
    String::from_utf8(b.to_vec()).map_err(|_| DecodeError::BadRecord(t))
}

fn u32_of(t: u8, b: &[u8]) -> Result<u32, DecodeError> {
    Reader::new(b)
        .array::<4>()
        .filter(|_| b.len() == 4)
        .map(u32::from_le_bytes)
        .ok_or(DecodeError::BadRecord(t))
}

fn cidr<const N: usize>(t: u8, b: &[u8], max: u8) -> Result<([u8; N], u8), DecodeError> {
    if b.len() != N + 1 || b[N] > max {
        return Err(DecodeError::BadRecord(t));
    }
    let mut a = [0u8; N];
    a.copy_from_slice(&b[..N]);
    Ok((a, b[N]))
}

/// Singular fields seen so far.
#[derive(Default)]
struct Seen {
    uid: Option<u32>,
    gid: Option<u32>,
    cwd: Option<String>,
    debug: Option<bool>,
    grace: Option<u32>,
    args: Option<()>,
}

fn decode_records(body: &[u8]) -> Result<Config, DecodeError> {
    let mut c = Config::default();
    let mut s = Seen::default();
    let mut args: Option<Vec<String>> = None;
    let mut net: Option<Net> = None;
    let mut r = Reader::new(body);
    while !r.is_empty() {
        let t = r.u8().ok_or(DecodeError::Truncated)?;
        let len = r.u32().ok_or(DecodeError::Truncated)? as usize;
        let b = r.bytes(len).ok_or(DecodeError::Truncated)?;
        match t {
            tag::ENV => push(&mut c.env, text(t, b)?, MAX_ENV, "environment entries")?,
            tag::UID => once(&mut s.uid, u32_of(t, b)?, t)?,
            tag::GID => once(&mut s.gid, u32_of(t, b)?, t)?,
            tag::GROUP => push(&mut c.groups, u32_of(t, b)?, MAX_GROUPS, "groups")?,
            tag::CWD => once(&mut s.cwd, text(t, b)?, t)?,
            tag::BLOCK => {
                let mut br = Reader::new(b);
                let n = br.u32().ok_or(DecodeError::BadRecord(t))? as usize;
                let id = text(t, br.bytes(n).ok_or(DecodeError::BadRecord(t))?)?;
                let mount_point = text(t, br.rest())?;
                push(
                    &mut c.blocks,
                    Block { id, mount_point },
                    MAX_BLOCKS,
                    "volumes",
                )?
            }
            tag::HOSTNAME => once(&mut c.hostname, text(t, b)?, t)?,
            tag::DEBUG if b.len() == 1 && b[0] <= 1 => once(&mut s.debug, b[0] == 1, t)?,
            tag::GRACE => once(&mut s.grace, u32_of(t, b)?, t)?,
            tag::ARGS if b.is_empty() => {
                once(&mut s.args, (), t)?;
                args = Some(Vec::new());
            }
            tag::ARG => match args.as_mut() {
                Some(a) => push(a, text(t, b)?, MAX_ARGS, "arguments")?,
                None => return Err(DecodeError::BadRecord(t)),
            },
            tag::SERIAL => once(&mut c.channel, Channel::Serial(text(t, b)?), t)?,
            tag::VIRTIO_PORT => once(&mut c.channel, Channel::VirtioPort(text(t, b)?), t)?,
            tag::NET if b.is_empty() => once(&mut net, Net::default(), t)?,
            tag::MAC..=tag::IFACE => {
                let n = net.as_mut().ok_or(DecodeError::BadRecord(t))?;
                decode_net(n, t, b)?
            }
            tag::DEBUG | tag::ARGS | tag::NET => return Err(DecodeError::BadRecord(t)),
            _ => {} // a newer host's record: skipped
        }
    }
    c.uid = s.uid.unwrap_or(0);
    c.gid = s.gid.unwrap_or(0);
    c.cwd = s.cwd.unwrap_or_else(|| "/".into());
    c.debug = s.debug.unwrap_or(false);
    c.grace_secs = s.grace.unwrap_or(10);
    c.args = args;
    c.net = net;
    Ok(c)
}

fn decode_net(n: &mut Net, t: u8, b: &[u8]) -> Result<(), DecodeError> {
    const M: usize = MAX_NET_ITEMS;
    match t {
        tag::MAC => once(&mut n.mac, text(t, b)?, t),
        tag::IP4 => {
            let (a, p) = cidr::<4>(t, b, 32)?;
            once(&mut n.ip, (Ipv4Addr::from(a), p), t)
        }
        tag::GW4 => {
            let a: [u8; 4] = b.try_into().map_err(|_| DecodeError::BadRecord(t))?;
            once(&mut n.gw, Ipv4Addr::from(a), t)
        }
        tag::MTU => once(&mut n.mtu, u32_of(t, b)?, t),
        tag::DNS => {
            let ip = if let Ok(a) = <[u8; 4]>::try_from(b) {
                IpAddr::V4(a.into())
            } else if let Ok(a) = <[u8; 16]>::try_from(b) {
                IpAddr::V6(a.into())
            } else {
                return Err(DecodeError::BadRecord(t));
            };
            push(&mut n.dns, ip, M, "DNS servers")
        }
        tag::SEARCH => push(&mut n.search, text(t, b)?, M, "search domains"),
        tag::DNSOPT => push(&mut n.options, text(t, b)?, M, "resolver options"),
        tag::IP6 => {
            let (a, p) = cidr::<16>(t, b, 128)?;
            push(&mut n.ip6, (Ipv6Addr::from(a), p), M, "IPv6 addresses")
        }
        tag::GW6 => {
            let a: [u8; 16] = b.try_into().map_err(|_| DecodeError::BadRecord(t))?;
            once(&mut n.gw6, Ipv6Addr::from(a), t)
        }
        tag::IFACE => once(&mut n.iface, text(t, b)?, t),
        _ => Ok(()), // a newer host's network record: skipped
    }
}
