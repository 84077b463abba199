//! urunit's configuration: urunc's text format, extended backward compatibly.
//!
//! The file is named by `URUNIT_CONFIG=` on the kernel command line: a file in the initrd
//! (`/urunit.conf`), or `/sys/firmware/initrd` (with `retain_initrd`), where the retained
//! image is either this text as is or a newc cpio archive holding `urunit.conf`.
//!
//! ```text
//! UES                 environment of the program, one K=V per line (verbatim)
//! PATH=/bin
//! UEE
//! UCS                 the program's identity and working directory
//! UID:1000
//! GID:1000
//! GROUPS:10,20        (extension) supplementary groups, comma separated
//! WD:/srv
//! UCE
//! UBS                 block volumes: ID is the virtio-blk serial, MP the mount point
//! ID:vol0             (one ID:/MP: pair per volume, ID first)
//! MP:/data
//! UBE
//! UNS                 (extension) network of the first (or MAC-selected) interface
//! MAC:aa:bb:cc:dd:ee:ff   pick the interface with this address (else eth0)
//! IP:10.0.0.2/24      IPv4 address/prefix
//! GW:10.0.0.1         IPv4 default gateway (added on-link, so it may lie outside the subnet)
//! MTU:1500
//! DNS:10.0.0.1        one line per server, IPv4 or IPv6; written to /etc/resolv.conf
//! DNSSEARCH:a.svc b   resolv.conf search domains, blank separated
//! DNSOPT:ndots:5      one resolv.conf option per line
//! IP6:fd00::2/64      IPv6 address/prefix, repeatable
//! GW6:fd00::1         IPv6 default gateway
//! HOST:name           hostname (default "urunc")
//! UNE
//! UXS                 (extension) urunit itself
//! DEBUG:1             print what urunit does on the console (also URUNIT_DEBUG=1)
//! GRACE:10            seconds between SIGTERM and SIGKILL on a shutdown request
//! UXE
//! UAS                 (extension) the program's argv, when the kernel command line cannot
//! A:sh                carry it (more than 31 words, line breaks, too long): one line per
//! A:-c                argument, `\\` for a backslash, `\n` line feed, `\r` carriage return;
//! A:echo a\necho b    it replaces the arguments after `--`
//! UAE
//! ```
//! Unknown sections and keys are ignored, so newer hosts can talk to older guests. Without a
//! `UNS` section, urunit takes the network from the kernel's `ip=` parameter (urunc's
//! `ip=<IP>::<GW>:<MASK>:<host>:<dev>:off`), because distribution kernels lack `CONFIG_IP_PNP`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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
    /// The program's argv from `UAS`, which wins over the kernel command line's.
    pub args: Option<Vec<String>>,
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
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub id: String,
    pub mount_point: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Net {
    pub mac: Option<String>,
    pub ip: Option<(Ipv4Addr, u8)>,
    pub gw: Option<Ipv4Addr>,
    pub mtu: Option<u32>,
    pub dns: Vec<IpAddr>,
    pub search: Vec<String>,
    pub options: Vec<String>,
    pub ip6: Vec<(Ipv6Addr, u8)>,
    pub gw6: Option<Ipv6Addr>,
    /// Interface name from `ip=`; else chosen by MAC or `eth0`.
    pub iface: Option<String>,
}

fn num<T: std::str::FromStr>(line: usize, key: &str, v: &str) -> Result<T, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("config line {line}: bad {key} value {v:?}"))
}

fn cidr<T: std::str::FromStr>(line: usize, key: &str, v: &str, max: u8) -> Result<(T, u8), String> {
    let (a, p) = v.split_once('/').unwrap_or((v, ""));
    let prefix = if p.is_empty() {
        max
    } else {
        num(line, key, p)?
    };
    if prefix > max {
        return Err(format!(
            "config line {line}: prefix of {key} is above {max}"
        ));
    }
    Ok((num(line, key, a)?, prefix))
}

