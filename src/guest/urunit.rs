//! urunit's configuration file, in urunc's text format (reference section 4.6), read by the
//! guest init from `/urunit.conf` (initrd rootfs) or `/sys/firmware/initrd` (passed as an
//! extra initrd):
//!
//! ```text
//! UES            environment, one K=V per line
//! K=V
//! UEE
//! UCS            process credentials and working directory
//! UID:<uid>
//! GID:<gid>
//! WD:<cwd>
//! GROUPS:<g1>,<g2>     (ours, only when there are supplementary groups)
//! UCE
//! UBS            block volumes (not the root device), one pair each
//! ID:<device id, the virtio-blk serial>
//! MP:<guest mount point>
//! UBE
//! UNS            (ours) the network, only when the container has one
//! MAC:<mac>
//! IP:<ipv4>/<prefix>
//! GW:<ipv4 gateway>            (when there is one)
//! MTU:<mtu>                    (when known)
//! DNS:<server>                 (one line per server, IPv4 or IPv6)
//! DNSSEARCH:<d1> <d2>          resolv.conf search domains (when there are some)
//! DNSOPT:<option>              one line per resolv.conf option (ndots:5, ...)
//! IP6:<ipv6>/<prefix>          (one line per address)
//! GW6:<ipv6 gateway>
//! HOST:<hostname>              (the container's, when it has one)
//! UNE
//! UXS            (ours) urunit itself, only for a hostname without a network
//! HOST:<hostname>
//! UXE
//! UAS            (ours) the program's argv, only when it cannot travel on the kernel
//! A:<arg>              command line (see `linux::fits_kernel_cmdline`); one line per
//! UAE                  argument, `\` written `\\`, line feed `\n`, carriage return `\r`
//! ```
//!
//! The extensions are backward compatible: a urunit that does not know a section or key skips
//! it, and urunc's urunit never gets one it did not ask for except `UNS` (which it ignores and
//! then relies on the kernel's `ip=` parameter, as before).

use crate::plan::{NetParams, ProcessParams};

/// A volume for urunit to mount.
#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    pub id: String,
    pub mount_point: String,
}

