//! Decoding of the v1 records (format in `config`): every length checked against what is
//! left, every repeatable field bounded, singular fields accepted once.

use crate::config::{tag, Block, Channel, Config, DecodeError, Net};
use crate::config::{MAX_ARGS, MAX_BLOCKS, MAX_ENV, MAX_GROUPS, MAX_NET_ITEMS};
use crate::wire::Reader;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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

pub(crate) fn records(body: &[u8]) -> Result<Config, DecodeError> {
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