/// Extracts the config text from `data`: itself, or the `urunit.conf` entry of a newc cpio.
pub fn text_of(data: &[u8]) -> String {
    if data.starts_with(b"070701") || data.starts_with(b"070702") {
        if let Some(t) = crate::cpio::find(data, "urunit.conf") {
            return String::from_utf8_lossy(t).into_owned();
        }
    }
    let end = data.iter().position(|b| *b == 0).unwrap_or(data.len());
    String::from_utf8_lossy(&data[..end]).into_owned()
}

impl Config {
    pub fn parse(text: &str) -> Result<Config, String> {
        let mut c = Config::default();
        let mut section = "";
        let mut net = Net::default();
        let mut has_net = false;
        let mut pending_id: Option<String> = None;
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let line = raw.trim_end_matches('\r');
            match line.trim() {
                "UES" | "UCS" | "UBS" | "UNS" | "UXS" | "UAS" => {
                    section = line.trim();
                    has_net |= section == "UNS";
                    if section == "UAS" {
                        c.args = Some(Vec::new());
                    }
                    continue;
                }
                "UEE" | "UCE" | "UBE" | "UNE" | "UXE" | "UAE" => {
                    section = "";
                    continue;
                }
                _ => {}
            }
            if section == "UAS" {
                if let (Some(a), Some(args)) = (line.strip_prefix("A:"), c.args.as_mut()) {
                    args.push(unescape(a));
                }
                continue;
            }
            if section == "UES" {
                if !line.is_empty() {
                    c.env.push(line.to_string());
                }
                continue;
            }
            let Some((k, v)) = line.trim().split_once(':') else {
                continue;
            };
            let v = v.trim();
            match (section, k.trim()) {
                ("UCS", "UID") => c.uid = num(n, "UID", v)?,
                ("UCS", "GID") => c.gid = num(n, "GID", v)?,
                ("UCS", "GROUPS") => {
                    c.groups = v
                        .split(',')
                        .filter(|s| !s.trim().is_empty())
                        .map(|g| num(n, "GROUPS", g))
                        .collect::<Result<_, _>>()?
                }
                ("UCS", "WD") if !v.is_empty() => c.cwd = v.to_string(),
                ("UBS", "ID") => pending_id = Some(v.to_string()),
                ("UBS", "MP") => match pending_id.take() {
                    Some(id) => c.blocks.push(Block {
                        id,
                        mount_point: v.to_string(),
                    }),
                    None => return Err(format!("config line {n}: MP without a preceding ID")),
                },
                ("UNS", "MAC") => net.mac = Some(v.to_ascii_lowercase()),
                ("UNS", "IP") => net.ip = Some(cidr(n, "IP", v, 32)?),
                ("UNS", "GW") => net.gw = Some(num(n, "GW", v)?),
                ("UNS", "MTU") => net.mtu = Some(num(n, "MTU", v)?),
                ("UNS", "DNS") => net.dns.push(num(n, "DNS", v)?),
                ("UNS", "DNSSEARCH") => {
                    net.search = v.split_whitespace().map(String::from).collect()
                }
                ("UNS", "DNSOPT") if !v.is_empty() => net.options.push(v.to_string()),
                ("UNS", "IP6") => net.ip6.push(cidr(n, "IP6", v, 128)?),
                ("UNS", "GW6") => net.gw6 = Some(num(n, "GW6", v)?),
                ("UNS" | "UXS", "HOST") => c.hostname = Some(v.to_string()),
                ("UXS", "DEBUG") => c.debug = v == "1" || v == "true",
                ("UXS", "GRACE") => c.grace_secs = num(n, "GRACE", v)?,
                _ => {}
            }
        }
        if has_net {
            c.net = Some(net);
        }
        Ok(c)
    }
}