/// The configuration text; an error when a value cannot be carried by the line format.
pub fn config(
    p: &ProcessParams,
    volumes: &[Volume],
    net: Option<&NetParams>,
    args: Option<&[String]>,
) -> Result<String, String> {
    let mut s = String::from("UES\n");
    for e in &p.env {
        if e.contains(['\n', '\r']) {
            let name = e.split('=').next().unwrap_or_default();
            return Err(format!(
                "environment variable {name} contains a line break, which urunit cannot receive"
            ));
        }
        s.push_str(e);
        s.push('\n');
    }
    s.push_str("UEE\nUCS\n");
    let cwd = if p.cwd.is_empty() { "/" } else { &p.cwd };
    if cwd.contains(['\n', '\r']) {
        return Err("the working directory contains a line break".into());
    }
    s.push_str(&format!("UID:{}\nGID:{}\nWD:{cwd}\n", p.uid, p.gid));
    if !p.additional_gids.is_empty() {
        let g: Vec<String> = p.additional_gids.iter().map(|g| g.to_string()).collect();
        s.push_str(&format!("GROUPS:{}\n", g.join(",")));
    }
    s.push_str("UCE\nUBS\n");
    for v in volumes {
        if v.mount_point.contains(['\n', '\r']) {
            return Err("a volume mount point contains a line break".into());
        }
        s.push_str(&format!("ID:{}\nMP:{}\n", v.id, v.mount_point));
    }
    s.push_str("UBE\n");
    let host = p.hostname.as_str();
    if host.contains(['\n', '\r']) {
        return Err("the hostname contains a line break".into());
    }
    if let Some(n) = net {
        s.push_str("UNS\n");
        s.push_str(&format!("MAC:{}\nIP:{}/{}\n", n.mac, n.ip, n.prefix));
        if let Some(g) = n.gateway {
            s.push_str(&format!("GW:{g}\n"));
        }
        if n.mtu > 0 {
            s.push_str(&format!("MTU:{}\n", n.mtu));
        }
        for d in &n.dns {
            s.push_str(&format!("DNS:{d}\n"));
        }
        if !n.dns_search.is_empty() {
            s.push_str(&format!("DNSSEARCH:{}\n", n.dns_search.join(" ")));
        }
        for o in &n.dns_options {
            s.push_str(&format!("DNSOPT:{o}\n"));
        }
        for (a, pfx) in &n.ipv6 {
            s.push_str(&format!("IP6:{a}/{pfx}\n"));
        }
        if let Some(g) = n.ipv6_gateway {
            s.push_str(&format!("GW6:{g}\n"));
        }
        if !host.is_empty() {
            s.push_str(&format!("HOST:{host}\n"));
        }
        s.push_str("UNE\n");
    } else if !host.is_empty() {
        s.push_str(&format!("UXS\nHOST:{host}\nUXE\n"));
    }
    if let Some(args) = args {
        s.push_str("UAS\n");
        for a in args {
            let e = a
                .replace('\\', "\\\\")
                .replace('\n', "\\n")
                .replace('\r', "\\r");
            s.push_str(&format!("A:{e}\n"));
        }
        s.push_str("UAE\n");
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urunc_sections_then_ours() {
        let p = ProcessParams {
            env: vec!["PATH=/bin".into(), "A=b c".into()],
            uid: 1000,
            gid: 42,
            additional_gids: vec![],
            cwd: "/srv".into(),
            ..Default::default()
        };
        let v = [Volume {
            id: "vol3".into(),
            mount_point: "/mnt/data".into(),
        }];
        assert_eq!(
            config(&p, &v, None, None).unwrap(),
            "UES\nPATH=/bin\nA=b c\nUEE\nUCS\nUID:1000\nGID:42\nWD:/srv\nUCE\nUBS\nID:vol3\nMP:/mnt/data\nUBE\n"
        );
        let bad = ProcessParams {
            env: vec!["X=a\nb".into()],
            ..Default::default()
        };
        assert!(config(&bad, &[], None, None).unwrap_err().contains("X"));
    }

    #[test]
    fn network_ipv6_and_hostname() {
        let mut n = crate::monitor::golden_fixture::net();
        n.ipv6 = vec![("fd00::2".parse().unwrap(), 64)];
        n.ipv6_gateway = Some("fd00::1".parse().unwrap());
        n.dns.push("2001:db8::53".parse().unwrap());
        n.dns_search = vec!["ns.svc.cluster.local".into(), "cluster.local".into()];
        n.dns_options = vec!["ndots:5".into()];
        let p = ProcessParams {
            hostname: "web".into(),
            ..Default::default()
        };
        assert_eq!(
            config(&p, &[], Some(&n), None).unwrap(),
            "UES\nUEE\nUCS\nUID:0\nGID:0\nWD:/\nUCE\nUBS\nUBE\nUNS\nMAC:aa:bb:cc:dd:ee:ff\n\
             IP:10.4.0.5/24\nGW:10.4.0.1\nMTU:1500\nDNS:10.96.0.10\nDNS:2001:db8::53\n\
             DNSSEARCH:ns.svc.cluster.local cluster.local\nDNSOPT:ndots:5\n\
             IP6:fd00::2/64\nGW6:fd00::1\nHOST:web\nUNE\n"
        );
        // without a network the hostname still reaches the guest, and no UNS section appears
        assert!(config(&p, &[], None, None)
            .unwrap()
            .ends_with("UBE\nUXS\nHOST:web\nUXE\n"));
        let bad = ProcessParams {
            hostname: "a\nb".into(),
            ..Default::default()
        };
        assert!(config(&bad, &[], None, None).is_err());
    }

    #[test]
    fn argv_section_escapes_line_breaks_and_backslashes() {
        let args = [
            "-c".to_string(),
            "echo a\\b\nexit 3\r".to_string(),
            " x ".into(),
        ];
        assert!(config(&ProcessParams::default(), &[], None, Some(&args))
            .unwrap()
            .ends_with("UBE\nUAS\nA:-c\nA:echo a\\\\b\\nexit 3\\r\nA: x \nUAE\n"));
    }
}
