//! Guest types: each turns the container into a kernel command line and guest-side devices,
//! the way the Go urunc does for that type (reference section 4), without its quirks.

use crate::plan::{Arch, GuestKind, MonitorKind, NetParams, PlanError, PlanInput, StorageCaps};
pub use crate::plan::{Boot, GuestBlock, GuestSetup};
use std::net::Ipv4Addr;

#[allow(dead_code)] // not wired yet: the side that owns the tap calls `reply` (see the module docs)
pub mod dhcp;
mod hermit;
mod linux;
mod mewz;
mod mirage;
mod nanos;
mod osv;
pub mod outbox;
mod rumprun;
mod unikraft;
pub mod urunit;
pub mod urunit_channel;

pub trait Guest {
    fn kind(&self) -> GuestKind;
    fn name(&self) -> &'static str {
        self.kind().name()
    }
    /// What it can take as root filesystem and volumes (none by default).
    fn storage(&self) -> StorageCaps {
        StorageCaps {
            block: false,
            fs: &[],
        }
    }
    /// Monitors this guest type runs on.
    fn monitors(&self) -> &'static [MonitorKind];
    /// The guest's part of the plan for `monitor` (one of `monitors()`).
    fn prepare(&self, input: &PlanInput, monitor: MonitorKind) -> Result<GuestSetup, PlanError>;
}

pub const TYPES: &[&str] = &GuestKind::NAMES;

/// The registry: one line per guest type.
pub fn guest(kind: GuestKind) -> Box<dyn Guest> {
    match kind {
        GuestKind::Unikraft => Box::new(unikraft::Unikraft),
        GuestKind::Rumprun => Box::new(rumprun::Rumprun),
        GuestKind::Mirage => Box::new(mirage::Mirage),
        GuestKind::Mewz => Box::new(mewz::Mewz),
        GuestKind::Hermit => Box::new(hermit::Hermit),
        GuestKind::Linux => Box::new(linux::Linux),
        GuestKind::Nanos => Box::new(nanos::Nanos),
        GuestKind::Osv => Box::new(osv::Osv),
    }
}

pub fn lookup(name: &str) -> Result<Box<dyn Guest>, PlanError> {
    GuestKind::from_name(name)
        .map(guest)
        .ok_or_else(|| PlanError::UnknownGuest(name.into(), TYPES.join(", ")))
}

/// The dotted netmask of a prefix length.
pub fn mask(prefix: u8) -> Ipv4Addr {
    let bits = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    };
    Ipv4Addr::from(bits)
}

/// Whether the gateway lies inside the guest's own subnet.
pub fn gateway_on_link(net: &NetParams) -> bool {
    net.gateway.is_none_or(|gw| {
        let m = u32::from(mask(net.prefix));
        u32::from(gw) & m == u32::from(net.ip) & m
    })
}

/// The gateway as text, empty when there is none.
pub fn gw(net: &NetParams) -> String {
    net.gateway.map(|g| g.to_string()).unwrap_or_default()
}

/// Quotes an argument for command-line parsers that understand double quotes (Unikraft,
/// MirageOS): arguments with whitespace or quotes are wrapped, nothing else changes.
pub fn dquote(arg: &str) -> String {
    if !arg.is_empty() && !arg.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
        return arg.to_string();
    }
    if !arg.contains('"') {
        format!("\"{arg}\"")
    } else {
        format!("'{arg}'")
    }
}

/// urunc's convention for Linux and Hermit argv: an argument containing a space is wrapped in
/// single quotes (urunit and Hermit split the command line shell-style).
pub fn squote(arg: &str) -> String {
    if arg.is_empty() || arg.contains(char::is_whitespace) || arg.contains('\'') {
        // urunc's convention (args with spaces in single quotes), extended as the shell does
        // for a quote inside: `'\''`; urunit reads both
        format!("'{}'", arg.replace('\'', "'\\''"))
    } else {
        arg.to_string()
    }
}

/// `ip=IP/PREFIX gateway=GW`, the network words Mewz and Hermit share; empty without network.
pub fn ip_gateway(input: &PlanInput) -> Vec<String> {
    let mut p = Vec::new();
    if let Some(n) = &input.net {
        p.push(format!("ip={}/{}", n.ip, n.prefix));
        if let Some(g) = n.gateway {
            p.push(format!("gateway={g}"));
        }
    }
    p
}

/// The guest console on this monitor and architecture.
pub fn linux_console(arch: Arch, monitor: MonitorKind) -> &'static str {
    if arch == Arch::Aarch64 && monitor == MonitorKind::Qemu {
        "console=ttyAMA0"
    } else {
        "console=ttyS0"
    }
}

/// Blocks attached as-is, ids from the input (OSv, nanos, Linux). None is Firecracker's
/// `is_root_device`: that would make Firecracker add `root=/dev/vda` to the command line,
/// which only Linux understands and which the Linux guest already sets itself.
pub fn all_blocks(input: &PlanInput, prefix: &str) -> Vec<GuestBlock> {
    input
        .blocks
        .iter()
        .map(|b| GuestBlock {
            id: format!("{prefix}{}", b.id),
            source: b.source.clone(),
            read_only: b.read_only,
            root: false,
            fd: b.fd,
        })
        .collect()
}

/// Go's `encoding/json` string encoding (it escapes `<`, `>`, `&`, U+2028 and U+2029), for
/// formats urunc builds with it by hand (Rumprun).
pub fn go_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_and_quoting() {
        assert_eq!(mask(24), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(mask(0), Ipv4Addr::new(0, 0, 0, 0));
        assert_eq!(mask(32), Ipv4Addr::new(255, 255, 255, 255));
        assert_eq!(mask(20), Ipv4Addr::new(255, 255, 240, 0));
        assert_eq!(dquote("a b"), "\"a b\"");
        assert_eq!(dquote("plain"), "plain");
        assert_eq!(dquote("say \"hi\""), "'say \"hi\"'");
        assert_eq!(squote("daemon off;"), "'daemon off;'");
        assert_eq!(squote("-g"), "-g");
        assert_eq!(squote("it's"), "'it'\\''s'");
        assert_eq!(squote(""), "''");
        assert_eq!(
            go_json_string("a<b>&\"c\"\\"),
            r#""a\u003cb\u003e\u0026\"c\"\\""#
        );
    }
}