/// Undoes the `UAS` escapes: `\\`, `\n`, `\r` (any other backslash stays).
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Parses the kernel's `ip=<client>:<server>:<gw>:<netmask>:<host>:<dev>:<autoconf>`.
pub fn parse_ip_param(v: &str) -> Option<(Net, Option<String>)> {
    let f: Vec<&str> = v.split(':').collect();
    let ip: Ipv4Addr = f.first()?.parse().ok()?;
    let gw = f.get(2).and_then(|g| g.parse().ok());
    let prefix = f
        .get(3)
        .and_then(|m| m.parse::<Ipv4Addr>().ok())
        .map(|m| u32::from(m).count_ones() as u8)
        .unwrap_or(24);
    let host = f.get(4).filter(|h| !h.is_empty()).map(|h| h.to_string());
    let iface = f.get(5).filter(|d| !d.is_empty()).map(|d| d.to_string());
    Some((
        Net {
            ip: Some((ip, prefix)),
            gw,
            iface,
            ..Default::default()
        },
        host,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urunc_format_and_extensions() {
        let t = "UES\nA=1\nB=x y=z\nUEE\nUCS\nUID:1000\nGID:100\nGROUPS:10, 20\nWD:/srv\nUCE\n\
                 UBS\nID:vol0\nMP:/data\nUBE\nUNS\nIP:10.0.0.2/24\nGW:10.0.0.1\nMTU:1400\n\
                 DNS:10.0.0.1\nDNS:fd00::1\nDNSSEARCH:a.svc  b\nDNSOPT:ndots:5\nIP6:fd00::2/64\nGW6:fd00::1\nHOST:web\n\
                 MAC:AA:BB:CC:DD:EE:FF\nUNE\nUXS\nDEBUG:1\nGRACE:3\nNEW:thing\nUXE\n";
        let c = Config::parse(t).unwrap();
        assert_eq!(c.env, ["A=1", "B=x y=z"]);
        assert_eq!((c.uid, c.gid, c.groups.clone()), (1000, 100, vec![10, 20]));
        assert_eq!(c.cwd, "/srv");
        assert_eq!(c.blocks[0].id, "vol0");
        assert_eq!(c.blocks[0].mount_point, "/data");
        let n = c.net.unwrap();
        assert_eq!(n.ip, Some(("10.0.0.2".parse().unwrap(), 24)));
        assert_eq!(n.gw, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(n.mtu, Some(1400));
        assert_eq!(n.dns.len(), 2);
        assert_eq!(
            (n.search.clone(), n.options.clone()),
            (
                vec!["a.svc".to_string(), "b".into()],
                vec!["ndots:5".to_string()]
            )
        );
        assert_eq!(n.ip6, vec![("fd00::2".parse().unwrap(), 64)]);
        assert_eq!(n.mac.as_deref(), Some("aa:bb:cc:dd:ee:ff"));
        assert_eq!(c.hostname.as_deref(), Some("web"));
        assert!(c.debug);
        assert_eq!(c.grace_secs, 3);
    }

    #[test]
    fn old_format_without_extensions() {
        let c = Config::parse("UES\nUEE\nUCS\nUID:0\nGID:0\nWD:\nUCE\nUBS\nUBE\n").unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn rejects_garbage_values() {
        assert!(Config::parse("UCS\nUID:abc\nUCE\n").is_err());
        assert!(Config::parse("UNS\nIP:10.0.0.1/40\nUNE\n").is_err());
        assert!(Config::parse("UBS\nMP:/x\nUBE\n").is_err());
    }

    #[test]
    fn argv_section() {
        let c =
            Config::parse("UBS\nUBE\nUAS\nA:sh\nA:-c\nA:echo a\\\\b\\necho c\\r\nA: x \nA:\nUAE\n")
                .unwrap();
        assert_eq!(
            c.args.unwrap(),
            ["sh", "-c", "echo a\\b\necho c\r", " x ", ""]
        );
        assert_eq!(Config::parse("UES\nUEE\n").unwrap().args, None);
    }

    #[test]
    fn text_of_raw_and_padded() {
        assert_eq!(text_of(b"UES\nUEE\n\0\0\0"), "UES\nUEE\n");
    }

    #[test]
    fn ip_param() {
        let (n, h) = parse_ip_param("10.244.1.7::10.244.1.1:255.255.255.0:urunc:eth0:off").unwrap();
        assert_eq!(n.ip, Some(("10.244.1.7".parse().unwrap(), 24)));
        assert_eq!(n.gw, Some("10.244.1.1".parse().unwrap()));
        assert_eq!(n.iface.as_deref(), Some("eth0"));
        assert_eq!(h.as_deref(), Some("urunc"));
    }
}
